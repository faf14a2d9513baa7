"""The demo workload (clearly a demo): a small shop service that the operator keeps healthy.

It serves ``/checkout``, ``/cart`` and ``/healthz`` (503 once it is stopping) over HTTP, calls a
simulated ``payments`` dependency, and exports one server span per request (and a client span
per dependency call) over OTLP/HTTP to the operator's receiver (the standard ``OTEL_*``
variables). What goes wrong is read live from its ConfigMap, so corrupting the ConfigMap breaks
the running service the way a bad config push would:

- ``errorRate``: share of requests answered 500 (default 0)
- ``latencyMs``: mean extra latency per request (default 15)
- ``attributeStyle``: ``semconv`` (default), ``renamed`` (pre-1.0 names such as
  ``http.status_code``) or ``mistyped`` (the status code as a string)
- ``retryStorm``: ``true`` makes every dependency call be retried twice

``EXTRA_LATENCY_MS`` in the environment (from the ``demo-shop-runtime`` ConfigMap, read once at
start, as environment is) adds that much to every request: a runtime setting outside the
charter's targets, which no restart or rollback of the shop undoes.

The payments dependency's own state is another ConfigMap (``demo-payments``, key ``errorRate``:
the share of calls to it that fail). It is not the shop's: a fault there is the dependency's.

A version containing ``bad`` (``--version 2.0.0-bad``) is a broken release: half its requests
fail and it uses the renamed attributes, whatever the ConfigMap says.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from aiohttp import web
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

if TYPE_CHECKING:
    from weavergen.k8s.rest import Rest

LOG = logging.getLogger("weavergen.demo.app")
ROUTES = ("/checkout", "/cart")
# A stopping shop serves until no request has come for this long, for at most the longest.
DRAIN_QUIET_SECONDS = 1.0
DRAIN_LONGEST_SECONDS = 15.0
EXTRA_LATENCY_MS = max(0.0, float(os.environ.get("EXTRA_LATENCY_MS") or 0))


@dataclass(frozen=True)
class Behaviour:
    """What the service does wrong, from its ConfigMap (and its version)."""

    error_rate: float = 0.0
    latency_ms: float = 15.0
    attribute_style: str = "semconv"
    retry_storm: bool = False
    dependency_error_rate: float = 0.0

    @classmethod
    def from_config(
        cls, data: dict[str, str], version: str, payments: dict[str, str] | None = None
    ) -> Behaviour:
        def number(key: str, default: float) -> float:
            try:
                return max(0.0, float(data.get(key, default)))
            except ValueError:
                LOG.warning("ignored %s=%r: not a number", key, data.get(key))
                return default

        behaviour = cls(
            error_rate=min(1.0, number("errorRate", 0.0)),
            latency_ms=number("latencyMs", 15.0),
            attribute_style=data.get("attributeStyle", "semconv"),
            retry_storm=data.get("retryStorm", "false").lower() == "true",
            dependency_error_rate=min(
                1.0, max(0.0, _float((payments or {}).get("errorRate"), 0.0))
            ),
        )
        if "bad" in version:
            behaviour = replace(
                behaviour, error_rate=max(behaviour.error_rate, 0.5), attribute_style="renamed"
            )
        return behaviour


def _float(text: str | None, default: float) -> float:
    try:
        return float(text) if text is not None else default
    except ValueError:
        return default


def status_attributes(style: str, method: str, status: int) -> dict[str, Any]:
    if style == "renamed":
        return {"http.method": method, "http.status_code": status}
    if style == "mistyped":
        return {"http.request.method": method, "http.response.status_code": str(status)}
    return {"http.request.method": method, "http.response.status_code": status}


class ConfigWatcher:
    """Reads the app's ConfigMap every second (a config reloader), with its pod's own token."""

    def __init__(self, namespace: str, name: str, version: str, payments: str) -> None:
        self.namespace = namespace
        self.name = name
        self.payments = payments
        self.version = version
        self.behaviour = Behaviour.from_config({}, version)
        self.stop = threading.Event()
        self._rest: Rest | None = None

    def read(self) -> None:
        """Read the ConfigMaps once; a failure is logged and the behaviour stays as it was."""
        try:
            if self._rest is None:
                from weavergen.k8s.client import api_client  # noqa: PLC0415 - the app's own
                from weavergen.k8s.rest import Rest  # noqa: PLC0415

                self._rest = Rest(api_client())
            own = self._rest.get("ConfigMap", self.namespace, self.name) or {}
            payments = self._rest.get("ConfigMap", self.namespace, self.payments) or {}
            behaviour = Behaviour.from_config(
                own.get("data") or {}, self.version, payments.get("data") or {}
            )
            if behaviour != self.behaviour:
                LOG.info("config changed: %s", behaviour)
            self.behaviour = behaviour
        except Exception as err:
            LOG.warning("could not read ConfigMap %s: %s", self.name, err)

    def poll(self) -> None:
        while not self.stop.wait(1.0):
            self.read()


@dataclass
class Traffic:
    """When the shop last answered a request, and whether it is stopping."""

    last: float = 0.0
    stopping: bool = False

    def seen(self) -> None:
        self.last = time.monotonic()

    async def drained(self, *, quiet: float, longest: float) -> None:
        """Fail the readiness check and return once no request has come for ``quiet`` seconds
        (or after ``longest``). A Service's kube-proxy learns that a pod stops seconds later on
        a busy node; a pod that stopped listening on time would refuse what is sent meanwhile."""
        self.stopping = True
        stopped = time.monotonic()
        while (now := time.monotonic()) - max(self.last, stopped) < quiet:
            if now - stopped >= longest:
                return
            await asyncio.sleep(0.05)


def build_app(
    watcher: ConfigWatcher, tracer: trace.Tracer, rng: random.Random, traffic: Traffic
) -> web.Application:
    async def pay(behaviour: Behaviour) -> bool:
        attempts = 3 if behaviour.retry_storm else 1
        ok = False
        for attempt in range(attempts):
            with tracer.start_as_current_span("POST", kind=SpanKind.CLIENT) as span:
                span.set_attributes(
                    {
                        "server.address": "payments",
                        "server.port": 8443,
                        "url.full": "https://payments:8443/v1/charge",
                        **({"http.request.resend_count": attempt} if attempt else {}),
                    }
                )
                await asyncio.sleep(rng.expovariate(1 / 0.004))
                ok = rng.random() >= behaviour.dependency_error_rate
                status = 200 if ok else 503
                span.set_attributes(status_attributes(behaviour.attribute_style, "POST", status))
                if not ok:
                    span.set_status(Status(StatusCode.ERROR))
                    span.set_attribute("error.type", str(status))
        return ok

    async def handle(request: web.Request) -> web.Response:
        traffic.seen()
        behaviour = watcher.behaviour
        route = request.path
        with tracer.start_as_current_span(f"GET {route}", kind=SpanKind.SERVER) as span:
            span.set_attributes({"url.path": route, "http.route": route, "url.scheme": "http"})
            await asyncio.sleep(
                (rng.expovariate(1 / max(behaviour.latency_ms, 0.1)) + EXTRA_LATENCY_MS) / 1000
            )
            status = 200
            if route == "/checkout" and not await pay(behaviour):
                status = 502
            elif rng.random() < behaviour.error_rate:
                status = 500
            span.set_attributes(status_attributes(behaviour.attribute_style, "GET", status))
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
                span.set_attribute("error.type", str(status))
        return web.json_response({"status": status}, status=status)

    async def healthz(_: web.Request) -> web.Response:
        if traffic.stopping:
            return web.Response(status=503, text="stopping")
        return web.Response(text="ok")

    app = web.Application()
    for route in ROUTES:
        app.router.add_get(route, handle)
    app.router.add_get("/healthz", healthz)
    return app


def tracer_provider(version: str) -> TracerProvider:
    resource = Resource.create(
        {
            SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", "demo-shop"),
            SERVICE_VERSION: version,
        }
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(), schedule_delay_millis=200))
    return provider


async def serve(port: int, watcher: ConfigWatcher, provider: TracerProvider) -> None:
    traffic = Traffic()
    runner = web.AppRunner(
        build_app(watcher, provider.get_tracer("weavergen.demo"), random.Random(), traffic),
        access_log=None,
        shutdown_timeout=5.0,
    )
    await runner.setup()
    # reuse_port: during a rolling restart the new pod serves beside the old one.
    await web.TCPSite(runner, "0.0.0.0", port, reuse_port=True).start()
    LOG.info("demo shop %s serving on port %d", watcher.version, port)
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stopping.set)
    await stopping.wait()
    # Graceful, as a pod being replaced should be: serve while requests still come here, then
    # stop accepting and let those in flight finish (all within the pod's 30 s grace period).
    LOG.info("stopping: serving until requests stop coming")
    await traffic.drained(quiet=DRAIN_QUIET_SECONDS, longest=DRAIN_LONGEST_SECONDS)
    LOG.info("stopping: finishing requests in flight")
    await runner.cleanup()


def run(*, port: int, version: str, namespace: str, config_map: str, payments: str) -> None:
    """Serve until stopped; spans go where ``OTEL_EXPORTER_OTLP_ENDPOINT`` says."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    watcher = ConfigWatcher(namespace, config_map, version, payments)
    # Configured before serving, as apps are: a pod that served its first requests while its
    # reloader imported its client (holding the interpreter for half a second on a busy node)
    # answered them slowly, and with defaults rather than its configuration.
    watcher.read()
    threading.Thread(target=watcher.poll, daemon=True).start()
    provider = tracer_provider(version)
    try:
        asyncio.run(serve(port, watcher, provider))
    finally:
        watcher.stop.set()
        provider.shutdown()
