"""The operator's own traces: one trace per cycle, a root ``dmedi_cycle`` and a span per phase.

A cycle outlives any one operator process and its phases run in other processes (Jobs), so no
span is held open across reconciles. Ids are derived instead: the trace id comes from the cycle's
uid and the root span id from the trace id, so a phase span recorded by a Job (through W3C
``TRACEPARENT``) or by the operator joins the same trace, and the root span is recorded once, at
the end, with the cycle's start time.

Export follows the standard ``OTEL_*`` variables: nothing is set up, and nothing exported, unless
an OTLP endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``..._TRACES_ENDPOINT``) is given, or an
exporter is passed, such as ``OtlpJsonFileExporter`` (``regeneration simulate --spans-out``).
"""

from __future__ import annotations

import contextvars
import json
import os
import random
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from weavergen.domain.measure.spans import otlp_json

ROOT_SPAN = "dmedi_cycle"
SCOPE = "weavergen.regeneration"
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
AttributeValue = str | bool | int | float

_preset: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar(
    "weavergen_preset_ids", default=None
)
_provider: TracerProvider | None = None


class _DerivedIds(IdGenerator):
    """Random ids, except for a root span whose ids were derived from its cycle."""

    def generate_trace_id(self) -> int:
        preset = _preset.get()
        return preset[0] if preset else random.getrandbits(128)

    def generate_span_id(self) -> int:
        preset = _preset.get()
        return preset[1] if preset else random.getrandbits(64)


def root_span_id(trace_id: str) -> str:
    """The root span id of a cycle's trace (hex), derived from its trace id."""
    return trace_id[:16]


def traceparent(trace_id: str) -> str:
    """The W3C ``traceparent`` of a cycle's root span: the parent of every phase span."""
    return f"00-{trace_id}-{root_span_id(trace_id)}-01"


class OtlpJsonFileExporter(SpanExporter):
    """Each export batch appended to a file as one OTLP/JSON line (the Collector file format)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not spans:
            return SpanExportResult.SUCCESS
        line = json.dumps(otlp_json(encode_spans(spans).SerializeToString()), separators=(",", ":"))
        try:
            with self.path.open("a", encoding="utf-8") as file:
                file.write(line + "\n")
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS


def exporter_from_environment(env: Mapping[str, str] = os.environ) -> SpanExporter | None:
    """The OTLP exporter the ``OTEL_*`` variables ask for, or None when they ask for none."""
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    if env.get("OTEL_TRACES_EXPORTER", "otlp").lower() == "none":
        return None
    if not any(env.get(name) for name in ENDPOINT_VARIABLES):
        return None
    protocol = env.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    )
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter as GrpcExporter,
        )

        return GrpcExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter as HttpExporter,
    )

    return HttpExporter()


def configure(service_name: str, exporter: SpanExporter | None = None) -> bool:
    """Install the tracer provider once per process; returns whether spans are exported.

    The exporter is the one the ``OTEL_*`` variables describe unless one is given.
    """
    global _provider  # noqa: PLW0603 - one provider per process, like the SDK's own global
    if _provider is not None:
        return True
    exporter = exporter or exporter_from_environment()
    if exporter is None:
        return False
    resource = Resource.create(
        {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
    )
    _provider = TracerProvider(resource=resource, id_generator=_DerivedIds())
    _provider.add_span_processor(BatchSpanProcessor(exporter))
    return True


def flush(timeout_millis: int = 10_000) -> None:
    """Send what is buffered (a phase Job calls this before it exits)."""
    if _provider is not None:
        _provider.force_flush(timeout_millis)


def shutdown() -> None:
    global _provider  # noqa: PLW0603
    if _provider is not None:
        _provider.shutdown()
        _provider = None


def _tracer() -> trace.Tracer | None:
    return _provider.get_tracer(SCOPE) if _provider is not None else None


def parent_context(trace_parent: str | None) -> Context | None:
    """The context a ``traceparent`` header value names, or None for a missing/invalid one."""
    if not trace_parent:
        return None
    context = TraceContextTextMapPropagator().extract({"traceparent": trace_parent})
    span_context = trace.get_current_span(context).get_span_context()
    return context if span_context.is_valid else None


def record_span(
    name: str,
    *,
    parent: Context | None,
    start_ns: int,
    end_ns: int,
    attributes: Mapping[str, AttributeValue],
    error: str | None = None,
    events: Mapping[str, Mapping[str, AttributeValue]] | None = None,
) -> None:
    """Record a finished span after the fact (no-op when tracing is off)."""
    tracer = _tracer()
    if tracer is None:
        return
    span = tracer.start_span(
        name, context=parent, kind=SpanKind.INTERNAL, start_time=start_ns, attributes=attributes
    )
    for event, event_attributes in (events or {}).items():
        span.add_event(event, event_attributes, timestamp=end_ns)
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, error))
    span.end(end_time=end_ns)


@contextmanager
def _ids(trace_id: str, span_id: str) -> Iterator[None]:
    token = _preset.set((int(trace_id, 16), int(span_id, 16)))
    try:
        yield
    finally:
        _preset.reset(token)


def record_cycle(
    trace_id: str,
    *,
    start_ns: int,
    end_ns: int,
    attributes: Mapping[str, AttributeValue],
    error: str | None = None,
    rollback: Mapping[str, AttributeValue] | None = None,
) -> None:
    """Record a finished cycle's root span with the ids its phase spans already point to."""
    with _ids(trace_id, root_span_id(trace_id)):
        record_span(
            ROOT_SPAN,
            parent=Context(),
            start_ns=start_ns,
            end_ns=end_ns,
            attributes=attributes,
            error=error,
            events={"rollback": rollback} if rollback is not None else None,
        )


def attributes_of(values: Mapping[str, Any]) -> dict[str, AttributeValue]:
    """Only the values a span attribute can hold; None and nested values are left out."""
    return {k: v for k, v in values.items() if isinstance(v, (str, bool, int, float))}


def cycle_attributes(
    identity: Mapping[str, str],
    outcome: str,
    *,
    strategy: str | None,
    entropy: tuple[float | None, float | None],
    level: tuple[str | None, str | None],
    health: tuple[float | None, float | None],
) -> dict[str, AttributeValue]:
    """A ``dmedi_cycle`` root span's attributes: whose cycle, its outcome, and (before, after)."""
    return attributes_of(
        {
            **identity,
            "weavergen.cycle.outcome": outcome,
            "weavergen.entropy.before": entropy[0],
            "weavergen.entropy.after": entropy[1],
            "weavergen.entropy.level.before": level[0],
            "weavergen.entropy.level.after": level[1],
            "weavergen.health.before": health[0],
            "weavergen.health.after": health[1],
            "weavergen.strategy": strategy,
        }
    )


def rollback_attributes(reason: str, restored_objects: int) -> dict[str, AttributeValue]:
    """The attributes of a root span's ``rollback`` event."""
    return {
        "weavergen.rollback.reason": reason,
        "weavergen.rollback.restored_objects": restored_objects,
    }
