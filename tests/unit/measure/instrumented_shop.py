"""A small shop run under the official OpenTelemetry instrumentations, to record their real spans.

Run as a script, one process per semantic-convention mode: the instrumentations read
``OTEL_SEMCONV_STABILITY_OPT_IN`` once per process, so modes cannot share one. A WSGI app behind
``OpenTelemetryMiddleware`` (opentelemetry-instrumentation-wsgi), served by wsgiref on loopback,
queries sqlite3 through the DB-API instrumentation (opentelemetry-instrumentation-dbapi, wrapped
as opentelemetry-instrumentation-sqlite3 does) and is called with requests
(opentelemetry-instrumentation-requests). Two windows of healthy traffic, ``baseline`` and
``current``, are written as OTLP/protobuf by the OTLP exporters' own encoder
(opentelemetry-exporter-otlp-proto-common) and as OTLP/JSON.

    python instrumented_shop.py OUT_DIR [REQUESTS_PER_WINDOW]
"""

from __future__ import annotations

import base64
import json
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import requests
from google.protobuf import json_format
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.instrumentation.dbapi import wrap_connect
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

SERVICE = "shop"
WINDOWS = ("baseline", "current")
DEFAULT_REQUESTS = 60
SPANS_PER_REQUEST = 3  # client (requests), server (wsgi), one query (dbapi)
# Each request does this much "work" in the handler, so a scheduling hiccup on a busy machine is
# small next to a request's latency and healthy traffic stays healthy.
WORK_S = 0.008
ITEMS = ("tea", "coffee", "cocoa", "mate")

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class Shop:
    """GET /items?id=N reads an item, POST /orders writes one: each request is one SQL query."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        time.sleep(WORK_S)
        cursor = self.db.cursor()
        body: dict[str, Any]
        if environ["REQUEST_METHOD"] == "POST":
            size = int(environ.get("CONTENT_LENGTH") or 0)
            order = json.loads(environ["wsgi.input"].read(size))
            cursor.execute("INSERT INTO orders (item_id) VALUES (?)", (order["item"],))
            self.db.commit()
            status, body = "201 Created", {"order": cursor.lastrowid}
        else:
            item_id = int(environ.get("QUERY_STRING", "id=1").partition("=")[2] or 1)
            cursor.execute("SELECT id, name FROM items WHERE id = ?", (item_id,))
            row = cursor.fetchone()
            if row is None:
                status, body = "404 Not Found", {"error": f"no item {item_id}"}
            else:
                status, body = "200 OK", {"id": row[0], "name": row[1]}
        data = json.dumps(body).encode()
        start_response(
            status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        )
        return [data]


class QuietHandler(WSGIRequestHandler):
    """wsgiref's handler without a log line per request on stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


def otlp_json(request: ExportTraceServiceRequest) -> dict[str, Any]:
    """OTLP/JSON of a request: proto3 JSON with hex ids and integer enums (the OTLP spec)."""
    document = json_format.MessageToDict(request, use_integers_for_enums=True)
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return document


class WindowTagger(SpanProcessor):
    """Remembers the window of each trace: its root, the client span, starts while it is open."""

    def __init__(self) -> None:
        self.window: str | None = None
        self.traces: dict[int, str | None] = {}

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if span.parent is None:
            self.traces[span.context.trace_id] = self.window


def finished(exporter: InMemorySpanExporter, expected: int) -> tuple[ReadableSpan, ...]:
    """All spans once all have ended: a server span may end after its client span."""
    deadline = time.monotonic() + 10
    while len(spans := exporter.get_finished_spans()) < expected:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(spans)} spans ended, expected {expected}")
        time.sleep(0.005)
    return spans


def call(session: requests.Session, base: str, i: int) -> None:
    """The i-th request of a window: three reads, then an order; one read in 60 finds nothing.

    A few 404s belong to healthy traffic: well within a 99% availability objective.
    """
    item = 1 + i % len(ITEMS)
    if i % 4 == 3:
        response = session.post(f"{base}/orders", json={"item": item})
    elif i % 60 == 58:
        response = session.get(f"{base}/items", params={"id": 99})
        assert response.status_code == 404, response.status_code
        return
    else:
        response = session.get(f"{base}/items", params={"id": item})
    response.raise_for_status()


def run(out_dir: Path, requests_per_window: int) -> None:
    """Serve the shop, send the traffic and write ``<window>.pb`` and ``<window>.json``.

    The windows' requests alternate, so both see the same machine: a busy neighbour slowing one
    window would be a real latency shift, not the healthy traffic these windows stand for.
    """
    exporter, tagger = InMemorySpanExporter(), WindowTagger()
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    provider.add_span_processor(tagger)
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    # The schema is made before instrumenting: its statements would be spans outside every window,
    # and finished() would stop waiting that many spans early (the last server span can end after
    # its client span, so it would be left out of the last window).
    with sqlite3.connect(str(out_dir / "shop.db")) as setup:
        setup.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
        setup.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, item_id INTEGER)")
        setup.executemany("INSERT INTO items (name) VALUES (?)", [(name,) for name in ITEMS])
    setup.close()
    # What opentelemetry-instrumentation-sqlite3 does (its release line lags dbapi's by a beta).
    wrap_connect(
        __name__,
        sqlite3,  # type: ignore[arg-type]  # a module with connect(), typed as a callable
        "connect",
        "sqlite",
        {},
        tracer_provider=provider,
    )
    RequestsInstrumentor().instrument(tracer_provider=provider)
    db = sqlite3.connect(str(out_dir / "shop.db"), check_same_thread=False)
    app = OpenTelemetryMiddleware(Shop(db), tracer_provider=provider)
    server = make_server("127.0.0.1", 0, app, handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    session = requests.Session()
    session.trust_env = False  # loopback only: no proxy from the environment
    try:
        call(session, base, 0)  # warm-up (first-call imports and caches), in no window
        for i in range(requests_per_window):
            for window in WINDOWS:
                tagger.window = window
                call(session, base, i)
        spans = finished(exporter, SPANS_PER_REQUEST * (1 + len(WINDOWS) * requests_per_window))
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        session.close()
        db.close()
        provider.shutdown()
    for window in WINDOWS:
        request = encode_spans([s for s in spans if tagger.traces[s.context.trace_id] == window])
        (out_dir / f"{window}.pb").write_bytes(request.SerializeToString())
        document = json.dumps(otlp_json(request))
        (out_dir / f"{window}.json").write_text(document, encoding="utf-8")


if __name__ == "__main__":
    run(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else DEFAULT_REQUESTS)
