"""Each drift detector fires on its own fault, with evidence, and stays quiet on noise."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

from weavergen.domain.measure import drift
from weavergen.domain.measure.measure import measure, summarise
from weavergen.domain.measure.otlp import Attribute
from weavergen.domain.measure.sketch import stable_hash64
from weavergen.domain.measure.summary import ServiceSummary
from weavergen.domain.simulation.simulator import (
    EntropySimulator,
    Faults,
    SyntheticChunk,
    SyntheticSystem,
    to_otlp_json,
)

FAULTS = {
    "error_rate_increase": Faults(error_rate=0.2),
    "latency_degradation": Faults(latency_factor=2.5),
    "throughput_drop": Faults(throughput_ratio=0.3),
    "retry_storm": Faults(retry_share=0.3),
    "semantic_drift": Faults(renamed=("http.response.status_code",)),
    "attribute_cardinality_explosion": Faults(cardinality_attribute="app.region"),
}


def summaries(
    faults: Faults, seed: int = 1
) -> tuple[ServiceSummary, ServiceSummary, SyntheticSystem]:
    sim = EntropySimulator(seed)
    system = sim.system("svc")
    return sim.summary(system, Faults(), 10), sim.summary(system, faults, 11), system


@pytest.mark.parametrize("indicator", list(FAULTS))
def test_detector_fires_on_its_fault_alone(indicator: str) -> None:
    baseline, current, _ = summaries(FAULTS[indicator])
    found = {i.type: i for i in drift.detect(current, baseline)}
    assert set(found) == {indicator}
    assert 0 < found[indicator].severity <= 1
    assert found[indicator].evidence


def test_span_mix_shift_fires_when_one_operation_dominates() -> None:
    sim = EntropySimulator(2)
    system = sim.system("svc")
    faults = Faults(mix_operation=system.operations[-1].name, mix_factor=10)
    found = drift.detect(sim.summary(system, faults, 11), sim.summary(system, Faults(), 10))
    assert [i.type for i in found] == ["span_mix_shift"]
    assert found[0].evidence["most_moved"][0] == system.operations[-1].name


@pytest.mark.parametrize("seed", range(20))
def test_detectors_stay_quiet_on_ordinary_noise(seed: int) -> None:
    baseline, current, _ = summaries(Faults(noise=0.05), seed)
    assert drift.detect(current, baseline) == []


def test_type_change_is_semantic_drift_and_a_type_mismatch() -> None:
    baseline, current, _ = summaries(Faults(mistyped=("http.response.status_code",)))
    result = measure(current, baseline)
    (indicator,) = result.drift_indicators
    assert indicator.type == "semantic_drift"
    assert any(c["change"] == "type" for c in indicator.evidence["examples"])
    assert [(f.code, f.attribute) for f in result.validation_errors] == [
        ("type_mismatch", "http.response.status_code")
    ]


def test_small_error_blip_on_a_few_thousand_spans_raises_nothing() -> None:
    """0.5% -> 0.8% errors over ~3000 spans: significant neither statistically nor practically."""
    baseline, current = ServiceSummary("svc"), ServiceSummary("svc")
    for summary, errors in ((baseline, 15), (current, 24)):
        op = summary._operation("GET /")
        op.count, op.errors = 3000, errors
    assert drift.error_rate_increase(current, baseline) is None


def test_large_samples_do_not_turn_tiny_effects_into_alarms() -> None:
    """With a million spans 0.5% -> 0.6% is 'significant', but below the minimum effect size."""
    baseline, current = ServiceSummary("svc"), ServiceSummary("svc")
    for summary, errors in ((baseline, 5000), (current, 6000)):
        op = summary._operation("GET /")
        op.count, op.errors = 1_000_000, errors
    assert drift.two_proportion_z(5000, 1e6, 6000, 1e6) > drift.Z_CRITICAL
    assert drift.error_rate_increase(current, baseline) is None


# -- attribute drift: new keys, their cardinality, value types on a share of spans --------------

# edit(operation, span index, uniform draw, attributes) -> the span's attributes in the window.
Edit = Callable[[str, int, float, list[Attribute]], list[Attribute]]


def window_chunks(
    edit: Edit | None, seed: int, window_s: float | None = None
) -> list[SyntheticChunk]:
    """The spans of the simulated system (seed 1) in one window, each span's attributes edited."""
    sim = EntropySimulator(1)
    system = sim.system("svc")
    draws = np.random.default_rng(seed)
    chunks = list(sim.chunks(system, Faults(), seed, window_s))
    return [c if edit is None else _edited(c, edit, draws.random(len(c))) for c in chunks]


def _edited(chunk: SyntheticChunk, edit: Edit, draws: np.ndarray) -> SyntheticChunk:
    original = chunk.attributes
    operation = chunk.name_table[0]
    return replace(chunk, attributes=lambda i: edit(operation, i, float(draws[i]), original(i)))


def edited(
    current: Edit | None, baseline: Edit | None = None
) -> tuple[ServiceSummary, ServiceSummary]:
    """(baseline, current) summaries: two windows of one system with their own edits."""
    out = []
    for edit, seed in ((baseline, 10), (current, 11)):
        summary = ServiceSummary("svc")
        for chunk in window_chunks(edit, seed):
            summary.add_chunk(chunk)
        out.append(summary)
    return out[0], out[1]


def with_key(key: str, value: Callable[[str, int], object], share: float = 1.0) -> Edit:
    """Adds ``key`` (a string) to ``share`` of every operation's spans."""

    def edit(op: str, i: int, draw: float, attrs: list[Attribute]) -> list[Attribute]:
        return [*attrs, (key, "string", str(value(op, i)))] if draw < share else attrs

    return edit


def retyped(key: str, kind: str, share: float) -> Edit:
    """Sends ``key`` as ``kind`` (its value as a string, or an int) on ``share`` of the spans."""

    def edit(op: str, i: int, draw: float, attrs: list[Attribute]) -> list[Attribute]:
        if draw >= share:
            return attrs
        convert = str if kind == "string" else lambda v: len(str(v))
        return [(k, kind, convert(v)) if k == key else (k, t, v) for k, t, v in attrs]

    return edit


def unique(op: str, i: int) -> str:
    return f"{op}-{i}"


def test_a_new_key_with_a_value_per_span_is_a_cardinality_explosion() -> None:
    baseline, current = edited(with_key("session.id", unique))
    indicator = drift.attribute_cardinality_explosion(current, baseline)
    assert indicator is not None and indicator.severity > 0.5
    evidence = indicator.evidence
    assert evidence["attribute"] == "session.id"
    assert evidence["new_key"] is True
    assert evidence["baseline_distinct"] == 0
    assert evidence["distinct"] >= drift.MIN_NEW_KEY_DISTINCT
    assert evidence["uniqueness"] > 0.8
    assert evidence["inspected"] == current.operations[evidence["operation"]].inspected


def test_a_new_unbounded_key_on_most_spans_of_one_new_operation_fires_too() -> None:
    def on_checkout(op: str, i: int, draw: float, attrs: list[Attribute]) -> list[Attribute]:
        return [*attrs, ("enduser.pseudo.id", "string", f"u{i}")] if draw < 0.7 else attrs

    baseline, _ = edited(None)
    current = ServiceSummary("svc")
    current.add_chunk(replace(window_chunks(on_checkout, 11)[0], name_table=["POST /checkout"]))
    indicator = drift.attribute_cardinality_explosion(current, baseline)
    assert indicator is not None
    assert (indicator.evidence["operation"], indicator.evidence["attribute"]) == (
        "POST /checkout",
        "enduser.pseudo.id",
    )


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(
            with_key("app.tier", lambda op, i: ("gold", "silver", "free")[i % 3]), id="enum"
        ),
        pytest.param(with_key("app.product", lambda op, i: f"sku-{i % 100}"), id="100-values"),
        pytest.param(with_key("session.id", unique, share=0.3), id="unique-on-a-minority"),
    ],
)
def test_a_new_key_that_is_not_unbounded_on_most_spans_is_no_explosion(key: Edit) -> None:
    baseline, current = edited(key)
    assert drift.attribute_cardinality_explosion(current, baseline) is None


def test_a_new_unique_key_on_too_few_spans_is_no_explosion() -> None:
    sim = EntropySimulator(1)
    system = sim.system("svc")
    baseline = sim.summary(system, Faults(), 10)
    current = ServiceSummary("svc")
    for chunk in window_chunks(with_key("session.id", unique), 11, window_s=4):
        current.add_chunk(chunk)
    largest = max(op.inspected for op in current.operations.values())
    assert drift.MIN_DISTINCT < largest < drift.MIN_NEW_KEY_DISTINCT
    assert drift.attribute_cardinality_explosion(current, baseline) is None


def test_an_id_that_was_unique_in_the_baseline_already_is_no_explosion() -> None:
    trace_like = with_key("app.request.id", unique)
    baseline, current = edited(trace_like, baseline=trace_like)
    assert drift.attribute_cardinality_explosion(current, baseline) is None

    def elsewhere(op: str, i: int, draw: float, attrs: list[Attribute]) -> list[Attribute]:
        """The id only on the first operation in the baseline, on every operation now."""
        return trace_like(op, i, draw, attrs) if op == "GET /api/v1/op0" else attrs

    baseline, current = edited(trace_like, baseline=elsewhere)
    assert drift.attribute_cardinality_explosion(current, baseline) is None


@pytest.mark.parametrize("share", [0.2, 0.4])
def test_a_type_change_on_a_minority_of_spans_is_semantic_drift_and_a_type_mismatch(
    share: float,
) -> None:
    """A string http.response.status_code on some spans, sent as OTLP/JSON stringValue."""
    payloads = []
    for edit, seed in ((None, 10), (retyped("http.response.status_code", "string", share), 11)):
        document = to_otlp_json(window_chunks(edit, seed))
        payloads.append(summarise([(json.dumps(document).encode(), "application/json")])["svc"])
    baseline, current = payloads
    result = measure(current, baseline)
    assert [i.type for i in result.drift_indicators] == ["semantic_drift"]
    examples = result.drift_indicators[0].evidence["examples"]
    assert {e["operation"] for e in examples} == {"GET /api/v1/op0", "GET /api/v1/op4"}
    for example in examples:
        assert example["attribute"] == "http.response.status_code"
        assert (example["change"], example["baseline_type"], example["type"]) == (
            "type",
            "int",
            "string",
        )
        assert example["share"] == pytest.approx(share, abs=0.08)
        assert example["z"] >= drift.Z_CRITICAL
    (finding,) = result.validation_errors
    assert (finding.code, finding.attribute) == ("type_mismatch", "http.response.status_code")
    spans = sum(op.count for name, op in current.operations.items() if name.startswith("GET"))
    assert finding.count == pytest.approx(share * spans, rel=0.35)
    assert "type int -> string" in result.drift_indicators[0].summary()


def test_an_application_attribute_changing_type_is_semantic_drift_without_a_finding() -> None:
    baseline, current = edited(retyped("app.region", "int", 0.3))
    result = measure(current, baseline)
    assert [i.type for i in result.drift_indicators] == ["semantic_drift"]
    examples = result.drift_indicators[0].evidence["examples"]
    assert {(e["attribute"], e["baseline_type"], e["type"]) for e in examples} == {
        ("app.region", "string", "int")
    }
    assert result.validation_errors == []


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(None, retyped("app.region", "int", 0.01), id="stray-values"),
        pytest.param(
            retyped("app.region", "int", 0.1), retyped("app.region", "int", 0.13), id="mix-wobbles"
        ),
        pytest.param(
            retyped("app.region", "int", 0.3), retyped("app.region", "int", 0.3), id="same-mix"
        ),
    ],
)
def test_type_noise_and_a_mix_the_baseline_had_are_no_drift(
    before: Edit | None, after: Edit
) -> None:
    baseline, current = edited(after, baseline=before)
    assert drift.semantic_drift(current, baseline) is None


def test_an_attribute_set_more_often_keeps_its_mix_of_types() -> None:
    """Presence 40% -> 90% of a key that is an int on a third of its spans: no type change."""

    def mixed(share: float) -> Edit:
        def edit(op: str, i: int, draw: float, attrs: list[Attribute]) -> list[Attribute]:
            if draw >= share:
                return attrs
            value: Attribute = (
                ("app.cart", "int", i) if draw < share / 3 else ("app.cart", "string", "c")
            )
            return [*attrs, value]

        return edit

    baseline, current = edited(mixed(0.9), baseline=mixed(0.4))
    assert drift.semantic_drift(current, baseline) is None


def test_a_latency_wobble_below_the_minimum_effect_raises_nothing_on_small_samples() -> None:
    """Operations of a few hundred spans each slowed by 1.15x (ordinary hour-to-hour change):
    the largest point-estimate p95 ratio among them passes 1.25x now and then; its confidence
    bound does not. A real 2x slowdown still fires on every one of the same systems."""
    fired = {1.15: 0, 2.0: 0}
    for seed in range(30):
        sim = EntropySimulator(1000 + seed)
        system = sim.system("svc")
        for factor in fired:
            current = sim.summary(system, Faults(latency_factor=factor), seed + 1, window_s=20)
            baseline = sim.summary(system, Faults(), seed, window_s=20)
            fired[factor] += any(
                i.type == "latency_degradation" for i in drift.detect(current, baseline)
            )
    assert fired == {1.15: 0, 2.0: 30}


def test_a_trace_sketch_misjudging_the_traces_raises_no_retry_storm_the_counts_deny() -> None:
    """Spans per trace come from a distinct-count sketch; spans per request are counted. When
    the requests say each one makes as many spans as before, the sketch alone raises nothing;
    when they say each makes twice as many, it is a retry storm."""

    def window(requests: int, calls_per_request: int, traces: int) -> ServiceSummary:
        summary = ServiceSummary("svc", start_ns=0, end_ns=60 * 10**9)
        server, client = summary._operation("GET /"), summary._operation("GET payments")
        server.kind, server.count, server.entries = 2, requests, requests
        client.kind, client.count = 3, requests * calls_per_request
        server.histogram[40], client.histogram[40] = server.count, client.count
        summary.traces.add_hashes(stable_hash64([f"trace-{i}" for i in range(traces)]))
        return summary

    baseline = window(1_000, 2, traces=1_000)
    misjudged = window(1_000, 2, traces=600)  # as if the sketch undercounted by 40%
    assert misjudged.spans_per_trace() >= 1.5 * baseline.spans_per_trace()
    assert drift.retry_storm(misjudged, baseline) is None
    storm = drift.retry_storm(window(1_000, 5, traces=1_000), baseline)
    assert storm is not None and storm.evidence["spans_per_trace"] >= 1.5 * 3
