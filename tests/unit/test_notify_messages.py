"""Notifications as the domain builds them: which transition owes which message to which sink,
the message's key and text, and its body in each sink's format."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from weavergen.api.charter import NOTIFICATION_EVENTS, NotificationsSpec, RegenerationCharterSpec
from weavergen.api.charter import RegenerationCharterStatus as CharterStatus
from weavergen.api.cycle import RegenerationCycleStatus
from weavergen.api.status import status_patch
from weavergen.domain import notify
from weavergen.domain.decide.cycle_plan import CycleObservation, plan_cycle
from weavergen.domain.decide.reconcile import decide, merge_patch
from weavergen.domain.times import parse_time

NOW = datetime(2026, 12, 3, 12, 0, 0)
SPEC = RegenerationCharterSpec.model_validate(
    {
        "systemId": "web",
        "systemType": "web-service",
        "target": {"workloads": [{"name": "web"}]},
        "telemetry": {"serviceName": "web"},
        "trigger": {"mode": "auto", "level": "medium"},
        "stakeholders": [
            {"name": "payments-team", "role": "owner"},
            {"name": "sre-oncall", "role": "sre"},
        ],
    }
)
CONFIGURED = ("ops", "audit", "bus")
EVERYWHERE = notify.Routing(sinks=("ops", "audit"))
UID = "7c0d3a8e-0000-4000-8000-000000000001"
PLAN = [
    {
        "action": "reset_config",
        "object": "ConfigMap/shop/web-config",
        "diff": "--- now\n+++ planned\n-mode: broken\n+mode: good\n+retries: 3\n",
    }
]
STATUS: dict[str, Any] = {
    "phase": "Succeeded",
    "traceId": "ab" * 16,
    "startedAt": "2026-12-03T11:58:00Z",
    "entropyBefore": {"score": 0.71, "level": "high", "healthScore": 0.4},
    "entropyAfter": {"score": 0.12, "level": "low", "healthScore": 0.98},
    "chosenStrategy": "partial-regeneration",
    "plan": PLAN,
    "message": "partial-regeneration succeeded: every success criterion met",
    "rollback": {
        "reason": "did not hold",
        "restoredObjects": ["ConfigMap/shop/web-config", "Deployment/shop/web"],
        "verified": True,
        "snapshot": "c1-snapshot",
        "sha256": "cd" * 32,
    },
    "abort": {"requestedBy": "alice", "reason": "change freeze", "restored": True},
}


def facts(**status: Any) -> notify.CycleFacts:
    return notify.CycleFacts(
        namespace="shop",
        name="web-20261203-115800",
        uid=UID,
        reason="entropy high (0.71): error_rate_increase",
        status={**STATUS, **status},
        charter="web",
        charter_spec=SPEC,
    )


def message(event: str, **status: Any) -> notify.Notification:
    return notify.cycle_notification(facts(**status), event, "2026-12-03T12:00:00Z")


# -- routing --------------------------------------------------------------------------------


def test_a_charter_naming_no_sinks_gets_the_defaults_and_every_event() -> None:
    routed = notify.routing(None, CONFIGURED, ("ops",))
    assert routed.sinks == ("ops",) and routed.problem is None
    assert routed.events == frozenset(NOTIFICATION_EVENTS)
    unset = notify.routing(NotificationsSpec(events=["Failed"]), CONFIGURED, ("ops",))
    assert unset.sinks == ("ops",) and unset.targets("Failed") == ("ops",)
    assert unset.targets("Succeeded") == ()


def test_an_empty_sink_list_turns_notifications_off() -> None:
    routed = notify.routing(NotificationsSpec(sinks=[]), CONFIGURED, ("ops",))
    assert routed.sinks == () and routed.targets("Failed") == ()


def test_an_unknown_sink_is_named_by_its_field_and_left_out() -> None:
    spec = NotificationsSpec(sinks=["ops", "pager", "audit"])
    routed = notify.routing(spec, CONFIGURED, ())
    assert routed.sinks == ("ops", "audit")
    assert routed.problem is not None
    assert routed.problem.startswith("spec.notifications.sinks[1]: no sink named 'pager'")
    assert "audit, bus, ops" in routed.problem


def test_an_unknown_sink_makes_the_charter_not_ready_with_the_field_named() -> None:
    spec = SPEC.model_copy(update={"notifications": NotificationsSpec(sinks=["pager"])})
    routed = notify.routing(spec.notifications, CONFIGURED, ())
    decision = decide(
        spec, generation=3, status={}, measurement=None, problem=None, now=NOW, routing=routed
    )
    (ready,) = [c for c in decision.status["conditions"] if c["type"] == "Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "UnknownNotificationSink")
    assert ready["message"].startswith("spec.notifications.sinks[0]: no sink named 'pager'")
    assert decision.start_cycle is None


# -- the outbox: transitions owe messages in their own status patch ------------------------------


def observation(**changes: Any) -> CycleObservation:
    base = CycleObservation(
        name="c",
        status={},
        generation=1,
        trace_id="ab" * 16,
        workflow_state="c-workflow",
        charter=SPEC,
        routing=EVERYWHERE,
    )
    return replace(base, **changes)


def test_the_first_write_owes_the_start_to_every_sink_and_a_second_write_nothing() -> None:
    first = plan_cycle(observation(data={}, step="define"), NOW)
    owed = first.status["notifications"]
    assert set(owed) == {"ops/CycleStarted", "audit/CycleStarted"}
    assert owed["ops/CycleStarted"] == {
        "dueAt": "2026-12-03T12:00:00Z",
        "result": "Pending",
        "attempts": 0,
    }
    status_patch(RegenerationCycleStatus, first.status)  # the schema takes it
    again = plan_cycle(
        observation(status=merge_patch({}, first.status), data={}, step="define"),
        NOW + timedelta(seconds=3),
    )
    assert "notifications" not in again.status


def test_awaiting_approval_is_owed_once_while_the_cycle_waits() -> None:
    waiting = observation(
        status={"startedAt": "2026-12-03T11:59:00Z"},
        pending={"implement": "plan ready"},
        awaiting_approval=True,
    )
    first = plan_cycle(waiting, NOW).status
    assert {"ops/AwaitingApproval", "audit/AwaitingApproval"} <= set(first["notifications"])
    later = plan_cycle(
        replace(waiting, status=merge_patch(waiting.status, first)), NOW + timedelta(seconds=3)
    )
    assert "notifications" not in later.status


def test_a_charter_that_wants_only_outcomes_owes_no_start() -> None:
    routed = notify.Routing(sinks=("ops",), events=frozenset({"Succeeded"}))
    decision = plan_cycle(observation(data={}, step="define", routing=routed), NOW)
    assert "notifications" not in decision.status


@pytest.mark.parametrize(
    ("patch", "events"),
    [
        ({"startedAt": "t", "phase": "Measuring"}, ["CycleStarted"]),
        ({"startedAt": "t", "phase": "AwaitingApproval"}, ["CycleStarted", "AwaitingApproval"]),
        ({"startedAt": "t", "phase": "NotNeeded"}, ["CycleStarted"]),
        *(({"startedAt": "t", "phase": p}, ["CycleStarted", p]) for p in notify.PHASE_EVENTS),
        ({}, []),
    ],
)
def test_which_phase_owes_which_event(patch: dict[str, Any], events: list[str]) -> None:
    assert notify.cycle_events(patch) == events


def test_pending_lists_the_undelivered_entries_oldest_first() -> None:
    recorded = {
        "ops/Succeeded": {"dueAt": "2026-12-03T12:05:00Z", "result": "Pending"},
        "ops/CycleStarted": {"dueAt": "2026-12-03T12:00:00Z", "result": "Pending"},
        "audit/CycleStarted": {"dueAt": "2026-12-03T12:00:00Z", "result": "Delivered"},
        "audit/Succeeded": {"dueAt": "2026-12-03T12:05:00Z", "result": "Failed"},
    }
    assert notify.pending(recorded) == [
        ("ops", "CycleStarted", "2026-12-03T12:00:00Z"),
        ("ops", "Succeeded", "2026-12-03T12:05:00Z"),
    ]


def test_a_breaker_that_opens_owes_a_message_each_time_it_opens() -> None:
    spec = SPEC.model_copy(
        update={"circuit_breaker": SPEC.circuit_breaker.model_copy(update={"max_cycles": 1})}
    )
    sick = {**_measurement(), "entropy_level": "high", "entropy_score": 0.7}
    status: dict[str, Any] = {}
    owed = []
    for minute in range(3):
        decision = decide(
            spec,
            generation=1,
            status=status,
            measurement=sick,
            problem=None,
            now=NOW + timedelta(minutes=minute),
            routing=EVERYWHERE,
        )
        owed.append(sorted(decision.status.get("notifications") or {}))
        status = merge_patch(status, decision.status)
    # The first cycle starts, the second opening writes the debt, the open breaker none again.
    assert owed == [[], ["audit/CircuitOpened", "ops/CircuitOpened"], []]
    status_patch(CharterStatus, {"notifications": status["notifications"]})
    assert status["notifications"]["ops/CircuitOpened"]["result"] == "Pending"


def _measurement() -> dict[str, Any]:
    return {
        "status": "ok",
        "entropy_level": "low",
        "entropy_score": 0.1,
        "health_score": 0.9,
        "drift_indicators": [],
        "validation_errors": [],
        "span_count": 900,
    }


# -- the messages --------------------------------------------------------------------------


def test_every_message_names_the_charter_its_stakeholders_entropy_and_references() -> None:
    for event in notify.PHASE_EVENTS | {notify.STARTED}:
        n = message(event)
        assert (n.event, n.namespace, n.charter, n.cycle) == (
            event,
            "shop",
            "web",
            "web-20261203-115800",
        )
        assert n.key == f"{UID}/{event}"
        assert [s["name"] for s in n.stakeholders] == ["payments-team", "sre-oncall"]
        assert n.entropy_before == STATUS["entropyBefore"]
        assert n.entropy_after == STATUS["entropyAfter"]
        assert n.trace_id == "ab" * 16
        assert "web-20261203-115800" in n.summary and "web" in n.summary


def test_the_start_says_why() -> None:
    n = message("CycleStarted")
    assert n.summary.endswith("entropy high (0.71): error_rate_increase")


def test_an_approval_request_has_the_plan_and_the_commands_to_approve_or_reject() -> None:
    n = message("AwaitingApproval", phase="AwaitingApproval", predictedEntropy=0.2)
    assert n.details["approve"] == (
        "kubectl annotate rcy web-20261203-115800 -n shop regeneration.weavergen.io/approve=true"
    )
    assert n.details["reject"].endswith("regeneration.weavergen.io/reject=true")
    assert n.details["plan"] == ["reset_config ConfigMap/shop/web-config (+2 -1)"]
    assert "partial-regeneration" in n.summary and "1 planned changes" in n.summary


def test_a_long_plan_is_cut_and_the_rest_counted() -> None:
    lines = notify.plan_summary(PLAN * 13)
    assert len(lines) == notify.PLAN_LINES + 1 and lines[-1] == "... and 3 more"


def test_a_rollback_says_what_was_restored() -> None:
    n = message("RolledBack", phase="RolledBack")
    assert n.details["restored"] == ["ConfigMap/shop/web-config", "Deployment/shop/web"]
    assert n.details["verified"] is True and n.details["snapshot"] == "c1-snapshot"
    assert "2 objects restored" in n.summary


def test_an_escalation_carries_its_evidence() -> None:
    evidence = "escalated without changing anything: the downstream payments-db fails"
    n = message("Escalated", message=evidence)
    assert n.details["message"] == evidence and evidence in n.summary


def test_a_failure_says_what_failed() -> None:
    n = message("Failed", message="implement failed: the rollout stalled")
    assert n.summary.endswith("implement failed: the rollout stalled")


@pytest.mark.parametrize("event", ["Aborted", "Rejected"])
def test_an_abort_or_rejection_says_who_and_why(event: str) -> None:
    n = message(event)
    assert f"was {event.lower()} by alice: change freeze" in n.summary
    assert n.details["restored"] is True


def test_a_breaker_opening_says_why_and_until_when() -> None:
    status = {
        "circuitBreaker": {"state": "Open", "openUntil": "2026-12-03T12:05:00Z"},
        "conditions": [
            {"type": "CircuitOpen", "status": "True", "message": "opened: 3 cycles within 3600s"}
        ],
        "entropy": {"score": 0.7, "level": "high"},
    }
    n = notify.circuit_notification(
        "shop", "web", uid=UID, spec=SPEC, status=status, due_at="2026-12-03T12:00:00Z"
    )
    assert n.key == f"{UID}/CircuitOpened/2026-12-03T12:00:00Z"
    assert n.summary == "circuit breaker of charter web opened: 3 cycles within 3600s"
    assert n.details["openUntil"] == "2026-12-03T12:05:00Z"
    assert n.entropy_before == {"score": 0.7, "level": "high"} and n.cycle is None


def test_messages_held_back_are_summarised_with_every_one_named() -> None:
    held = [message("CycleStarted"), message("Succeeded")]
    summary = notify.held_back(held, "2026-12-03T12:01:00Z")
    assert summary.event == notify.HELD_BACK and summary.details["count"] == 2
    assert summary.details["keys"] == [f"{UID}/CycleStarted", f"{UID}/Succeeded"]
    assert summary.summary.startswith("2 notifications of charter web were held back")


# -- the sinks' formats ----------------------------------------------------------------------


def test_the_webhook_body_is_the_message_as_json() -> None:
    content_type, body = notify.render(message("Succeeded"), "webhook")
    assert content_type == "application/json"
    assert json.loads(json.dumps(body)) == body
    assert body["key"] == f"{UID}/Succeeded" and body["event"] == "Succeeded"
    assert body["charter"] == "web" and body["cycle"] == "web-20261203-115800"
    assert body["entropy"] == {"before": STATUS["entropyBefore"], "after": STATUS["entropyAfter"]}
    assert body["stakeholders"][0] == {"name": "payments-team", "role": "owner"}
    assert body["traceId"] == "ab" * 16


def test_a_cloudevent_has_the_required_attributes_in_structured_mode() -> None:
    content_type, event = notify.render(message("RolledBack"), "cloudevents")
    assert content_type == "application/cloudevents+json"
    assert event["specversion"] == "1.0"
    assert event["id"] == f"{UID}/RolledBack"
    assert event["source"] == (
        "/apis/regeneration.weavergen.io/v1alpha1/namespaces/shop/regenerationcharters/web"
    )
    assert event["type"] == "io.weavergen.regeneration.RolledBack"
    assert all(isinstance(event[a], str) and event[a] for a in ("id", "source", "type"))
    assert parse_time(event["time"]) == NOW  # RFC 3339
    assert event["subject"] == "web-20261203-115800"
    assert event["datacontenttype"] == "application/json"
    assert event["data"] == notify.payload(message("RolledBack"))


def test_slack_gets_a_text_fallback_and_blocks_with_the_approve_command() -> None:
    n = message("AwaitingApproval", phase="AwaitingApproval")
    content_type, body = notify.render(n, "slack")
    assert content_type == "application/json"
    assert body["text"] == n.summary
    kinds = [b["type"] for b in body["blocks"]]
    assert kinds == ["header", "section", "section", "section", "context"]
    assert body["blocks"][0]["text"] == {"type": "plain_text", "text": "AwaitingApproval"}
    fields = [f["text"] for f in body["blocks"][2]["fields"]]
    assert "*Charter*\nshop/web" in fields
    assert "*Entropy*\n0.71 (high) → 0.12 (low)" in fields
    assert "*Stakeholders*\npayments-team (owner), sre-oncall (sre)" in fields
    details = body["blocks"][3]["text"]["text"]
    assert f"`{n.details['approve']}`" in details
    assert "• reset_config ConfigMap/shop/web-config (+2 -1)" in details
    assert n.key in body["blocks"][4]["elements"][0]["text"]


def test_slack_without_details_has_no_empty_section() -> None:
    _, body = notify.render(message("Succeeded"), "slack")
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "section", "context"]
