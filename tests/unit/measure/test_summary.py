"""Summaries: bounded by groups, mergeable, serialisable; sketches accurate enough."""

from __future__ import annotations

import numpy as np
import pytest

from weavergen.domain.measure.otlp import SpanChunk, code_names, hash_trace_ids
from weavergen.domain.measure.sketch import (
    DistinctCounter,
    fraction_above,
    quantile_ns,
    stable_hash64,
)
from weavergen.domain.measure.summary import MAX_OPERATIONS, OTHER_OPERATION, ServiceSummary
from weavergen.domain.simulation.simulator import EntropySimulator, Faults


def chunk(names: list[str], attrs: int = 0) -> SpanChunk:
    n = len(names)
    codes, table = code_names(names, n)
    return SpanChunk(
        service="svc",
        name_codes=codes,
        name_table=table,
        name_kinds=[2] * len(table),
        durations_ns=np.full(n, 1_000_000, dtype=np.int64),
        errors=np.zeros(n, dtype=bool),
        trace_hashes=hash_trace_ids([i.to_bytes(16, "big") for i in range(n)]),
        entries=np.ones(n, dtype=bool),
        adjusted=np.zeros(n),
        start_ns=0,
        end_ns=10**9,
        attributes=lambda i: [(f"k{j}", "string", f"v{i}") for j in range(attrs)],
    )


def test_a_span_name_per_request_cannot_grow_a_summary_without_bound() -> None:
    summary = ServiceSummary("svc")
    for batch in range(10):
        summary.add_chunk(chunk([f"GET /user/{batch}-{i}" for i in range(1000)]))
    assert len(summary.operations) == MAX_OPERATIONS
    assert summary.operations[OTHER_OPERATION].count == 10_000 - (MAX_OPERATIONS - 1)
    assert summary.span_count == 10_000
    assert summary.operation_names.estimate() == pytest.approx(10_000, rel=0.35)


def test_summary_size_does_not_grow_with_span_volume() -> None:
    sim = EntropySimulator(4)
    system = sim.system("svc")
    small, large = ServiceSummary("svc"), ServiceSummary("svc")
    small.merge(sim.summary(system, Faults(), 1, window_s=10))
    for seed in range(20):
        large.merge(sim.summary(system, Faults(), seed, window_s=10))
    assert large.span_count > 15 * small.span_count
    size = lambda s: len(str(s.to_dict()))  # noqa: E731
    assert size(large) < 2 * size(small)


def test_merge_and_round_trip() -> None:
    sim = EntropySimulator(4)
    system = sim.system("svc")
    a, b = sim.summary(system, Faults(), 1), sim.summary(system, Faults(), 2)
    merged = ServiceSummary("svc")
    merged.merge(a)
    merged.merge(b)
    assert merged.span_count == a.span_count + b.span_count
    assert merged.error_count == a.error_count + b.error_count
    again = ServiceSummary.from_dict(merged.to_dict())
    assert again.to_dict() == merged.to_dict()
    assert np.array_equal(again.histogram(), merged.histogram())


def test_histogram_quantiles_are_within_a_bucket() -> None:
    rng = np.random.default_rng(0)
    durations = (20e6 * np.exp(0.5 * rng.standard_normal(100_000))).astype(np.int64)
    summary = ServiceSummary("svc")
    c = chunk(["op"] * len(durations))
    c.durations_ns = durations
    summary.add_chunk(c)
    histogram = summary.histogram()
    for q in (0.5, 0.95, 0.99):
        assert quantile_ns(histogram, q) == pytest.approx(np.quantile(durations, q), rel=0.1)
    threshold = float(np.quantile(durations, 0.9))
    assert fraction_above(histogram, threshold) == pytest.approx(0.1, abs=0.02)


@pytest.mark.parametrize("distinct", [10, 63, 1000, 100_000])
def test_distinct_counter(distinct: int) -> None:
    counter = DistinctCounter()
    values = [f"user-{i}" for i in range(distinct)]
    for start in range(0, distinct, 5000):
        counter.add_hashes(stable_hash64(values[start : start + 5000]))
    if distinct < 64:
        assert counter.estimate() == distinct
    else:
        assert counter.estimate() == pytest.approx(distinct, rel=0.4)
    copy = DistinctCounter.from_list(counter.to_list())
    assert copy.estimate() == counter.estimate()
