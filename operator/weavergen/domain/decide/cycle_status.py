"""A cycle's status from its workflow data and phase timings (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from weavergen.domain import reasons
from weavergen.domain.decide.reconcile import Conditions
from weavergen.domain.times import parse_time, stamp

# The data key each phase's result is under (its BPMN task has the phase's name).
PHASE_RESULT_KEYS = {
    "define": "define",
    "measure": "measurement_before",
    "explore": "exploration",
    "develop": "solution",
    "implement": "implementation",
}
RUNNING_PHASE = {
    "define": "Defining",
    "measure": "Measuring",
    "explore": "Exploring",
    "develop": "Developing",
    "implement": "Implementing",
}
DIFF_LIMIT = 4096
OUTCOME_PHASE = {
    "succeeded": "Succeeded",
    "escalated": "Escalated",
    "not_needed": "NotNeeded",
    "rolled_back": "RolledBack",
    "failed": "Failed",
    "rollback_failed": "Failed",
}


def _entropy(measurement: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not measurement or measurement.get("status") != "ok":
        return None
    return {
        "score": measurement["entropy_score"],
        "level": measurement["entropy_level"],
        "healthScore": measurement["health_score"],
    }


def phase_records(
    previous: list[dict[str, Any]],
    task: str,
    *,
    finished: bool,
    now: datetime,
    cycle_started: str | None = None,
    job: str | None = None,
    outcome: str = "Succeeded",
    message: str = "",
) -> list[dict[str, Any]]:
    """The per-phase records with one phase marked running or finished (idempotent), with
    ``outcome`` once finished (a stopped cycle's running phase did not succeed).

    A phase first seen when it finishes (an inline phase) started when the one before it ended.
    """
    records = [dict(r) for r in previous]
    record = next((r for r in records if r["name"] == task), None)
    if record is None:
        since = records[-1].get("finishedAt") if records else cycle_started
        record = {
            "name": task,
            "startedAt": since or stamp(now),
            "attempts": 1,
            "outcome": "Running",
        }
        if job:
            record["job"] = job
        records.append(record)
    if finished and record.get("outcome") == "Running":
        started = parse_time(record["startedAt"]) or now
        record["finishedAt"] = stamp(now)
        record["durationSeconds"] = round((now - started).total_seconds(), 3)
        record["outcome"] = outcome
        if message:
            record["message"] = message
    return records


def cycle_status(
    data: Mapping[str, Any],
    status: Mapping[str, Any],
    generation: int | None,
    now: datetime,
    *,
    finished: bool,
) -> dict[str, Any]:
    """Conditions, entropy before/after, options and, once ``finished``, the outcome."""
    conditions = Conditions(list(status.get("conditions") or []), generation, now)
    for phase, key in PHASE_RESULT_KEYS.items():
        if key in data:
            condition = reasons.PHASE_CONDITIONS[phase]
            conditions.set(condition, True, reasons.PHASE_COMPLETED, f"{condition.lower()} done")
    patch: dict[str, Any] = {
        "observedGeneration": generation,
        "entropyBefore": _entropy(data.get("measurement_before")),
        "entropyAfter": _entropy(data.get("measurement_after")),
    }
    if "exploration" in data:
        patch["options"] = data["exploration"]["options"]
        patch["chosenStrategy"] = data["chosen"]["strategy"]
    solution = data.get("solution")
    if solution:
        patch["plan"] = [
            {
                "action": step["action"],
                "object": change["object"],
                "diff": change["diff"][:DIFF_LIMIT],
            }
            for step in solution["plan"]
            for change in step["changes"]
        ]
        patch["gitOps"] = [
            {**note, "paths": note["paths"][:64]} for note in solution.get("gitops") or []
        ]
        patch["predictedEntropy"] = solution["predicted_entropy"]
    verification = (data.get("implementation") or {}).get("verification")
    if verification:
        patch["verification"] = {
            key: verification[key]
            for key in ("decision", "seconds", "since", "requests", "bad", "summary")
            if verification.get(key) is not None
        }
    outcome = data.get("outcome")
    if finished and outcome:
        phase = OUTCOME_PHASE.get(str(outcome), "Failed")
        message = outcome_message(phase, data)
        # A final status written again (a second reconcile) keeps the first one's end time.
        ended = status.get("finishedAt") or stamp(now)
        patch.update({"phase": phase, "finishedAt": ended, "message": message})
        rollback = rollback_record(data, message)
        if rollback is not None:
            patch["rollback"] = rollback
        reason = reasons.ROLLBACK_FAILED if outcome == "rollback_failed" else phase
        mark_outcome(conditions, phase, reason, message)
    patch["conditions"] = conditions.items
    return {k: v for k, v in patch.items() if v is not None}


def mark_outcome(conditions: Conditions, phase: str, reason: str, message: str) -> None:
    """The outcome conditions of a cycle that ended ``phase``: True for it, False for the rest."""
    for kind in reasons.OUTCOME_CONDITIONS:
        conditions.set(kind, phase == kind, reason, message if phase == kind else "")


def rollback_record(data: Mapping[str, Any], reason: str) -> dict[str, Any] | None:
    """The cycle's rollback: the strategy's own (restore and verify) and the cycle's (after an
    Implement that failed or did not hold) are one rollback, from its first start to its end."""
    records = [
        r for r in ((data.get("implementation") or {}).get("rollback"), data.get("rollback")) if r
    ]
    if not records:
        return None
    last = records[-1]
    return {
        "reason": reason,
        "startedAt": min(r["startedAt"] for r in records),
        "finishedAt": last["finishedAt"],
        "sha256": last["sha256"],
        "restoredObjects": last["restoredObjects"],
        "verified": last["verified"],
    }


def outcome_message(phase: str, data: Mapping[str, Any]) -> str:
    implementation = data.get("implementation") or {}
    failure = data.get("failure") or implementation.get("failure")
    verdict = implementation.get("verdict") or []
    strategy = (data.get("chosen") or {}).get("strategy")
    if phase == "Succeeded":
        return f"{strategy} succeeded: " + "; ".join(verdict)
    if phase == "NotNeeded":
        return "entropy is below the level that needs regeneration"
    if phase == "Escalated":
        reason = ((data.get("solution") or {}).get("parameters") or {}).get("escalation_reason")
        return "escalated without changing anything: " + (
            reason or "no safe remedy for these symptoms"
        )
    rollback = data.get("rollback_failure")
    if phase == "Failed" and rollback:
        # First: the target may be left as the failed attempt changed it (e.g. a snapshot
        # refused for restore because it was tampered with); that is what people must act on.
        return f"rollback failed ({rollback.get('operator')}): {rollback.get('error')}"
    if verdict and verdict != ["every success criterion met"]:
        return f"{strategy} did not meet the success criteria: " + "; ".join(verdict)
    if failure:
        return f"{failure.get('task')} failed: {failure.get('error')}"
    return f"{strategy} did not meet the success criteria: " + "; ".join(verdict)


def cycle_duration_seconds(final: Mapping[str, Any]) -> float | None:
    """A finished cycle's duration: the sum of its phases' (cheap; no clock parsing)."""
    durations = [p.get("durationSeconds") for p in final.get("phases") or []]
    known = [d for d in durations if d is not None]
    return float(sum(known)) if known else None
