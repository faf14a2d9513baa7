"""The OTLP/gRPC trace receiver: ``TraceService/Export``, beside the OTLP/HTTP one.

A Collector's loadbalancing exporter, which routes each service's spans to one operator shard,
speaks only OTLP/gRPC. One generic method handler takes the request's bytes as they arrived
(no request deserializer, no generated stubs) into the HTTP receiver's own path, ``ingest``:
one decoder, one window store, the same counters, the same limits and the same bearer token
(the ``authorization`` metadata). Refusals map to gRPC codes as the OTLP specification asks:
INVALID_ARGUMENT for a body that is not OTLP (not to be retried), UNAUTHENTICATED without the
token, RESOURCE_EXHAUSTED over the size limit.

gRPC decompresses a gzip request itself; its receive limit is the HTTP receiver's limit of a
decompressed body, and gRPC refuses a larger message, compressed or not, before the handler
runs (so such a refusal is not in the receiver's request counters).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import grpc
from grpc import aio

from weavergen.telemetry.auth import bearer_matches
from weavergen.telemetry.receiver import (
    PROTOBUF,
    ReceiverConfig,
    RequestRefused,
    export_response,
    ingest,
)
from weavergen.telemetry.windows import WindowStore

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
}


def _authorised(metadata: Sequence[tuple[str, str | bytes]] | None, token: str | None) -> bool:
    if token is None:
        return True
    presented = dict(metadata or ()).get("authorization", "")
    return isinstance(presented, str) and bearer_matches(presented, token)


def trace_service(store: WindowStore, config: ReceiverConfig) -> grpc.GenericRpcHandler:
    """``TraceService/Export`` over ``store``, as ``build_app`` serves ``POST /v1/traces``."""

    async def export(request: bytes, context: aio.ServicerContext[bytes, bytes]) -> bytes:
        store.counters.requests += 1
        try:
            if not _authorised(context.invocation_metadata(), config.token):
                raise RequestRefused(401, "missing or wrong bearer token")
            dropped = await asyncio.to_thread(ingest, store, request, PROTOBUF, "", config)
        except RequestRefused as refused:
            store.counters.rejected_requests += 1
            await context.abort(CODES[refused.status], refused.reason)
        return bytes(export_response(dropped).SerializeToString())

    return grpc.method_handlers_generic_handler(
        SERVICE, {"Export": grpc.unary_unary_rpc_method_handler(export)}
    )


async def serve_grpc(
    store: WindowStore, config: ReceiverConfig, host: str = "127.0.0.1", port: int = 4317
) -> tuple[aio.Server, int]:
    """Start the receiver on ``host:port`` (0: any free port); returns the server and the port
    it bound. Stop it with ``await server.stop(grace)``."""
    limit = config.max_decompressed_bytes
    server = aio.server(
        options=[("grpc.max_receive_message_length", limit), ("grpc.so_reuseport", 0)]
    )
    server.add_generic_rpc_handlers((trace_service(store, config),))
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    return server, bound
