"""The entropy gate's answers, and cycle requests through the charter's decision."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from weavergen.api.charter import RegenerationCharterSpec
from weavergen.cli.common import UsageError
from weavergen.cli.observe import parse_duration
from weavergen.domain.decide.gate import GateAnswer, gate_decision
from weavergen.domain.decide.reconcile import decide, measurement_due
from weavergen.domain.times import stamp

NOW = datetime(2026, 11, 25, 12, 0, 0)


def charter(status: dict[str, Any] | None) -> dict[str, Any]:
    return {"metadata": {"namespace": "shop", "name": "web"}, "status": status}


def entropy(level: str, score: float) -> dict[str, Any]:
    return {"level": level, "score": score, "healthScore": 0.8, "measuredAt": stamp(NOW)}


@pytest.mark.parametrize(
    ("status", "decision", "reason"),
    [
        (None, "allowed", "not measured yet"),
        ({"entropy": entropy("low", 0.05)}, "allowed", "entropy low (0.05)"),
        ({"entropy": entropy("medium", 0.35)}, "allowed", "entropy medium (0.35)"),
        ({"entropy": entropy("high", 0.65)}, "blocked", "entropy high (0.65) measured at"),
        ({"entropy": entropy("critical", 0.9)}, "blocked", "entropy critical (0.9)"),
        (
            {"entropy": entropy("low", 0.05), "activeCycle": "web-1"},
            "regenerating",
            "cycle web-1 is regenerating",
        ),
        (
            {
                "entropy": entropy("high", 0.7),
                "circuitBreaker": {"state": "Open", "openUntil": "2026-11-25T13:00:00Z"},
            },
            "blocked",
            "circuit breaker is open until 2026-11-25T13:00:00Z",
        ),
    ],
)
def test_the_gate_answers_from_the_latest_measurement(
    status: dict[str, Any] | None, decision: str, reason: str
) -> None:
    answer = gate_decision(charter(status))
    assert answer.decision == decision
    assert reason in answer.reason
    assert answer.charter == "shop/web"
    assert answer.allowed == (decision == "allowed")
    assert GateAnswer.from_dict(answer.to_dict()) == answer


def test_a_gate_answer_from_the_wire_ignores_unknown_keys() -> None:
    wire = {"charter": "a/b", "decision": "blocked", "reason": "x", "extra": 1, "measuredAt": "t"}
    answer = GateAnswer.from_dict(wire)
    assert (answer.decision, answer.measured_at) == ("blocked", "t")


SPEC = RegenerationCharterSpec.model_validate(
    {
        "systemId": "web",
        "systemType": "web-service",
        "target": {"workloads": [{"name": "web"}]},
        "telemetry": {"serviceName": "web"},
    }
)
OK_LOW = {
    "status": "ok",
    "entropy_level": "low",
    "entropy_score": 0.05,
    "health_score": 0.95,
    "drift_indicators": [],
    "validation_errors": [],
    "span_count": 900,
}


def test_a_request_makes_a_measurement_due_at_once_and_only_until_handled() -> None:
    status = {"entropy": {"measuredAt": stamp(NOW)}}
    assert not measurement_due(SPEC, status, NOW + timedelta(seconds=1))
    assert measurement_due(SPEC, status, NOW + timedelta(seconds=1), "2026-11-25T12:00:01Z")
    handled = {**status, "handledRequest": "2026-11-25T12:00:01Z"}
    assert not measurement_due(SPEC, handled, NOW + timedelta(seconds=1), "2026-11-25T12:00:01Z")


def test_a_request_starts_one_cycle_even_at_low_entropy_and_is_handled_once() -> None:
    request = "2026-11-25T12:00:01Z"
    first = decide(
        SPEC, generation=1, status={}, measurement=OK_LOW, problem=None, now=NOW, requested=request
    )
    assert first.start_cycle is not None and "requested through the gate" in first.start_cycle
    assert first.status["handledRequest"] == request
    again = decide(
        SPEC,
        generation=1,
        status=first.status,
        measurement=OK_LOW,
        problem=None,
        now=NOW + timedelta(seconds=30),
        requested=request,
    )
    assert again.start_cycle is None


def test_a_request_never_acts_in_observe_mode_nor_during_a_cycle() -> None:
    request = "2026-11-25T12:00:01Z"
    observe = SPEC.model_copy(update={"mode": "observe"})
    quiet = decide(
        observe,
        generation=1,
        status={},
        measurement=OK_LOW,
        problem=None,
        now=NOW,
        requested=request,
    )
    assert quiet.start_cycle is None
    busy = decide(
        SPEC,
        generation=1,
        status={"activeCycle": "web-1"},
        measurement=OK_LOW,
        problem=None,
        now=NOW,
        requested=request,
    )
    assert busy.start_cycle is None and busy.status["handledRequest"] == request


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("90s", 90.0), ("5m", 300.0), ("1h", 3600.0), ("500ms", 0.5)],
)
def test_wait_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_a_bad_wait_duration_names_the_flag() -> None:
    with pytest.raises(UsageError, match="--wait '5 minutes'"):
        parse_duration("5 minutes")
