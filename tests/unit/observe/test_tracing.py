"""Cycle traces: derived ids join spans from any process; export only when configured."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from weavergen.phases.cycle import phase_attributes
from weavergen.telemetry import tracing

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    assert tracing.configure("test", exporter)
    yield exporter
    tracing.shutdown()


def test_phase_spans_and_the_later_root_span_form_one_trace(
    exported: InMemorySpanExporter,
) -> None:
    parent = tracing.parent_context(tracing.traceparent(TRACE))
    for n, phase in enumerate(("define", "measure")):
        tracing.record_span(
            f"dmedi_{phase}",
            parent=parent,
            start_ns=1_000 + n,
            end_ns=2_000 + n,
            attributes={"weavergen.phase": phase},
            error="boom" if phase == "measure" else None,
        )
    tracing.record_cycle(
        TRACE,
        start_ns=500,
        end_ns=3_000,
        attributes={"weavergen.cycle.outcome": "RolledBack", "weavergen.entropy.before": 0.7},
        rollback={"weavergen.rollback.reason": "criteria not met"},
    )
    tracing.flush()
    spans = {s.name: s for s in exported.get_finished_spans()}
    root = spans[tracing.ROOT_SPAN]
    assert f"{root.context.trace_id:032x}" == TRACE
    assert f"{root.context.span_id:016x}" == tracing.root_span_id(TRACE)
    assert root.parent is None
    assert (root.start_time, root.end_time) == (500, 3_000)
    assert [e.name for e in root.events] == ["rollback"]
    for phase in ("dmedi_define", "dmedi_measure"):
        assert spans[phase].context.trace_id == root.context.trace_id
        assert spans[phase].parent is not None
        assert spans[phase].parent.span_id == root.context.span_id
    assert spans["dmedi_measure"].status.description == "boom"
    assert not spans["dmedi_define"].status.description


def test_later_spans_outside_a_cycle_get_random_ids(exported: InMemorySpanExporter) -> None:
    tracing.record_cycle(TRACE, start_ns=1, end_ns=2, attributes={})
    tracing.record_span("other", parent=None, start_ns=1, end_ns=2, attributes={})
    tracing.flush()
    other = next(s for s in exported.get_finished_spans() if s.name == "other")
    assert f"{other.context.trace_id:032x}" != TRACE


def test_nothing_is_recorded_without_a_provider() -> None:
    tracing.shutdown()
    tracing.record_cycle(TRACE, start_ns=1, end_ns=2, attributes={})  # no error, no export


@pytest.mark.parametrize(
    ("env", "exporter"),
    [
        ({}, None),
        ({"OTEL_SERVICE_NAME": "x"}, None),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"},
            "opentelemetry.exporter.otlp.proto.http.trace_exporter",
        ),
        (
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"},
            "opentelemetry.exporter.otlp.proto.http.trace_exporter",
        ),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
        ),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_TRACES_EXPORTER": "none"}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_SDK_DISABLED": "true"}, None),
    ],
)
def test_the_exporter_follows_the_standard_variables(
    env: dict[str, str], exporter: str | None
) -> None:
    found = tracing.exporter_from_environment(env)
    module = type(found).__module__ if found is not None else None
    assert module == exporter


def test_an_invalid_traceparent_gives_no_parent() -> None:
    assert tracing.parent_context(None) is None
    assert tracing.parent_context("00-zz-yy-01") is None
    assert tracing.parent_context(tracing.traceparent(TRACE)) is not None


def test_phase_spans_carry_entropy_health_and_strategy() -> None:
    measured = phase_attributes(
        {"measurement_before": {"entropy_score": 0.7, "entropy_level": "high", "health_score": 0.3}}
    )
    assert measured == {
        "weavergen.entropy.before": 0.7,
        "weavergen.entropy.level.before": "high",
        "weavergen.health.before": 0.3,
    }
    implemented = phase_attributes(
        {
            "implementation": {"outcome": "succeeded"},
            "measurement_after": {
                "entropy_score": 0.1,
                "entropy_level": "low",
                "health_score": 0.9,
            },
        }
    )
    assert implemented["weavergen.entropy.after"] == 0.1
    assert implemented["weavergen.implementation.outcome"] == "succeeded"
    assert phase_attributes({"chosen": {"strategy": "restart-rollout"}}) == {
        "weavergen.strategy": "restart-rollout"
    }
