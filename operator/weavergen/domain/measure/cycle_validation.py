"""Checking DMEDI cycles from their spans: did every phase run, and did entropy really drop?

The operator's own status could claim success; the spans are evidence written as the cycle ran,
possibly by several processes (phases run in Jobs). A cycle is one trace: a ``dmedi_cycle`` root
with the before/after measurements and one child span per phase.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from weavergen.api.charter import PHASES
from weavergen.domain.measure.spans import Event, SpanRecord

ROOT_SPAN = "dmedi_cycle"
SPAN_PREFIX = "dmedi_"
STATUS_ERROR = 2
ROLLBACK_EVENT = "rollback"
# Cycles that changed nothing on purpose: NotNeeded found a healthy system, Escalated found
# symptoms no strategy can safely fix (a failing dependency) and handed them to people. Neither
# is a regeneration, so neither counts for or against regeneration effectiveness.
NO_REGENERATION = ("NotNeeded", "Escalated")
TOLERANCE = 1e-9
"""Aggregate checks pass within float rounding: 0.7 - 0.4 is a health improvement of 0.3."""


class Check(NamedTuple):
    """One acceptance check over ``cases`` cycles: passes when ``value >= target``."""

    name: str
    value: float
    target: float
    passed: bool
    cases: int


CHECK_SCOPE = {
    "regeneration_success_rate": "cycles that regenerated (not NotNeeded or Escalated)",
    "average_health_improvement": "cycles that regenerated (not NotNeeded or Escalated)",
    "entropy_detection_accuracy": "cycles with a known true level",
}
"""Which cycles each aggregate check counts, for people."""


@dataclass(frozen=True)
class CycleValidation:
    """What one cycle's trace shows, and every reason it fails validation."""

    trace_id: str
    cycle: str
    charter: str
    outcome: str
    phases_completed: int
    missing_phases: tuple[str, ...]
    failed_phases: tuple[str, ...]
    entropy_before: float | None
    entropy_after: float | None
    entropy_improvement: float
    health_before: float | None
    health_after: float | None
    health_improvement: float
    strategy: str | None
    rolled_back: bool
    detected_level: str | None
    expected_level: str | None
    passed: bool
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace_id,
            "cycle": self.cycle,
            "charter": self.charter,
            "outcome": self.outcome,
            "phases_completed": self.phases_completed,
            "missing_phases": list(self.missing_phases),
            "failed_phases": list(self.failed_phases),
            "entropy_before": self.entropy_before,
            "entropy_after": self.entropy_after,
            "entropy_improvement": self.entropy_improvement,
            "health_before": self.health_before,
            "health_after": self.health_after,
            "health_improvement": self.health_improvement,
            "strategy": self.strategy,
            "rolled_back": self.rolled_back,
            "detected_level": self.detected_level,
            "expected_level": self.expected_level,
            "passed": self.passed,
            "reasons": list(self.reasons),
        }


def _number(attributes: dict[str, Any], key: str) -> float | None:
    value = attributes.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _text(attributes: dict[str, Any], key: str) -> str | None:
    value = attributes.get(key)
    return value if isinstance(value, str) and value else None


def _find_root(trace: Sequence[SpanRecord]) -> SpanRecord | None:
    """The root; if the operator emitted it twice, the one that ended last has the final word."""
    roots = [s for s in trace if s.name == ROOT_SPAN and not s.parent_span_id]
    return max(roots, key=lambda s: s.end_ns, default=None)


def _phases(trace: Sequence[SpanRecord]) -> tuple[list[str], list[str], list[str]]:
    """Missing and failed phases, and failure messages; a retried phase passes if one try did."""
    missing, failed, messages = [], [], []
    for phase in PHASES:
        spans = [s for s in trace if s.name == SPAN_PREFIX + phase]
        if not spans:
            missing.append(phase)
        elif all(s.status_code == STATUS_ERROR for s in spans):
            failed.append(phase)
            message = spans[-1].status_message
            messages.append(f"{SPAN_PREFIX}{phase} failed" + (f" ({message})" if message else ""))
    return missing, failed, messages


def validate_cycle(trace: Sequence[SpanRecord], *, min_improvement: float = 0.2) -> CycleValidation:
    """Validate one cycle's trace: all five phases completed and entropy dropped enough.

    Passes when the root span is there, every phase completed and the relative entropy
    improvement is above ``min_improvement``. A NotNeeded cycle fails: nothing was regenerated.
    """
    trace_id = trace[0].trace_id if trace else ""
    root = _find_root(trace)
    attributes = root.attributes if root is not None else {}
    outcome = _text(attributes, "weavergen.cycle.outcome") or ""
    missing, failed, failure_messages = _phases(trace)
    completed = len(PHASES) - len(missing) - len(failed)

    before = _number(attributes, "weavergen.entropy.before")
    after = _number(attributes, "weavergen.entropy.after")
    improvement = 0.0
    if before is not None and before > 0 and after is not None:
        improvement = (before - after) / before
    health_before = _number(attributes, "weavergen.health.before")
    health_after = _number(attributes, "weavergen.health.after")
    rollbacks = [e for e in root.events if e[0] == ROLLBACK_EVENT] if root is not None else []
    rolled_back = bool(rollbacks) or outcome == "RolledBack"

    reasons = [] if root is not None else [f"no {ROOT_SPAN} root span in trace {trace_id}"]
    if completed < len(PHASES):
        reasons.append(_phases_reason(completed, missing, failure_messages, outcome))
    if root is not None and (
        entropy_reason := _entropy_reason(before, after, improvement, min_improvement, rollbacks)
    ):
        reasons.append(entropy_reason)

    return CycleValidation(
        trace_id=trace_id,
        cycle=_text(attributes, "weavergen.cycle.name") or "",
        charter=_text(attributes, "weavergen.charter.name") or "",
        outcome=outcome,
        phases_completed=completed,
        missing_phases=tuple(missing),
        failed_phases=tuple(failed),
        entropy_before=before,
        entropy_after=after,
        entropy_improvement=improvement,
        health_before=health_before,
        health_after=health_after,
        health_improvement=(
            health_after - health_before
            if health_before is not None and health_after is not None
            else 0.0
        ),
        strategy=_text(attributes, "weavergen.strategy"),
        rolled_back=rolled_back,
        detected_level=_text(attributes, "weavergen.entropy.level.before"),
        expected_level=_text(attributes, "weavergen.simulation.expected_level"),
        passed=not reasons,
        reasons=tuple(reasons),
    )


def _phases_reason(
    completed: int, missing: Sequence[str], failure_messages: Sequence[str], outcome: str
) -> str:
    """Why the phases fail a cycle: each failed phase with its message, then the missing ones,
    and the outcome when it is not a plain success (it often says why the cycle stopped)."""
    gaps = [f"{SPAN_PREFIX}{p}" for p in missing]
    detail = ", ".join([*failure_messages, *([f"{', '.join(gaps)} missing"] if gaps else [])])
    note = f" (outcome {outcome})" if outcome not in ("", "Succeeded") else ""
    return f"only {completed} of {len(PHASES)} phases completed: {detail}{note}"


def _entropy_reason(
    before: float | None,
    after: float | None,
    improvement: float,
    min_improvement: float,
    rollbacks: Sequence[Event],
) -> str | None:
    """Why the root's entropy fails a cycle, or None: it was not recorded, or did not drop
    enough (with the rollback's reason, which says what went wrong)."""
    if before is None or after is None:
        return f"{ROOT_SPAN} does not record weavergen.entropy.before and weavergen.entropy.after"
    if improvement > min_improvement:
        return None
    why = _text(rollbacks[-1][2], "weavergen.rollback.reason") if rollbacks else None
    return (
        f"entropy improvement {improvement:.2f} is not above {min_improvement:.2f}"
        f" (entropy {_pair(before, after)})" + (f", rolled back: {why}" if why else "")
    )


@dataclass(frozen=True)
class ValidationReport:
    """The cycles of a capture and the acceptance checks over them."""

    cycles: tuple[CycleValidation, ...]
    success_rate: float | None
    average_health_improvement: float | None
    regeneration_cases: int
    detection_accuracy: float | None
    detection_cases: int
    checks: tuple[Check, ...]
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "success_rate": self.success_rate,
            "average_health_improvement": self.average_health_improvement,
            "regeneration_cases": self.regeneration_cases,
            "detection_accuracy": self.detection_accuracy,
            "detection_cases": self.detection_cases,
            "checks": [check._asdict() for check in self.checks],
            "cycles": [cycle.to_dict() for cycle in self.cycles],
        }


def _check(name: str, value: float, target: float, cases: int) -> Check:
    return Check(name, value, target, value >= target - TOLERANCE, cases)


def _share(part: float, cases: int) -> float | None:
    return part / cases if cases else None


def _traces(records: Sequence[SpanRecord], trace_id: str | None) -> list[list[SpanRecord]]:
    """Records grouped by trace, earliest first: the chosen trace, or those of DMEDI cycles."""
    traces: dict[str, list[SpanRecord]] = {}
    for record in records:
        traces.setdefault(record.trace_id, []).append(record)
    if trace_id is not None:
        wanted = trace_id.lower()
        matches = [spans for tid, spans in traces.items() if tid.startswith(wanted)]
        if not matches or not wanted:
            raise ValueError(f"no spans of trace {trace_id}")
        if len(matches) > 1:
            raise ValueError(f"trace id {trace_id} is ambiguous: it begins {len(matches)} traces")
        return matches
    cycles = [
        spans for spans in traces.values() if any(s.name.startswith(SPAN_PREFIX) for s in spans)
    ]
    return sorted(cycles, key=lambda spans: min(s.start_ns for s in spans))


def validate_spans(
    records: Sequence[SpanRecord],
    *,
    trace_id: str | None = None,
    min_improvement: float = 0.2,
    min_success_rate: float = 0.8,
    min_health_improvement: float = 0.3,
    min_accuracy: float = 0.95,
) -> ValidationReport:
    """Validate every DMEDI cycle in the records (or the one trace ``trace_id``, or a prefix of it).

    One cycle (or none) must pass itself; several are judged together: success rate and average
    health improvement over the cycles that regenerated (see ``NO_REGENERATION``) and, over
    every cycle where the simulator
    recorded the true level, detection accuracy. Several cycles that all found nothing to do, and
    carry no true level, are judged as one: they fail, as a single NotNeeded cycle does.
    """
    cycles = tuple(
        validate_cycle(spans, min_improvement=min_improvement)
        for spans in _traces(records, trace_id)
    )
    passed = sum(c.passed for c in cycles)
    regenerated = [c for c in cycles if c.outcome not in NO_REGENERATION]
    success_rate = _share(sum(c.passed for c in regenerated), len(regenerated))
    average_health = _share(sum(c.health_improvement for c in regenerated), len(regenerated))
    known = [c for c in cycles if c.expected_level is not None]
    accuracy = _share(sum(c.detected_level == c.expected_level for c in known), len(known))
    checks = []
    if len(cycles) > 1:
        if success_rate is not None and average_health is not None:
            checks += [
                _check(
                    "regeneration_success_rate", success_rate, min_success_rate, len(regenerated)
                ),
                _check(
                    "average_health_improvement",
                    average_health,
                    min_health_improvement,
                    len(regenerated),
                ),
            ]
        if accuracy is not None:
            checks.append(_check("entropy_detection_accuracy", accuracy, min_accuracy, len(known)))
    if not checks:
        checks = [_check("cycles_passed", passed, 1, len(cycles))]
    return ValidationReport(
        cycles=cycles,
        success_rate=success_rate,
        average_health_improvement=average_health,
        regeneration_cases=len(regenerated),
        detection_accuracy=accuracy,
        detection_cases=len(known),
        checks=tuple(checks),
        passed=all(check.passed for check in checks),
    )


def _pair(before: float | None, after: float | None) -> str:
    def shown(value: float | None) -> str:
        return "?" if value is None else f"{value:.3g}"

    return f"{shown(before)} -> {shown(after)}"


def render_text(report: ValidationReport) -> str:
    """A short table for people: one line per cycle, then the checks and the verdict."""
    rows = [("trace", "cycle", "outcome", "phases", "entropy", "health", "result")]
    for c in report.cycles:
        entropy = _pair(c.entropy_before, c.entropy_after)
        if c.entropy_before is not None and c.entropy_after is not None:
            entropy += f" ({c.entropy_improvement:.0%})"
        rows.append(
            (
                c.trace_id[:8],
                c.cycle or "?",
                (c.outcome or "?")
                + (" (rolled back)" if c.rolled_back and c.outcome != "RolledBack" else ""),
                f"{c.phases_completed}/{len(PHASES)}",
                entropy,
                _pair(c.health_before, c.health_after),
                "PASS" if c.passed else "FAIL: " + "; ".join(c.reasons),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = [
        "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    ]
    if not report.cycles:
        lines.append("(no DMEDI cycle spans found)")
    lines.append("")
    width = max(len(check.name) for check in report.checks)
    lines.extend(
        f"{check.name.ljust(width)}  {check.value:.3g} (target >= {check.target:.3g})  "
        + (
            f"over the {check.cases} {CHECK_SCOPE[check.name]} (of {len(report.cycles)})  "
            if check.name in CHECK_SCOPE
            else ""
        )
        + ("PASS" if check.passed else "FAIL")
        for check in report.checks
    )
    lines.append("PASSED" if report.passed else "FAILED")
    return "\n".join(lines) + "\n"
