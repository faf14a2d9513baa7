"""A person's abort, reject and retry of a cycle (pure): what each asks, and what follows.

The annotations are read on every reconcile (level-based). An abort, or the reject of a plan
awaiting approval, stops the cycle at the next safe point in steps the reconciler applies one at a
time, each safe to run twice: delete the cycle's running Jobs and wait until they are gone (a pod
still writing could undo a restore), restore the snapshot if Implement took one (only then can it
have changed anything), and end ``Aborted`` or ``Rejected``. Once the operator has recorded a
stop (``status.abort``) it finishes it, even if the annotation is taken away meanwhile.

A retry of a cycle that did not heal starts one new cycle named after the old one
(``names.retry_name``): asking again finds it instead of starting a twin. A person's retry is
not held back by the charter's circuit breaker (it stops the operator's own cycles), but it is
counted in the breaker's window and said in the charter's Event.

Neither an abort nor a reject is a remedy's outcome: the charter's ``lastCycle`` records it and
the charter is free for its next cycle, but it joins neither the strategy history nor the
incident's attempts (``incident.RECORDED_OUTCOMES``) nor the cycle-duration control chart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from weavergen.api.cycle import FINAL_PHASES, RETRYABLE_PHASES
from weavergen.api.keys import (
    ABORT_ANNOTATION,
    REJECT_ANNOTATION,
    REQUESTED_BY_ANNOTATION,
    RETRY_ANNOTATION,
)
from weavergen.domain import notify, reasons
from weavergen.domain.decide.cycle_plan import CycleDecision, CycleEvent, with_owed_messages
from weavergen.domain.decide.cycle_status import mark_outcome, phase_records, rollback_record
from weavergen.domain.decide.reconcile import Conditions, record_outcome
from weavergen.domain.times import stamp

Kind = Literal["abort", "reject", "retry"]
ANNOTATIONS: Mapping[Kind, str] = {
    "abort": ABORT_ANNOTATION,
    "reject": REJECT_ANNOTATION,
    "retry": RETRY_ANNOTATION,
}
STOPPED_PHASE = {"abort": "Aborted", "reject": "Rejected"}
MAX_RECENT_STARTS = 100  # the charter status schema's bound on the breaker's window


@dataclass(frozen=True)
class Request:
    """One request a person made by annotating the cycle."""

    kind: Kind
    requested_by: str = "unknown"
    reason: str = ""  # the annotation's value, unless it was "true"

    @property
    def annotation(self) -> str:
        return ANNOTATIONS[self.kind]

    def said(self) -> str:
        """``by NAME`` and the reason, for messages."""
        return f"by {self.requested_by}" + (f" ({self.reason})" if self.reason else "")


def requests_of(annotations: Mapping[str, str] | None) -> dict[Kind, Request]:
    """The requests a cycle's annotations make, by kind. ``false`` or empty asks nothing; a
    retry is asked by ``true`` only (it carries no reason: the new cycle keeps the old one's)."""
    annotations = annotations or {}
    by = annotations.get(REQUESTED_BY_ANNOTATION, "").strip() or "unknown"
    found: dict[Kind, Request] = {}
    for kind, key in ANNOTATIONS.items():
        value = annotations.get(key, "").strip()
        if value.lower() in ("", "false") or (kind == "retry" and value.lower() != "true"):
            continue
        found[kind] = Request(kind, by, "" if value.lower() == "true" else value[:1024])
    return found


def stop_request(status: Mapping[str, Any], requests: Mapping[Kind, Request]) -> Request | None:
    """The abort or reject an unfinished cycle acts on now: a stop already recorded (always an
    abort: a reject ends in the write that records it), else an abort, else a reject of a plan
    awaiting approval."""
    phase = status.get("phase")
    if phase in FINAL_PHASES:
        return None
    recorded = status.get("abort")
    if recorded:
        return Request("abort", recorded["requestedBy"], recorded.get("reason", ""))
    if "abort" in requests:
        return requests["abort"]
    if "reject" in requests and phase == "AwaitingApproval":
        return requests["reject"]
    return None


def ignored_requests(
    status: Mapping[str, Any], requests: Mapping[Kind, Request]
) -> list[tuple[Request, CycleEvent]]:
    """Requests the cycle cannot act on, each with the Event saying why (the reconciler then
    removes the annotation, so the Event is posted once). A retry of a running cycle is not
    ignored: it waits, and starts the new cycle if this one ends in a retryable phase."""
    phase = str(status.get("phase") or "Pending")
    final = phase in FINAL_PHASES
    found: list[tuple[Request, str]] = []
    if not status.get("abort"):  # else the stop annotations are the record of what ended it
        for kind in ("abort", "reject"):
            request = requests.get(kind)
            if request is not None and final:
                found.append((request, f"the cycle is already {phase}: nothing to {kind}"))
        reject = requests.get("reject")
        if reject and not final and phase != "AwaitingApproval" and "abort" not in requests:
            found.append(
                (
                    reject,
                    f"the cycle is {phase}: only a plan awaiting approval can be rejected "
                    f"(abort stops a running cycle: {ABORT_ANNOTATION}=true)",
                )
            )
    retry = requests.get("retry")
    if retry and final and phase not in RETRYABLE_PHASES and not status.get("retriedBy"):
        found.append(
            (retry, f"a {phase} cycle is not retried: only {', '.join(sorted(RETRYABLE_PHASES))}")
        )
    return [
        (request, CycleEvent(reasons.REQUEST_IGNORED[request.kind], f"{message}; ignored"))
        for request, message in found
    ]


def retry_request(status: Mapping[str, Any], requests: Mapping[Kind, Request]) -> Request | None:
    """The retry to carry out now: asked, of a retryable finished cycle, not yet retried."""
    retry = requests.get("retry")
    if retry and status.get("phase") in RETRYABLE_PHASES and not status.get("retriedBy"):
        return retry
    return None


def plan_retried(
    old: str,
    new: str,
    request: Request,
    charter_status: Mapping[str, Any],
    *,
    created: bool,
    now: datetime,
) -> CycleDecision:
    """The writes once the retry ``new`` of ``old`` exists: the old cycle names it; when this
    reconcile created it, the charter runs it and counts its start in the breaker's window."""
    events = (CycleEvent(reasons.RETRIED, f"retried as {new}, requested {request.said()}"),)
    if not created:
        return CycleDecision(status={"retriedBy": new}, events=events)
    breaker = charter_status.get("circuitBreaker") or {}
    bypassed = ""
    if breaker.get("state") == "Open":
        bypassed = (
            f"; the circuit breaker is open until {breaker.get('openUntil')}: "
            "a person's retry is not held back by it"
        )
    recent = [*(breaker.get("recentCycleStarts") or []), stamp(now)][-MAX_RECENT_STARTS:]
    return CycleDecision(
        status={"retriedBy": new},
        events=events,
        charter_status={"activeCycle": new, "circuitBreaker": {"recentCycleStarts": recent}},
        charter_events=(
            CycleEvent(
                reasons.CYCLE_STARTED,
                f"started {new}: retry of {old} requested {request.said()}{bypassed}",
            ),
        ),
    )


@dataclass(frozen=True)
class StopObservation:
    """What a reconcile of a cycle being stopped has gathered."""

    name: str
    request: Request
    status: Mapping[str, Any]
    generation: int | None = None
    running_jobs: tuple[str, ...] = ()  # the cycle's Jobs not finished (or being deleted)
    snapshot: Mapping[str, Any] | None = None  # the stored snapshot: Implement began changing
    restored: Mapping[str, Any] | None = None  # the rollback record, once restored and verified
    restore_failure: str | None = None  # why the restore failed, once it did
    charter_status: Mapping[str, Any] = field(default_factory=dict)
    routing: notify.Routing = notify.NOWHERE  # where the charter's messages go


@dataclass(frozen=True)
class StopPlan:
    """The next step of a stop: Jobs to delete (then wait), the snapshot to restore (then plan
    again with its outcome), or neither: ``decision`` ends the cycle."""

    decision: CycleDecision
    delete_jobs: tuple[str, ...] = ()
    restore: bool = False


def plan_stop(observed: StopObservation, now: datetime) -> StopPlan:
    """The next step of stopping ``observed`` (its abort record is kept from the first write),
    with the messages its end owes."""
    plan = _plan_stop(observed, now)
    decision = with_owed_messages(plan.decision, observed.routing, observed.status, now)
    return replace(plan, decision=decision)


def _plan_stop(observed: StopObservation, now: datetime) -> StopPlan:
    request = observed.request
    recorded = observed.status.get("abort")
    record = recorded or {
        "requestedBy": request.requested_by,
        "requestedAt": stamp(now),
        "reason": request.reason,
        "restored": False,
    }
    events: tuple[CycleEvent, ...] = ()
    if not recorded:
        reason = reasons.ABORT_REQUESTED if request.kind == "abort" else reasons.REJECT_REQUESTED
        events = (CycleEvent(reason, f"{request.kind} requested {request.said()}"),)
    if observed.running_jobs:
        jobs = ", ".join(observed.running_jobs)
        message = f"aborting ({request.said()}): stopping Job {jobs} before anything else"
        return StopPlan(
            CycleDecision({"abort": record, "message": message}, events),
            delete_jobs=observed.running_jobs,
        )
    if observed.snapshot and observed.restored is None and observed.restore_failure is None:
        message = f"aborting ({request.said()}): restoring the snapshot"
        status = {"abort": record, "phase": "RollingBack", "message": message}
        return StopPlan(CycleDecision(status, events), restore=True)
    return StopPlan(_stopped(observed, record, events, now))


def _stopped(
    observed: StopObservation,
    record: Mapping[str, Any],
    events: tuple[CycleEvent, ...],
    now: datetime,
) -> CycleDecision:
    """The cycle's final write: ``Aborted`` or ``Rejected``, or ``Failed`` if the restore did."""
    request, restored = observed.request, observed.restored
    if observed.restore_failure:
        phase, reason = "Failed", reasons.ROLLBACK_FAILED
        message = f"aborted {request.said()}, but the rollback failed: {observed.restore_failure}"
    else:
        phase = reason = STOPPED_PHASE[request.kind]
        undone = (
            "the snapshot was restored and verified" if restored else "nothing had been changed"
        )
        message = f"{phase.lower()} {request.said()}: {undone}"
    conditions = Conditions(list(observed.status.get("conditions") or []), observed.generation, now)
    mark_outcome(conditions, phase, reason, message)
    final: dict[str, Any] = {
        "phase": phase,
        "message": message,
        "startedAt": observed.status.get("startedAt") or stamp(now),
        "finishedAt": observed.status.get("finishedAt") or stamp(now),
        "abort": {**record, "restored": restored is not None},
        "conditions": conditions.items,
        "phases": _ended_phases(observed.status, message, now),
    }
    if restored is not None and observed.snapshot:
        final["rollback"] = {
            **(rollback_record({"rollback": restored}, message) or {}),
            "snapshot": observed.snapshot["configMap"],
        }
        final["snapshot"] = {
            **observed.snapshot,
            "objects": len(restored.get("restoredObjects") or []),
        }
    # data={}: a stop is no remedy's outcome (see the module's docstring).
    charter = record_outcome(
        observed.charter_status, cycle=observed.name, final=final, data={}, now=now
    )
    return CycleDecision(
        status=final,
        events=(*events, CycleEvent(phase, message, warning=phase == "Failed")),
        charter_status=charter or None,
        done=True,
    )


def _ended_phases(status: Mapping[str, Any], message: str, now: datetime) -> list[dict[str, Any]]:
    """The phase records with the running one ended: ``Failed`` if its Job had started (it was
    stopped), ``Skipped`` if it had not (a plan awaiting approval)."""
    records = list(status.get("phases") or [])
    for running in [r for r in records if r.get("outcome") == "Running"]:
        records = phase_records(
            records,
            running["name"],
            finished=True,
            now=now,
            outcome="Failed" if running.get("job") else "Skipped",
            message=message,
        )
    return records
