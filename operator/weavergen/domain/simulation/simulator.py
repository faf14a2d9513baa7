"""EntropySimulator: synthetic services with known faults, emitting their spans.

A synthetic system has a few operations (HTTP handlers, database calls, message publishes), each
with a log-normal latency, a baseline error rate and a semantic-convention attribute template.
Faults change the generating process — error rate, latency, throughput, retries, attribute
renames and type changes, cardinality, operation mix — and the simulator knows the ground truth
they imply: the true health (the health formula applied to the true parameters), which indicator
types the faults must raise, and how many new validation findings they introduce. Tests and the
simulation engine measure the emitted spans with the real Measure code and compare.

Spans come out as ``SpanChunk`` columns (fast, for thousands of systems) or as OTLP/JSON and
OTLP/protobuf requests (the same spans, for the receiver and the CLI). ``sample_traces`` thins
them as a consistent probability sampler upstream (the OpenTelemetry Collector's) would.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from weavergen.api.charter import EntropyLevel
from weavergen.domain.measure.entropy import DEFAULT_THRESHOLDS, Thresholds, entropy_score
from weavergen.domain.measure.health import (
    LATENCY_MARGIN,
    LATENCY_QUANTILE,
    Objectives,
    burn_health,
    combine,
)
from weavergen.domain.measure.health import throughput_health as throughput_health_of
from weavergen.domain.measure.otlp import (
    ENTRY_KINDS,
    THRESHOLD_DIGITS,
    Attribute,
    SpanChunk,
    adjusted_count,
    hash_trace_ids,
    splitmix64,
    threshold_of,
)
from weavergen.domain.measure.semconv import ObservedAttribute, Registry, validate
from weavergen.domain.measure.summary import ServiceSummary

# Attributes an operation of each kind carries, as (key, kind, values); "{status}" is filled
# from the span's error flag. Values are drawn uniformly from the tuple.
TEMPLATES: dict[str, list[tuple[str, str, tuple[Any, ...]]]] = {
    "http": [
        ("http.request.method", "string", ("GET", "POST")),
        ("http.route", "string", ("{route}",)),
        ("http.response.status_code", "int", ("{status}",)),
        ("url.scheme", "string", ("https",)),
        ("server.address", "string", ("api.internal",)),
        ("server.port", "int", (8443,)),
        ("app.region", "string", ("eu-west", "eu-north", "us-east", "us-west", "ap-south")),
    ],
    "db": [
        ("db.system.name", "string", ("postgresql",)),
        ("db.operation.name", "string", ("SELECT", "UPDATE")),
        ("db.collection.name", "string", ("orders", "customers")),
        ("server.address", "string", ("db.internal",)),
        ("server.port", "int", (5432,)),
        ("app.region", "string", ("eu-west", "eu-north", "us-east", "us-west", "ap-south")),
    ],
    "messaging": [
        ("messaging.system", "string", ("kafka",)),
        ("messaging.operation.name", "string", ("publish",)),
        ("messaging.destination.name", "string", ("events",)),
        ("server.address", "string", ("kafka.internal",)),
        ("app.region", "string", ("eu-west", "eu-north", "us-east", "us-west", "ap-south")),
    ],
}

# A library upgrade renames attributes within their namespace and changes a type: the drifted
# names are not in the registry (missing_attribute) or are deprecated ones.
RENAMES = {
    "http.response.status_code": "http.status_code",  # deprecated name
    "http.request.method": "http.method",  # deprecated name
    "url.scheme": "url.schema",  # typo: missing_attribute
    "server.port": "server.portnumber",
    "db.system.name": "db.system_name",
    "db.operation.name": "db.operation",  # deprecated name
    "db.collection.name": "db.collection",
    "messaging.operation.name": "messaging.operation.kind",
    "messaging.destination.name": "messaging.destination",
    "http.route": "http.path",
}
MISTYPES = {"http.response.status_code": "string", "server.port": "string"}

SPAN_KINDS = {"http": 2, "db": 3, "messaging": 4}  # server, client, producer
# Client and producer spans are children of the request that made them; exports give them a
# parent so a decoder counts only the server spans as requests, as the summaries here do.
CALLER_SPAN_ID = bytes.fromhex("00000000000000ff")
DEPENDENCY_KINDS = frozenset({"db", "messaging"})

FAULT_KINDS = (
    "error_rate",
    "latency",
    "throughput",
    "retry_storm",
    "semantic",
    "cardinality",
    "span_mix",
)
INDICATOR_OF = {
    "error_rate": "error_rate_increase",
    "latency": "latency_degradation",
    "throughput": "throughput_drop",
    "retry_storm": "retry_storm",
    "semantic": "semantic_drift",
    "cardinality": "attribute_cardinality_explosion",
    "span_mix": "span_mix_shift",
}


@dataclass(frozen=True)
class Operation:
    name: str
    kind: str
    weight: float
    median_ms: float
    sigma: float
    error_rate: float


@dataclass(frozen=True)
class SyntheticSystem:
    """A service's generating process in its healthy state."""

    service: str
    operations: tuple[Operation, ...]
    spans_per_s: float
    window_s: float = 60.0
    availability: float = 0.99


@dataclass(frozen=True)
class Faults:
    """What is wrong with a system now; the defaults mean healthy."""

    error_rate: float | None = None  # service-wide error rate
    server_error_rate: float | None = None  # the service's own operations only
    dependency_error_rate: float | None = None  # its calls to dependencies only
    latency_factor: float = 1.0
    dependency_latency_factor: float = 1.0
    throughput_ratio: float = 1.0
    retry_share: float = 0.0
    renamed: tuple[str, ...] = ()
    mistyped: tuple[str, ...] = ()
    cardinality_attribute: str | None = None
    mix_operation: str | None = None
    mix_factor: float = 1.0
    # Ordinary noise, which must raise nothing: multiplicative jitter on each parameter.
    noise: float = 0.0

    def kinds(self) -> set[str]:
        kinds = set()
        if {self.error_rate, self.server_error_rate, self.dependency_error_rate} != {None}:
            kinds.add("error_rate")
        if self.latency_factor != 1.0 or self.dependency_latency_factor != 1.0:
            kinds.add("latency")
        if self.throughput_ratio != 1.0:
            kinds.add("throughput")
        if self.retry_share:
            kinds.add("retry_storm")
        if self.renamed or self.mistyped:
            kinds.add("semantic")
        if self.cardinality_attribute:
            kinds.add("cardinality")
        if self.mix_operation:
            kinds.add("span_mix")
        return kinds


@dataclass(frozen=True)
class GroundTruth:
    health: float
    indicators: frozenset[str]
    validation_errors: int
    entropy: float
    level: EntropyLevel


@dataclass(frozen=True)
class Scenario:
    system: SyntheticSystem
    faults: Faults
    truth: GroundTruth
    objectives: Objectives
    seed: int


def _lognormal_sf(threshold_ms: float, median_ms: float, sigma: float) -> float:
    """P(latency > threshold) for a log-normal latency."""
    z = (math.log(threshold_ms) - math.log(median_ms)) / sigma
    return 0.5 * math.erfc(z / math.sqrt(2))


def _mixture_quantile(ops: tuple[Operation, ...], q: float) -> float:
    """The q-quantile (ms) of the weighted mixture of the operations' latencies (bisection)."""
    total = sum(op.weight for op in ops)
    lo, hi = 1e-3, 1e7
    for _ in range(100):
        mid = math.sqrt(lo * hi)
        above = sum(op.weight * _lognormal_sf(mid, op.median_ms, op.sigma) for op in ops) / total
        lo, hi = (mid, hi) if above > 1 - q else (lo, mid)
    return math.sqrt(lo * hi)


class EntropySimulator:
    """Makes systems, faults with known consequences, and their spans, from one seed."""

    def __init__(self, seed: int = 0, registry: Registry | None = None) -> None:
        self.rng = np.random.default_rng(seed)
        self.registry = registry or Registry.builtin()

    # -- systems and truth ----------------------------------------------------------------

    def system(self, name: str | None = None) -> SyntheticSystem:
        rng = self.rng
        count = int(rng.integers(3, 8))
        # A service serves (http) and calls at least one dependency (a database or a queue).
        kinds = ["http", str(rng.choice(["db", "messaging"]))]
        kinds += [str(k) for k in rng.choice(["http", "db", "messaging"], count - 2)]
        operations = tuple(
            Operation(
                name=f"{kind.upper()} op{i}" if kind != "http" else f"GET /api/v1/op{i}",
                kind=kind,
                weight=float(rng.uniform(0.5, 3.0)),
                median_ms=float(rng.uniform(2, 80)),
                sigma=float(rng.uniform(0.25, 0.6)),
                error_rate=float(rng.uniform(0.0005, 0.004)),
            )
            for i, kind in enumerate(kinds)
        )
        return SyntheticSystem(
            service=name or f"svc-{int(rng.integers(1_000_000_000)):09d}",
            operations=operations,
            spans_per_s=float(rng.uniform(40, 80)),
        )

    def objectives(self, system: SyntheticSystem) -> Objectives:
        """Explicit objectives, so the ground truth and the measurement share the threshold:
        the default's, the p99 of the system's requests (its server operations)."""
        p99 = _mixture_quantile(_requests(system.operations), LATENCY_QUANTILE)
        return Objectives(
            availability=system.availability,
            latency_threshold_ms=LATENCY_MARGIN * p99,
            latency_target=0.99,
        )

    def truth(
        self,
        system: SyntheticSystem,
        faults: Faults,
        objectives: Objectives,
        thresholds: Thresholds = DEFAULT_THRESHOLDS,
    ) -> GroundTruth:
        ops = self._faulted_operations(system, faults)
        total = sum(op.weight for op in ops)
        error_rate = sum(op.weight * op.error_rate for op in ops) / total
        threshold = objectives.latency_threshold_ms or 0.0
        # The latency objective is about requests: the server operations' spans.
        requests = _requests(tuple(ops))
        slow = sum(
            op.weight * _lognormal_sf(threshold, op.median_ms, op.sigma) for op in requests
        ) / sum(op.weight for op in requests)
        errors = burn_health(error_rate / (1 - objectives.availability))
        latency = burn_health(slow / (1 - objectives.latency_target))
        # Retries are spans too: they count in the measured span rate.
        throughput = throughput_health_of(faults.throughput_ratio * (1 + faults.retry_share))
        health = combine(errors, latency, throughput)
        indicators = frozenset(INDICATOR_OF[k] for k in faults.kinds())
        validation = self._new_findings(system, faults)
        score = entropy_score(health, len(indicators), validation)
        return GroundTruth(health, indicators, validation, score, thresholds.level(score))

    def _faulted_operations(self, system: SyntheticSystem, faults: Faults) -> list[Operation]:
        ops = []
        for op in system.operations:
            weight = op.weight * (faults.mix_factor if op.name == faults.mix_operation else 1.0)
            dependency = op.kind in DEPENDENCY_KINDS
            specific = faults.dependency_error_rate if dependency else faults.server_error_rate
            error = next(e for e in (specific, faults.error_rate, op.error_rate) if e is not None)
            latency = faults.latency_factor * (
                faults.dependency_latency_factor if dependency else 1.0
            )
            ops.append(
                replace(op, weight=weight, error_rate=error, median_ms=op.median_ms * latency)
            )
        return ops

    def _observed(self, system: SyntheticSystem, faults: Faults) -> dict[str, ObservedAttribute]:
        """Noise-free attribute observations of a system (to count validation findings)."""
        observed: dict[str, ObservedAttribute] = {}
        for op in system.operations:
            for key, kind, values in self._template(op, faults):
                entry = observed.setdefault(key, ObservedAttribute(0, {}, {}))
                entry.count += 100
                entry.value_types[kind] = entry.value_types.get(kind, 0) + 100
                for value in values:
                    text = str(200 if value == "{status}" else value)
                    entry.values[text] = entry.values.get(text, 0) + 1
        return observed

    def _new_findings(self, system: SyntheticSystem, faults: Faults) -> int:
        known = {
            (f.code, f.attribute) for f in validate(self._observed(system, Faults()), self.registry)
        }
        now = validate(self._observed(system, faults), self.registry)
        return sum((f.code, f.attribute) not in known for f in now)

    def _template(self, op: Operation, faults: Faults) -> list[tuple[str, str, tuple[Any, ...]]]:
        out = []
        for key, kind, values in TEMPLATES[op.kind]:
            out.append(
                (
                    RENAMES[key] if key in faults.renamed else key,
                    MISTYPES[key] if key in faults.mistyped else kind,
                    values,
                )
            )
        return out

    # -- scenarios ------------------------------------------------------------------------

    def faults_for(self, system: SyntheticSystem, kinds: set[str]) -> Faults:
        """Faults of the given kinds, with magnitudes well past each detector's effect size."""
        rng = self.rng
        present = {key for op in system.operations for key, _, _ in TEMPLATES[op.kind]}
        renamable = sorted(present & set(RENAMES))
        faults = Faults()
        if "error_rate" in kinds:
            faults = replace(faults, error_rate=float(rng.choice([0.04, 0.08, 0.15, 0.3, 0.45])))
        if "latency" in kinds:
            faults = replace(faults, latency_factor=float(rng.uniform(2.0, 5.0)))
        if "throughput" in kinds:
            # At most 0.35, so that with retries (which add spans) the rate still halves.
            faults = replace(faults, throughput_ratio=float(rng.uniform(0.15, 0.35)))
        if "retry_storm" in kinds:
            faults = replace(faults, retry_share=float(rng.uniform(0.15, 0.4)))
        if "semantic" in kinds:
            k = int(rng.integers(1, len(renamable) + 1))
            renamed = tuple(str(x) for x in rng.choice(renamable, k, replace=False))
            mistyped = tuple(
                m for m in MISTYPES if m in present and m not in renamed and rng.random() < 0.5
            )
            faults = replace(faults, renamed=renamed, mistyped=mistyped)
        if "cardinality" in kinds:
            faults = replace(faults, cardinality_attribute="app.region")
        if "span_mix" in kinds:
            op = system.operations[int(rng.integers(len(system.operations)))]
            faults = replace(faults, mix_operation=op.name, mix_factor=float(rng.uniform(6, 12)))
        return faults

    def scenario(
        self,
        level: EntropyLevel,
        *,
        margin: float = 0.0,
        thresholds: Thresholds = DEFAULT_THRESHOLDS,
        attempts: int = 10_000,
    ) -> Scenario:
        """A system whose true entropy is at ``level``, at least ``margin`` from its edges."""
        edges = (thresholds.medium, thresholds.high, thresholds.critical)
        for _ in range(attempts):
            system = self.system()
            objectives = self.objectives(system)
            n_kinds = (
                int(self.rng.integers(0, 6))
                if level != EntropyLevel.LOW
                else int(self.rng.integers(0, 2))
            )
            kinds = {str(k) for k in self.rng.choice(FAULT_KINDS, n_kinds, replace=False)}
            faults = self.faults_for(system, kinds)
            truth = self.truth(system, faults, objectives, thresholds)
            if truth.level == level and all(abs(truth.entropy - e) >= margin for e in edges):
                seed = int(self.rng.integers(2**31))
                return Scenario(system, faults, truth, objectives, seed)
        raise RuntimeError(f"no {level.value} scenario found in {attempts} attempts")

    def healthy_noisy(self) -> Scenario:
        """A healthy system with ordinary noise: jitter that must not raise any indicator."""
        system = self.system()
        objectives = self.objectives(system)
        faults = Faults(noise=0.05)
        truth = self.truth(system, Faults(), objectives)
        return Scenario(system, faults, truth, objectives, int(self.rng.integers(2**31)))

    # -- spans ----------------------------------------------------------------------------

    def chunks(
        self, system: SyntheticSystem, faults: Faults, seed: int, window_s: float | None = None
    ) -> Iterator[SyntheticChunk]:
        """The spans of one window, as one chunk per operation."""
        rng = np.random.default_rng(seed)
        window = window_s or system.window_s
        noise = faults.noise

        def jitter(spread: float = noise) -> float:
            return float(rng.uniform(1 - spread, 1 + spread)) if noise else 1.0

        ops = self._faulted_operations(system, faults)
        total_weight = sum(op.weight for op in ops)
        # A mix shift moves spans between operations at a steady rate of *requests* (entry
        # spans): more calls to a database per request are more spans, not fewer requests.
        requests_share = _entry_share(system.operations) / (_entry_share(ops) or 1.0)
        expected = (
            system.spans_per_s
            * window
            * faults.throughput_ratio
            * (requests_share or 1.0)
            * jitter(2 * noise)
        )
        start_ns = 1_700_000_000_000_000_000 + int(rng.integers(1_000_000_000)) * 1000
        unique = 0
        for index, op in enumerate(ops):
            n = int(rng.poisson(expected * op.weight / total_weight * jitter()))
            if n == 0:
                continue
            chunk = self._operation_chunk(
                system.service,
                op,
                faults,
                rng,
                jitter,
                count=n,
                trace_offset=index * 1_000_000,
                first_unique=unique,
                window_ns=(start_ns, start_ns + int(window * 1e9)),
            )
            unique += len(chunk)
            yield chunk

    def _operation_chunk(
        self,
        service: str,
        op: Operation,
        faults: Faults,
        rng: np.random.Generator,
        jitter: Callable[[], float],
        *,
        count: int,
        trace_offset: int,
        first_unique: int,
        window_ns: tuple[int, int],
    ) -> SyntheticChunk:
        """One operation's spans in a window: ``count`` spans plus their retries, with the
        faulted error rate and latency. Draws from ``rng`` in a fixed order, so that a seed
        gives the same spans every time."""
        retried = np.flatnonzero(rng.random(count) < faults.retry_share)
        n_total = count + len(retried)
        # Noise on errors is the "0.5% -> 0.8% blip": up to 1.6x the usual rate.
        blip = float(rng.uniform(0.6, 1.6)) if faults.noise else 1
        errors = rng.random(n_total) < min(1.0, op.error_rate * blip)
        median = op.median_ms * jitter()
        durations = (median * 1e6 * np.exp(op.sigma * rng.standard_normal(n_total))).astype(
            np.int64
        )
        # Two spans per trace; a retry joins the trace of the span it retries. Spans are
        # shuffled so that retries are interleaved, as they arrive in reality.
        trace_of = np.concatenate([np.arange(count) // 2, retried // 2]) + trace_offset
        resend = np.concatenate([np.zeros(count, bool), np.ones(len(retried), bool)])
        order = rng.permutation(n_total)
        trace_of, resend = trace_of[order], resend[order]
        # Ids as an SDK makes them, random in their last 7 bytes (W3C's random flag): consistent
        # samplers (a Collector's probabilistic sampler) draw their decision from those bytes.
        trace_ids = [bytes(8) + int(t).to_bytes(8, "big") for t in splitmix64(trace_of)]
        attributes = _SpanAttributes(
            template=self._template(op, faults),
            picks=rng.integers(0, 1 << 30, size=(n_total, 4)),
            errors=errors,
            resend=resend,
            first_unique=first_unique,
            route=op.name.split(" ", 1)[-1],
            cardinality_attribute=faults.cardinality_attribute,
        )
        return SyntheticChunk(
            service=service,
            name_codes=np.zeros(n_total, dtype=np.int32),
            name_table=[op.name],
            name_kinds=[SPAN_KINDS[op.kind]],
            durations_ns=durations,
            errors=errors,
            trace_hashes=hash_trace_ids(trace_ids),
            entries=np.full(n_total, SPAN_KINDS[op.kind] in ENTRY_KINDS),
            adjusted=np.zeros(n_total),
            trace_ids=trace_ids,
            start_ns=window_ns[0],
            end_ns=window_ns[1],
            attributes=attributes,
        )

    def summary(
        self, system: SyntheticSystem, faults: Faults, seed: int, window_s: float | None = None
    ) -> ServiceSummary:
        summary = ServiceSummary(system.service)
        for chunk in self.chunks(system, faults, seed, window_s):
            summary.add_chunk(chunk)
        return summary


def _requests(ops: tuple[Operation, ...]) -> tuple[Operation, ...]:
    """The operations whose spans are requests (server spans); all of them if none is."""
    return tuple(op for op in ops if SPAN_KINDS[op.kind] in ENTRY_KINDS) or ops


def _entry_share(ops: Sequence[Operation]) -> float:
    """The share of an operation mix's spans that are requests (server spans)."""
    total = sum(op.weight for op in ops)
    entries = sum(op.weight for op in ops if SPAN_KINDS[op.kind] in ENTRY_KINDS)
    return entries / total if total else 0.0


def _randomness(trace_ids: list[bytes]) -> np.ndarray:
    """The random bits of W3C trace ids, their last 7 bytes: what consistent samplers draw on."""
    tails = np.frombuffer(b"".join(t[-8:].rjust(8, b"\0") for t in trace_ids), dtype=">u8")
    random: np.ndarray = tails.astype(np.uint64) & np.uint64((1 << 56) - 1)
    return random


@dataclass
class SyntheticChunk(SpanChunk):
    """A chunk that keeps its raw trace ids, so it can be exported as OTLP, and the W3C
    tracestate its spans carry (a sampler's threshold, when one thinned them)."""

    trace_ids: list[bytes] = field(default_factory=list)
    trace_state: str = ""

    def name(self, i: int) -> str:
        return self.name_table[int(self.name_codes[i])]

    def take(self, kept: np.ndarray) -> SyntheticChunk:
        """The spans at the indices ``kept``, as a chunk of their own (attributes re-indexed)."""
        return replace(
            self,
            name_codes=self.name_codes[kept],
            durations_ns=self.durations_ns[kept],
            errors=self.errors[kept],
            trace_hashes=self.trace_hashes[kept],
            entries=self.entries[kept],
            adjusted=self.adjusted[kept],
            trace_ids=[self.trace_ids[int(i)] for i in kept],
            attributes=lambda i: self.attributes(int(kept[i])),
        )


def sample_traces(
    chunks: Sequence[SyntheticChunk], probability: float, *, say_threshold: bool = True
) -> list[SyntheticChunk]:
    """The spans a consistent probability sampler keeping ``probability`` of the traces passes.

    As OpenTelemetry's consistent samplers decide (the Collector's probabilistic sampler in
    proportional mode), a trace is kept when its randomness, the last 56 bits of its trace id, is
    at least the rejection threshold: every span of a trace shares its fate, and a Collector
    given the same spans keeps the same ones. With ``say_threshold`` the kept spans carry
    ``ot=th:<T>`` in their tracestate (and their adjusted count), as that sampler writes it;
    without, they say nothing and look unsampled.
    """
    threshold = threshold_of(probability)
    rejected = np.uint64(int(threshold.ljust(THRESHOLD_DIGITS, "0"), 16))
    out = []
    for chunk in chunks:
        kept = chunk.take(np.flatnonzero(_randomness(chunk.trace_ids) >= rejected))
        if say_threshold:
            kept.trace_state = f"ot=th:{threshold}"
            kept.adjusted = np.full(len(kept), adjusted_count(threshold))
        if len(kept):
            out.append(kept)
    return out


def _span_times(chunk: SpanChunk) -> tuple[np.ndarray, np.ndarray]:
    """Start and end times for a chunk's spans, spread evenly over the chunk's window."""
    n = len(chunk)
    starts = chunk.start_ns + (np.arange(n) * ((chunk.end_ns - chunk.start_ns) // max(n, 1)))
    return starts, starts + chunk.durations_ns


def _json_value(kind: str, value: Any) -> dict[str, Any]:
    if kind == "int":
        return {"intValue": str(value)}
    if kind == "double":
        return {"doubleValue": value}
    if kind == "bool":
        return {"boolValue": value}
    return {"stringValue": str(value)}


def to_otlp_json(chunks: list[SyntheticChunk]) -> dict[str, Any]:
    """The chunks as one OTLP/JSON traces document (hex ids, string 64-bit integers)."""
    resources: dict[str, list[dict[str, Any]]] = {}
    for chunk in chunks:
        starts, ends = _span_times(chunk)
        spans = resources.setdefault(chunk.service, [])
        for i in range(len(chunk)):
            spans.append(
                {
                    "traceId": chunk.trace_ids[i].hex(),
                    "spanId": (len(spans) + 1).to_bytes(8, "big").hex(),
                    "name": chunk.name(i),
                    "kind": chunk.name_kinds[0],
                    **({} if chunk.entries[i] else {"parentSpanId": CALLER_SPAN_ID.hex()}),
                    **({"traceState": chunk.trace_state} if chunk.trace_state else {}),
                    "startTimeUnixNano": str(int(starts[i])),
                    "endTimeUnixNano": str(int(ends[i])),
                    "attributes": [
                        {"key": key, "value": _json_value(kind, value)}
                        for key, kind, value in chunk.attributes(i)
                    ],
                    "status": {"code": 2} if chunk.errors[i] else {},
                }
            )
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                },
                "scopeSpans": [{"scope": {"name": "weavergen.simulator"}, "spans": spans}],
            }
            for service, spans in resources.items()
        ]
    }


def to_otlp_protobuf(chunks: list[SyntheticChunk]) -> bytes:
    """The chunks as one serialised OTLP ``ExportTraceServiceRequest``."""
    request = ExportTraceServiceRequest()
    scopes: dict[str, Any] = {}
    for chunk in chunks:
        scope = scopes.get(chunk.service)
        if scope is None:
            resource_spans = request.resource_spans.add()
            kv = resource_spans.resource.attributes.add()
            kv.key, kv.value.string_value = "service.name", chunk.service
            scope = scopes[chunk.service] = resource_spans.scope_spans.add()
            scope.scope.name = "weavergen.simulator"
        starts, ends = _span_times(chunk)
        for i in range(len(chunk)):
            span = scope.spans.add()
            span.trace_id = chunk.trace_ids[i]
            span.span_id = (len(scope.spans)).to_bytes(8, "big")
            span.name = chunk.name(i)
            span.kind = chunk.name_kinds[0]
            span.trace_state = chunk.trace_state
            if not chunk.entries[i]:
                span.parent_span_id = CALLER_SPAN_ID
            span.start_time_unix_nano = int(starts[i])
            span.end_time_unix_nano = int(ends[i])
            if chunk.errors[i]:
                span.status.code = 2
            for key, kind, value in chunk.attributes(i):
                attribute = span.attributes.add()
                attribute.key = key
                if kind == "int":
                    attribute.value.int_value = int(value)
                elif kind == "double":
                    attribute.value.double_value = float(value)
                elif kind == "bool":
                    attribute.value.bool_value = bool(value)
                else:
                    attribute.value.string_value = str(value)
    return request.SerializeToString()


@dataclass(frozen=True)
class _SpanAttributes:
    """The attributes of span ``i`` of one operation's chunk, built on demand."""

    template: list[tuple[str, str, tuple[Any, ...]]]
    picks: np.ndarray
    errors: np.ndarray
    resend: np.ndarray
    first_unique: int
    route: str
    cardinality_attribute: str | None

    def __call__(self, i: int) -> list[Attribute]:
        attrs: list[Attribute] = []
        for j, (key, kind, values) in enumerate(self.template):
            value: Any = values[int(self.picks[i, j % 4]) % len(values)]
            if value == "{status}":
                value = 500 if self.errors[i] else 200
            elif value == "{route}":
                value = self.route
            if key == self.cardinality_attribute:
                value = f"user-{self.first_unique + i}"
            attrs.append((key, kind, str(value) if kind == "string" else value))
        if self.resend[i]:
            attrs.append(("http.request.resend_count", "int", 1))
        return attrs
