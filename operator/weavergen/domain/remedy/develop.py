"""Develop: turn the chosen option into a solution — the workflow to run, its parameters, a
dry-run plan of every object change (as diffs), and the entropy predicted after the fix.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from weavergen.domain.remedy.actions import ActionInput, Manifest, diff, plan_action
from weavergen.domain.remedy.gitops import Reverting, drift_notes
from weavergen.domain.remedy.snapshot import fingerprints
from weavergen.domain.remedy.strategies import strategy as catalog_strategy


@dataclass(frozen=True)
class PlannedStep:
    action: str
    changes: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Solution:
    strategy: str
    workflow: str
    process_id: str
    parameters: dict[str, Any]
    steps: list[PlannedStep]
    success_probability: float
    entropy_before: float
    predicted_entropy: float
    reasons: list[str]
    basis: dict[str, str]  # fingerprints of the objects the plan was made from
    # Planned changes a GitOps controller would revert (``gitops.drift_notes``): to commit.
    gitops: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "workflow": self.workflow,
            "process_id": self.process_id,
            "parameters": self.parameters,
            "plan": [{"action": s.action, "changes": s.changes} for s in self.steps],
            "success_probability": round(self.success_probability, 4),
            "entropy_before": self.entropy_before,
            "predicted_entropy": round(self.predicted_entropy, 4),
            "reasons": self.reasons,
            "basis": self.basis,
            "gitops": self.gitops,
        }


def workflow_path(strategy: str) -> tuple[str, str]:
    """The BPMN file (relative to the repository's bpmn/ folder) and process id of a strategy."""
    return f"strategies/{strategy}.bpmn", strategy.replace("-", "_")


def develop(
    option: Mapping[str, Any],
    *,
    entropy_before: float,
    objects: Mapping[str, Manifest],
    golden: Mapping[str, Manifest] | None = None,
    previous_templates: Mapping[str, Manifest] | None = None,
    parameters: Mapping[str, Any] | None = None,
    now: str = "1970-01-01T00:00:00Z",
    reverted: Mapping[str, Reverting] | None = None,
) -> Solution:
    """A solution for a ranked option (``Option.as_status()`` form, camelCase keys).

    The plan applies the strategy's actions in order to a copy of ``objects``, so each diff
    shows the change on top of the previous steps; nothing is changed for real. Changes to
    objects a GitOps controller reverts (``reverted``, by key) are named with the paths Git
    holds: a fix made only in the cluster would come undone at its next sync.
    """
    name = str(option["strategy"])
    strategy = catalog_strategy(name)
    params = {
        "settle_seconds": 30,
        "rollout_timeout_seconds": 300,
        "replicas_delta": 1,
        "sampling_ratio": 0.25,
    }
    params.update(parameters or {})
    steps, planned = _dry_run(
        strategy.actions,
        objects,
        golden=golden or {},
        previous_templates=previous_templates or {},
        params=params,
        now=now,
    )
    probability = float(option["successProbability"])
    workflow, process_id = workflow_path(name)
    return Solution(
        strategy=name,
        workflow=workflow,
        process_id=process_id,
        parameters=params,
        steps=steps,
        success_probability=probability,
        entropy_before=entropy_before,
        predicted_entropy=(1 - probability) * entropy_before,
        reasons=list(option.get("reasons", [])),
        basis=fingerprints(objects),
        gitops=drift_notes(planned, reverted or {}, objects),
    )


def _dry_run(
    actions: Iterable[str],
    objects: Mapping[str, Manifest],
    *,
    golden: Mapping[str, Manifest],
    previous_templates: Mapping[str, Manifest],
    params: Mapping[str, Any],
    now: str,
) -> tuple[list[PlannedStep], list[tuple[str, Manifest | None, Manifest]]]:
    """Each action planned on a copy that carries the earlier actions' changes: a step's diff
    is what it adds to the steps before it, and the real objects stay untouched. Also each
    changed object as it is now and as the whole plan leaves it."""
    current = {k: v for k, v in objects.items()}
    steps = []
    for action in actions:
        changed = plan_action(
            action,
            ActionInput(
                objects=current,
                golden=golden,
                previous_templates=previous_templates,
                params=params,
                now=now,
            ),
        )
        steps.append(
            PlannedStep(
                action,
                [
                    {"object": key, "diff": diff(current.get(key), new)}
                    for key, new in changed.items()
                ],
            )
        )
        current.update(changed)
    planned = [(key, objects.get(key), after) for key, after in current.items()]
    return steps, [(k, before, after) for k, before, after in planned if before != after]
