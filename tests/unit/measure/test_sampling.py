"""Sampled spans: each span's probability from its tracestate, rates scaled, tests on the sample.

Spans come through a sampler (an OpenTelemetry Collector's probabilistic sampler keeps a share of
the traces). The windows here are made by the simulator and thinned as a consistent sampler
does, keeping a trace when its trace id's randomness clears the rejection threshold.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, cast

import numpy as np
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from weavergen.api.charter import RegenerationCharterSpec
from weavergen.domain.errors import BaselinePending
from weavergen.domain.measure.drift import Z_CRITICAL, error_rate_increase, throughput_drop
from weavergen.domain.measure.entropy import DEFAULT_THRESHOLDS
from weavergen.domain.measure.health import Requests
from weavergen.domain.measure.measure import measure, render_text, summarise
from weavergen.domain.measure.otlp import (
    adjusted_count,
    decode_json,
    decode_protobuf,
    threshold_of,
    tracestate_adjusted_count,
)
from weavergen.domain.measure.spans import otlp_json
from weavergen.domain.measure.stats import two_proportion_z
from weavergen.domain.measure.summary import OperationStats, ServiceSummary
from weavergen.domain.measure.thresholds import ThresholdCalculator
from weavergen.domain.simulation.simulator import (
    EntropySimulator,
    Faults,
    SyntheticChunk,
    SyntheticSystem,
    sample_traces,
    to_otlp_json,
    to_otlp_protobuf,
)
from weavergen.k8s.cluster_target import ClusterTarget
from weavergen.k8s.rest import Rest

# -- reading the threshold --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("threshold", "probability"),
    [
        ("c", 0.25),
        ("8", 0.5),
        ("0", 1.0),
        ("f", 1 / 16),
        ("e8", 0.09375),
        ("fffffffffffff", 2**-52),
    ],
)
def test_a_threshold_says_the_probability_a_span_was_kept(
    threshold: str, probability: float
) -> None:
    assert adjusted_count(threshold) == pytest.approx(1 / probability)
    assert threshold_of(probability) == threshold


@pytest.mark.parametrize(
    "threshold",
    ["", "C", "0x8", "123456789abcdef", "8 ", "-8", "g", "8.0"],
)
def test_a_threshold_that_is_not_one_says_nothing(threshold: str) -> None:
    assert adjusted_count(threshold) == 0.0


@pytest.mark.parametrize(
    ("tracestate", "adjusted"),
    [
        ("ot=th:c", 4.0),
        ("ot=rv:0123456789abcd;th:8", 2.0),
        ("ot=th:8;rv:0123456789abcd", 2.0),
        ("rojo=00f067aa0ba902b7,ot=th:c", 4.0),
        ("ot=th:c , congo=t61rcWkgMzE", 4.0),
        ("rojo=00f067aa0ba902b7", 0.0),  # another vendor's member only
        ("ot=rv:0123456789abcd", 0.0),  # randomness, no threshold
        ("ot=th:zz", 0.0),
        ("xot=th:c", 0.0),
        ("ot", 0.0),
        ("", 0.0),
    ],
)
def test_the_threshold_is_read_from_the_ot_member_of_a_tracestate(
    tracestate: str, adjusted: float
) -> None:
    assert tracestate_adjusted_count(tracestate) == adjusted


# (tracestate, sampling.threshold attribute, expected adjusted count); the attribute counts only
# where the tracestate says no threshold.
SPANS: list[tuple[str, Any, float]] = [
    ("ot=th:c", None, 4.0),
    ("rojo=00f067aa0ba902b7,ot=rv:0123456789abcd;th:8", None, 2.0),
    ("ot=th:0", None, 1.0),
    ("ot=th:C", None, 0.0),
    ("ot=th:123456789abcdef", None, 0.0),
    ("", "c", 4.0),
    ("ot=rv:0123456789abcd", "8", 2.0),
    ("ot=th:c", "8", 4.0),
    ("", "not hex", 0.0),
    ("", 12, 0.0),  # an int attribute is no threshold
    ("", None, 0.0),
]


def request(spans: list[tuple[str, Any, float]]) -> bytes:
    message = ExportTraceServiceRequest()
    resource = message.resource_spans.add()
    kv = resource.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "shop"
    scope = resource.scope_spans.add()
    for i, (tracestate, threshold, _) in enumerate(spans):
        span = scope.spans.add()
        span.trace_id = i.to_bytes(16, "big")
        span.span_id = (i + 1).to_bytes(8, "big")
        span.name = "GET /"
        span.kind = 2
        span.trace_state = tracestate
        span.start_time_unix_nano = 1_700_000_000_000_000_000
        span.end_time_unix_nano = 1_700_000_000_001_000_000
        if threshold is not None:
            attribute = span.attributes.add()
            attribute.key = "sampling.threshold"
            if isinstance(threshold, int):
                attribute.value.int_value = threshold
            else:
                attribute.value.string_value = threshold
    return message.SerializeToString()


def test_protobuf_and_json_read_each_spans_adjusted_count() -> None:
    data = request(SPANS)
    expected = [adjusted for _, _, adjusted in SPANS]
    (from_protobuf,) = decode_protobuf(data)
    (from_json,) = decode_json(json.dumps(otlp_json(data)))
    assert from_protobuf.adjusted.tolist() == expected
    assert from_json.adjusted.tolist() == expected


def test_a_request_that_says_no_threshold_anywhere_reads_as_unsampled() -> None:
    (chunk,) = decode_protobuf(request([("rojo=00f067aa0ba902b7", None, 0.0)] * 3))
    assert chunk.adjusted.tolist() == [0.0, 0.0, 0.0]


def test_a_tracestate_of_the_wrong_json_type_is_ignored_not_an_error() -> None:
    document = otlp_json(request([("ot=th:c", None, 4.0), ("ot=th:8", None, 2.0)]))
    spans = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans[0]["traceState"] = 8
    spans[1]["traceState"] = {"ot": "th:8"}
    (chunk,) = decode_json(json.dumps(document))
    assert chunk.adjusted.tolist() == [0.0, 0.0]


def test_looking_for_the_attribute_does_not_make_bad_attributes_an_error_sooner() -> None:
    """Attributes that do not decode are the summary's to report, when it inspects the span."""
    document = otlp_json(request([("", "c", 4.0), ("", None, 0.0)]))
    spans = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans[1]["attributes"] = [{"key": 5}]
    (chunk,) = decode_json(json.dumps(document))
    assert chunk.adjusted.tolist() == [4.0, 0.0]


def test_slices_keep_their_adjusted_counts() -> None:
    (chunk,) = decode_protobuf(request(SPANS))
    assert chunk.slice(5, 8).adjusted.tolist() == [4.0, 2.0, 4.0]


# -- summaries ----------------------------------------------------------------------------------


def test_a_summary_counts_the_spans_of_known_probability_and_what_they_stand_for() -> None:
    (chunk,) = decode_protobuf(request(SPANS))
    summary = ServiceSummary("shop")
    summary.add_chunk(chunk)
    op = summary.operations["GET /"]
    known = [adjusted for _, _, adjusted in SPANS if adjusted]
    assert (op.count, op.sampled, op.adjusted) == (len(SPANS), len(known), sum(known))
    assert (op.sampled_entries, op.adjusted_entries) == (len(known), sum(known))  # server spans
    unknown = len(SPANS) - len(known)
    assert summary.represented_spans == sum(known) + unknown  # the others: as not sampled
    assert summary.assuming(0.5).represented_spans == sum(known) + unknown / 0.5
    assert summary.sampling_ratio() == pytest.approx(len(SPANS) / (sum(known) + unknown))


def test_sampling_counts_merge_and_round_trip_and_are_omitted_when_none() -> None:
    (chunk,) = decode_protobuf(request(SPANS))
    a, b = ServiceSummary("shop"), ServiceSummary("shop")
    a.add_chunk(chunk)
    b.add_chunk(chunk)
    a.merge(b)
    op = a.operations["GET /"]
    known = [adjusted for _, _, adjusted in SPANS if adjusted]
    assert (op.sampled, op.adjusted) == (2 * len(known), 2 * sum(known))
    again = ServiceSummary.from_dict(json.loads(json.dumps(a.to_dict())))
    assert again.to_dict() == a.to_dict()
    assert again.represented_spans == a.represented_spans

    plain = OperationStats(kind=2, count=10, entries=10).to_dict()
    assert not {"sampled", "adjusted", "sampledEntries", "adjustedEntries"} & set(plain)
    old = OperationStats.from_dict(plain)  # a summary stored before sampling was read
    assert (old.sampled, old.adjusted, old.represented(1.0)) == (0, 0.0, 10.0)


def test_a_summary_that_says_its_fallback_ratio_keeps_it() -> None:
    summary = ServiceSummary("shop", operations={"GET /": OperationStats(count=100, entries=100)})
    assert summary.assuming(0.25).represented_spans == 400
    captured = ServiceSummary.from_dict(replace(summary, fallback_ratio=1.0).to_dict())
    assert captured.assuming(0.25).represented_spans == 100  # captured unsampled: stays so


# -- measuring sampled windows ------------------------------------------------------------------

WINDOW_S = 1200.0  # long enough that a 25% sample's rate is within a few percent of the whole


def summary_of(chunks: list[SyntheticChunk]) -> ServiceSummary:
    summary = ServiceSummary(chunks[0].service)
    for chunk in chunks:
        summary.add_chunk(chunk)
    return summary


@pytest.fixture(scope="module")
def shop() -> tuple[EntropySimulator, SyntheticSystem]:
    sim = EntropySimulator(11)
    return sim, sim.system("shop")


def window(
    shop: tuple[EntropySimulator, SyntheticSystem],
    seed: int,
    faults: Faults | None = None,
    keep: float = 1.0,
    *,
    say_threshold: bool = True,
    window_s: float = WINDOW_S,
) -> ServiceSummary:
    sim, system = shop
    chunks = list(sim.chunks(system, faults or Faults(), seed, window_s=window_s))
    if keep < 1:
        chunks = sample_traces(chunks, keep, say_threshold=say_threshold)
    return summary_of(chunks)


def test_the_sampler_keeps_whole_traces_at_its_probability(shop: Any) -> None:
    sim, system = shop
    chunks = list(sim.chunks(system, Faults(), 1, window_s=WINDOW_S))
    kept = sample_traces(chunks, 0.25)
    spans = sum(len(c) for c in chunks)
    assert sum(len(c) for c in kept) / spans == pytest.approx(0.25, abs=0.01)
    whole = {h for c in chunks for h in c.trace_hashes.tolist()}
    traces = {h for c in kept for h in c.trace_hashes.tolist()}
    assert len(traces) / len(whole) == pytest.approx(0.25, abs=0.01)
    # Every span of a kept trace is kept: as many spans per trace as before.
    spans_per_trace = spans / len(whole)
    assert sum(len(c) for c in kept) / len(traces) == pytest.approx(spans_per_trace, rel=0.02)


def test_a_25_percent_sample_measures_low_against_an_unsampled_baseline(shop: Any) -> None:
    baseline = window(shop, 1)
    whole, sampled = window(shop, 2), window(shop, 2, keep=0.25)
    objectives = shop[0].objectives(shop[1])
    result = measure(sampled, baseline, objectives=objectives)
    assert result.entropy_level == "low", render_text(result)
    assert result.drift_indicators == []
    assert result.sampling_ratio == pytest.approx(0.25)
    assert result.span_count == pytest.approx(0.25 * whole.span_count, rel=0.03)
    assert result.represented_spans == pytest.approx(whole.span_count, rel=0.03)
    # The estimated request rate is the whole window's, within a few percent.
    estimated, actual = Requests.of(sampled, baseline), Requests.of(whole, baseline)
    assert estimated.current_rate == pytest.approx(actual.current_rate, rel=0.03)
    assert result.health is not None
    assert result.health.throughput_ratio == pytest.approx(actual.ratio, rel=0.03)
    assert "a 0.25 sample of ~" in render_text(result)


def test_an_unsampled_window_measures_low_against_a_25_percent_sampled_baseline(
    shop: Any,
) -> None:
    baseline, current = window(shop, 1, keep=0.25), window(shop, 2)
    result = measure(current, baseline, objectives=shop[0].objectives(shop[1]))
    assert result.entropy_level == "low", render_text(result)
    assert result.sampling_ratio == 1.0
    assert result.health is not None
    assert result.health.throughput_ratio == pytest.approx(1.0, abs=0.05)


def test_without_the_threshold_a_sample_reads_as_a_throughput_drop(shop: Any) -> None:
    """What the sampler did to the counts before: a 25% sample read as a 75% drop."""
    baseline = window(shop, 1)
    blind = window(shop, 2, keep=0.25, say_threshold=False)
    drop = throughput_drop(blind, baseline)
    assert drop is not None and drop.evidence["ratio"] == pytest.approx(0.25, abs=0.02)


def test_a_real_halving_is_found_in_a_25_percent_sample_on_the_samples_evidence(
    shop: Any,
) -> None:
    baseline = window(shop, 1)
    halved = Faults(throughput_ratio=0.5)
    whole, sampled = window(shop, 3, halved), window(shop, 3, halved, keep=0.25)
    seen, found = throughput_drop(whole, baseline), throughput_drop(sampled, baseline)
    assert seen is not None and found is not None
    assert found.evidence["ratio"] == pytest.approx(seen.evidence["ratio"], rel=0.05)
    assert found.evidence["requests_per_s"] == pytest.approx(
        seen.evidence["requests_per_s"], rel=0.05
    )
    assert found.evidence["expected_requests"] == seen.evidence["expected_requests"]
    assert found.evidence["sampling_ratio"] == pytest.approx(0.25)
    assert found.evidence["sampled_requests"] == Requests.of(sampled, baseline).current
    # A quarter of the spans is weaker evidence: the test runs on them, not on 4x as many.
    assert Z_CRITICAL <= -found.evidence["z"] < 0.75 * -seen.evidence["z"]
    result = measure(sampled, baseline, objectives=shop[0].objectives(shop[1]))
    assert "throughput_drop" in {i.type for i in result.drift_indicators}


def charter_spec(**telemetry: Any) -> RegenerationCharterSpec:
    return RegenerationCharterSpec.model_validate(
        {
            "systemId": "shop",
            "systemType": "web-service",
            "target": {"workloads": [{"name": "shop"}]},
            "telemetry": {"serviceName": "shop", **telemetry},
        }
    )


class ConfigMaps:
    """Just enough of ``Rest`` for a charter's captured baseline: ConfigMaps by name."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}

    def metadata(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        obj = self.objects.get((kind, namespace, name))
        return None if obj is None else {"metadata": obj["metadata"]}

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((kind, namespace, name))

    def create(self, kind: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        body["metadata"] |= {"uid": "u-1", "resourceVersion": "1"}
        self.objects[(kind, namespace, body["metadata"]["name"])] = body
        return body


def test_spans_without_a_threshold_count_at_the_charters_sampling_ratio(shop: Any) -> None:
    """A baseline captured before the sampler came keeps the ratio then (1): setting the
    charter's samplingRatio with the sampler scales the window up, not the baseline too."""
    config_maps = ConfigMaps()
    before = ClusterTarget(cast(Rest, config_maps), "sampling", "shop", charter_spec())
    before.current = lambda: window(shop, 1)  # type: ignore[method-assign]
    with pytest.raises(BaselinePending, match="captured the baseline"):
        before.baseline()
    after = ClusterTarget(
        cast(Rest, config_maps), "sampling", "shop", charter_spec(samplingRatio=0.25)
    )
    assert after.settings.sampling_ratio == 0.25
    baseline = after.baseline()
    assert baseline.fallback_ratio == 1.0
    blind = window(shop, 2, keep=0.25, say_threshold=False)
    objectives = shop[0].objectives(shop[1])
    result = measure(blind, baseline, objectives=objectives, sampling_ratio=0.25)
    assert result.entropy_level == "low", render_text(result)
    assert result.sampling_ratio == 0.25
    assert result.represented_spans == 4 * result.span_count
    unaware = measure(blind, baseline, objectives=objectives)
    assert "throughput_drop" in {i.type for i in unaware.drift_indicators}


def test_a_threshold_in_the_spans_wins_over_the_charters_ratio(shop: Any) -> None:
    baseline = window(shop, 1)
    sampled = window(shop, 2, keep=0.5)
    result = measure(sampled, baseline, sampling_ratio=0.1)
    assert result.sampling_ratio == pytest.approx(0.5)


def test_an_error_rate_increase_is_found_in_a_25_percent_sample(shop: Any) -> None:
    baseline = window(shop, 1)
    failing = window(shop, 4, Faults(error_rate=0.08), keep=0.25)
    found = error_rate_increase(failing, baseline)
    assert found is not None
    assert found.evidence["error_rate"] == pytest.approx(0.08, abs=0.01)
    assert found.evidence["spans"] == failing.span_count  # the sample's n, not 4x it
    healthy = window(shop, 5, keep=0.25)
    assert error_rate_increase(healthy, baseline) is None


def service(count: int, errors: int, adjusted: float = 0.0) -> ServiceSummary:
    op = OperationStats(kind=2, count=count, entries=count, errors=errors)
    op.add_sampled(count if adjusted else 0, adjusted, count if adjusted else 0, adjusted)
    return ServiceSummary("shop", operations={"GET /": op}, window_s=60.0)


def test_a_small_sample_is_judged_on_its_own_n_not_the_spans_it_stands_for() -> None:
    """2% errors in 200 sampled spans against 0.5% in 20,000 is not yet significant: 800 real
    spans with as many errors would be, but only 200 were seen."""
    baseline = service(20_000, 100)
    sample = service(200, 4, adjusted=800.0)
    inflated = service(800, 16)  # the same sample, counted as the spans it stands for
    assert two_proportion_z(100, 20_000, 4, 200) < Z_CRITICAL
    assert two_proportion_z(100, 20_000, 16, 800) >= Z_CRITICAL
    assert error_rate_increase(sample, baseline) is None
    assert error_rate_increase(inflated, baseline) is not None
    assert sample.represented_spans == inflated.span_count


def test_a_silent_window_behind_a_sampler_expects_only_the_sample(shop: Any) -> None:
    """With no spans to say their probability, a window is taken as sampled like its baseline:
    silence is judged against the sampled count it would have had."""
    baseline = window(shop, 1, keep=0.25, window_s=60.0)
    silent = ServiceSummary("shop", window_s=60.0)
    requests = Requests.of(silent, baseline)
    assert requests.current_p == pytest.approx(0.25)
    drop = throughput_drop(silent, baseline)
    assert drop is not None and drop.evidence["silent"]
    assert drop.evidence["expected_requests"] == pytest.approx(
        baseline.represented_entries / baseline.duration_s * 60.0, rel=0.01
    )


def test_the_wire_formats_give_the_sampled_summary_the_chunks_give(shop: Any) -> None:
    sim, system = shop
    chunks = sample_traces(list(sim.chunks(system, Faults(), 6, window_s=30.0)), 0.25)
    direct = summary_of(chunks)
    as_json = summarise([(json.dumps(to_otlp_json(chunks)).encode(), "application/json")])
    as_pb = summarise([(to_otlp_protobuf(chunks), "application/x-protobuf")])
    for decoded in (as_json["shop"], as_pb["shop"]):
        assert decoded.span_count == direct.span_count
        assert decoded.represented_spans == direct.represented_spans
        assert decoded.sampling_ratio() == pytest.approx(0.25)
    assert np.isclose(as_pb["shop"].represented_entries, direct.represented_entries)


def test_computed_thresholds_resample_a_sampled_baseline_as_sampled(shop: Any) -> None:
    baseline = window(shop, 1, keep=0.25, window_s=120.0)
    resampled = ThresholdCalculator(DEFAULT_THRESHOLDS, 0.5).resample(
        baseline, np.random.default_rng(0)
    )
    assert resampled.span_count != baseline.span_count
    assert resampled.sampling_ratio() == pytest.approx(0.25, rel=0.01)
