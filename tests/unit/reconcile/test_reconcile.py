"""Pure decisions of the reconcilers: conditions, cadence, cycle starts, cycle status."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from weavergen.api.charter import (
    EntropyStatus,
    RegenerationCharterSpec,
    RegenerationCharterStatus,
)
from weavergen.api.cycle import RegenerationCycleStatus
from weavergen.domain.decide.cycle_status import cycle_status, phase_records
from weavergen.domain.decide.reconcile import (
    Conditions,
    Due,
    RequestsSince,
    changed_since,
    decide,
    incident_onset,
    measurement_due,
    window_since,
)
from weavergen.domain.errors import MeasurementUnavailable, PrometheusUnavailable
from weavergen.domain.measure.sequential import Evidence
from weavergen.domain.times import parse_time, stamp

NOW = datetime(2026, 11, 25, 12, 0, 0)
SPEC = RegenerationCharterSpec.model_validate(
    {
        "systemId": "web",
        "systemType": "web-service",
        "target": {"workloads": [{"name": "web"}]},
        "telemetry": {"serviceName": "web"},
        "trigger": {"mode": "auto", "level": "medium"},
    }
)


def measurement(level: str, score: float) -> dict[str, Any]:
    return {
        "status": "ok",
        "entropy_level": level,
        "entropy_score": score,
        "health_score": 0.5,
        "drift_indicators": [],
        "validation_errors": [],
        "span_count": 900,
    }


def test_conditions_keep_their_transition_time_while_unchanged() -> None:
    first = Conditions([], 1, NOW)
    first.set("Ready", True, "Measured", "ok")
    later = Conditions(first.items, 2, NOW + timedelta(minutes=5))
    later.set("Ready", True, "Measured", "still ok")
    assert later.items[0]["lastTransitionTime"] == stamp(NOW)
    assert later.items[0]["observedGeneration"] == 2
    later.set("Ready", False, "MeasurementFailed", "gone")
    assert later.items[0]["lastTransitionTime"] == stamp(NOW + timedelta(minutes=5))


def test_measurement_follows_the_cadence() -> None:
    assert measurement_due(SPEC, {}, NOW)
    recent = {"entropy": {"measuredAt": stamp(NOW - timedelta(seconds=10))}}
    assert not measurement_due(SPEC, recent, NOW)  # web-service measures every 30 s
    assert measurement_due(
        SPEC, {"entropy": {"measuredAt": stamp(NOW - timedelta(seconds=31))}}, NOW
    )


def _requests(found: Evidence, asked: list[tuple[float, float]]) -> RequestsSince:
    def read(since: float, threshold_ms: float) -> Evidence:
        asked.append((since, threshold_ms))
        return found

    return read


def test_requests_that_clearly_fail_a_healthy_charter_bring_its_measurement_forward() -> None:
    healthy = {"entropy": {"measuredAt": stamp(NOW - timedelta(seconds=10)), "level": "low"}}
    asked: list[tuple[float, float]] = []
    failing, fine = _requests(Evidence(40, 20), asked), _requests(Evidence(400, 2), asked)
    last_good = (NOW - timedelta(seconds=10)).replace(tzinfo=UTC).timestamp()
    # Measured from the last healthy measurement on: the failing requests alone.
    assert measurement_due(SPEC, healthy, NOW, evidence=failing) == Due(onset=last_good)
    # Since the last measurement; without a latency objective only failed requests are bad.
    assert asked == [(last_good, math.inf)]
    assert not measurement_due(SPEC, healthy, NOW, evidence=fine)
    silent = _requests(Evidence(), asked)
    assert not measurement_due(SPEC, healthy, NOW, evidence=silent)  # silence: the cadence's
    # Already degraded: the cadence goes on, and an incident writes no more status than before;
    # due on the cadence or not at all, the receiver is not asked.
    asked.clear()
    degraded = {"entropy": {**healthy["entropy"], "level": "high"}}
    assert not measurement_due(SPEC, degraded, NOW, evidence=failing)
    assert measurement_due(SPEC, {}, NOW, evidence=failing) == Due(onset=None)  # the whole window
    assert asked == []


def test_a_cycle_measures_its_incident_from_the_last_healthy_measurement() -> None:
    opened = {"incident": {"lastGoodAt": "2026-11-25T11:59:50Z"}}
    assert incident_onset(opened) == datetime(2026, 11, 25, 11, 59, 50, tzinfo=UTC).timestamp()
    # Opened by a cycle that did not heal, or none open: the window as it is.
    assert incident_onset({"incident": {"lastGoodAt": None}}) is None
    assert incident_onset({}) is None


def test_a_rolled_back_cycle_left_the_target_as_it_was_when_its_rollback_ended() -> None:
    verified = {"verification": {"since": 1_700_000_000.5}}
    assert changed_since(verified) == 1_700_000_000.5
    rolled_back = {**verified, "rollback": {"finishedAt": stamp(NOW)}}
    assert changed_since(rolled_back) == NOW.replace(tzinfo=UTC).timestamp()
    assert changed_since({}) is None


def test_after_a_cycle_the_window_starts_where_its_change_began_to_settle() -> None:
    changed = NOW.replace(tzinfo=UTC).timestamp()
    status = {"lastCycle": {"name": "web-1", "changedSince": changed}}
    # Spans from before the change are not the target as it is, however long ago it was: the
    # receiver's window reaches back whole slots, further than its length (test_receiver).
    assert window_since(status) == changed
    assert window_since({"lastCycle": {"name": "web-1"}}) is None


def test_a_cycle_starts_at_the_trigger_level_once() -> None:
    low = decide(
        SPEC, generation=1, status={}, measurement=measurement("low", 0.1), problem=None, now=NOW
    )
    assert low.start_cycle is None
    assert {c["type"]: c["status"] for c in low.status["conditions"]}["Degraded"] == "False"
    sick = decide(
        SPEC,
        generation=1,
        status={},
        measurement=measurement("medium", 0.45),
        problem=None,
        now=NOW,
    )
    assert sick.start_cycle == "entropy medium (0.45)"
    busy = decide(
        SPEC,
        generation=1,
        status={"activeCycle": "web-1"},
        measurement=measurement("high", 0.7),
        problem=None,
        now=NOW,
    )
    assert busy.start_cycle is None
    observing = SPEC.model_copy(update={"mode": "observe"})
    watched = decide(
        observing,
        generation=1,
        status={},
        measurement=measurement("high", 0.7),
        problem=None,
        now=NOW,
    )
    assert watched.start_cycle is None


def test_problems_and_insufficient_data_are_conditions_not_scores() -> None:
    failed = decide(
        SPEC,
        generation=3,
        status={},
        measurement=None,
        problem=MeasurementUnavailable("ConfigMap web-spans does not exist"),
        now=NOW,
    )
    (ready,) = failed.status["conditions"]
    assert (ready["type"], ready["status"], ready["reason"]) == (
        "Ready",
        "False",
        "MeasurementFailed",
    )
    few = decide(
        SPEC,
        generation=3,
        status={},
        measurement={
            "status": "insufficient_data",
            "reason": "the window has 12 spans",
            "span_count": 12,
        },
        problem=None,
        now=NOW,
    )
    kinds = {c["type"]: c for c in few.status["conditions"]}
    assert kinds["InsufficientData"]["status"] == "True"
    assert kinds["InsufficientData"]["reason"] == "TooFewSpans"
    assert "score" not in few.status["entropy"]


def test_the_status_says_the_windows_sampling_ratio_and_the_spans_it_stands_for() -> None:
    sampled = {**measurement("low", 0.1), "sampling_ratio": 0.25, "represented_spans": 3600}
    entropy = decide(
        SPEC, generation=1, status={}, measurement=sampled, problem=None, now=NOW
    ).status["entropy"]
    assert (entropy["spanCount"], entropy["samplingRatio"], entropy["representedSpans"]) == (
        900,
        0.25,
        3600,
    )
    status = EntropyStatus.model_validate(entropy)  # what the writer writes, the CRD describes
    assert (status.sampling_ratio, status.represented_spans) == (0.25, 3600)
    # A measurement from before sampling was read stood for its spans: every key is rewritten.
    old = decide(
        SPEC, generation=1, status={}, measurement=measurement("low", 0.1), problem=None, now=NOW
    ).status["entropy"]
    assert (old["samplingRatio"], old["representedSpans"]) == (1.0, 900)
    waiting = decide(
        SPEC,
        generation=1,
        status={},
        measurement={**sampled, "status": "insufficient_data", "reason": "the window has 900"},
        problem=None,
        now=NOW,
    ).status["entropy"]
    assert "score" not in waiting
    assert (waiting["samplingRatio"], waiting["representedSpans"]) == (0.25, 3600)


def test_a_small_baseline_and_a_workload_failing_without_spans_are_told_apart() -> None:
    """InsufficientData only for what cannot be judged; a crash loop measured from the
    workloads' state is Degraded, and the cycle it starts names it."""
    small = decide(
        SPEC,
        generation=1,
        status={},
        measurement={
            "status": "insufficient_data",
            "reason": "the baseline has 40 spans, fewer than 100",
            "insufficient": "baseline",
        },
        problem=None,
        now=NOW,
    )
    insufficient = next(c for c in small.status["conditions"] if c["type"] == "InsufficientData")
    assert (insufficient["status"], insufficient["reason"]) == ("True", "BaselineTooSmall")
    assert small.start_cycle is None
    crash = {
        **measurement("high", 0.62),
        "health_score": 0.0,
        "span_count": 0,
        "evidence": ["kubernetes"],
        "reason": "too few spans to judge: measured from the workloads' state",
        "drift_indicators": [
            {"type": "crash_loop", "severity": 1.0, "evidence": {"pod": "web-1", "restarts": 6}},
            {"type": "pods_not_ready", "severity": 1.0, "evidence": {"ready": 0, "desired": 2}},
        ],
    }
    looping = decide(SPEC, generation=1, status={}, measurement=crash, problem=None, now=NOW)
    kinds = {c["type"]: c for c in looping.status["conditions"]}
    assert kinds["Degraded"]["status"] == "True"
    assert (kinds["InsufficientData"]["status"], kinds["InsufficientData"]["reason"]) == (
        "False",
        "MeasuredFromWorkloads",
    )
    assert looping.start_cycle == "entropy high (0.62): crash_loop, pods_not_ready"


def test_phase_records_time_each_phase() -> None:
    start = stamp(NOW)
    records = phase_records(
        [], "define", finished=True, now=NOW + timedelta(seconds=2), cycle_started=start
    )
    records = phase_records(
        records, "measure", finished=False, now=NOW + timedelta(seconds=3), job="c-measure"
    )
    records = phase_records(records, "measure", finished=True, now=NOW + timedelta(seconds=9))
    again = phase_records(records, "measure", finished=True, now=NOW + timedelta(seconds=99))
    assert again == records  # idempotent
    define, measure = records
    assert define["durationSeconds"] == 2.0 and define["startedAt"] == start
    # A phase starts when the one before it ends (its Job is created right then).
    assert measure["durationSeconds"] == 7.0 and measure["job"] == "c-measure"


def test_cycle_status_outcomes() -> None:
    data = {
        "define": {},
        "measurement_before": measurement("high", 0.7),
        "outcome": "rolled_back",
        "exploration": {"options": [{"strategy": "agent-reset"}], "signature": "s"},
        "chosen": {"strategy": "agent-reset"},
        "implementation": {"outcome": "rolled_back", "verdict": ["entropy 0.5 > 0.3"]},
    }
    status = cycle_status(data, {}, 1, NOW, finished=True)
    assert status["phase"] == "RolledBack" and status["chosenStrategy"] == "agent-reset"
    assert "entropy 0.5 > 0.3" in status["message"]
    kinds = {c["type"]: c["status"] for c in status["conditions"]}
    assert kinds["RolledBack"] == "True" and kinds["Succeeded"] == "False"
    assert kinds["Defined"] == kinds["Measured"] == kinds["Explored"] == "True"
    assert "rollback" not in status  # no record of a restore: none is claimed
    later = cycle_status(data, status, 1, NOW + timedelta(seconds=2), finished=True)
    assert later["finishedAt"] == status["finishedAt"]  # both writes of a final status agree


def test_a_rolled_back_cycle_carries_one_rollback_record_valid_for_its_schema() -> None:
    """The strategy's restore (in Implement) and the cycle's restore after it are one rollback:
    from the first start to the last end, with the last restore's snapshot and verification."""
    first = {
        "startedAt": "2026-11-25T12:00:01Z",
        "finishedAt": "2026-11-25T12:00:02Z",
        "sha256": "ab" * 32,
        "restoredObjects": ["ConfigMap/shop/web-config", "Deployment/shop/web"],
        "verified": True,
    }
    data = {
        "outcome": "rolled_back",
        "chosen": {"strategy": "agent-reset"},
        "implementation": {"outcome": "rolled_back", "verdict": ["x"], "rollback": first},
        "rollback": {
            **first,
            "startedAt": "2026-11-25T12:00:05Z",
            "finishedAt": "2026-11-25T12:00:06Z",
        },
    }
    status = cycle_status(data, {}, 1, NOW, finished=True)
    assert status["rollback"] == {
        "reason": status["message"],
        "startedAt": "2026-11-25T12:00:01Z",
        "finishedAt": "2026-11-25T12:00:06Z",
        "sha256": "ab" * 32,
        "restoredObjects": ["ConfigMap/shop/web-config", "Deployment/shop/web"],
        "verified": True,
    }
    parsed = RegenerationCycleStatus.model_validate(status).rollback
    assert parsed is not None and parsed.restored_objects == first["restoredObjects"]


def test_circuit_breaker_opens_after_max_cycles_and_closes_after_cooldown() -> None:
    spec = SPEC.model_copy(
        update={
            "circuit_breaker": SPEC.circuit_breaker.model_copy(
                update={
                    "max_cycles": 2,
                    "window_seconds": 3600,
                    "cooldown_seconds": 300,
                    "max_cooldown_seconds": 3600,
                }
            )
        }
    )
    status: dict[str, Any] = {}
    starts = []
    for minute in range(4):
        now = NOW + timedelta(minutes=minute)
        decision = decide(
            spec,
            generation=1,
            status=status,
            measurement=measurement("high", 0.7),
            problem=None,
            now=now,
        )
        status = {**status, **decision.status}
        starts.append(decision.start_cycle is not None)
    assert starts == [True, True, False, False]
    kinds = {c["type"]: c for c in status["conditions"]}
    assert kinds["CircuitOpen"]["status"] == "True"
    assert status["circuitBreaker"]["state"] == "Open"
    # After the cooldown it closes and lets one trial cycle start...
    later = NOW + timedelta(minutes=2, seconds=301)
    trial = decide(
        spec,
        generation=1,
        status=status,
        measurement=measurement("high", 0.7),
        problem=None,
        now=later,
    )
    assert trial.start_cycle is not None and trial.status["circuitBreaker"]["state"] == "Closed"
    # Status is merge-patched: the served cooldown must be removed explicitly.
    assert trial.status["circuitBreaker"]["openUntil"] is None
    status = {**status, **trial.status}
    # ...and when the trial fails too, the next opening lasts twice as long.
    failed = {**status, "lastCycle": {"outcome": "RolledBack"}}
    for minute in (1, 2):
        now = later + timedelta(minutes=minute)
        reopened = decide(
            spec,
            generation=1,
            status=failed,
            measurement=measurement("high", 0.7),
            problem=None,
            now=now,
        )
        failed = {**failed, **reopened.status}
    breaker = failed["circuitBreaker"]
    assert breaker["state"] == "Open" and breaker["consecutiveOpenings"] == 2
    opened_at = later + timedelta(minutes=2)
    assert parse_time(breaker["openUntil"]) == opened_at + timedelta(seconds=600)
    # A cycle that heals resets the doubling.
    healed = {**failed, "lastCycle": {"outcome": "Succeeded"}}
    after = decide(
        spec,
        generation=1,
        status=healed,
        measurement=measurement("high", 0.7),
        problem=None,
        now=opened_at + timedelta(seconds=601),
    )
    assert after.status["circuitBreaker"]["consecutiveOpenings"] == 0


def test_a_strategy_that_failed_twice_for_the_signature_is_not_tried_again() -> None:
    from weavergen.domain.decide.explore import StrategyRecord, TargetContext, explore  # noqa: PLC0415

    m = {
        **measurement("high", 0.7),
        "drift_indicators": [{"type": "error_rate_increase", "severity": 1, "evidence": {}}],
    }
    first = explore(m, TargetContext(config_changed=True), max_failures=2)
    best = first.best.strategy
    history = [StrategyRecord(best, first.signature, 0, 2)]
    second = explore(m, TargetContext(config_changed=True), history=history, max_failures=2)
    assert best not in [o.strategy for o in second.options]
    assert "not tried again" in second.excluded[best]


def test_unknown_strategy_names_make_the_charter_not_ready() -> None:
    spec = SPEC.model_copy(
        update={"strategies": SPEC.strategies.model_copy(update={"deny": ["agent-rest"]})}
    )
    decision = decide(
        spec, generation=4, status={}, measurement=measurement("high", 0.7), problem=None, now=NOW
    )
    (ready,) = decision.status["conditions"]
    assert (ready["status"], ready["reason"]) == ("False", "UnknownStrategy")
    assert "agent-rest" in ready["message"] and decision.start_cycle is None


def test_malformed_phase_results_fail_the_phase_naming_the_field() -> None:
    import pytest  # noqa: PLC0415

    from weavergen.domain.errors import PhaseFailed  # noqa: PLC0415
    from weavergen.k8s.jobs import parse_result  # noqa: PLC0415

    good = {
        "data": {
            "result.json": '{"implementation": {"outcome": "succeeded"}, '
            '"implementation_succeeded": true}'
        }
    }
    assert parse_result(good, "implement")["implementation_succeeded"] is True
    for text, words in (
        ("{not json", "no valid JSON"),
        ("[1]", "JSON object"),
        ('{"implementation": {}}', "implementation_succeeded"),
    ):
        with pytest.raises(PhaseFailed, match=words):
            parse_result({"data": {"result.json": text}}, "implement")


def test_a_measurement_from_prometheus_says_so_in_status() -> None:
    red = {
        **measurement("low", 0.1),
        "evidence": ["red"],
        "sources": {"red": "prometheus", "semantic_conventions": "none"},
    }
    status = decide(SPEC, generation=1, status={}, measurement=red, problem=None, now=NOW).status
    assert status["entropy"]["sources"] == {"red": "prometheus", "semanticConventions": "none"}
    enough = next(c for c in status["conditions"] if c["type"] == "InsufficientData")
    assert (enough["reason"], enough["message"]) == ("EnoughSpans", "900 requests")
    RegenerationCharterStatus.model_validate(status)  # what the status subresource keeps


def test_prometheus_out_of_reach_is_not_ready_with_its_own_reason() -> None:
    down = PrometheusUnavailable("Prometheus at http://prom:9090 did not answer: refused")
    decision = decide(SPEC, generation=1, status={}, measurement=None, problem=down, now=NOW)
    ready = next(c for c in decision.status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "PrometheusUnavailable")
    assert "http://prom:9090" in ready["message"] and "entropy" not in decision.status
