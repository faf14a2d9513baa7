"""A person's abort, reject and retry of a cycle: the pure planner, step by step."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from weavergen.api.charter import RegenerationCharterStatus
from weavergen.api.cycle import FINAL_PHASES, RegenerationCycle, RegenerationCycleStatus
from weavergen.api.keys import (
    ABORT_ANNOTATION,
    REJECT_ANNOTATION,
    REQUESTED_BY_ANNOTATION,
    RETRY_ANNOTATION,
)
from weavergen.api.status import status_patch
from weavergen.domain.decide.cycle_requests import (
    Request,
    StopObservation,
    StopPlan,
    ignored_requests,
    plan_retried,
    plan_stop,
    requests_of,
    retry_request,
    stop_request,
)
from weavergen.domain.decide.reconcile import merge_patch
from weavergen.domain.names import MAX_LABEL_VALUE
from weavergen.k8s.cycles import cycle_manifest, retry_manifest

NOW = datetime(2026, 12, 3, 12, 0, 0)
LATER = NOW + timedelta(seconds=9)
SNAPSHOT = {"configMap": "c-snapshot", "sha256": "ab" * 32, "chunks": 1}
HISTORY = [{"strategy": "config-reset", "signature": "s", "successes": 1, "failures": 0}]
CHARTER = {"activeCycle": "c", "strategyHistory": HISTORY}
ROLLBACK = {
    "startedAt": "2026-12-03T12:00:03Z",
    "finishedAt": "2026-12-03T12:00:04Z",
    "sha256": "ab" * 32,
    "restoredObjects": ["ConfigMap/ns/web-config", "Deployment/ns/web"],
    "verified": True,
}
ABORT = Request("abort", "alice", "wrong target")


def running(phase: str, name: str, job: str | None) -> dict[str, Any]:
    """A cycle status in ``phase`` with its phase ``name`` running (as a Job, or not)."""
    record = {"name": name, "startedAt": "2026-12-03T11:59:30Z", "attempts": 1}
    return {
        "phase": phase,
        "startedAt": "2026-12-03T11:59:00Z",
        "phases": [{**record, "outcome": "Running", **({"job": job} if job else {})}],
    }


def observed(status: dict[str, Any], request: Request = ABORT, **changes: Any) -> StopObservation:
    base = StopObservation(
        name="c", request=request, status=status, generation=1, charter_status=CHARTER
    )
    return replace(base, **changes)


def step(observation: StopObservation, now: datetime, **gathered: Any) -> tuple[StopPlan, Any]:
    """Plan with what the next reconcile gathers, on the status as the last write left it."""
    plan = plan_stop(replace(observation, **gathered), now)
    checked(plan)
    status = merge_patch(observation.status, plan.decision.status)
    return plan, replace(observation, status=status)


def checked(plan: StopPlan) -> None:
    """Every write fits the status schemas (what the API server would otherwise prune)."""
    status_patch(RegenerationCycleStatus, plan.decision.status)
    if plan.decision.charter_status:
        status_patch(RegenerationCharterStatus, plan.decision.charter_status)


def test_requests_are_read_from_the_annotations_with_who_asked_and_why() -> None:
    found = requests_of(
        {
            ABORT_ANNOTATION: "wrong target",
            REJECT_ANNOTATION: "true",
            RETRY_ANNOTATION: "true",
            REQUESTED_BY_ANNOTATION: "alice",
        }
    )
    assert found == {
        "abort": Request("abort", "alice", "wrong target"),
        "reject": Request("reject", "alice", ""),
        "retry": Request("retry", "alice", ""),
    }
    assert requests_of({ABORT_ANNOTATION: "True"})["abort"] == Request("abort", "unknown", "")
    assert requests_of({ABORT_ANNOTATION: "false", RETRY_ANNOTATION: "please"}) == {}
    assert requests_of(None) == {}


def test_an_abort_before_implement_stops_the_job_then_ends_aborted_with_nothing_to_restore() -> (
    None
):
    first, after = step(
        observed(running("Developing", "develop", "c-develop")), NOW, running_jobs=("c-develop",)
    )
    assert first.delete_jobs == ("c-develop",) and not first.restore
    assert not first.decision.done and "phase" not in first.decision.status
    assert "stopping Job c-develop" in first.decision.status["message"]
    assert [e.reason for e in first.decision.events] == ["AbortRequested"]
    # The Job is being deleted: still there, so the cycle waits, and says nothing twice.
    waiting, after = step(after, NOW + timedelta(seconds=3), running_jobs=("c-develop",))
    assert waiting.delete_jobs == ("c-develop",) and waiting.decision.events == ()
    final, _ = step(after, LATER)
    status = final.decision.status
    assert final.decision.done and not final.restore and final.delete_jobs == ()
    assert status["phase"] == "Aborted"
    assert status["abort"] == {
        "requestedBy": "alice",
        "requestedAt": "2026-12-03T12:00:00Z",  # first seen, not when it ended
        "reason": "wrong target",
        "restored": False,
    }
    assert status["message"] == "aborted by alice (wrong target): nothing had been changed"
    assert "rollback" not in status
    assert status["phases"][0]["outcome"] == "Failed" and status["phases"][0]["finishedAt"]
    assert [(e.reason, e.warning) for e in final.decision.events] == [("Aborted", False)]


def test_an_abort_during_implement_stops_its_job_before_restoring_then_ends_restored() -> None:
    start = observed(running("Implementing", "implement", "c-implement"))
    first, after = step(start, NOW, running_jobs=("c-implement",), snapshot=SNAPSHOT)
    assert first.delete_jobs == ("c-implement",) and not first.restore  # the pod first
    restoring, after = step(after, LATER, snapshot=SNAPSHOT)
    assert restoring.restore and not restoring.decision.done
    assert restoring.decision.status["phase"] == "RollingBack"
    final, _ = step(after, LATER, snapshot=SNAPSHOT, restored=ROLLBACK)
    status = final.decision.status
    assert final.decision.done and not final.restore
    assert status["phase"] == "Aborted" and status["abort"]["restored"] is True
    assert status["abort"]["requestedAt"] == "2026-12-03T12:00:00Z"
    assert "the snapshot was restored and verified" in status["message"]
    assert status["rollback"]["verified"] is True
    assert status["rollback"]["snapshot"] == "c-snapshot"
    assert status["rollback"]["restoredObjects"] == ROLLBACK["restoredObjects"]
    assert status["snapshot"] == {**SNAPSHOT, "objects": 2}
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Succeeded": "False",
        "RolledBack": "False",
        "Failed": "False",
    }


def test_a_restore_that_fails_ends_the_aborted_cycle_failed_with_the_reason() -> None:
    start = observed({**running("RollingBack", "implement", "c-implement")}, snapshot=SNAPSHOT)
    final = plan_stop(replace(start, restore_failure="ConfigMap/ns/web-config edited"), NOW)
    checked(final)
    status = final.decision.status
    assert status["phase"] == "Failed" and status["abort"]["restored"] is False
    assert "but the rollback failed: ConfigMap/ns/web-config edited" in status["message"]
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["status"] == "True" and failed["reason"] == "RollbackFailed"
    assert final.decision.events[-1].warning


def test_a_stop_is_recorded_on_the_charter_but_not_as_a_remedy_that_failed() -> None:
    final = plan_stop(observed(running("Exploring", "explore", None)), NOW)
    charter = final.decision.charter_status
    assert charter is not None
    assert charter["activeCycle"] is None
    assert charter["lastCycle"]["name"] == "c" and charter["lastCycle"]["outcome"] == "Aborted"
    assert charter["strategyHistory"] == HISTORY  # no failure counted against a strategy
    assert charter["incident"] is None


def test_a_plan_awaiting_approval_is_rejected_at_once_with_nothing_changed() -> None:
    status = running("AwaitingApproval", "implement", None)
    reject = Request("reject", "bob", "")
    assert stop_request(status, {"reject": reject}) == reject
    final, _ = step(observed(status, reject), NOW)
    decision = final.decision
    assert decision.done and final.delete_jobs == () and not final.restore
    assert decision.status["phase"] == "Rejected"
    assert decision.status["message"] == "rejected by bob: nothing had been changed"
    assert decision.status["abort"]["restored"] is False
    assert decision.status["phases"][0]["outcome"] == "Skipped"  # Implement never ran
    assert [e.reason for e in decision.events] == ["RejectRequested", "Rejected"]


def test_what_is_stopped_and_when() -> None:
    abort, reject = Request("abort"), Request("reject")
    assert stop_request({"phase": "Developing"}, {"reject": reject}) is None  # no plan yet
    assert stop_request({}, {"abort": abort}) == abort  # not reconciled yet: nothing ran
    assert stop_request({"phase": "AwaitingApproval"}, {"abort": abort, "reject": reject}) == abort
    for phase in FINAL_PHASES:
        assert stop_request({"phase": phase}, {"abort": abort, "reject": reject}) is None
    # Once the operator recorded an abort it finishes it, annotation or not.
    recorded = {"phase": "RollingBack", "abort": {"requestedBy": "alice", "reason": "x"}}
    assert stop_request(recorded, {}) == Request("abort", "alice", "x")


@pytest.mark.parametrize(
    ("status", "kinds", "reasons"),
    [
        ({"phase": "Succeeded"}, ("abort",), ["AbortIgnored"]),
        ({"phase": "RolledBack"}, ("abort", "reject"), ["AbortIgnored", "RejectIgnored"]),
        ({"phase": "Implementing"}, ("reject",), ["RejectIgnored"]),
        ({"phase": "Implementing"}, ("reject", "abort"), []),  # the abort stops it
        ({"phase": "AwaitingApproval"}, ("reject",), []),
        ({"phase": "Aborted", "abort": {"requestedBy": "a"}}, ("abort",), []),  # its record
        ({"phase": "Succeeded"}, ("retry",), ["RetryIgnored"]),
        ({"phase": "Rejected", "abort": {"requestedBy": "a"}}, ("retry",), ["RetryIgnored"]),
        ({"phase": "Implementing"}, ("retry",), []),  # waits for the outcome
        ({"phase": "Failed"}, ("retry",), []),
        ({"phase": "Failed", "retriedBy": "c-retry"}, ("retry",), []),
    ],
)
def test_a_request_the_cycle_cannot_act_on_is_said_in_an_event(
    status: dict[str, Any], kinds: tuple[str, ...], reasons: list[str]
) -> None:
    requests = requests_of(
        {ABORT_ANNOTATION: "true", REJECT_ANNOTATION: "true"} | {RETRY_ANNOTATION: "true"}
    )
    asked = {k: v for k, v in requests.items() if k in kinds}
    ignored = ignored_requests(status, asked)
    assert [event.reason for _, event in ignored] == reasons
    assert all("ignored" in event.message for _, event in ignored)


@pytest.mark.parametrize("phase", ["Failed", "RolledBack", "Aborted"])
def test_a_cycle_that_did_not_heal_is_retried_once(phase: str) -> None:
    retry = Request("retry", "alice")
    assert retry_request({"phase": phase}, {"retry": retry}) == retry
    assert retry_request({"phase": phase, "retriedBy": "c-retry"}, {"retry": retry}) is None
    assert retry_request({"phase": "Implementing"}, {"retry": retry}) is None


def test_a_retry_names_its_cycle_on_both_sides_and_counts_in_the_breaker_window() -> None:
    charter = {
        "circuitBreaker": {
            "state": "Open",
            "openUntil": "2026-12-03T13:00:00Z",
            "recentCycleStarts": ["2026-12-03T11:00:00Z"],
        }
    }
    retry = Request("retry", "alice")
    decision = plan_retried("c", "c-retry", retry, charter, created=True, now=NOW)
    assert decision.status == {"retriedBy": "c-retry"}
    assert decision.charter_status == {
        "activeCycle": "c-retry",
        "circuitBreaker": {"recentCycleStarts": ["2026-12-03T11:00:00Z", "2026-12-03T12:00:00Z"]},
    }
    status_patch(RegenerationCharterStatus, decision.charter_status)
    (started,) = decision.charter_events
    assert started.reason == "CycleStarted"
    assert "retry of c requested by alice" in started.message
    assert "open until 2026-12-03T13:00:00Z" in started.message
    assert [e.reason for e in decision.events] == ["Retried"]
    # Found, not created (an earlier reconcile created it and died): nothing counted twice.
    again = plan_retried("c", "c-retry", retry, charter, created=False, now=LATER)
    assert again.status == {"retriedBy": "c-retry"} and again.charter_status is None


def test_a_retry_is_the_same_request_under_one_deterministic_name_that_fits() -> None:
    charter = "checkout-" + "x" * 54
    first = cycle_manifest(charter, "ns", "uid-1", "entropy high", NOW)
    first["spec"]["strategy"] = "config-reset"
    retried = retry_manifest(first, "uid-1")
    assert retried == retry_manifest(first, "uid-1")  # asking twice: one name
    name = retried["metadata"]["name"]
    assert name != first["metadata"]["name"] and len(name) <= MAX_LABEL_VALUE
    assert retried["spec"] == {**first["spec"], "retryOf": first["metadata"]["name"]}
    assert retried["metadata"]["ownerReferences"] == first["metadata"]["ownerReferences"]
    assert retried["metadata"]["labels"] == first["metadata"]["labels"]
    again = retry_manifest(retried, "uid-1")  # a retry of the retry is another cycle
    assert again["metadata"]["name"] not in (name, first["metadata"]["name"])
    assert len(again["metadata"]["name"]) <= MAX_LABEL_VALUE
    assert again["spec"]["retryOf"] == name
    RegenerationCycle.model_validate(again)
    short = retry_manifest(cycle_manifest("web", "ns", "u", "r", NOW), "u")
    assert short["metadata"]["name"] == "web-20261203-120000-retry"
