"""The settle after a fix stops when the requests since it say enough (on the digital twin)."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import pytest

from weavergen.api.profiles import profile_for
from weavergen.domain.measure.measure import Measurement
from weavergen.domain.measure.sequential import Evidence
from weavergen.domain.simulation.simulator import EntropySimulator
from weavergen.domain.simulation.twin import Twin
from weavergen.phases.operators import MEASURE_SOON_SECONDS, Operators

SETTLE = 30


def broken_twin() -> tuple[Twin, Operators, dict[str, Any]]:
    twin = Twin.build(EntropySimulator(4), "config_corruption", seed=4)
    criteria = profile_for("web-service").success_criteria
    assert criteria is not None
    before = twin.measure()
    assert before.health is not None
    data = {
        "entropy_before": before.entropy_score,
        "latency_threshold_ms": before.health.latency_threshold_ms,
    }
    return twin, Operators(twin, criteria), data


def verify(operators: Operators, data: dict[str, Any]) -> dict[str, Any]:
    data = {**data, **operators.settle({"seconds": SETTLE}, data)}
    data = {**data, **operators.remeasure({}, data)}
    return {**data, **operators.verify_success_criteria({}, data)}


def test_a_fix_that_works_passes_within_seconds_on_the_requests_since_it() -> None:
    twin, operators, data = broken_twin()
    twin.apply({k: v for k, v in twin.golden().items() if k.startswith("ConfigMap/")})
    measured = twin.measurements
    result = verify(operators, data)
    found = result["verification"]
    assert found["decision"] == "Pass" and found["seconds"] < SETTLE, found
    assert found["bad"] < found["requests"] * 0.05
    assert result["criteria_met"] is True
    assert "requests bad (failed or slow) since the fix: pass" in result["verdict"][-1]
    assert twin.measurements == measured + 1  # the measurement it passed on is the one judged


def test_a_fix_that_does_not_work_fails_early_and_the_criteria_with_it() -> None:
    _, operators, data = broken_twin()  # nothing applied: the config is still corrupted
    result = verify(operators, data)
    found = result["verification"]
    assert found["decision"] == "Fail" and found["seconds"] < SETTLE / 5, found
    assert result["criteria_met"] is False
    assert result["verdict"] == [found["summary"]] and ": fail" in found["summary"]


def test_without_a_latency_threshold_the_whole_settle_is_waited() -> None:
    twin, operators, data = broken_twin()
    data["latency_threshold_ms"] = None  # and the objectives set none either
    found = operators.settle({"seconds": SETTLE}, data)["verification"]
    assert found == {"seconds": SETTLE, "since": 1.0, "decision": None}
    assert twin.pauses == 1


def test_a_silent_service_is_never_passed_early() -> None:
    twin, operators, data = broken_twin()
    twin.apply({k: v for k, v in twin.golden().items() if k.startswith("ConfigMap/")})

    def silence(seconds: float) -> None:  # time passes, no span arrives
        twin.settled_for += seconds

    twin.pause = silence  # type: ignore[method-assign]
    found = operators.settle({"seconds": SETTLE}, data)["verification"]
    assert found["decision"] == "Continue" and found["requests"] == 0
    assert found["seconds"] == SETTLE


def test_a_window_too_small_to_measure_is_measured_again_once_its_requests_would_fill_it() -> None:
    twin, operators, data = broken_twin()
    twin.apply({k: v for k, v in twin.golden().items() if k.startswith("ConfigMap/")})
    measure, looks, measured = twin.measure, [], []

    def evidence_as_looked(threshold_ms: float) -> Evidence | None:
        found = Twin.request_evidence(twin, threshold_ms)
        looks.append((twin.settled_seconds(), found.requests if found else 0))
        return found

    def measure_since_the_fix() -> Measurement:
        # Two spans per request; the first window is too small to measure.
        measured.append(looks[-1])
        found = measure()
        if len(measured) > 1:
            return found
        return replace(
            found,
            status="insufficient_data",
            entropy_score=None,
            insufficient="window",
            span_count=2 * looks[-1][1],
        )

    twin.request_evidence = evidence_as_looked  # type: ignore[method-assign]
    twin.measure = measure_since_the_fix  # type: ignore[method-assign]
    operators.min_spans = 160
    found = verify(operators, data)["verification"]
    assert found["decision"] == "Pass", found
    # Measured again at the first look with minSpans / 2 requests a second or more later: not
    # at every look, nor a fixed while later.
    (first_at, first), (again_at, again) = measured
    due = next((at, n) for at, n in looks if at >= first_at + MEASURE_SOON_SECONDS and n >= 80)
    assert first < 80 and (again_at, again) == due, (measured, looks)


def test_why_verification_goes_on_while_the_requests_pass_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Passing requests and a measurement that does not meet the criteria (a new pod's slow
    first requests, say): the phase's log says why it measures again rather than ending."""
    twin, operators, data = broken_twin()
    twin.apply({k: v for k, v in twin.golden().items() if k.startswith("ConfigMap/")})
    measure, taken = twin.measure, []

    def first_one_drifting() -> Measurement:
        taken.append(twin.settled_seconds())
        found = measure()
        return found if len(taken) > 1 else replace(found, entropy_score=0.9)

    twin.measure = first_one_drifting  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO, logger="weavergen.phases.operators"):
        found = verify(operators, data)["verification"]
    assert found["decision"] == "Pass" and len(taken) == 2, found
    (logged,) = [r.getMessage() for r in caplog.records if "the measurement does not" in r.message]
    assert "requests pass; the measurement does not: entropy 0.900 >" in logged


def test_each_step_a_workflow_runs_logs_how_long_it_took(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Where Implement's seconds go is in its pod's log, a line per step, failed ones too."""
    _, operators, data = broken_twin()
    registry = operators.registry()
    with caplog.at_level(logging.INFO, logger="weavergen.phases.operators"):
        registry.get("snapshot_targets").fn({}, data)
        with pytest.raises(RuntimeError, match="no snapshot"):
            broken_twin()[1].registry().get("verify_snapshot").fn({}, data)  # none taken
    took = [r.getMessage() for r in caplog.records if " took " in r.message]
    assert [line.split(" took ")[0] for line in took] == ["snapshot_targets", "verify_snapshot"]
    assert all(line.endswith(" s") for line in took), took
