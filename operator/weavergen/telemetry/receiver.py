"""The OTLP/HTTP trace receiver: ``POST /v1/traces`` (protobuf or JSON, optionally gzip).

Requests are refused with a reason: 413 when the body (or its decompressed form: a gzip bomb) is
over the limit, 415 for an unsupported content type or encoding, 400 for a body that is not OTLP,
401 without the configured bearer token. Decoding and summarising run in a worker thread so the
operator's event loop stays responsive. ``GET /v1/summaries/<service>?seconds=N`` hands a merged
window summary to the Measure phase (summaries, never raw spans); ``&since=T`` (epoch seconds)
leaves out what arrived before a fix began to settle; ``&slotOf=T`` (instead) starts the window
at the slot T falls in (a fault's onset: no older slot). ``GET /v1/evidence/<service>?since=T&
latencyMs=L&exportDelay=D`` counts the requests begun since T, and the bad ones among them, for a
sequential verification (`RequestLedger`).
"""

from __future__ import annotations

import asyncio
import json
import math
import zlib
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from weavergen.domain.measure.otlp import OtlpError, decode
from weavergen.telemetry.auth import bearer_token_middleware
from weavergen.telemetry.windows import WindowStore

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
DEFAULT_MAX_BODY = 8 * 1024 * 1024
DEFAULT_MAX_DECOMPRESSED = 32 * 1024 * 1024


class RequestRefused(Exception):
    """A request the receiver refuses, with the HTTP status and the reason to send back."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class ReceiverConfig:
    max_body_bytes: int = DEFAULT_MAX_BODY
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED
    token: str | None = None
    open_paths: frozenset[str] = frozenset()  # served without the token (the operator's /metrics)


def gunzip(body: bytes, limit: int) -> bytes:
    """Decompress gzip without ever holding more than ``limit + 1`` bytes of output."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as err:
        raise RequestRefused(400, f"invalid gzip body: {err}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise RequestRefused(413, f"decompressed body is over the limit of {limit} bytes")
    return out


def content_kind(content_type: str) -> str:
    media = content_type.split(";", 1)[0].strip().lower()
    if media in (PROTOBUF, "application/protobuf"):
        return PROTOBUF
    if media == JSON:
        return JSON
    raise RequestRefused(
        415, f"unsupported content type {media or '(none)'!r}: use {PROTOBUF} or {JSON}"
    )


def ingest(
    store: WindowStore, body: bytes, kind: str, encoding: str, config: ReceiverConfig
) -> int:
    """Validate, decompress, decode and summarise one request body; returns dropped spans."""
    if encoding == "gzip":
        body = gunzip(body, config.max_decompressed_bytes)
    elif encoding not in ("", "identity"):
        raise RequestRefused(415, f"unsupported content encoding {encoding!r}: use gzip")
    try:
        # Attributes are decoded lazily, while summarising: their errors surface in add().
        _, dropped = store.add(list(decode(body, kind)))
    except OtlpError as err:
        raise RequestRefused(400, str(err)) from None
    return dropped


def export_response(rejected: int) -> ExportTraceServiceResponse:
    """The OTLP answer, a partial success when spans were dropped (over the service limit)."""
    message = ExportTraceServiceResponse()
    if rejected:
        message.partial_success.rejected_spans = rejected
        message.partial_success.error_message = "too many distinct services"
    return message


def response(kind: str, rejected: int) -> web.Response:
    message = export_response(rejected)
    if kind == JSON:
        body = (
            {
                "partialSuccess": {
                    "rejectedSpans": str(rejected),
                    "errorMessage": message.partial_success.error_message,
                }
            }
            if rejected
            else {}
        )
        return web.json_response(body)
    return web.Response(body=message.SerializeToString(), content_type=PROTOBUF)


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The whole body, refused as soon as it grows past ``limit`` (chunked bodies included)."""
    parts, size = [], 0
    async for part in request.content.iter_chunked(64 * 1024):
        size += len(part)
        if size > limit:
            raise RequestRefused(413, f"body is over the limit of {limit} bytes")
        parts.append(part)
    return b"".join(parts)


def build_app(store: WindowStore, config: ReceiverConfig = ReceiverConfig()) -> web.Application:
    """The receiver's aiohttp application (mounted by the operator, or served on its own)."""

    async def traces(request: web.Request) -> web.Response:
        try:
            kind = content_kind(request.headers.get("Content-Type", ""))
            if (request.content_length or 0) > config.max_body_bytes:
                raise RequestRefused(
                    413, f"body is over the limit of {config.max_body_bytes} bytes"
                )
            body = await read_limited(request, config.max_body_bytes)
            encoding = request.headers.get("Content-Encoding", "").strip().lower()
            dropped = await asyncio.to_thread(ingest, store, body, kind, encoding, config)
        except RequestRefused as refused:
            return web.json_response(
                {"code": refused.status, "message": refused.reason}, status=refused.status
            )
        return response(kind, dropped)

    async def summary(request: web.Request) -> web.Response:
        try:
            seconds, since, slot_of = _summary_query(request)
        except RequestRefused as refused:
            return web.json_response({"message": refused.reason}, status=refused.status)
        merged = store.window(request.match_info["service"], seconds, since, slot_of=slot_of)
        return web.Response(text=json.dumps(merged.to_dict()), content_type=JSON)

    async def evidence(request: web.Request) -> web.Response:
        """A service's requests since a fix: how many, how many bad (see `RequestLedger`).
        Only those begun ``latencyMs`` plus ``exportDelay`` seconds ago: a fast one would have
        reported by now, so the slow ones still running are not outnumbered by fast ones."""
        try:
            since, threshold, delay = _evidence_query(request)
        except RequestRefused as refused:
            return web.json_response({"message": refused.reason}, status=refused.status)
        until = store.clock() - threshold / 1000 - delay
        found = store.evidence(request.match_info["service"], since, threshold, until=until)
        return web.json_response(found.as_dict())

    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Count OTLP requests by result here, outside the token check: its 401s are refusals."""
        if request.match_info.handler is not traces:
            return await handler(request)
        store.counters.requests += 1
        answer = await handler(request)
        if answer.status >= 400:
            store.counters.rejected_requests += 1
        return answer

    app = web.Application(
        client_max_size=config.max_body_bytes + 1,
        middlewares=[count, bearer_token_middleware(config.token, config.open_paths)],
    )
    app.router.add_post("/v1/traces", traces)
    app.router.add_get("/v1/summaries/{service}", summary)
    app.router.add_get("/v1/evidence/{service}", evidence)
    return app


def _number(
    request: web.Request, name: str, what: str, default: float | None = None
) -> float | None:
    """A finite number from the query (``default`` when absent); 400 names the parameter."""
    if name not in request.query:
        return default
    try:
        value = float(request.query[name])
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise RequestRefused(400, f"{name} must be {what}")
    return value


def _summary_query(request: web.Request) -> tuple[float, float | None, float | None]:
    """``seconds`` (60 by default), and ``since`` or ``slotOf`` (epoch seconds) or neither."""
    seconds = _number(request, "seconds", "a number", 60.0)
    since = _number(request, "since", "a number (seconds since the epoch)")
    slot_of = _number(request, "slotOf", "a number (seconds since the epoch)")
    if since is not None and slot_of is not None:
        raise RequestRefused(400, "give since or slotOf, not both")
    assert seconds is not None  # defaulted
    return seconds, since, slot_of


def _evidence_query(request: web.Request) -> tuple[float, float, float]:
    """``since`` (epoch seconds), ``latencyMs`` and ``exportDelay`` (seconds, 0 by default)."""
    since = _required(request, "since", "seconds since the epoch")
    threshold = _required(request, "latencyMs", "milliseconds above 0", above=0.0)
    delay = _number(request, "exportDelay", "seconds, 0 or more", 0.0) or 0.0
    if delay < 0:
        raise RequestRefused(400, "exportDelay must be seconds, 0 or more")
    return since, threshold, delay


def _required(request: web.Request, name: str, what: str, above: float = -math.inf) -> float:
    """A number the query must give, greater than ``above``; 400 names the parameter."""
    value = _number(request, name, what)
    if value is None or value <= above:
        raise RequestRefused(400, f"{name} is required: {what}")
    return value


def runner(app: web.Application) -> web.AppRunner:
    """An app runner that leaves request bodies compressed.

    aiohttp inflates gzip bodies itself by default, without a size limit; the receiver must see
    the compressed bytes to refuse a decompression bomb before it is inflated.
    """
    return web.AppRunner(app, auto_decompress=False, access_log=None)


async def serve(
    app: web.Application, host: str = "127.0.0.1", port: int = 4318
) -> tuple[web.AppRunner, int]:
    """Start ``app`` (see ``build_app``) on ``host:port`` (0: any free port); returns the
    runner and the port it bound."""
    app_runner = runner(app)
    await app_runner.setup()
    site = web.TCPSite(app_runner, host, port)
    await site.start()
    bound: int = app_runner.addresses[0][1]
    return app_runner, bound
