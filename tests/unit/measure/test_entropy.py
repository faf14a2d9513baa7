"""Entropy and levels exactly as DESIGN.md section 5, boundaries included; health formula."""

from __future__ import annotations

import pytest

from weavergen.domain.measure.entropy import DEFAULT_THRESHOLDS, Thresholds, entropy_score
from weavergen.domain.measure.health import Objectives, burn_health, combine, health_of
from weavergen.domain.measure.measure import measure
from weavergen.domain.measure.summary import ServiceSummary
from weavergen.domain.simulation.simulator import EntropySimulator, Faults


@pytest.mark.parametrize(
    ("score", "level"),
    [
        (0.0, "low"),
        (0.299999, "low"),
        (0.3, "medium"),
        (0.599999, "medium"),
        (0.6, "high"),
        (0.7999999999999999, "critical"),  # a float artefact of 0.8, not HIGH
        (0.799999, "high"),
        (0.8, "critical"),
        (1.0, "critical"),
    ],
)
def test_levels_at_the_boundaries(score: float, level: str) -> None:
    assert DEFAULT_THRESHOLDS.level(score).value == level


def test_entropy_formula() -> None:
    assert entropy_score(1.0, 0, 0) == 0.0
    assert entropy_score(0.0, 5, 10) == 1.0
    assert entropy_score(0.0, 9, 30) == 1.0  # both counts saturate
    assert entropy_score(0.5, 1, 2) == pytest.approx(0.2 + 0.06 + 0.06)
    # 0.4*(1-0.25) + 0.3*(1/5) + 0.3*(4/10) sums to 0.47999999999999993 in floating point
    assert entropy_score(0.25, 1, 4) == 0.48


def test_exact_boundaries_from_the_formula() -> None:
    assert DEFAULT_THRESHOLDS.level(entropy_score(1.0, 5, 0)).value == "medium"  # 0.3
    assert DEFAULT_THRESHOLDS.level(entropy_score(0.25, 5, 0)).value == "high"  # 0.6
    assert DEFAULT_THRESHOLDS.level(entropy_score(0.25, 5, 10)).value == "critical"  # 0.9
    assert DEFAULT_THRESHOLDS.level(entropy_score(0.5, 5, 10)).value == "critical"  # 0.8


def test_charter_thresholds_are_used_and_checked() -> None:
    strict = Thresholds(0.2, 0.4, 0.6)
    assert strict.level(0.45).value == "high"
    with pytest.raises(ValueError, match="medium < high < critical"):
        Thresholds(0.5, 0.5, 0.8)


def service(spans: int, errors: int, seconds: float = 60.0) -> ServiceSummary:
    summary = ServiceSummary("svc", start_ns=0, end_ns=int(seconds * 1e9))
    op = summary._operation("GET /")
    op.count, op.errors = spans, errors
    op.histogram[40] = spans  # every span ~ 1 ms
    return summary


def test_a_35_percent_error_rate_against_a_half_percent_baseline_is_sick() -> None:
    health = health_of(service(10_000, 3_500), service(10_000, 50), Objectives())
    assert health.error_burn == pytest.approx(35.0)
    assert health.score == 0.0


def test_health_components_and_burn() -> None:
    assert burn_health(0.5) == 1.0 and burn_health(1.0) == 1.0
    assert burn_health(14.4) == pytest.approx(0.0)
    assert 0 < burn_health(3.0) < 1
    assert combine(1, 1, 1) == 1.0
    assert combine(0.0, 1.0, 1.0) == 0.0  # one exhausted objective dominates
    assert combine(1.0, 1.0, 0.5) == pytest.approx(0.9)


def test_too_few_spans_is_insufficient_data_only_when_there_is_nothing_to_judge_by() -> None:
    # A window too short to expect many spans: 40 in half a second is the baseline's pace.
    short = measure(service(40, 0, seconds=0.5), service(5_000, 5))
    assert short.status == "insufficient_data" and short.insufficient == "window"
    assert short.entropy_score is None and short.entropy_level is None
    assert "40 spans" in short.reason
    small = measure(service(500, 0), service(50, 0))
    assert small.status == "insufficient_data" and small.insufficient == "baseline"
    assert "the baseline has 50 spans" in small.reason
    none = measure(service(500, 0), None)
    assert none.insufficient == "baseline" and none.reason == "no baseline yet"


def test_a_service_gone_silent_is_the_worst_throughput_drop_and_at_least_high() -> None:
    """Silence is evidence: a minute with 40 requests, or none, where the baseline had 5,000."""
    for current in (service(40, 0), service(0, 0), window_of(service(0, 0), 60)):
        result = measure(current, service(5_000, 5))
        assert result.status == "ok", result.reason
        (drop,) = [i for i in result.drift_indicators if i.type == "throughput_drop"]
        assert drop.severity == 1.0 and drop.evidence["silent"] is True
        assert drop.evidence["expected_requests"] >= 4_000
        assert result.entropy_level in ("high", "critical")
        assert result.health_score == 0.0


def test_every_detector_takes_a_silent_window_of_a_real_service() -> None:
    """A service of many operations that went quiet: one worst-case drop, nothing raised."""
    sim = EntropySimulator(seed=3)
    system = sim.system("svc")
    baseline = sim.summary(system, Faults(), 1)
    result = measure(window_of(ServiceSummary("svc"), 60), baseline)
    assert [i.type for i in result.drift_indicators] == ["throughput_drop"]
    assert result.entropy_level == "high" and result.health_score == 0.0


def test_a_receiver_window_longer_than_its_spans_shows_a_service_that_stopped() -> None:
    """The receiver watched 60 s; the spans stop after the first 5: a drop, not a short window.
    A window too short to tell exporters' batching from silence judges no rate."""
    stopped = window_of(service(400, 0, seconds=5), 60)
    drop = measure(stopped, service(5_000, 5)).drift_indicators
    assert [i.type for i in drop] == ["throughput_drop"]
    assert drop[0].evidence["window_seconds"] == 60.0
    steady = window_of(service(4_200, 4, seconds=52), 60)
    assert measure(steady, service(5_000, 5)).entropy_level == "low"
    just_begun = measure(window_of(service(0, 0), 4), service(5_000, 5))
    assert just_begun.status == "insufficient_data" and just_begun.insufficient == "window"


def test_throughput_counts_requests_so_a_retry_storm_cannot_hide_a_drop() -> None:
    """Requests fall to a quarter while client spans (retries to a database) multiply: the
    span rate rises, the request rate is what dropped."""
    baseline = requests_and_calls(requests=3_000, calls=3_000)
    current = requests_and_calls(requests=750, calls=12_000)
    assert current.span_count > baseline.span_count
    result = measure(current, baseline)
    (drop,) = [i for i in result.drift_indicators if i.type == "throughput_drop"]
    assert drop.evidence["ratio"] == 0.25
    assert result.health is not None and result.health.throughput_ratio == 0.25


def window_of(summary: ServiceSummary, seconds: float) -> ServiceSummary:
    """The summary as the receiver hands it: with the length of the window it watched."""
    summary.window_s = seconds
    return summary


def requests_and_calls(requests: int, calls: int) -> ServiceSummary:
    summary = ServiceSummary("svc", start_ns=0, end_ns=60 * 10**9)
    server, client = summary._operation("GET /"), summary._operation("SELECT orders")
    server.kind, server.count, server.entries = 2, requests, requests
    client.kind, client.count = 3, calls
    server.histogram[40], client.histogram[40] = requests, calls
    return summary
