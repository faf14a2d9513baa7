"""What one reconcile of a cycle writes (pure): the planner between gathering and applying.

The cycle's reconcile gathers what it observes (its status, its workflow's data after a step,
the stored snapshot, the charter), asks `plan_cycle` what follows from it, and applies the
decision: one status patch, Events, and once the cycle is over the charter's patch. Every plan
is a function of what was observed, so a reconcile that runs twice writes the same thing twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from weavergen.api.charter import RegenerationCharterSpec
from weavergen.domain import notify, reasons
from weavergen.domain.decide.control import chart_cycle
from weavergen.domain.decide.cycle_status import (
    PHASE_RESULT_KEYS,
    RUNNING_PHASE,
    cycle_duration_seconds,
    cycle_status,
    phase_records,
)
from weavergen.domain.decide.reconcile import record_outcome
from weavergen.domain.owners import owned_by
from weavergen.domain.times import parse_time, stamp

NEXT_PHASE = {
    "define": "measure",
    "measure": "explore",
    "explore": "develop",
    "develop": "implement",
}
WARNING_OUTCOMES = frozenset({"RolledBack", "Failed"})
# How long a new cycle waits for its charter to record it. The charter creates the cycle, then
# patches its own status with it and with the incident the cycle measures (since when the
# target was healthy); a cycle that read the charter in between measured the fault diluted by
# the healthy minutes before it and could end NotNeeded. Past this the record is taken as lost
# (the operator died between the two writes): the charter adopts the cycle when it next runs.
RECORD_PATIENCE_SECONDS = 5.0


@dataclass(frozen=True)
class CycleEvent:
    """An Event to post on the cycle (or, in ``charter_events``, on its charter)."""

    reason: str
    message: str
    warning: bool = False


@dataclass(frozen=True)
class CycleObservation:
    """What a reconcile of one cycle has gathered, at one point of its workflow."""

    name: str
    status: Mapping[str, Any]  # the cycle's status as written so far
    generation: int | None
    trace_id: str
    workflow_state: str  # the ConfigMap holding the workflow's state
    data: Mapping[str, Any] = field(default_factory=dict)  # the workflow's data
    snapshot: Mapping[str, Any] | None = None  # the stored pre-change snapshot's reference
    step: str | None = None  # the workflow task that has just finished
    pending: Mapping[str, str] = field(default_factory=dict)  # task -> why it waits
    awaiting_approval: bool = False  # the pending task is Implement, waiting for a person
    job: str | None = None  # the pending phase's result, when phases run as Jobs
    completed: bool = False
    charter: RegenerationCharterSpec | None = None
    charter_status: Mapping[str, Any] = field(default_factory=dict)
    routing: notify.Routing = notify.NOWHERE  # where the charter's messages go


@dataclass(frozen=True)
class CycleDecision:
    """One reconcile's writes: the cycle's status patch and Events, and once the cycle is over
    (``done``) the charter's status patch and Events."""

    status: dict[str, Any]
    events: Sequence[CycleEvent] = ()
    charter_status: dict[str, Any] | None = None
    charter_events: Sequence[CycleEvent] = ()
    done: bool = False


def plan_cycle(observed: CycleObservation, now: datetime) -> CycleDecision:
    """The writes that follow from ``observed``: a finished step, a wait, or the cycle's end,
    with the messages the transition owes in the same status patch (``domain.notify``)."""
    return with_owed_messages(_plan(observed, now), observed.routing, observed.status, now)


def with_owed_messages(
    decision: CycleDecision, routing: notify.Routing, status: Mapping[str, Any], now: datetime
) -> CycleDecision:
    """``decision`` with the messages its transition owes (``domain.notify``) in the same status
    patch: every planner of a cycle's writes ends here, so no transition goes untold."""
    owed = notify.owed(
        notify.cycle_events(decision.status),
        routing,
        status.get("notifications") or {},
        now,
    )
    if not owed:
        return decision
    return replace(decision, status={**decision.status, "notifications": owed})


def _plan(observed: CycleObservation, now: datetime) -> CycleDecision:
    if observed.completed:
        return _finished(observed, now)
    if observed.pending:
        return _waiting(observed, now)
    if observed.step is not None:
        return _stepped(observed, observed.step, now)
    return CycleDecision(status={})


def awaits_charter_record(
    meta: Mapping[str, Any],
    status: Mapping[str, Any],
    charter: Mapping[str, Any],
    now: datetime,
) -> bool:
    """Whether a cycle its charter started, not begun yet, should wait for the charter's status
    to name it (``activeCycle``): see ``RECORD_PATIENCE_SECONDS``. A cycle a person created
    is not the charter's to record, and one that began reads the charter as it goes."""
    if status.get("phase") or not owned_by({"metadata": meta}, charter["metadata"].get("uid")):
        return False
    if (charter.get("status") or {}).get("activeCycle") == meta.get("name"):
        return False
    created = parse_time(meta.get("creationTimestamp"))
    return created is not None and (now - created).total_seconds() < RECORD_PATIENCE_SECONDS


def plan_missing_charter(charter: str, status: Mapping[str, Any], now: datetime) -> CycleDecision:
    """A cycle whose charter is gone cannot run: it fails, once."""
    message = f"charter {charter} does not exist"
    return CycleDecision(
        status={
            "phase": "Failed",
            "message": message,
            "finishedAt": status.get("finishedAt") or stamp(now),
        },
        events=(CycleEvent("Failed", message, warning=True),),
        done=True,
    )


def _identity(observed: CycleObservation, now: datetime) -> dict[str, Any]:
    """What every write of the cycle's status carries: its trace, start and workflow state."""
    return {
        "traceId": observed.trace_id,
        "startedAt": observed.status.get("startedAt") or stamp(now),
        "workflowState": observed.workflow_state,
    }


def _progress(observed: CycleObservation, now: datetime) -> dict[str, Any]:
    """Conditions, entropy, options and plan so far, with the snapshot once there is one."""
    return {
        **_identity(observed, now),
        **cycle_status(observed.data, observed.status, observed.generation, now, finished=False),
        **_snapshot(observed),
    }


def _stepped(observed: CycleObservation, task: str, now: datetime) -> CycleDecision:
    status = _progress(observed, now)
    events: list[CycleEvent] = []
    if task in PHASE_RESULT_KEYS:
        status["phases"] = phase_records(
            list(observed.status.get("phases") or []),
            task,
            finished=True,
            now=now,
            cycle_started=status["startedAt"],
        )
        events.append(CycleEvent(reasons.PHASE_CONDITIONS[task], f"phase {task} finished"))
        status["phase"] = _phase_after(task, observed.data)
    return CycleDecision(status=status, events=events)


def _phase_after(task: str, data: Mapping[str, Any]) -> str:
    """The cycle's phase once ``task`` has finished, while the workflow goes on."""
    following = NEXT_PHASE.get(task)
    if following:
        return RUNNING_PHASE[following]
    # After Implement: a fix that failed or did not hold has its snapshot restored next.
    kept = data.get("implementation_succeeded") or data.get("implementation_escalated")
    return "Implementing" if kept else "RollingBack"


def approval_needed(mode: str, solution: Mapping[str, Any] | None, *, dry_run: bool) -> str | None:
    """Why Implement waits for a person before it changes anything, or None: in propose mode
    always; in enforce mode when the plan changes what a GitOps controller would revert (the
    fix belongs in Git, and a person decides whether to apply it in the cluster meanwhile)."""
    if dry_run:
        return None
    if mode == "propose":
        return "propose mode"
    drift = (solution or {}).get("gitops") or []
    if mode == "enforce" and drift:
        trackers = ", ".join(dict.fromkeys(note["tracker"] for note in drift))
        return (
            f"the plan changes {len(drift)} object(s) {trackers} would revert: commit the diff "
            "in status.gitOps to Git"
        )
    return None


def _waiting(observed: CycleObservation, now: datetime) -> CycleDecision:
    task = next(iter(observed.pending))
    identity = _identity(observed, now)
    status = {
        **identity,
        "phase": "AwaitingApproval"
        if observed.awaiting_approval
        else RUNNING_PHASE.get(task, "Pending"),
        "message": "; ".join(observed.pending.values()),
        "phases": phase_records(
            list(observed.status.get("phases") or []),
            task,
            finished=False,
            now=now,
            cycle_started=identity["startedAt"],
            job=observed.job,
        ),
    }
    return CycleDecision(status=status)


def _finished(observed: CycleObservation, now: datetime) -> CycleDecision:
    final = {
        **_identity(observed, now),
        **cycle_status(observed.data, observed.status, observed.generation, now, finished=True),
        **_snapshot(observed),
        "phases": list(observed.status.get("phases") or []),
    }
    if "rollback" in final and observed.snapshot:
        final["rollback"] = {**final["rollback"], "snapshot": observed.snapshot["configMap"]}
    phase = str(final.get("phase"))
    charter_status, charter_events = _recorded_on_charter(observed, final, now)
    return CycleDecision(
        status=final,
        events=(CycleEvent(phase, str(final.get("message", "")), phase in WARNING_OUTCOMES),),
        charter_status=charter_status,
        charter_events=charter_events,
        done=True,
    )


def _recorded_on_charter(
    observed: CycleObservation, final: Mapping[str, Any], now: datetime
) -> tuple[dict[str, Any] | None, list[CycleEvent]]:
    """The charter is free for its next cycle; the outcome joins its history, its incident and
    its cycle-duration chart. Nothing when the outcome is already recorded (a second run)."""
    recorded = record_outcome(
        observed.charter_status, cycle=observed.name, final=final, data=observed.data, now=now
    )
    if not recorded or observed.charter is None:
        return (recorded or None), []
    duration = cycle_duration_seconds(final)
    if duration is None:
        return recorded, []
    charted = chart_cycle(
        observed.charter,
        observed.charter_status.get("controlCharts"),
        duration_seconds=duration,
        at=str(final.get("finishedAt")),
    )
    events = [
        CycleEvent(reasons.control_chart_signal(signal.rule), signal.message, warning=True)
        for _, signal in charted.signals
    ]
    return {**recorded, "controlCharts": charted.charts}, events


def _snapshot(observed: CycleObservation) -> dict[str, Any]:
    """``{"snapshot": ...}`` once Implement has taken one and it is stored, else nothing."""
    taken = observed.data.get("snapshot")
    if observed.snapshot is None or not taken:
        return {}
    return {"snapshot": {**observed.snapshot, "objects": taken.get("objects") or 0}}
