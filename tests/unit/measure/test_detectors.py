"""Each drift detector fires on its own fault, with evidence, and stays quiet on noise."""

from __future__ import annotations

import pytest

from weavergen.domain import drift
from weavergen.domain.measure import measure
from weavergen.domain.simulator import EntropySimulator, Faults, SyntheticSystem
from weavergen.domain.summary import ServiceSummary

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
