"""The OTLP/gRPC receiver on a real socket, fed by the OpenTelemetry SDK's own gRPC exporter:
the HTTP receiver's path (one decoder, one store, its counters), its token and its limits; and
requests shaped as a Collector's load_balancing exporter sends them (a resource per trace)."""

from __future__ import annotations

import asyncio
import gzip
import urllib.request
from collections.abc import Awaitable, Callable, Sequence

import grpc
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CollectorRegistry

from tests.unit.measure.test_receiver import PB, SPANS
from weavergen.domain.measure.otlp import decode_protobuf
from weavergen.telemetry import metrics
from weavergen.telemetry.otlp_grpc import SERVICE, serve_grpc
from weavergen.telemetry.receiver import ReceiverConfig, build_app
from weavergen.telemetry.receiver import serve as serve_http
from weavergen.telemetry.windows import WindowStore

Check = Callable[[int, WindowStore], Awaitable[None]]


def serve(check: Check, config: ReceiverConfig | None = None) -> WindowStore:
    store = WindowStore(slot_seconds=5)

    async def main() -> None:
        server, port = await serve_grpc(store, config or ReceiverConfig(), port=0)
        try:
            await check(port, store)
        finally:
            await server.stop(None)

    asyncio.run(main())
    return store


def sdk_spans(service: str, count: int) -> Sequence[ReadableSpan]:
    """Spans as an instrumented service's SDK records them: server spans, some failed."""
    recorded = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(recorded))
    tracer = provider.get_tracer("checkout.http")
    for i in range(count):
        with tracer.start_as_current_span(
            "GET /cart", kind=SpanKind.SERVER, attributes={"http.request.method": "GET"}
        ) as span:
            if i % 5 == 0:
                span.set_status(Status(StatusCode.ERROR))
    return recorded.get_finished_spans()


def export(
    port: int,
    spans: Sequence[ReadableSpan],
    *,
    token: str | None = None,
    compression: grpc.Compression | None = None,
) -> SpanExportResult:
    """Send with the SDK's OTLP/gRPC exporter, as an application configured for gRPC does."""
    exporter = OTLPSpanExporter(
        endpoint=f"127.0.0.1:{port}",
        insecure=True,
        headers={"authorization": f"Bearer {token}"} if token else None,
        compression=compression,
        timeout=10,
    )
    try:
        return exporter.export(spans)
    finally:
        exporter.shutdown()


def raw_export(
    port: int, body: bytes, compression: grpc.Compression | None = None
) -> ExportTraceServiceResponse | grpc.RpcError:
    """``TraceService/Export`` with ``body`` as it is: the answer, or the gRPC error."""
    with grpc.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", -1)]
    ) as channel:
        call = channel.unary_unary(f"/{SERVICE}/Export")
        try:
            answer = call(body, compression=compression, timeout=30)
        except grpc.RpcError as err:
            return err
    return ExportTraceServiceResponse.FromString(answer)


def test_the_sdk_grpc_exporter_is_received_plain_and_gzipped() -> None:
    spans = sdk_spans("checkout", 40)

    async def check(port: int, store: WindowStore) -> None:
        assert await asyncio.to_thread(export, port, spans) == SpanExportResult.SUCCESS
        gzipped = await asyncio.to_thread(export, port, spans, compression=grpc.Compression.Gzip)
        assert gzipped == SpanExportResult.SUCCESS
        window = store.window("checkout", 60)
        assert window.span_count == 80
        assert window.error_count == 16

    store = serve(check)
    assert (store.counters.requests, store.counters.rejected_requests) == (2, 0)
    registry = CollectorRegistry()
    metrics.register_receiver(store, registry)
    exposition = metrics.exposition(registry).decode()
    assert "weavergen_spans_received_total 80.0" in exposition
    assert 'weavergen_receiver_requests_total{result="accepted"} 2.0' in exposition


def test_grpc_and_http_summarise_the_same_bytes_the_same_way() -> None:
    """One decoder behind both: the summary of a payload does not depend on the transport."""

    async def check(port: int, store: WindowStore) -> None:
        answer = await asyncio.to_thread(raw_export, port, PB)
        assert isinstance(answer, ExportTraceServiceResponse)
        assert not answer.HasField("partial_success")
        over_http = WindowStore(slot_seconds=5)
        runner, http_port = await serve_http(build_app(over_http), port=0)
        try:
            await asyncio.to_thread(_post, http_port, PB)
        finally:
            await runner.cleanup()
        by_grpc, by_http = store.window("shop", 60), over_http.window("shop", 60)
        assert by_grpc.span_count == by_http.span_count == SPANS
        assert _comparable(by_grpc.to_dict()) == _comparable(by_http.to_dict())

    serve(check)


def _post(port: int, body: bytes) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/traces",
        data=body,
        headers={"Content-Type": "application/x-protobuf"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def _comparable(summary: dict[str, object]) -> dict[str, object]:
    """A summary without what depends on when it was taken (its window's length)."""
    return {k: v for k, v in summary.items() if k != "windowSeconds"}


def test_a_token_is_required_when_configured() -> None:
    spans = sdk_spans("checkout", 5)

    async def check(port: int, store: WindowStore) -> None:
        assert await asyncio.to_thread(export, port, spans) == SpanExportResult.FAILURE
        wrong = await asyncio.to_thread(export, port, spans, token="guess")
        assert wrong == SpanExportResult.FAILURE
        assert await asyncio.to_thread(export, port, spans, token="s3cret") == (
            SpanExportResult.SUCCESS
        )
        assert store.services() == ["checkout"] and store.counters.spans_accepted == 5

    store = serve(check, ReceiverConfig(token="s3cret"))
    assert (store.counters.requests, store.counters.rejected_requests) == (3, 2)


def test_bad_and_oversized_requests_are_refused_with_a_code_and_a_reason() -> None:
    limit = 1024 * 1024
    bomb = b"\x00" * (8 * limit)  # 8 MiB of zeros: 8 KiB gzipped

    async def check(port: int, store: WindowStore) -> None:
        garbage = await asyncio.to_thread(raw_export, port, b"\xff\xff\xff")
        assert isinstance(garbage, grpc.RpcError)
        assert garbage.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "invalid OTLP/protobuf" in (garbage.details() or "")
        for compression in (grpc.Compression.Gzip, None):
            refused = await asyncio.to_thread(raw_export, port, bomb, compression)
            assert isinstance(refused, grpc.RpcError)
            assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert len(gzip.compress(bomb)) < limit
        assert store.services() == []

    store = serve(check, ReceiverConfig(max_decompressed_bytes=limit))
    assert store.counters.rejected_requests == 1  # gRPC refuses oversized ones before us


def per_trace(body: bytes) -> bytes:
    """The request as a Collector's load_balancing exporter forwards it: a resource (and a
    scope) of its own for every trace."""
    request, out = ExportTraceServiceRequest.FromString(body), ExportTraceServiceRequest()
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            traces: dict[bytes, list[Span]] = {}
            for span in scope_spans.spans:
                traces.setdefault(span.trace_id, []).append(span)
            for spans in traces.values():
                resource = out.resource_spans.add()
                resource.resource.CopyFrom(resource_spans.resource)
                scope = resource.scope_spans.add()
                scope.scope.CopyFrom(scope_spans.scope)
                scope.spans.extend(spans)
    return bytes(out.SerializeToString())


def test_a_resource_per_trace_is_decoded_as_one_chunk_per_service() -> None:
    """A chunk costs its fixed share of decoding and summarising: a request from the
    load_balancing exporter (hundreds of resources of two spans) is gathered per service."""
    split = per_trace(PB)
    assert len(ExportTraceServiceRequest.FromString(split).resource_spans) > 50
    [chunk] = decode_protobuf(split)
    assert (chunk.service, len(chunk)) == ("shop", SPANS)
    whole, by_trace = WindowStore(), WindowStore()
    whole.add(list(decode_protobuf(PB)))
    by_trace.add([chunk])
    assert _comparable(by_trace.window("shop", 60).to_dict()) == _comparable(
        whole.window("shop", 60).to_dict()
    )
