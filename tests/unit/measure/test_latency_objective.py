"""The latency objective judges requests, against the baseline requests' p99: a service whose
requests got slower is as unhealthy as one failing the same share of them.

Two service shapes, at 30 requests/s in a 15 s window against a 45 s baseline (a charter's
default capture of three windows): the demo shop (``weavergen demo app``: a server span of
exponential latency, mean 15 ms, per request; every other request, a checkout, also calls
payments, a ~4 ms client span) and a WSGI app under the requests and DB-API instrumentations
(three spans a request: the server span, an HTTP client call and a query; only the server's own
work slows down). Before requests were judged, with the threshold at 1.5x the p99 of all spans,
a shop twice as slow in every request measured LOW for ever, and a WSGI app could burn at most a
third of the latency budget, however slow its requests.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from weavergen.domain.measure.health import Objectives, health_of
from weavergen.domain.measure.measure import measure
from weavergen.domain.measure.otlp import SpanChunk
from weavergen.domain.measure.sketch import quantile_ns
from weavergen.domain.measure.summary import ServiceSummary

RPS, WINDOW_S, BASELINE_S = 30.0, 15.0, 45.0
SERVER, CLIENT, INTERNAL = 2, 3, 1
LEVELS = ("low", "medium", "high", "critical")

# slow(own work of each request in ms, draws) -> the slowed work; faulty requests only.
Slow = Callable[[np.ndarray], np.ndarray]


def healthy(work: np.ndarray) -> np.ndarray:
    return work


def plus(ms: float) -> Slow:
    return lambda work: work + ms


def times(factor: float) -> Slow:
    return lambda work: work * factor


def window(
    shape: str,
    seconds: float,
    seed: int,
    *,
    slow: Slow = healthy,
    faulty: float = 1.0,
    failing: float = 0.0,
    rate: float = 1.0,
) -> ServiceSummary:
    """One window of ``shape`` (``demo`` or ``wsgi``): ``faulty`` of its requests slowed by
    ``slow`` (a rollout half done, a fault begun mid-window), ``failing`` of them failed, at
    ``rate`` times the usual request rate."""
    rng = np.random.default_rng(seed)
    n = int(rng.poisson(RPS * rate * seconds))
    bad = rng.random(n) < faulty
    failed = rng.random(n) < failing
    if shape == "demo":
        work = rng.exponential(15.0, n)
        work = np.where(bad, slow(work), work)
        checkout = np.arange(n) % 2 == 0
        payments = rng.exponential(4.0, n)
        server = work + np.where(checkout, payments, 0.0)
        names = ["GET /checkout", "GET /cart", "POST"]
        kinds = [SERVER, SERVER, CLIENT]
        codes = np.concatenate([np.where(checkout, 0, 1), np.full(checkout.sum(), 2)])
        durations = np.concatenate([server, payments[checkout]])
        errors = np.concatenate([failed, np.zeros(checkout.sum(), bool)])
        traces = np.concatenate([np.arange(n), np.flatnonzero(checkout)])
    else:
        work = 8.0 + rng.exponential(7.0, n)
        work = np.where(bad, slow(work), work)
        call = rng.exponential(5.0, n)
        query = rng.lognormal(0.0, 0.5, n)
        names = ["GET /items", "GET", "SELECT shop"]
        kinds = [SERVER, CLIENT, CLIENT]
        codes = np.repeat([0, 1, 2], n)
        durations = np.concatenate([work + call + query, call, query])
        errors = np.concatenate([failed, np.zeros(2 * n, bool)])
        traces = np.tile(np.arange(n), 3)
    start = 1_700_000_000_000_000_000 + seed * 10**12
    chunk = SpanChunk(
        service="svc",
        name_codes=codes.astype(np.int32),
        name_table=names,
        name_kinds=kinds,
        durations_ns=(durations * 1e6).astype(np.int64),
        errors=errors,
        trace_hashes=(traces.astype(np.uint64) + np.uint64(seed << 32)) * np.uint64(0x9E3779B1),
        entries=np.array([kinds[c] == SERVER for c in codes]),
        adjusted=np.zeros(len(codes)),
        start_ns=start,
        end_ns=start + int(seconds * 1e9),
        attributes=lambda i: [],
    )
    summary = ServiceSummary("svc")
    summary.add_chunk(chunk)
    summary.window_s = seconds
    return summary


def measured(shape: str, seed: int = 0, **fault: object) -> tuple[str, float, object]:
    baseline = window(shape, BASELINE_S, 1000 + seed)
    result = measure(window(shape, WINDOW_S, 2000 + seed, **fault), baseline)  # type: ignore[arg-type]
    assert result.entropy_level is not None and result.entropy_score is not None
    return result.entropy_level, result.entropy_score, result


@pytest.mark.parametrize("shape", ["demo", "wsgi"])
@pytest.mark.parametrize(
    ("name", "slow"),
    [("+40 ms", plus(40)), ("+80 ms", plus(80)), ("x3", times(3)), ("x4", times(4))],
)
@pytest.mark.parametrize("seed", range(3))
def test_a_service_whose_requests_got_slower_is_at_least_medium(
    shape: str, name: str, slow: Slow, seed: int
) -> None:
    """A latency-only fault of the class (every request slower, no errors) starts a cycle from
    its level, not only when a control chart's run rule fires later. Before: the shop x3 (a
    15 ms mean become 45 ms) measured LOW (0.27) for ever, and so did +40 ms on both shapes."""
    level, score, _ = measured(shape, seed, slow=slow)
    assert LEVELS.index(level) >= 1, (shape, name, level, score)


@pytest.mark.parametrize("seed", range(6))
def test_the_shop_twice_as_slow_burns_the_budget_to_the_edge_of_medium(seed: int) -> None:
    """Mean 15 -> 30 ms in every request: about 8-12% of requests beyond the baseline's p99,
    burn ~10, health ~0.2: MEDIUM in about half of the windows, with the latency indicator
    (entropy needs health <= 0.4 then). Before: 2-4% beyond 1.5x the p99 of all spans, health
    at least 0.8, entropy at most 0.12: LOW in every window."""
    _, score, result = measured("demo", seed, slow=times(2))
    assert result.health.latency_burn >= 6.0  # type: ignore[attr-defined]
    assert score >= 0.15


def test_slow_requests_are_not_diluted_by_the_fast_spans_they_make() -> None:
    """Every WSGI request 200 ms slower: all requests break the objective (burn 100), not the
    third of spans that are server spans (burn 33)."""
    _, _, result = measured("wsgi", slow=plus(200))
    health = result.health  # type: ignore[attr-defined]
    assert health.latency_burn == pytest.approx(100.0, rel=0.02)
    # The threshold is the requests' p99, not 1.5x the p99 of a mix with fast client spans.
    baseline = window("wsgi", BASELINE_S, 1000)
    p99 = quantile_ns(baseline.request_histogram(), 0.99) / 1e6
    assert health.latency_threshold_ms == pytest.approx(p99)


@pytest.mark.parametrize("shape", ["demo", "wsgi"])
def test_a_slow_share_of_requests_burns_the_budget_as_fast_as_the_same_share_failing(
    shape: str,
) -> None:
    """A rollout half done: 30% of requests 200 ms slower, or 30% of requests failing. The
    latency objective counts requests, so it burns at least as fast as the error objective
    (which counts spans: the fast child spans of a failed request succeed)."""
    slow = measured(shape, slow=plus(200), faulty=0.3)[2].health  # type: ignore[union-attr]
    failing = measured(shape, failing=0.3)[2].health  # type: ignore[union-attr]
    assert slow.latency_burn == pytest.approx(30.0, rel=0.25)
    assert slow.latency <= failing.errors
    assert slow.score <= failing.score


@pytest.mark.parametrize("shape", ["demo", "wsgi"])
@pytest.mark.parametrize("seed", range(3))
def test_window_composition_a_rollout_60_percent_through_to_three_times_slower_is_medium(
    shape: str, seed: int
) -> None:
    """60% of the requests from new pods 3x slower, or a fault 9 s into a 15 s window: MEDIUM
    already (before: LOW at any share, the shop even with every pod slow)."""
    assert measured(shape, seed, slow=times(3), faulty=0.6)[0] == "medium"


@pytest.mark.parametrize("shape", ["demo", "wsgi"])
@pytest.mark.parametrize("seed", range(20))
def test_healthy_noise_stays_low_with_the_derived_threshold(shape: str, seed: int) -> None:
    """A guard (it held before too): windows of healthy traffic, with the request rate off by up
    to 15% and latency by up to 10% either way, measure LOW with the latency objective intact."""
    rng = np.random.default_rng(seed)
    jitter = float(rng.uniform(0.9, 1.1))
    baseline = window(shape, BASELINE_S, 1000 + seed)
    rate = float(rng.uniform(0.85, 1.15))
    current = window(shape, WINDOW_S, 3000 + seed, slow=times(jitter), rate=rate)
    result = measure(current, baseline)
    assert result.entropy_level == "low", result.as_dict()
    assert result.health is not None and result.health.latency >= 0.7


def test_a_charter_threshold_judges_requests_too() -> None:
    """latencyThresholdMs 100: the share of WSGI *requests* slower than 100 ms."""
    baseline = window("wsgi", BASELINE_S, 1000)
    current = window("wsgi", WINDOW_S, 2000, slow=plus(200), faulty=0.2)
    health = health_of(current, baseline, Objectives(latency_threshold_ms=100.0))
    assert health.latency_threshold_ms == 100.0
    assert health.latency_burn == pytest.approx(20.0, rel=0.25)


def test_the_request_histogram_counts_entry_spans_only() -> None:
    """Server spans whole, client spans not at all, an operation that is a local root in a
    quarter of its spans for a quarter of its histogram."""
    summary = ServiceSummary("svc")
    server, client, job = (summary._operation(n) for n in ("GET /", "SELECT", "job"))
    server.kind, server.count, server.entries = SERVER, 100, 100
    client.kind, client.count = CLIENT, 300
    job.kind, job.count, job.entries = INTERNAL, 40, 10
    server.histogram[40], client.histogram[30], job.histogram[50] = 100, 300, 40
    requests = summary.request_histogram()
    assert requests.sum() == 110
    assert (requests[40], requests[30], requests[50]) == (100, 0, 10)


def test_a_service_of_child_spans_only_is_judged_on_all_its_spans() -> None:
    """No entry span in the baseline (every span a child of another service's): all spans."""
    baseline, current = ServiceSummary("svc"), ServiceSummary("svc")
    for summary, slow in ((baseline, 0), (current, 500)):
        op = summary._operation("SELECT")
        op.kind, op.count = CLIENT, 1000
        op.histogram[40], op.histogram[60] = 1000 - slow, slow
    health = health_of(current, baseline, Objectives())
    assert health.latency_burn == pytest.approx(50.0, rel=0.05)
