"""RED metrics from Prometheus are judged as spans are: the same health, indicators and levels.

Requests are drawn as the demo shop serves them (exponential latency, mean 40 ms, 30 requests/s)
and counted twice: as the summary of their server spans (the span path) and as span_metrics
counts in Prometheus's explicit buckets, as ``increase()`` over a window returns them (the RED
path). Both must reach the same judgement.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from weavergen.api.charter import PrometheusSpec
from weavergen.domain.measure.measure import known_good, measure
from weavergen.domain.measure.red import (
    DEFAULT_LATENCY,
    RedQueries,
    RedWindow,
    index_buckets,
    index_counts,
    missing_latency,
    names_service,
    pick,
    red_summary,
    red_window,
    render,
    sketch_histogram,
)
from weavergen.domain.measure.sketch import NUM_BUCKETS, bucket_of, fraction_above
from weavergen.domain.measure.summary import OperationStats, ServiceSummary

BOUNDS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, math.inf)
RPS, WINDOW_S, BASELINE_S = 30.0, 60.0, 180.0


def requests(seconds: float, seed: int, *, slow: float = 1.0, failing: float = 0.005) -> tuple:
    """(durations in ms, failed) of the requests of ``seconds``."""
    rng = np.random.default_rng(seed)
    n = rng.poisson(RPS * seconds)
    return rng.exponential(40.0, n) * slow, rng.random(n) < failing


def as_red(durations: np.ndarray, failed: np.ndarray, seconds: float) -> RedWindow:
    """What span_metrics + increase() report of these requests: counts, cumulative buckets."""
    buckets = {b: float(np.sum(durations <= b)) for b in BOUNDS_MS}
    return RedWindow(float(len(durations)), float(failed.sum()), buckets, seconds)


def as_spans(durations: np.ndarray, failed: np.ndarray, seconds: float) -> ServiceSummary:
    """The same requests as the span path summarises their server spans."""
    histogram = np.bincount(bucket_of((durations * 1e6).astype(np.int64)), minlength=NUM_BUCKETS)
    op = OperationStats(
        kind=2,
        count=len(durations),
        entries=len(durations),
        errors=int(failed.sum()),
        histogram=histogram[:NUM_BUCKETS],
    )
    return ServiceSummary("web", operations={"GET /": op}, window_s=seconds)


def judged(current: RedWindow, baseline: RedWindow) -> dict:
    m = measure(red_summary("web", current), red_summary("web", baseline), counts="red")
    return {
        "level": m.entropy_level,
        "indicators": sorted(i.type for i in m.drift_indicators),
        "health": m.health_score,
        "evidence": m.evidence,
        "measurement": m,
    }


FAULTS = {
    "healthy": ({}, [], "low"),
    "errors": ({"failing": 0.2}, ["error_rate_increase"], None),
    "latency": ({"slow": 3.0}, ["latency_degradation"], None),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_red_counts_reach_the_span_paths_judgement(fault: str) -> None:
    changes, indicators, level = FAULTS[fault]
    base = requests(BASELINE_S, 1)
    now = requests(WINDOW_S, 2, **changes)
    red = judged(as_red(*now, WINDOW_S), as_red(*base, BASELINE_S))
    spans = measure(as_spans(*now, WINDOW_S), as_spans(*base, BASELINE_S))
    assert red["indicators"] == indicators == sorted(i.type for i in spans.drift_indicators)
    assert red["level"] == spans.entropy_level
    assert level is None or red["level"] == level
    assert red["health"] == pytest.approx(spans.health_score, abs=0.05)
    assert red["evidence"] == ("red",)


def test_a_service_with_no_series_is_silent_not_missing_data() -> None:
    base = as_red(*requests(BASELINE_S, 1), BASELINE_S)
    silent = red_window("web", [{}, {}, {}], RedQueries(), WINDOW_S)
    result = judged(silent, base)
    drop = next(i for i in result["measurement"].drift_indicators)
    assert (drop.type, drop.evidence["silent"]) == ("throughput_drop", True)
    assert result["level"] in ("high", "critical")


def test_half_the_requests_is_a_throughput_drop_and_errors_are_shares_of_requests() -> None:
    base = as_red(*requests(BASELINE_S, 1), BASELINE_S)
    durations, failed = requests(WINDOW_S, 2)
    half = as_red(durations[::2], failed[::2], WINDOW_S)
    result = judged(half, base)
    assert result["indicators"] == ["throughput_drop"]
    assert result["measurement"].health.throughput_ratio == pytest.approx(0.5, abs=0.05)


def test_a_measurement_from_red_counts_may_stand_for_the_known_good_state() -> None:
    base = as_red(*requests(BASELINE_S, 1), BASELINE_S)
    assert known_good(judged(as_red(*requests(WINDOW_S, 2), WINDOW_S), base)["measurement"])


def test_semantic_conventions_come_from_the_sampled_spans_given() -> None:
    base = red_summary("web", as_red(*requests(BASELINE_S, 1), BASELINE_S))
    now = red_summary("web", as_red(*requests(WINDOW_S, 2), WINDOW_S))
    sampled = ServiceSummary("web")
    op = sampled.operations["GET /"] = OperationStats(kind=2, count=100, entries=100)
    for _ in range(100):
        op.inspect([("http.method", "string", "GET")], {})  # deprecated: http.request.method
    always = measure(now, base, counts="red", attributes=(sampled, sampled))
    new = measure(now, base, counts="red", attributes=(sampled, ServiceSummary("web")))
    assert always.validation_errors == [] and always.validation_known
    assert [f.attribute for f in new.validation_errors] == ["http.method"]
    assert measure(now, base, counts="red").validation_known == []  # counts carry none


def test_buckets_spread_over_the_log_buckets_keep_every_request_and_the_bounds() -> None:
    durations, failed = requests(WINDOW_S, 3)
    red = as_red(durations, failed, WINDOW_S)
    histogram = sketch_histogram(red.buckets, red.unit_ns)
    assert histogram.sum() == len(durations)
    for bound in (25, 50, 100, 250):
        exact = float(np.mean(durations > bound))
        # A log bucket straddles each explicit bound: a few percent of its requests move.
        assert fraction_above(histogram, bound * 1e6) == pytest.approx(exact, abs=0.03)


def test_seconds_buckets_and_infinite_and_zero_bounds() -> None:
    histogram = sketch_histogram({0.0: 2, 0.1: 5, math.inf: 12}, 1e9)
    assert histogram.sum() == 12
    assert histogram[0] == 2  # nothing is faster than 0
    assert fraction_above(histogram, 0.1e9) == pytest.approx(7 / 12, abs=0.03)
    assert sketch_histogram({}, 1e6).sum() == 0


def test_decreasing_cumulative_counts_from_extrapolation_never_go_negative() -> None:
    histogram = sketch_histogram({10: 5.2, 25: 5.1, math.inf: 9.0}, 1e6)
    assert histogram.min() >= 0 and histogram.sum() == 9


def test_templates_render_the_window_and_quote_the_service() -> None:
    assert "[60s]" in render(DEFAULT_LATENCY, 60, "web")
    assert render('x{s="{{service}}"}[{{window}}]', 0.2, 'a"b\\') == 'x{s="a\\"b\\\\"}[1s]'
    assert names_service("{{service}}") and not names_service(DEFAULT_LATENCY)


VECTOR = {
    "resultType": "vector",
    "result": [
        {"metric": {"service_name": "web"}, "value": [1, "10"]},
        {"metric": {"service_name": "web", "pod": "b"}, "value": [1, "5.5"]},
        {"metric": {}, "value": [1, "3"]},
    ],
}


def test_answers_are_indexed_by_service_and_unlabelled_series_serve_own_queries() -> None:
    index = index_counts(VECTOR, "service_name", "requests")
    assert index == {"web": 15.5, None: 3.0}
    assert pick(index, "shop", own=False) is None
    assert pick(index, "shop", own=True) == 3.0
    spec = PrometheusSpec(url="http://p", requests='sum(x{s="{{service}}"}[{{window}}])')
    window = red_window("shop", [index, {}, {}], RedQueries.of(spec), 60)
    assert (window.requests, window.errors) == (3.0, 0.0)
    assert missing_latency(window)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"resultType": "matrix", "result": []}, "expected an instant vector, got a matrix"),
        ({"resultType": "vector", "result": [{"metric": {}, "value": [1, "NaN"]}]}, "nan"),
        ({"resultType": "vector", "result": [{"metric": {"a": "b"}, "value": [1, "1"]}]}, "le"),
    ],
)
def test_answers_that_are_not_counts_per_service_are_refused(data: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        index_buckets(data, "service_name", "the latency query")
