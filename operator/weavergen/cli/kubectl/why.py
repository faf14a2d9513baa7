"""`kubectl weavergen why CYCLE`: why the cycle did what it did, as a pure function.

The cycle's status holds the ranked options with their reasons, the chosen strategy, the plan
(diffs cut at 4 KiB) and the rollback. A cycle whose phases ran as Jobs also left its phase
results in ConfigMaps (``<cycle>-explore``, ``<cycle>-develop``): they add the symptoms, the
excluded strategies, Develop's reasons and the whole diffs, so they are used when present.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from weavergen.api.cycle import PlannedChange, RankedOption, RegenerationCycle
from weavergen.api.cycle import RegenerationCycleStatus as Status
from weavergen.cli.kubectl.render import table

Step = tuple[str, list[tuple[str, str]]]  # action, [(object, diff)]


def plan_steps(planned: Sequence[PlannedChange], solution: Mapping[str, Any] | None) -> list[Step]:
    """The plan as steps of changes: Develop's own (whole diffs) when there, else the status's
    flat list grouped by consecutive action."""
    if solution and isinstance(solution.get("plan"), list):
        return [
            (
                str(step.get("action")),
                [(str(c.get("object")), str(c.get("diff", ""))) for c in step.get("changes", [])],
            )
            for step in solution["plan"]
        ]
    steps: list[Step] = []
    for change in planned:
        if not steps or steps[-1][0] != change.action:
            steps.append((change.action, []))
        steps[-1][1].append((change.object, change.diff))
    return steps


def options_table(options: Sequence[RankedOption], chosen: str | None) -> str:
    """The ranked options, the chosen one marked with ``*``, then each one's reasons."""
    rows = [
        [
            ("* " if o.strategy == chosen else "  ") + str(o.rank),
            o.strategy,
            f"{o.score:.2f}",
            f"{o.success_probability:.2f}",
            f"{o.recovery_time_seconds:.0f}s",
            f"{o.risk:.2f}",
            f"{o.resource_cost:.2f}",
        ]
        for o in sorted(options, key=lambda o: o.rank)
    ]
    text = table(("RANK", "STRATEGY", "SCORE", "SUCCESS", "RECOVERY", "RISK", "RESOURCES"), rows)
    for option in sorted(options, key=lambda o: o.rank):
        mark = " (chosen)" if option.strategy == chosen else ""
        text += f"\n{option.rank}. {option.strategy}{mark}\n"
        text += "".join(f"   - {reason}\n" for reason in option.reasons) or "   (no reasons)\n"
    return text


def _symptoms(exploration: Mapping[str, Any] | None) -> str:
    if not exploration:
        return ""
    causes = exploration.get("causes") or {}
    ranked = sorted(causes.items(), key=lambda item: -float(item[1]))
    lines = [f"Signature: {exploration.get('signature', '')}"]
    if ranked:
        lines.append("Likely causes: " + ", ".join(f"{c} {float(p):.2f}" for c, p in ranked))
    for strategy, reason in sorted((exploration.get("excluded") or {}).items()):
        lines.append(f"Excluded {strategy}: {reason}")
    escalation = (exploration.get("escalation") or {}).get("reason")
    if escalation:
        lines.append(f"Escalation would say: {escalation}")
    return "\n".join(lines) + "\n"


def _plan(status: Status, solution: Mapping[str, Any] | None) -> str:
    steps = plan_steps(status.plan, solution)
    if not status.chosen_strategy and not steps:
        return "\nChosen plan: none yet.\n"
    text = f"\nChosen plan: {status.chosen_strategy or (solution or {}).get('strategy')}"
    if status.predicted_entropy is not None:
        text += f", predicted entropy {status.predicted_entropy:.2f}"
    text += "\n"
    text += "".join(f"   - {reason}\n" for reason in (solution or {}).get("reasons") or [])
    if not steps:
        return text + "   (no object changes)\n"
    for number, (action, changes) in enumerate(steps, 1):
        text += f"\nStep {number}: {action}\n"
        for obj, diff in changes:
            text += f"  {obj}\n"
            text += "".join(f"    {line}\n" for line in diff.splitlines()) or "    (no diff)\n"
    return text


def _rollback(status: Status) -> str:
    back = status.rollback
    if back is None:
        return "\nRollback: none.\n"
    text = f"\nRollback: {back.reason}\n"
    if back.snapshot or back.sha256:
        text += f"  from snapshot {back.snapshot or '?'} (sha256 {back.sha256 or '?'})\n"
    text += "".join(f"  restored {obj}\n" for obj in back.restored_objects)
    verified = "live objects equal the snapshot" if back.verified else "NOT verified"
    return text + f"  {verified}\n"


def why_text(
    cycle: RegenerationCycle,
    exploration: Mapping[str, Any] | None = None,
    solution: Mapping[str, Any] | None = None,
) -> str:
    """Options with reasons and scores, the chosen plan with its diffs, and the rollback."""
    status = cycle.status or Status()
    meta = cycle.metadata
    text = (
        f"Cycle {meta.namespace}/{meta.name} of charter {cycle.spec.charter_ref.name}: "
        f"{status.phase}\nReason: {cycle.spec.reason}\n"
    )
    if status.message:
        text += f"Outcome: {status.message}\n"
    before, after = status.entropy_before, status.entropy_after
    if before is not None:
        text += f"Entropy before: {before.score:.2f} {before.level}\n"
    if after is not None:
        text += f"Entropy after: {after.score:.2f} {after.level}\n"
    text += _symptoms(exploration)
    if status.options:
        text += "\nRanked options\n" + options_table(status.options, status.chosen_strategy)
    else:
        text += "\nRanked options: none yet (Explore has not finished).\n"
    return text + _plan(status, solution) + _rollback(status)
