"""Held-out span scenarios: Measure judged on traffic the project never tuned on.

Every scenario the detectors were tuned on came from
``weavergen.domain.simulation.simulator``. This module is an independent generator with its own
services, trace shapes and noise: a checkout API
(SERVER roots with an internal pricing step, HTTP clients to payments and inventory, PostgreSQL
calls), a Kafka ledger consumer (CONSUMER spans with remote parents, database writes, a
producer) and a gRPC pricing service (Redis cache with a database fallback). Each window is an
OTLP/JSON document (hex ids, integer enums, string 64-bit integers, one resource per pod, one
scope per instrumentation) measured through the CLI's code path: ``summarise``,
``pick_service``, ``measure``.

Expectations are written here, per scenario and before any run, from what the fault is: the
level the contract's formula gives for the fault's effect on requests (errors, slowness and
throughput as users see them), an acceptable band, the indicator types that must fire, those
that may, the evidence a clinician would read from it and the validation codes that must be
new. Everything else must stay quiet. 300 healthy-but-noisy windows (rate +-18%, error blips,
latency jitter, a pause, rare operations) must measure LOW with no indicator and no new finding.

After the first run two mistakes of this generator's author were corrected: error blips failed
up to 3.7% of some healthy windows' requests (outside the 99% objective: not healthy), and
checkout-payment-outage forbade latency_degradation although its own retry policy (a second
call after 100 ms) slows checkouts; it now tolerates it. Nothing else was changed after a run.

The default seeds (faults 9001-9044, noise 7000-7299) were chosen before the first run and are
not used for tuning: a detector tuned on them stops being held out. Tune on other seeds.

Run: .venv/bin/python -m benchmarks.heldout [--seeds 9001-9044] [--noise-seeds 7000-7299]
     [--jobs N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from weavergen.domain.measure.measure import Measurement, measure, pick_service, summarise
from weavergen.domain.measure.summary import ServiceSummary

WINDOW_S = 60.0
BASELINE_START_NS = 1_772_445_600 * 10**9  # 2026-03-02T10:00:00Z
CURRENT_START_NS = BASELINE_START_NS + 3600 * 10**9
DEFAULT_FAULT_SEEDS = "9001-9044"
DEFAULT_NOISE_SEEDS = "7000-7299"
CONTENT_TYPE = "application/json"

INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER = 1, 2, 3, 4, 5
STATUS_ERROR = 2
OK, OWN_FAILURE, DEPENDENCY_FAILURE = 0, 1, 2
# Healthy background: a handler fails this often on its own, a dependency call this often.
BASE_OWN_ERROR = 0.002
BASE_DEPENDENCY_ERROR = 0.003

# The contract's indicator types (DESIGN.md section 5), listed here rather than imported: the
# benchmark judges the product, so it does not take its vocabulary from the code under test.
INDICATOR_TYPES = (
    "semantic_drift",
    "latency_degradation",
    "error_rate_increase",
    "retry_storm",
    "throughput_drop",
    "attribute_cardinality_explosion",
    "span_mix_shift",
)

Attributes = dict[str, Any]
AttributeFn = Callable[[random.Random, int, int], Attributes]
"""(rng, outcome, attempt) -> a span's attributes; outcome is OK, OWN_ or DEPENDENCY_FAILURE."""


# -- the services -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """A child span: an internal step, a dependency call (CLIENT) or a publish (PRODUCER).

    ``share`` of requests make it (a cache miss); ``on_miss`` calls are also made when an
    optional call before them failed (the database behind a cache). ``attempts`` is the
    healthy retry policy.
    """

    name: str
    kind: int
    component: str
    median_ms: float
    sigma: float
    scope: str
    attributes: AttributeFn
    children: tuple[Call, ...] = ()
    attempts: int = 1
    backoff_ms: float = 0.0
    required: bool = True
    share: float = 1.0
    on_miss: bool = False


@dataclass(frozen=True)
class Endpoint:
    """A request the service serves: a SERVER or CONSUMER span and its calls, in order."""

    name: str
    kind: int
    weight: float
    median_ms: float
    sigma: float
    scope: str
    attributes: AttributeFn
    calls: tuple[Call, ...]
    remote_parent: bool = False


@dataclass(frozen=True)
class Service:
    name: str
    version: str
    language: str
    pods: int
    rate: float  # requests per second
    endpoints: tuple[Endpoint, ...]


def _hex(rng: random.Random, bits: int) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def _http_server(method: str, route: str, path: Callable[[random.Random], str]) -> AttributeFn:
    agents = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) Safari/605.1.15",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) Mobile/15E148",
        "Mozilla/5.0 (Linux; Android 15) Chrome/131.0 Mobile",
        "acme-shop-ios/4.12.0",
        "acme-shop-android/4.11.3",
    )
    base = {
        "http.request.method": method,
        "http.route": route,
        "url.scheme": "https",
        "server.address": "shop.acme.example",
        "server.port": 443,
    }
    success = 201 if method == "POST" else 200

    def attributes(rng: random.Random, outcome: int, attempt: int) -> Attributes:
        attrs = dict(base)
        attrs["url.path"] = path(rng)
        attrs["network.protocol.version"] = "2" if rng.random() < 0.7 else "1.1"
        attrs["user_agent.original"] = rng.choice(agents)
        attrs["client.address"] = f"10.{rng.randrange(4)}.{rng.randrange(256)}.{rng.randrange(256)}"
        status = (success, 500, 502)[outcome]
        attrs["http.response.status_code"] = status
        if outcome:
            attrs["error.type"] = str(status)
        return attrs

    return attributes


def _http_client(
    method: str, host: str, port: int, url: Callable[[random.Random], str]
) -> AttributeFn:
    base = {"http.request.method": method, "server.address": host, "server.port": port}

    def attributes(rng: random.Random, outcome: int, attempt: int) -> Attributes:
        attrs = dict(base)
        attrs["url.full"] = url(rng)
        attrs["network.peer.address"] = f"10.8.{rng.randrange(3)}.17"
        status = 503 if outcome else 200
        attrs["http.response.status_code"] = status
        if outcome:
            attrs["error.type"] = str(status)
        if attempt:
            attrs["http.request.resend_count"] = attempt
        return attrs

    return attributes


def _db(
    system: str, server: tuple[str, int], operation: str, namespace: str, table: str
) -> AttributeFn:
    base: Attributes = {
        "db.system.name": system,
        "db.operation.name": operation,
        "db.namespace": namespace,
        "server.address": server[0],
        "server.port": server[1],
    }
    if table:
        base["db.collection.name"] = table
        base["db.query.summary"] = f"{operation} {table}"
    failure = {"postgresql": "40P01", "redis": "TIMEOUT"}[system]

    def attributes(rng: random.Random, outcome: int, attempt: int) -> Attributes:
        attrs = dict(base)
        if outcome:
            attrs["db.response.status_code"] = failure
            attrs["error.type"] = failure
        return attrs

    return attributes


def _internal(key: str, low: int, high: int) -> AttributeFn:
    def attributes(rng: random.Random, outcome: int, attempt: int) -> Attributes:
        return {key: rng.randint(low, high)}

    return attributes


def _cart_path(rng: random.Random) -> str:
    return f"/api/cart/{_hex(rng, 40)}"


def _checkout() -> Service:
    pg = "io.opentelemetry.jdbc"
    http = "io.opentelemetry.java-http-client"

    def sql(operation: str, table: str) -> Call:
        return Call(
            f"{operation} shop.{table}",
            CLIENT,
            "pg",
            3.5,
            0.5,
            pg,
            _db("postgresql", ("pg-primary.shop.svc", 5432), operation, "shop", table),
        )

    inventory = Call(
        "GET",
        CLIENT,
        "inventory",
        25.0,
        0.45,
        http,
        _http_client(
            "GET",
            "inventory.internal",
            8080,
            lambda rng: f"https://inventory.internal:8080/v1/stock/SKU-{rng.randrange(400):04d}",
        ),
    )
    payments = Call(
        "POST",
        CLIENT,
        "payments",
        120.0,
        0.45,
        http,
        _http_client(
            "POST", "payments.internal", 443, lambda rng: "https://payments.internal/v2/charges"
        ),
        attempts=2,
        backoff_ms=100.0,
    )
    pricing = Call(
        "price cart",
        INTERNAL,
        "pricing",
        8.0,
        0.4,
        "com.acme.checkout",
        _internal("cart.items", 1, 12),
        children=(sql("SELECT", "carts"),),
    )
    web = "io.opentelemetry.spring-webmvc-6.0"

    def endpoint(
        method: str,
        route: str,
        path: Callable[[random.Random], str],
        weight: float,
        ms: float,
        *calls: Call,
    ) -> Endpoint:
        attributes = _http_server(method, route, path)
        return Endpoint(f"{method} {route}", SERVER, weight, ms, 0.35, web, attributes, calls)

    return Service(
        "storefront-checkout",
        "2.14.3",
        "java",
        4,
        18.0,
        (
            endpoint(
                "POST",
                "/api/checkout",
                lambda rng: "/api/checkout",
                0.33,
                10.0,
                pricing,
                inventory,
                payments,
                sql("INSERT", "orders"),
            ),
            endpoint("GET", "/api/cart/{cartId}", _cart_path, 0.47, 3.0, sql("SELECT", "carts")),
            endpoint(
                "PUT",
                "/api/cart/{cartId}/items",
                lambda rng: _cart_path(rng) + "/items",
                0.20,
                5.0,
                inventory,
                sql("UPDATE", "cart_items"),
            ),
            endpoint(
                "DELETE",
                "/api/cart/{cartId}",
                _cart_path,
                0.004,
                3.0,
                sql("DELETE", "carts"),
            ),
            endpoint(
                "GET",
                "/api/orders/{orderId}/receipt",
                lambda rng: f"/api/orders/{rng.randrange(10**9)}/receipt",
                0.003,
                15.0,
                sql("SELECT", "orders"),
            ),
        ),
    )


def _consumer(topic: str) -> AttributeFn:
    base: Attributes = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": topic,
        "messaging.consumer.group.name": "ledger",
    }

    def attributes(rng: random.Random, outcome: int, attempt: int) -> Attributes:
        attrs = dict(base)
        attrs["messaging.destination.partition.id"] = str(rng.randrange(12))
        attrs["messaging.message.id"] = _hex(rng, 64)
        attrs["messaging.message.body.size"] = int(rng.lognormvariate(6.7, 0.4))
        if outcome:
            attrs["error.type"] = {OWN_FAILURE: "ledger.InvalidEntry"}.get(outcome, "40P01")
        return attrs

    return attributes


def _producer(rng: random.Random, outcome: int, attempt: int) -> Attributes:
    attrs: Attributes = {
        "messaging.system": "kafka",
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": "ledger.updated",
        "messaging.message.body.size": int(rng.lognormvariate(5.9, 0.3)),
    }
    if outcome:
        attrs["error.type"] = "org.apache.kafka.common.errors.TimeoutException"
    return attrs


def _ledger() -> Service:
    pg = "github.com/jackc/pgx/v5/otelpgx"

    def sql(operation: str, table: str) -> Call:
        return Call(
            f"{operation} ledger.{table}",
            CLIENT,
            "pg",
            3.5,
            0.5,
            pg,
            _db("postgresql", ("ledger-db.finance.svc", 5432), operation, "ledger", table),
        )

    send = Call(
        "send ledger.updated", PRODUCER, "kafka_out", 2.0, 0.6, "github.com/IBM/sarama", _producer
    )
    scope = "github.com/IBM/sarama"

    def endpoint(topic: str, weight: float, ms: float, *calls: Call) -> Endpoint:
        return Endpoint(
            f"process {topic}",
            CONSUMER,
            weight,
            ms,
            0.4,
            scope,
            _consumer(topic),
            calls,
            remote_parent=True,
        )

    apply = Call(
        "apply ledger entry",
        INTERNAL,
        "apply",
        6.0,
        0.4,
        "acme/ledger",
        _internal("ledger.entry.lines", 2, 6),
        children=(sql("INSERT", "entries"),),
    )
    return Service(
        "ledger-consumer",
        "1.8.0",
        "go",
        3,
        12.0,
        (
            endpoint("payments.settled", 0.85, 4.0, apply, sql("UPDATE", "balances"), send),
            endpoint(
                "refunds.issued",
                0.15,
                5.0,
                sql("SELECT", "entries"),
                sql("INSERT", "entries"),
                send,
            ),
            endpoint("ledger.replay", 0.003, 10.0, sql("SELECT", "entries")),
        ),
    )


def _grpc_server(method: str) -> AttributeFn:
    base = {
        "rpc.system.name": "grpc",
        "rpc.method": method,
        "server.address": "pricing.acme.svc",
        "server.port": 50051,
        "network.protocol.name": "http",
        "network.protocol.version": "2",
    }

    def attributes(rng: random.Random, outcome: int, attempt: int) -> Attributes:
        attrs = dict(base)
        attrs["network.peer.address"] = f"10.12.{rng.randrange(2)}.{rng.randrange(20, 60)}"
        code = ("OK", "INTERNAL", "UNAVAILABLE")[outcome]
        attrs["rpc.response.status_code"] = code
        if outcome:
            attrs["error.type"] = code
        return attrs

    return attributes


def _pricing() -> Service:
    def rules(ms: float, share: float = 1.0, *, on_miss: bool = False) -> Call:
        return Call(
            "SELECT pricing.rules",
            CLIENT,
            "pg",
            ms,
            0.5,
            "opentelemetry.instrumentation.asyncpg",
            _db("postgresql", ("pricing-db.acme.svc", 5432), "SELECT", "pricing", "rules"),
            share=share,
            on_miss=on_miss,
        )

    def cache(operation: str, ms: float) -> Call:
        return Call(
            operation,
            CLIENT,
            "redis",
            ms,
            0.5,
            "opentelemetry.instrumentation.redis",
            _db("redis", ("redis.pricing.svc", 6379), operation, "0", ""),
            required=False,
        )

    def endpoint(method: str, weight: float, ms: float, *calls: Call) -> Endpoint:
        name = f"acme.pricing.v1.PriceService/{method}"
        return Endpoint(
            name,
            SERVER,
            weight,
            ms,
            0.4,
            "opentelemetry.instrumentation.grpc",
            _grpc_server(name),
            calls,
        )

    return Service(
        "pricing-grpc",
        "0.31.2",
        "python",
        4,
        30.0,
        (
            endpoint("GetQuote", 0.6, 2.0, cache("GET", 0.6), rules(5.0, 0.1, on_miss=True)),
            endpoint("BatchQuote", 0.1, 10.0, cache("MGET", 1.2), rules(8.0, 0.3, on_miss=True)),
            endpoint("ListRules", 0.3, 3.0, rules(12.0)),
            endpoint("ReloadRules", 0.002, 20.0, rules(40.0)),
        ),
    )


CHECKOUT, LEDGER, PRICING = _checkout(), _ledger(), _pricing()
SERVICES = (CHECKOUT, LEDGER, PRICING)


# -- windows: noise, faults, spans --------------------------------------------------------------


@dataclass(slots=True)
class Span:
    """A span as a fault's ``transform`` sees it: it may rename it or change its attributes."""

    name: str
    kind: int
    pod: int
    attributes: Attributes


@dataclass(frozen=True)
class Noise:
    """What differs between two healthy windows of the same service."""

    rate: float = 1.0
    mix: Mapping[str, float] = field(default_factory=dict)  # endpoint -> weight factor
    latency: Mapping[str, float] = field(default_factory=dict)  # component -> factor
    blip: tuple[str, float, float, float] | None = None  # component, from s, to s, failure p
    pause: tuple[float, float, float] | None = None  # from s, to s, added ms


def draw_noise(service: Service, rng: random.Random) -> Noise:
    """Rate +-18%, mix +-10%, latency jitter per component, maybe an error blip and a pause."""
    calls = list(_calls(c for e in service.endpoints for c in e.calls))
    dependencies = sorted({c.component for c in calls if c.kind in (CLIENT, PRODUCER)})
    components = {c.component for c in calls} | {e.name for e in service.endpoints}
    blip = None
    if rng.random() < 0.35:
        # Healthy means within the 99% availability objective: a blip fails under 1% of the
        # window's requests even on the database every request calls two or three times.
        start = rng.uniform(0, WINDOW_S - 3)
        blip = (rng.choice(dependencies), start, start + 2.0, 0.1)
    pause = None
    if rng.random() < 0.3:
        start = rng.uniform(0, WINDOW_S - 1)
        pause = (start, start + 0.8, rng.uniform(150, 400))
    return Noise(
        rate=rng.uniform(0.82, 1.18),
        mix={e.name: rng.uniform(0.9, 1.1) for e in service.endpoints},
        latency={c: rng.lognormvariate(0, 0.06) for c in sorted(components)},
        blip=blip,
        pause=pause,
    )


def _calls(calls: Iterable[Call]) -> Iterable[Call]:
    for call in calls:
        yield call
        yield from _calls(call.children)


Transform = Callable[[random.Random, Span], None]


@dataclass(frozen=True)
class Fault:
    """What is wrong in the current window. Keys name an endpoint, a call or a component."""

    rate: float = 1.0
    stop_after_s: float | None = None
    mix: Mapping[str, float] = field(default_factory=dict)
    own_errors: Mapping[str, float] = field(default_factory=dict)  # endpoint -> failure p
    fail_early: bool = False  # the handler fails before making its calls
    dep_errors: Mapping[str, float] = field(default_factory=dict)  # failure p per attempt
    absorbed: frozenset[str] = frozenset()  # components whose failures the handler absorbs
    slow: Mapping[str, float] = field(default_factory=dict)
    tail: Mapping[str, tuple[float, float, float]] = field(default_factory=dict)  # p, ms range
    timeout_ms: Mapping[str, float] = field(default_factory=dict)  # a failed attempt's length
    attempts: Mapping[str, int] = field(default_factory=dict)  # retry policy
    transform: Transform | None = None


HEALTHY = Fault()


def _lookup(mapping: Mapping[str, Any], call: Call | Endpoint, default: Any) -> Any:
    if call.name in mapping:
        return mapping[call.name]
    return mapping.get(call.component, default) if isinstance(call, Call) else default


class _Trace:
    """Builds the spans of one request, children in sequence inside their parent."""

    def __init__(
        self, window: _Window, rng: random.Random, pod: int, t_s: float, start_ns: int
    ) -> None:
        self.w, self.rng, self.pod, self.t_s = window, rng, pod, t_s
        self.trace_id = _hex(rng, 128)
        self.start_ns = start_ns

    def duration_ns(self, part: Call | Endpoint) -> int:
        w, rng = self.w, self.rng
        factor = w.noise.latency.get(
            part.component if isinstance(part, Call) else part.name, 1.0
        ) * _lookup(w.fault.slow, part, 1.0)
        ms = rng.lognormvariate(math.log(part.median_ms * factor), part.sigma)
        tail = _lookup(w.fault.tail, part, None)
        if tail is not None and rng.random() < tail[0]:
            ms += rng.uniform(tail[1], tail[2])
        return int(ms * 1e6)

    def fails(self, call: Call) -> bool:
        w = self.w
        p = BASE_DEPENDENCY_ERROR if call.kind in (CLIENT, PRODUCER) else 0.0
        blip = w.noise.blip
        if blip is not None and blip[0] == call.component and blip[1] <= self.t_s < blip[2]:
            p += blip[3]
        return self.rng.random() < p + float(_lookup(w.fault.dep_errors, call, 0.0))

    def call(self, call: Call, parent: str, start: int) -> tuple[int, bool]:
        """Spans of a call and its retries from ``start``: (end, succeeded)."""
        attempts = _lookup(self.w.fault.attempts, call, call.attempts)
        cursor = start
        for attempt in range(attempts):
            failed = self.fails(call)
            length = self.duration_ns(call)
            timeout = _lookup(self.w.fault.timeout_ms, call, None)
            if failed and timeout is not None:
                length = int(timeout * 1e6)
            span_id = _hex(self.rng, 64)
            inner = cursor + length // 10
            for child in call.children:
                inner, ok = self.call(child, span_id, inner)
                failed = failed or not ok
            end = max(cursor + length, inner)
            outcome = DEPENDENCY_FAILURE if failed else OK
            attrs = call.attributes(self.rng, outcome, attempt)
            self.emit(call, span_id, parent, cursor, end, attrs=attrs, failed=failed)
            cursor = end
            if not failed:
                return cursor, True
            cursor += int(call.backoff_ms * (attempt + 1) * 1e6)
        return cursor, False

    def serve(self, endpoint: Endpoint) -> None:
        w, rng = self.w, self.rng
        own = self.duration_ns(endpoint)
        if w.noise.pause is not None and w.noise.pause[0] <= self.t_s < w.noise.pause[1]:
            own += int(w.noise.pause[2] * 1e6)
        root = _hex(rng, 64)
        own_failure = rng.random() < BASE_OWN_ERROR + w.fault.own_errors.get(endpoint.name, 0.0)
        cursor, outcome, missed = self.start_ns + own // 2, OK, False
        calls = () if own_failure and w.fault.fail_early else endpoint.calls
        for call in calls:
            if call.share < 1.0 and rng.random() >= call.share and not (call.on_miss and missed):
                continue
            cursor, ok = self.call(call, root, cursor)
            if ok:
                continue
            if not call.required or call.component in w.fault.absorbed:
                missed = True
                continue
            outcome = DEPENDENCY_FAILURE
            break
        if own_failure and outcome == OK:
            outcome = OWN_FAILURE
        parent = _hex(rng, 64) if endpoint.remote_parent else ""
        attrs = endpoint.attributes(rng, outcome, 0)
        end = cursor + own - own // 2
        self.emit(endpoint, root, parent, self.start_ns, end, attrs=attrs, failed=outcome != OK)

    def emit(
        self,
        part: Call | Endpoint,
        span_id: str,
        parent: str,
        start: int,
        end: int,
        *,
        attrs: Attributes,
        failed: bool,
    ) -> None:
        """One span as OTLP/JSON, after the fault's transform, under its pod and scope."""
        name, transform = part.name, self.w.fault.transform
        if transform is not None:
            span = Span(name, part.kind, self.pod, attrs)
            transform(self.rng, span)
            name, attrs = span.name, span.attributes
        record: dict[str, Any] = {
            "traceId": self.trace_id,
            "spanId": span_id,
            "parentSpanId": parent,
            "name": name,
            "kind": part.kind,
            "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(end),
            "attributes": [_kv(k, v) for k, v in attrs.items()],
            "status": {"code": STATUS_ERROR, "message": attrs.get("error.type", "")}
            if failed
            else {},
        }
        self.w.spans.setdefault((self.pod, part.scope), []).append(record)


_SHARED: dict[str, dict[tuple[type, Any], dict[str, Any]]] = {}
_SHARED_PER_KEY = 64


def _kv(key: str, value: Any) -> dict[str, Any]:
    """An OTLP/JSON KeyValue, built once and shared for the first values of each key (ids fill
    their share and are built anew; enum-like values are built once)."""
    shared = _SHARED.setdefault(key, {})
    kv = shared.get((type(value), value))
    if kv is None:
        kv = {"key": key, "value": _value(value)}
        if len(shared) < _SHARED_PER_KEY:
            shared[type(value), value] = kv
    return kv


def _value(value: Any) -> dict[str, Any]:
    """An OTLP/JSON AnyValue: 64-bit integers as strings."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": value}


class _Window:
    """One window of a service's spans, grouped by pod (resource) and instrumentation scope."""

    def __init__(self, service: Service, noise: Noise, fault: Fault, rng: random.Random) -> None:
        self.service, self.noise, self.fault, self.rng = service, noise, fault, rng
        self.spans: dict[tuple[int, str], list[dict[str, Any]]] = {}

    def generate(self, start_ns: int) -> None:
        service, noise, fault, rng = self.service, self.noise, self.fault, self.rng
        active = min(WINDOW_S, fault.stop_after_s or WINDOW_S)
        mean = service.rate * noise.rate * fault.rate * active
        count = max(0, round(rng.gauss(mean, math.sqrt(mean)))) if mean > 0 else 0
        weights = [
            e.weight * noise.mix.get(e.name, 1.0) * fault.mix.get(e.name, 1.0)
            for e in service.endpoints
        ]
        chosen = rng.choices(service.endpoints, weights, k=count)
        for t_s, endpoint in zip(
            sorted(rng.uniform(0, active) for _ in chosen), chosen, strict=True
        ):
            pod = rng.randrange(service.pods)
            trace = _Trace(self, rng, pod, t_s, start_ns + int(t_s * 1e9))
            trace.serve(endpoint)

    def document(self) -> bytes:
        service = self.service
        resources = []
        for pod in range(service.pods):
            scopes = [
                {"scope": {"name": scope, "version": "2.10.0"}, "spans": spans}
                for (p, scope), spans in sorted(self.spans.items())
                if p == pod
            ]
            if not scopes:
                continue
            pod_name = f"{service.name}-6f9c{pod:x}d7b5-{'xkqzt'[pod % 5]}{pod}w"
            resource = {
                "service.name": service.name,
                "service.version": service.version,
                "service.instance.id": pod_name,
                "k8s.pod.name": pod_name,
                "k8s.namespace.name": "shop",
                "deployment.environment.name": "production",
                "telemetry.sdk.name": "opentelemetry",
                "telemetry.sdk.language": service.language,
                "telemetry.sdk.version": "1.44.0",
            }
            resources.append(
                {
                    "resource": {
                        "attributes": [{"key": k, "value": _value(v)} for k, v in resource.items()]
                    },
                    "scopeSpans": scopes,
                }
            )
        return json.dumps({"resourceSpans": resources}, separators=(",", ":")).encode()


def window(service: Service, fault: Fault, rng: random.Random, start_ns: int) -> bytes:
    """An OTLP/JSON document of one noisy window of ``service`` with ``fault``."""
    w = _Window(service, draw_noise(service, rng), fault, rng)
    w.generate(start_ns)
    return w.document()


# -- expectations and scenarios -----------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """What a scenario must measure; indicator types neither present nor tolerated are absent."""

    level: str
    band: tuple[str, ...]
    present: frozenset[str] = frozenset()
    tolerated: frozenset[str] = frozenset()
    evidence: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    findings: frozenset[str] = frozenset()  # validation codes new since the baseline

    @property
    def absent(self) -> frozenset[str]:
        return frozenset(INDICATOR_TYPES) - self.present - self.tolerated


def expect(
    level: str,
    band: Iterable[str] = (),
    *,
    present: Iterable[str] = (),
    tolerated: Iterable[str] = (),
    evidence: Mapping[str, Mapping[str, Any]] | None = None,
    findings: Iterable[str] = (),
) -> Expect:
    return Expect(
        level,
        tuple(band) or (level,),
        frozenset(present),
        frozenset(tolerated),
        evidence or {},
        frozenset(findings),
    )


@dataclass(frozen=True)
class Scenario:
    name: str
    service: Service
    what: str  # the fault as a clinician would describe it
    fault: Fault
    expect: Expect


HEALTHY_EXPECT = expect("low")


def noise_scenario(seed: int) -> Scenario:
    """A healthy-but-noisy window against a healthy-but-noisy baseline; services take turns."""
    service = SERVICES[seed % len(SERVICES)]
    return Scenario(f"noise-{service.name}", service, "healthy traffic", HEALTHY, HEALTHY_EXPECT)


def _renamer(names: Mapping[int, Mapping[str, str]]) -> Transform:
    """Old names for new ones, per span kind (an instrumentation rolled back)."""

    def transform(rng: random.Random, span: Span) -> None:
        mapping = names.get(span.kind, {})
        span.attributes = {mapping.get(k, k): v for k, v in span.attributes.items()}

    return transform


_OLD_HTTP_SERVER = {
    "http.request.method": "http.method",
    "http.response.status_code": "http.status_code",
    "url.path": "http.target",
    "url.scheme": "http.scheme",
    "server.address": "net.host.name",
    "server.port": "net.host.port",
    "user_agent.original": "http.user_agent",
    "client.address": "http.client_ip",
    "network.protocol.version": "http.flavor",
}
_OLD_CLIENT = {
    "http.request.method": "http.method",
    "http.response.status_code": "http.status_code",
    "url.full": "http.url",
    "server.address": "net.peer.name",
    "server.port": "net.peer.port",
    "network.peer.address": "net.sock.peer.addr",
    "db.system.name": "db.system",
    "db.namespace": "db.name",
    "db.operation.name": "db.operation",
    "db.collection.name": "db.sql.table",
}


def _old_http_semconv(rng: random.Random, span: Span) -> None:
    old = _OLD_HTTP_SERVER if span.kind == SERVER else _OLD_CLIENT
    attrs = {old.get(k, k): v for k, v in span.attributes.items() if k != "db.query.summary"}
    if attrs.get("http.flavor") == "2":
        attrs["http.flavor"] = "2.0"
    span.attributes = attrs


def _old_rpc_semconv(rng: random.Random, span: Span) -> None:
    attrs = span.attributes
    if span.kind != SERVER:
        return
    service, _, method = attrs.pop("rpc.method").rpartition("/")
    code = attrs.pop("rpc.response.status_code")
    span.attributes = {
        "rpc.system": attrs.pop("rpc.system.name"),
        "rpc.service": service,
        "rpc.method": method,
        "rpc.grpc.status_code": {"OK": 0, "INTERNAL": 13, "UNAVAILABLE": 14}[code],
        "net.sock.peer.addr": attrs.pop("network.peer.address"),
        **attrs,
    }


_LEGACY_KAFKA = {
    CONSUMER: {
        "messaging.operation.type": "messaging.operation",
        "messaging.consumer.group.name": "messaging.kafka.consumer.group",
        "messaging.destination.partition.id": "messaging.kafka.destination.partition",
    }
}


def _legacy_kafka(rng: random.Random, span: Span) -> None:
    _renamer(_LEGACY_KAFKA)(rng, span)
    partition = span.attributes.get("messaging.kafka.destination.partition")
    if partition is not None:
        span.attributes["messaging.kafka.destination.partition"] = int(partition)


def _add_key(
    key: str, value: Callable[[random.Random], str], share: float = 1.0, endpoint: str = ""
) -> Transform:
    """A new attribute on a share of the request spans (of one ``endpoint`` when given)."""

    def transform(rng: random.Random, span: Span) -> None:
        wanted = span.name == endpoint if endpoint else span.kind in (SERVER, CONSUMER)
        if wanted and rng.random() < share:
            span.attributes[key] = value(rng)

    return transform


def _retype(key: str, kind: int, convert: Callable[[Any], Any], pods: int = 0) -> Transform:
    """``key`` sent with another value type, on every pod or only on the first ``pods``."""

    def transform(rng: random.Random, span: Span) -> None:
        if span.kind == kind and key in span.attributes and (not pods or span.pod < pods):
            span.attributes[key] = convert(span.attributes[key])

    return transform


def _sessions(rng: random.Random) -> str:
    """A session id; a session makes about 1.5 of the checkout API's requests in a window."""
    return _hex(rng, 32)[:8] + f"-{rng.randrange(int(CHECKOUT.rate * WINDOW_S / 1.5)):06d}"


def _raw_route(rng: random.Random, span: Span) -> None:
    if span.kind == SERVER and "{cartId}" in span.attributes.get("http.route", ""):
        span.attributes["http.route"] = span.attributes["url.path"]


def _quote_in_name(rng: random.Random, span: Span) -> None:
    if span.name.endswith("/GetQuote"):
        span.name = f"{span.name}/q-{rng.randrange(10**8):08d}"


def _fewer_partitions(rng: random.Random, span: Span) -> None:
    partition = span.attributes.get("messaging.destination.partition.id")
    if partition is not None:
        span.attributes["messaging.destination.partition.id"] = str(int(partition) % 4)


def _db_wrapper_typos(rng: random.Random, span: Span) -> None:
    attrs = span.attributes
    if "db.collection.name" in attrs:
        attrs["db.collection"] = attrs.pop("db.collection.name")
        attrs["db.query_text"] = f"{attrs['db.operation.name']} ... FROM {attrs['db.collection']}"


CHECKOUT_OP = "POST /api/checkout"
CART_OP = "GET /api/cart/{cartId}"
GET_QUOTE = "acme.pricing.v1.PriceService/GetQuote"
BATCH_QUOTE = "acme.pricing.v1.PriceService/BatchQuote"
PAYMENTS_TOPIC = "process payments.settled"
REFUNDS_TOPIC = "process refunds.issued"
ERRORS, LATENCY, RETRIES = "error_rate_increase", "latency_degradation", "retry_storm"
DROP, CARDINALITY, MIX, SEMANTIC = (
    "throughput_drop",
    "attribute_cardinality_explosion",
    "span_mix_shift",
    "semantic_drift",
)


def _on_dependency(kind: str, value: bool) -> dict[str, dict[str, Any]]:
    return {kind: {"on_dependency_calls": value}}


def _silent(value: bool) -> dict[str, dict[str, Any]]:
    return {DROP: {"silent": value}}


def _attribute(name: str, *, new_key: bool) -> dict[str, dict[str, Any]]:
    return {CARDINALITY: {"attribute": name, "new_key": new_key}}


def fault_scenarios() -> list[Scenario]:
    """The fault scenarios, expectations written from the fault (see the module docstring).

    Levels follow the contract's formula on the fault's effect on requests: a service whose
    health is 0 with one indicator is MEDIUM (0.46); telemetry-only faults leave health alone
    and stay LOW unless they bring ten new findings; a silent service is at least HIGH.
    """
    s: list[Scenario] = []

    def add(name: str, service: Service, what: str, fault: Fault, want: Expect) -> None:
        s.append(Scenario(name, service, what, fault, want))

    # Errors: the service's own, and a dependency's (propagated, or absorbed by a fallback).
    add(
        "checkout-handler-bug-500s",
        CHECKOUT,
        "a release throws after charging: 45% of checkouts (15% of requests) answer 500",
        Fault(own_errors={CHECKOUT_OP: 0.45}),
        expect("medium", present=[ERRORS], evidence=_on_dependency(ERRORS, False)),
    )
    add(
        "checkout-payment-outage",
        CHECKOUT,
        "the payment provider answers 503 to 60% of charges; one retry after 100 ms (slower"
        " checkouts); 12% of requests fail",
        Fault(dep_errors={"payments": 0.6}),
        expect(
            "medium",
            present=[ERRORS],
            tolerated=[RETRIES, LATENCY],
            evidence=_on_dependency(ERRORS, True),
        ),
    )
    add(
        "checkout-inventory-errors",
        CHECKOUT,
        "inventory answers 500 to 30% of stock checks; checkout and cart updates fail with 502",
        Fault(dep_errors={"inventory": 0.3}),
        expect("medium", present=[ERRORS], evidence=_on_dependency(ERRORS, True)),
    )
    add(
        "checkout-inventory-errors-absorbed",
        CHECKOUT,
        "inventory fails 35% of stock checks; the handler uses cached stock, users see nothing",
        Fault(dep_errors={"inventory": 0.35}, absorbed=frozenset({"inventory"})),
        expect("low", present=[ERRORS], evidence=_on_dependency(ERRORS, True)),
    )
    add(
        "pricing-own-internal-errors",
        PRICING,
        "a nil dereference in GetQuote: 30% of quotes (18% of requests) end INTERNAL",
        Fault(own_errors={GET_QUOTE: 0.3}),
        expect("medium", present=[ERRORS], evidence=_on_dependency(ERRORS, False)),
    )
    add(
        "pricing-rules-db-down",
        PRICING,
        "the rules database refuses half its connections: ListRules and cache misses fail",
        Fault(dep_errors={"pg": 0.5}),
        expect("medium", present=[ERRORS], evidence=_on_dependency(ERRORS, True)),
    )
    add(
        "ledger-db-deadlocks",
        LEDGER,
        "ledger writes deadlock 12% of the time; about 22% of messages fail processing",
        Fault(dep_errors={"INSERT ledger.entries": 0.12, "UPDATE ledger.balances": 0.12}),
        expect("medium", present=[ERRORS], evidence=_on_dependency(ERRORS, True)),
    )
    add(
        "ledger-poison-messages",
        LEDGER,
        "a producer sends malformed events: 25% of settlements fail to parse, before any write",
        Fault(own_errors={PAYMENTS_TOPIC: 0.25}, fail_early=True),
        expect(
            "medium",
            present=[ERRORS],
            tolerated=[MIX],
            evidence=_on_dependency(ERRORS, False),
        ),
    )
    # Latency: one operation, a dependency, a tail.
    add(
        "checkout-pricing-regression",
        CHECKOUT,
        "a CPU regression makes 'price cart' 10x slower (8 -> 80 ms); checkout ~40% slower",
        Fault(slow={"pricing": 10.0}),
        expect(
            "low",
            ("low", "medium"),
            present=[LATENCY],
            evidence=_on_dependency(LATENCY, False),
        ),
    )
    add(
        "checkout-payment-slow",
        CHECKOUT,
        "the payment provider is 4x slower (120 -> 480 ms): every checkout takes ~0.5 s more",
        Fault(slow={"payments": 4.0}),
        expect("medium", present=[LATENCY], evidence=_on_dependency(LATENCY, True)),
    )
    add(
        "pricing-redis-slow",
        PRICING,
        "the Redis cache is 25x slower (0.6 -> 15 ms); quotes still well under the SLO",
        Fault(slow={"redis": 25.0}),
        expect("low", present=[LATENCY], evidence=_on_dependency(LATENCY, True)),
    )
    add(
        "pricing-lock-contention-tail",
        PRICING,
        "12% of GetQuote calls wait 150-300 ms on a lock; the median does not move",
        Fault(tail={GET_QUOTE: (0.12, 150.0, 300.0)}),
        expect(
            "low",
            ("low", "medium"),
            present=[LATENCY],
            evidence=_on_dependency(LATENCY, False),
        ),
    )
    add(
        "ledger-missing-index",
        LEDGER,
        "a dropped index makes the balance UPDATE 25x slower (4 -> 100 ms) on every message",
        Fault(slow={"UPDATE ledger.balances": 25.0}),
        expect("medium", present=[LATENCY], evidence=_on_dependency(LATENCY, True)),
    )
    # Silence: no spans at all, a trickle, a crash early in the window.
    for service in SERVICES:
        add(
            f"{service.name}-zero-spans",
            service,
            "the service stopped: the window holds no span of it at all",
            Fault(rate=0.0),
            expect("high", ("high", "critical"), present=[DROP], evidence=_silent(True)),
        )
    add(
        "checkout-near-silent",
        CHECKOUT,
        "the ingress sends 3% of the traffic (most pods gone): a few requests over the minute",
        Fault(rate=0.03),
        expect("high", ("high", "critical"), present=[DROP], evidence=_silent(True)),
    )
    add(
        "ledger-near-silent",
        LEDGER,
        "the consumer is stuck on a rebalance: 5% of the usual messages trickle through",
        Fault(rate=0.05),
        expect("high", ("high", "critical"), present=[DROP], evidence=_silent(True)),
    )
    add(
        "pricing-dies-after-8s",
        PRICING,
        "every pod crashes 8 s into the minute and nothing answers for the remaining 52 s",
        Fault(stop_after_s=8.0),
        expect("high", ("high", "critical"), present=[DROP], evidence=_silent(True)),
    )
    # Throughput drops.
    add(
        "checkout-traffic-40pct",
        CHECKOUT,
        "a DNS change sends 60% of users elsewhere: requests fall to 40%",
        Fault(rate=0.4),
        expect("low", ("low", "medium"), present=[DROP], evidence=_silent(False)),
    )
    add(
        "pricing-traffic-quarter",
        PRICING,
        "three of four callers lost their route to the service: requests fall to 25%",
        Fault(rate=0.25),
        expect("medium", present=[DROP], evidence=_silent(False)),
    )
    add(
        "ledger-partitions-lost",
        LEDGER,
        "the consumer holds 4 of 12 partitions after a failed rebalance: a third of the messages",
        Fault(rate=1 / 3, transform=_fewer_partitions),
        expect("low", ("low", "medium"), present=[DROP], evidence=_silent(False)),
    )
    # Retry storms: client spans multiply while requests drop.
    add(
        "checkout-payment-retry-storm",
        CHECKOUT,
        "payments time out (2 s) on 70% of attempts; 4 attempts each; users give up: 45% traffic",
        Fault(
            rate=0.45,
            dep_errors={"payments": 0.7},
            timeout_ms={"payments": 2000.0},
            attempts={"payments": 4},
        ),
        expect(
            "high",
            ("high", "critical"),
            present=[RETRIES, DROP, ERRORS, LATENCY],
            tolerated=[MIX],
            evidence=_silent(False),
        ),
    )
    add(
        "pricing-redis-retry-fanout",
        PRICING,
        "Redis times out (50 ms) on 70% of calls; the client tries 6 times, then the database;"
        " callers shed half the load",
        Fault(
            rate=0.5,
            dep_errors={"redis": 0.7},
            timeout_ms={"redis": 50.0},
            attempts={"redis": 6},
        ),
        expect(
            "high",
            ("high", "critical"),
            present=[RETRIES, DROP, ERRORS, LATENCY],
            tolerated=[MIX],
            evidence=_silent(False),
        ),
    )
    add(
        "checkout-inventory-retry-storm",
        CHECKOUT,
        "inventory answers 503 to half the attempts; up to 4 attempts, then cached stock;"
        " traffic halves",
        Fault(
            rate=0.5,
            dep_errors={"inventory": 0.5},
            attempts={"inventory": 4},
            absorbed=frozenset({"inventory"}),
        ),
        expect(
            "low",
            ("low", "medium"),
            present=[RETRIES, DROP, ERRORS],
            tolerated=[MIX, LATENCY],
            evidence=_silent(False),
        ),
    )
    # New unbounded keys and exploding values.
    add(
        "checkout-session-id-added",
        CHECKOUT,
        "a release puts session.id on every request span (about 1.5 requests per session)",
        Fault(transform=_add_key("session.id", _sessions)),
        expect(
            "low",
            present=[CARDINALITY],
            tolerated=[SEMANTIC],
            evidence=_attribute("session.id", new_key=True),
        ),
    )
    add(
        "pricing-user-id-on-quotes",
        PRICING,
        "user.id from 50k users on the 70% of quote requests made by signed-in users",
        Fault(transform=_add_key("user.id", lambda rng: f"u{rng.randrange(50_000):05d}", 0.7)),
        expect(
            "low",
            present=[CARDINALITY],
            tolerated=[SEMANTIC],
            evidence=_attribute("user.id", new_key=True),
        ),
    )
    add(
        "ledger-refund-request-id",
        LEDGER,
        "refund events gain a unique refund.request_id (about 110 refunds a minute)",
        Fault(
            transform=_add_key(
                "refund.request_id", lambda rng: _hex(rng, 64), endpoint=REFUNDS_TOPIC
            )
        ),
        expect(
            "low",
            present=[CARDINALITY],
            tolerated=[SEMANTIC],
            evidence=_attribute("refund.request_id", new_key=True),
        ),
    )
    add(
        "checkout-raw-path-as-route",
        CHECKOUT,
        "a router upgrade loses the templates: http.route carries the raw path with cart ids",
        Fault(transform=_raw_route),
        expect(
            "low",
            present=[CARDINALITY],
            tolerated=[SEMANTIC],
            evidence=_attribute("http.route", new_key=False),
        ),
    )
    add(
        "pricing-span-name-explosion",
        PRICING,
        "GetQuote server spans are named with the quote id appended: one name per request",
        Fault(transform=_quote_in_name),
        expect(
            "low",
            ("low", "medium"),
            present=[CARDINALITY],
            tolerated=[MIX, SEMANTIC],
            evidence={CARDINALITY: {"attribute": "(span name)"}},
        ),
    )
    # Value types changing on a share of the spans.
    add(
        "checkout-canary-status-as-string",
        CHECKOUT,
        "the canary pod (1 of 4) sends http.response.status_code as a string",
        Fault(transform=_retype("http.response.status_code", SERVER, str, pods=1)),
        expect("low", present=[SEMANTIC], findings=["type_mismatch"]),
    )
    add(
        "pricing-redis-port-as-string",
        PRICING,
        "one pod's Redis client sends server.port as a string",
        Fault(transform=_retype("server.port", CLIENT, str, pods=1)),
        expect("low", present=[SEMANTIC], findings=["type_mismatch"]),
    )
    add(
        "ledger-body-size-as-double",
        LEDGER,
        "an SDK upgrade sends messaging.message.body.size as a double on consumer spans",
        Fault(transform=_retype("messaging.message.body.size", CONSUMER, float)),
        expect("low", present=[SEMANTIC], findings=["type_mismatch"]),
    )
    # Renamed, deprecated and misspelt attributes.
    add(
        "checkout-old-http-semconv",
        CHECKOUT,
        "a rollback to old instrumentation: pre-1.20 HTTP, net.* and db.* names everywhere",
        Fault(transform=_old_http_semconv),
        expect("medium", present=[SEMANTIC], findings=["deprecated"]),
    )
    add(
        "pricing-old-rpc-semconv",
        PRICING,
        "the gRPC instrumentation reverts to rpc.system, rpc.service, rpc.grpc.status_code",
        Fault(transform=_old_rpc_semconv),
        expect("low", present=[SEMANTIC], findings=["deprecated"]),
    )
    add(
        "ledger-legacy-kafka-names",
        LEDGER,
        "a Kafka library downgrade: messaging.operation and messaging.kafka.* names",
        Fault(transform=_legacy_kafka),
        expect("low", present=[SEMANTIC], findings=["deprecated"]),
    )
    add(
        "checkout-db-wrapper-typos",
        CHECKOUT,
        "a hand-written DB wrapper sends db.collection and db.query_text (not in the conventions)",
        Fault(transform=_db_wrapper_typos),
        expect("low", present=[SEMANTIC], findings=["missing_attribute"]),
    )
    # Span mix shifts.
    add(
        "checkout-cart-crawler",
        CHECKOUT,
        "a crawler reads carts: cart reads go from ~47% to ~80% of requests, 1.6x the traffic",
        Fault(rate=1.6, mix={CART_OP: 5.0}),
        expect("low", present=[MIX]),
    )
    add(
        "pricing-batch-migration",
        PRICING,
        "callers move to BatchQuote: its share goes from 10% to ~45%, GetQuote's falls",
        Fault(mix={BATCH_QUOTE: 6.0, GET_QUOTE: 0.4}),
        expect("low", present=[MIX]),
    )
    add(
        "ledger-refund-surge",
        LEDGER,
        "a refund campaign: refunds go from 15% to ~55% of the messages",
        Fault(mix={REFUNDS_TOPIC: 7.0}),
        expect("low", present=[MIX]),
    )
    # Mixed faults.
    add(
        "checkout-bad-release",
        CHECKOUT,
        "a release fails 40% of checkouts, makes cart reads' own work 5x slower, adds session.id",
        Fault(
            own_errors={CHECKOUT_OP: 0.4},
            slow={CART_OP: 5.0},
            transform=_add_key("session.id", _sessions),
        ),
        expect(
            "medium",
            ("medium", "high"),
            present=[ERRORS, LATENCY, CARDINALITY],
            tolerated=[SEMANTIC],
        ),
    )
    add(
        "pricing-db-outage-cascade",
        PRICING,
        "the rules database fails 90% of queries after 1 s timeouts; callers shed half the load",
        Fault(rate=0.5, dep_errors={"pg": 0.9}, timeout_ms={"pg": 1000.0}),
        expect(
            "medium",
            ("medium", "high"),
            present=[ERRORS, LATENCY, DROP],
            tolerated=[MIX],
            evidence={**_on_dependency(ERRORS, True), **_silent(False)},
        ),
    )
    add(
        "ledger-poison-and-legacy-names",
        LEDGER,
        "malformed events fail 25% of settlements while a library downgrade renames attributes",
        Fault(own_errors={PAYMENTS_TOPIC: 0.25}, fail_early=True, transform=_legacy_kafka),
        expect(
            "high",
            ("medium", "high"),
            present=[ERRORS, SEMANTIC],
            tolerated=[MIX],
            findings=["deprecated"],
        ),
    )
    add(
        "checkout-canary-slow-and-typed",
        CHECKOUT,
        "a canary (1 pod of 4) adds 100-300 ms to its checkouts and sends the status code as a"
        " string",
        Fault(
            tail={CHECKOUT_OP: (0.25, 100.0, 300.0)},
            transform=_retype("http.response.status_code", SERVER, str, pods=1),
        ),
        expect("low", ("low", "medium"), present=[LATENCY, SEMANTIC], findings=["type_mismatch"]),
    )
    return s


# -- measuring and judging ----------------------------------------------------------------------


def documents(scenario: Scenario, seed: int) -> tuple[bytes, bytes]:
    """(baseline, current) OTLP/JSON documents: both noisy, the current one with the fault."""
    rng = random.Random(f"heldout:{seed}:{scenario.name}")
    baseline = window(scenario.service, HEALTHY, rng, BASELINE_START_NS)
    return baseline, window(scenario.service, scenario.fault, rng, CURRENT_START_NS)


def measure_documents(service: str, baseline: bytes, current: bytes) -> tuple[Measurement, str]:
    """As ``weavergen regeneration measure --service S --spans CURRENT --baseline BASELINE``.

    The CLI stops with an error when the current file holds no span of the service; the
    operator measures such a window as an empty summary of the charter's service
    (``k8s/cluster_target.py``), and so does this, noting what the CLI said.
    """
    note = ""
    try:
        now = pick_service(summarise([(current, CONTENT_TYPE)]), service, "spans file")
    except ValueError as err:
        note = f"the CLI stops: {err}"
        now = ServiceSummary(service)
    before = pick_service(summarise([(baseline, CONTENT_TYPE)]), now.service, "baseline file")
    return measure(now, before), note


@dataclass(frozen=True)
class Outcome:
    """One scenario measured, and how it compares with its expectation."""

    scenario: Scenario
    seed: int
    measurement: Measurement
    note: str

    @property
    def level(self) -> str | None:
        return self.measurement.entropy_level

    @property
    def spans(self) -> int:
        return self.measurement.span_count + self.measurement.baseline_span_count

    @property
    def fired(self) -> dict[str, dict[str, Any]]:
        return {i.type: i.evidence for i in self.measurement.drift_indicators}

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(f.code for f in self.measurement.validation_errors)

    def evidence_checks(self) -> list[tuple[str, Any, Any]]:
        """(what, measured, expected) of each evidence expectation on an indicator that fired."""
        fired = self.fired
        return [
            (f"{kind}.{key}", fired[kind].get(key), value)
            for kind, checks in self.scenario.expect.evidence.items()
            if kind in fired
            for key, value in checks.items()
        ]

    def problems(self) -> list[str]:
        want, fired = self.scenario.expect, self.fired
        problems = []
        if self.level not in want.band:
            score = self.measurement.entropy_score
            problems.append(f"level {self.level} ({score}), expected {'/'.join(want.band)}")
        problems += [f"missed {kind}" for kind in sorted(want.present - fired.keys())]
        problems += [f"false {kind}" for kind in sorted(want.absent & fired.keys())]
        problems += [
            f"{what} = {got!r}, expected {value!r}"
            for what, got, value in self.evidence_checks()
            if got != value
        ]
        if self.codes != want.findings:
            problems.append(f"new findings {sorted(self.codes)}, expected {sorted(want.findings)}")
        return problems


Case = tuple[int | None, int]
"""(index of a fault scenario, or None for a noise window; seed): picklable, for workers."""


def scenario_of(case: Case) -> Scenario:
    index, seed = case
    return noise_scenario(seed) if index is None else fault_scenarios()[index]


def _measure_case(case: Case) -> tuple[Measurement, str]:
    scenario = scenario_of(case)
    baseline, current = documents(scenario, case[1])
    return measure_documents(scenario.service.name, baseline, current)


def run(scenario: Scenario, seed: int) -> Outcome:
    """Generate a scenario's two windows and measure them through the CLI's code path."""
    baseline, current = documents(scenario, seed)
    return Outcome(scenario, seed, *measure_documents(scenario.service.name, baseline, current))


def run_all(cases: list[Case], jobs: int) -> list[Outcome]:
    """Every case, over ``jobs`` processes; the outcomes do not depend on how many."""
    if jobs <= 1:
        results = [_measure_case(case) for case in cases]
    else:
        with ProcessPoolExecutor(jobs) as pool:
            results = list(pool.map(_measure_case, cases, chunksize=4))
    return [
        Outcome(scenario_of(c), c[1], m, note) for c, (m, note) in zip(cases, results, strict=True)
    ]


# -- figures ------------------------------------------------------------------------------------


def _share(hits: int, total: int) -> str:
    return f"{hits}/{total} ({hits / total:.1%})" if total else "0/0"


def indicator_table(outcomes: list[Outcome]) -> list[str]:
    """Per type: recall over the faults that require it, precision over every window.

    A tolerated type neither counts for nor against; a forbidden one that fires is a false alarm.
    """
    lines = [
        f"  {'type':<33}{'required':>9}{'found':>7}{'recall':>8}"
        f"{'false (faults/noise)':>22}{'precision':>11}"
    ]
    for kind in INDICATOR_TYPES:
        required = [o for o in outcomes if kind in o.scenario.expect.present]
        found = sum(kind in o.fired for o in required)
        false_faults = sum(
            kind in o.fired and kind in o.scenario.expect.absent
            for o in outcomes
            if not o.scenario.name.startswith("noise-")
        )
        false_noise = sum(kind in o.fired for o in outcomes if o.scenario.name.startswith("noise-"))
        alarms = found + false_faults + false_noise
        recall = f"{found / len(required):.0%}" if required else "-"
        precision = f"{found / alarms:.0%}" if alarms else "-"
        lines.append(
            f"  {kind:<33}{len(required):>9}{found:>7}{recall:>8}"
            f"{f'{false_faults}/{false_noise}':>22}{precision:>11}"
        )
    return lines


def _kind(problem: str) -> str:
    """What kind of miss a problem is: a level, an indicator, a piece of evidence, findings."""
    if problem.startswith("level "):
        return "level out of band"
    if problem.startswith("new findings"):
        return "new findings differ"
    what, is_evidence, _ = problem.partition(" = ")
    return f"{what} wrong" if is_evidence else problem


def tally(outcomes: list[Outcome]) -> list[str]:
    """Misses by kind, fault runs and noise windows apart: where to look first."""
    counts: dict[str, list[int]] = {}
    for outcome in outcomes:
        noise = outcome.scenario.name.startswith("noise-")
        for kind in {_kind(p) for p in outcome.problems()}:
            counts.setdefault(kind, [0, 0])[noise] += 1
    ranked = sorted(counts.items(), key=lambda item: (-sum(item[1]), item[0]))
    return [f"  {kind:<52}{faults:>4} faults {noise:>4} noise" for kind, (faults, noise) in ranked]


def describe(outcome: Outcome) -> list[str]:
    """A miss with the measurement's evidence, for the report."""
    m, s = outcome.measurement, outcome.scenario
    h = m.health
    lines = [f"  {outcome.seed} {s.name}: {s.what}"]
    if h is not None:
        lines.append(
            f"      measured {m.entropy_level} {m.entropy_score}, health {h.score:.3f} (errors "
            f"{h.errors:.2f} burn {h.error_burn:.1f}, latency {h.latency:.2f} burn "
            f"{h.latency_burn:.1f}, throughput {h.throughput:.2f} ratio {h.throughput_ratio:.2f})"
            f", {m.span_count} spans vs {m.baseline_span_count}"
        )
    else:
        lines.append(f"      measured {m.status}: {m.reason}")
    if outcome.note:
        lines.append(f"      note: {outcome.note}")
    lines += [f"      - {problem}" for problem in outcome.problems()]
    for indicator in m.drift_indicators:
        evidence = json.dumps(indicator.evidence, separators=(",", ":"), default=str)
        lines.append(f"      {indicator.type} {indicator.severity:.2f} {evidence[:400]}")
    lines += [
        f"      finding {f.code} {f.attribute} ({f.count} spans)" for f in m.validation_errors
    ]
    return lines


def report(faults: list[Outcome], noise: list[Outcome], timing: Mapping[str, float]) -> str:
    exact = sum(o.level == o.scenario.expect.level for o in faults)
    banded = sum(o.level in o.scenario.expect.band for o in faults)
    checks = [check for o in faults for check in o.evidence_checks()]
    codes = sum(o.codes == o.scenario.expect.findings for o in faults)
    alarms = [o for o in noise if o.problems()]
    spans = sum(o.spans for o in faults + noise)
    lines = [
        f"held-out scenarios: {len(faults)} fault runs, {len(noise)} noise windows, "
        f"{spans:,} spans (baselines included)",
        "fault scenarios",
        f"  level exact              {_share(exact, len(faults))}",
        f"  level within band        {_share(banded, len(faults))}",
        f"  evidence as expected     {_share(sum(g == w for _, g, w in checks), len(checks))}"
        " (on indicators that fired)",
        f"  new findings as expected {_share(codes, len(faults))}",
        "noise windows (expected: LOW, no indicator, no new finding)",
        f"  level low                {_share(sum(o.level == 'low' for o in noise), len(noise))}",
        f"  false-alarm windows      {_share(len(alarms), len(noise))}",
        "indicators",
        *indicator_table(faults + noise),
        "misses by kind",
        *tally(faults + noise),
        f"misses ({sum(bool(o.problems()) for o in faults)} fault runs, {len(alarms)} noise):",
    ]
    for outcome in faults + noise:
        if outcome.problems():
            lines += describe(outcome)
    lines.append(
        "time: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in timing.items())
        + f" ({spans / timing['total']:,.0f} spans/s end to end)"
    )
    return "\n".join(lines)


def seeds(spec: str) -> list[int]:
    """``9001-9044,9100`` -> the seeds it names."""
    out: list[int] = []
    for part in spec.split(","):
        low, _, high = part.partition("-")
        out += range(int(low), int(high or low) + 1)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--seeds",
        default=DEFAULT_FAULT_SEEDS,
        help="fault seeds; the n-th runs the (n mod count)-th scenario (default: the held-out set)",
    )
    parser.add_argument("--noise-seeds", default=DEFAULT_NOISE_SEEDS, help="noise window seeds")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes")
    args = parser.parse_args(argv)
    count = len(fault_scenarios())
    started = time.perf_counter()
    faults = run_all([(i % count, seed) for i, seed in enumerate(seeds(args.seeds))], args.jobs)
    middle = time.perf_counter()
    noise = run_all([(None, seed) for seed in seeds(args.noise_seeds)], args.jobs)
    ended = time.perf_counter()
    timing = {"faults": middle - started, "noise": ended - middle, "total": ended - started}
    print(report(faults, noise, timing))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
