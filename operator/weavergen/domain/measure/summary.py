"""Per-service window summaries: what Measure needs from spans, in memory bounded by groups.

A summary keeps, per operation (span name): span and error counts, a latency histogram, retry
counts and, for a sample of its spans, which attributes they carried with which value types,
a few distinct values (for enum checks) and a distinct-value sketch (for cardinality).

Attribute sampling inspects the first ``FULL_INSPECTION`` spans of each operation in a summary,
one in ``SAMPLE_EVERY`` after that and one in ``SAMPLE_EVERY_SPARSE`` past ``SPARSE_AFTER``
spans (a few thousand inspected spans per window already estimate presence to about a
percent); presence and counts are scaled back by the operation's sampling rate.

Operations, attribute keys and remembered values are capped, so neither span volume nor a
service that invents a new span name per request can grow a summary without bound.

Spans that came through a sampler are counted as they are, the sample the tests judge, and
beside that, per operation, how many said their sampling probability p and how many spans they
stand for (the sum of 1/p), so a summary can say how many spans of the service it represents.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from weavergen.domain.measure.otlp import ENTRY_KINDS, Attribute, SpanChunk
from weavergen.domain.measure.semconv import ObservedAttribute
from weavergen.domain.measure.sketch import NUM_BUCKETS, DistinctCounter, bucket_of, stable_hash64

FULL_INSPECTION = 256
SAMPLE_EVERY = 16
SPARSE_AFTER = 16_384
SAMPLE_EVERY_SPARSE = 256
MAX_OPERATIONS = 256
MAX_ATTRIBUTE_KEYS = 128
MAX_VALUES = 32
MAX_VALUE_LENGTH = 128
MAX_SERVICES = 1024
OTHER_OPERATION = "(other)"
RETRY_ATTRIBUTES = ("http.request.resend_count", "retry.attempt")


@dataclass
class AttributeStats:
    """What the inspected spans of one operation carried under one attribute key."""

    carried: int = 0
    value_types: Counter[str] = field(default_factory=Counter)
    values: Counter[str] = field(default_factory=Counter)
    distinct: DistinctCounter = field(default_factory=DistinctCounter)

    def add(self, kind: str, value: Any) -> None:
        self.carried += 1
        self.value_types[kind] += 1
        if kind in ("string", "int", "double", "bool"):
            text = str(value)[:MAX_VALUE_LENGTH]
            if text in self.values or len(self.values) < MAX_VALUES:
                self.values[text] += 1

    def merge(self, other: AttributeStats) -> None:
        self.carried += other.carried
        self.value_types.update(other.value_types)
        for text, n in other.values.items():
            if text in self.values or len(self.values) < MAX_VALUES:
                self.values[text] += n
        self.distinct.merge(other.distinct)

    def to_dict(self) -> dict[str, Any]:
        return {
            "carried": self.carried,
            "valueTypes": dict(self.value_types),
            "values": dict(self.values),
            "distinct": self.distinct.to_list(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttributeStats:
        return cls(
            carried=int(data["carried"]),
            value_types=Counter(data.get("valueTypes", {})),
            values=Counter(data.get("values", {})),
            distinct=DistinctCounter.from_list(data.get("distinct", [])),
        )


SPAN_KIND_CLIENT = 3
SPAN_KIND_PRODUCER = 4


@dataclass
class OperationStats:
    """Counts, latency histogram and sampled attributes of one operation (span name)."""

    kind: int = 0
    count: int = 0
    entries: int = 0  # requests: server and consumer spans, and local roots
    errors: int = 0
    inspected: int = 0
    retries: int = 0
    # Spans (and requests) whose sampling probability p was known, and the sum of their 1/p.
    sampled: int = 0
    adjusted: float = 0.0
    sampled_entries: int = 0
    adjusted_entries: float = 0.0
    histogram: np.ndarray = field(default_factory=lambda: np.zeros(NUM_BUCKETS, dtype=np.int64))
    attributes: dict[str, AttributeStats] = field(default_factory=dict)

    @property
    def calls_dependency(self) -> bool:
        """Client and producer spans are calls to something else: a database, a queue, an API."""
        return self.kind in (SPAN_KIND_CLIENT, SPAN_KIND_PRODUCER)

    @property
    def scale(self) -> float:
        """Spans represented by one inspected span."""
        return self.count / self.inspected if self.inspected else 0.0

    def represented(self, ratio: float) -> float:
        """Spans this operation stands for: those of known probability p count 1/p each, the
        others as kept at ``ratio`` (the sampling ratio assumed where spans say none)."""
        return self.adjusted + (self.count - self.sampled) / ratio

    def represented_entries(self, ratio: float) -> float:
        """Requests this operation stands for, as ``represented`` counts spans."""
        return self.adjusted_entries + (self.entries - self.sampled_entries) / ratio

    def add_sampled(
        self, sampled: int, adjusted: float, entries: int, entries_adjusted: float
    ) -> None:
        self.sampled += sampled
        self.adjusted += adjusted
        self.sampled_entries += entries
        self.adjusted_entries += entries_adjusted

    def inspect(self, attributes: list[Attribute], distinct: dict[str, set[str]]) -> None:
        """Record one sampled span's attributes; scalar values go to ``distinct`` for hashing."""
        self.inspected += 1
        retried = False
        for key, kind, value in attributes:
            stats = self.attributes.get(key)
            if stats is None:
                if len(self.attributes) >= MAX_ATTRIBUTE_KEYS:
                    continue
                stats = self.attributes[key] = AttributeStats()
            stats.add(kind, value)
            if kind in ("string", "int", "double", "bool"):
                distinct.setdefault(key, set()).add(str(value))
            if key in RETRY_ATTRIBUTES and kind == "int" and value > 0:
                retried = True
        if retried:
            self.retries += 1

    def merge(self, other: OperationStats) -> None:
        self.kind = self.kind or other.kind
        self.count += other.count
        self.entries += other.entries
        self.errors += other.errors
        self.inspected += other.inspected
        self.retries += other.retries
        self.add_sampled(
            other.sampled, other.adjusted, other.sampled_entries, other.adjusted_entries
        )
        self.histogram += other.histogram
        for key, stats in other.attributes.items():
            mine = self.attributes.get(key)
            if mine is not None:
                mine.merge(stats)
            elif len(self.attributes) < MAX_ATTRIBUTE_KEYS:
                self.attributes[key] = AttributeStats.from_dict(stats.to_dict())

    def to_dict(self) -> dict[str, Any]:
        nonzero = np.flatnonzero(self.histogram)
        return {
            "kind": self.kind,
            "count": self.count,
            "entries": self.entries,
            "errors": self.errors,
            "inspected": self.inspected,
            "retries": self.retries,
            **self._sampled_dict(),
            "histogram": {str(int(i)): int(self.histogram[i]) for i in nonzero},
            "attributes": {k: v.to_dict() for k, v in sorted(self.attributes.items())},
        }

    def _sampled_dict(self) -> dict[str, Any]:
        """The sampling counts, only where a span said its probability (most summaries: none)."""
        if not self.sampled:
            return {}
        entries = (
            {"sampledEntries": self.sampled_entries, "adjustedEntries": self.adjusted_entries}
            if self.sampled_entries
            else {}
        )
        return {"sampled": self.sampled, "adjusted": self.adjusted, **entries}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OperationStats:
        histogram = np.zeros(NUM_BUCKETS, dtype=np.int64)
        for index, n in data.get("histogram", {}).items():
            histogram[min(int(index), NUM_BUCKETS - 1)] += int(n)
        kind, count = int(data.get("kind", 0)), int(data["count"])
        # A summary stored before entries were counted: requests were its entry-kind spans.
        entries = data.get("entries", count if kind in ENTRY_KINDS else 0)
        return cls(
            kind=kind,
            count=count,
            entries=int(entries),
            errors=int(data["errors"]),
            inspected=int(data.get("inspected", 0)),
            retries=int(data.get("retries", 0)),
            sampled=int(data.get("sampled", 0)),
            adjusted=float(data.get("adjusted", 0.0)),
            sampled_entries=int(data.get("sampledEntries", 0)),
            adjusted_entries=float(data.get("adjustedEntries", 0.0)),
            histogram=histogram,
            attributes={
                k: AttributeStats.from_dict(v) for k, v in data.get("attributes", {}).items()
            },
        )


@dataclass
class ServiceSummary:
    """Everything Measure needs about one service over one window."""

    service: str
    start_ns: int = 0
    end_ns: int = 0
    operations: dict[str, OperationStats] = field(default_factory=dict)
    traces: DistinctCounter = field(default_factory=DistinctCounter)
    operation_names: DistinctCounter = field(default_factory=DistinctCounter)
    # How long the source watched the service for this window, when it knows (the receiver
    # does): with few spans or none, the spans' own time range cannot tell silence from a
    # window just begun.
    window_s: float | None = None
    # The sampling ratio assumed for spans that say no sampling probability: None takes the
    # measurement's (the charter's samplingRatio). A baseline the operator captured keeps the
    # one in force then, so a sampler added later (and the charter's ratio with it) does not
    # rescale the rate it was captured at.
    fallback_ratio: float | None = None

    # -- derived figures ------------------------------------------------------------------

    @property
    def span_count(self) -> int:
        return sum(op.count for op in self.operations.values())

    @property
    def entry_count(self) -> int:
        return sum(op.entries for op in self.operations.values())

    @property
    def error_count(self) -> int:
        return sum(op.errors for op in self.operations.values())

    @property
    def assumed_ratio(self) -> float:
        return self.fallback_ratio or 1.0

    def assuming(self, ratio: float) -> ServiceSummary:
        """This summary, reading spans without a sampling probability as sampled at ``ratio``
        unless it already says its own (a captured baseline does); shares its operations."""
        if self.fallback_ratio is not None or ratio == 1.0:
            return self
        return replace(self, fallback_ratio=ratio)

    @property
    def represented_spans(self) -> float:
        """Spans of the service this summary stands for: its sampled spans scaled up."""
        return sum(op.represented(self.assumed_ratio) for op in self.operations.values())

    @property
    def represented_entries(self) -> float:
        """Requests (entry spans) of the service this summary stands for."""
        return sum(op.represented_entries(self.assumed_ratio) for op in self.operations.values())

    def sampling_ratio(self, entries: bool = False) -> float | None:
        """The share of the spans (or requests) it stands for that the summary holds: the
        effective sampling probability of the window; None when it holds none."""
        held, stood_for = (
            (self.entry_count, self.represented_entries)
            if entries
            else (self.span_count, self.represented_spans)
        )
        return held / stood_for if held and stood_for > 0 else None

    @property
    def retry_estimate(self) -> float:
        return sum(op.retries * op.scale for op in self.operations.values())

    @property
    def duration_s(self) -> float:
        return max(0.0, (self.end_ns - self.start_ns) / 1e9)

    def histogram(self) -> np.ndarray:
        total = np.zeros(NUM_BUCKETS, dtype=np.int64)
        for op in self.operations.values():
            total += op.histogram
        return total

    def request_histogram(self) -> np.ndarray:
        """The latency histogram of requests (entry spans), not of every span.

        An operation whose spans are only partly requests (local roots of an internal span
        that is sometimes a child) adds that share of its histogram: its spans' latencies are
        the same distribution either way, as far as a summary can tell.
        """
        total = np.zeros(NUM_BUCKETS, dtype=np.float64)
        for op in self.operations.values():
            if op.entries <= 0 or op.count <= 0:
                continue
            total += op.histogram * (min(op.entries, op.count) / op.count)
        return total

    def spans_per_trace(self) -> float:
        traces = self.traces.estimate()
        return self.span_count / traces if traces else 0.0

    def observed_attributes(self) -> dict[str, ObservedAttribute]:
        """Attributes over all operations, counts scaled to spans (the validator's input)."""
        observed: dict[str, ObservedAttribute] = {}
        for op in self.operations.values():
            scale = op.scale
            for key, stats in op.attributes.items():
                entry = observed.setdefault(key, ObservedAttribute(0, {}, {}))
                entry.count += round(stats.carried * scale)
                for kind, n in stats.value_types.items():
                    entry.value_types[kind] = entry.value_types.get(kind, 0) + round(n * scale)
                for text, n in stats.values.items():
                    entry.values[text] = entry.values.get(text, 0) + round(n * scale)
        return observed

    # -- building -------------------------------------------------------------------------

    def _operation(self, name: str) -> OperationStats:
        """The stats of an operation; past the cap, new names share the ``(other)`` group."""
        op = self.operations.get(name)
        if op is None:
            if len(self.operations) >= MAX_OPERATIONS - 1:
                name = OTHER_OPERATION
                op = self.operations.get(name)
            if op is None:
                op = self.operations[name] = OperationStats()
        return op

    def add_chunk(self, chunk: SpanChunk) -> None:
        """Aggregate one chunk: counts and histograms vectorised, attributes sampled."""
        if len(chunk) == 0:
            return
        self.start_ns = min(self.start_ns or chunk.start_ns, chunk.start_ns)
        self.end_ns = max(self.end_ns, chunk.end_ns)
        # Names map onto operations first (past the cap, onto "(other)"), so the arrays and the
        # loop below grow with the operations, never with the distinct names a sender invents.
        ops: list[OperationStats] = []
        group_of: dict[int, int] = {}
        op_codes = np.zeros(len(chunk.name_table), dtype=np.int64)
        for name_code in np.flatnonzero(np.bincount(chunk.name_codes, minlength=len(op_codes))):
            op = self._operation(chunk.name_table[name_code])
            op.kind = op.kind or chunk.name_kinds[name_code]
            group = group_of.setdefault(id(op), len(ops))
            if group == len(ops):
                ops.append(op)
            op_codes[name_code] = group
        codes = op_codes[chunk.name_codes]
        groups = len(ops)
        counts = np.bincount(codes, minlength=groups)
        entries = np.bincount(codes, weights=chunk.entries, minlength=groups)
        errors = np.bincount(codes, weights=chunk.errors, minlength=groups)
        histograms = np.bincount(
            codes * NUM_BUCKETS + bucket_of(chunk.durations_ns), minlength=groups * NUM_BUCKETS
        ).reshape(groups, NUM_BUCKETS)
        self.operation_names.add_hashes(stable_hash64(chunk.name_table))
        self.traces.add_hashes(chunk.trace_hashes)

        order = np.argsort(codes, kind="stable")
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        _add_sampled(ops, codes, chunk)
        for code, op in enumerate(ops):
            seen = op.count
            op.count += int(counts[code])
            op.entries += int(entries[code])
            op.errors += int(errors[code])
            op.histogram += histograms[code]
            members = order[starts[code] : starts[code] + counts[code]]
            ordinal = seen + np.arange(len(members))
            step = np.where(ordinal < SPARSE_AFTER, SAMPLE_EVERY, SAMPLE_EVERY_SPARSE)
            sampled = members[(ordinal < FULL_INSPECTION) | (ordinal % step == 0)]
            distinct: dict[str, set[str]] = {}
            for index in sampled:
                op.inspect(chunk.attributes(int(index)), distinct)
            for key, values in distinct.items():
                op.attributes[key].distinct.add_hashes(stable_hash64(values))

    def merge(self, other: ServiceSummary) -> None:
        if other.start_ns:
            self.start_ns = min(self.start_ns or other.start_ns, other.start_ns)
        self.end_ns = max(self.end_ns, other.end_ns)
        for name, stats in other.operations.items():
            self._operation(name).merge(stats)
        self.traces.merge(other.traces)
        self.operation_names.merge(other.operation_names)
        self.fallback_ratio = self.fallback_ratio or other.fallback_ratio

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "startNs": str(self.start_ns),
            "endNs": str(self.end_ns),
            "operations": {k: v.to_dict() for k, v in sorted(self.operations.items())},
            "traces": self.traces.to_list(),
            "operationNames": self.operation_names.to_list(),
            **({"windowSeconds": self.window_s} if self.window_s is not None else {}),
            **(
                {"fallbackSamplingRatio": self.fallback_ratio}
                if self.fallback_ratio is not None
                else {}
            ),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServiceSummary:
        return cls(
            service=str(data["service"]),
            start_ns=int(data.get("startNs", 0)),
            end_ns=int(data.get("endNs", 0)),
            operations={
                k: OperationStats.from_dict(v) for k, v in data.get("operations", {}).items()
            },
            traces=DistinctCounter.from_list(data.get("traces", [])),
            operation_names=DistinctCounter.from_list(data.get("operationNames", [])),
            window_s=float(data["windowSeconds"]) if "windowSeconds" in data else None,
            fallback_ratio=(
                float(data["fallbackSamplingRatio"]) if "fallbackSamplingRatio" in data else None
            ),
        )


def _add_sampled(ops: list[OperationStats], codes: np.ndarray, chunk: SpanChunk) -> None:
    """Per operation: the chunk's spans (and requests) of known sampling probability and the
    spans they stand for. Most chunks say no probability: one test skips them."""
    if not chunk.adjusted.any():
        return
    groups = len(ops)
    known = chunk.adjusted > 0
    entries_adjusted = np.where(chunk.entries, chunk.adjusted, 0.0)
    sampled = np.bincount(codes, weights=known, minlength=groups)
    adjusted = np.bincount(codes, weights=chunk.adjusted, minlength=groups)
    sampled_entries = np.bincount(codes, weights=known & chunk.entries, minlength=groups)
    adjusted_entries = np.bincount(codes, weights=entries_adjusted, minlength=groups)
    for code, op in enumerate(ops):
        op.add_sampled(
            int(sampled[code]),
            float(adjusted[code]),
            int(sampled_entries[code]),
            float(adjusted_entries[code]),
        )


class Summariser:
    """Routes decoded chunks to per-service summaries (at most ``MAX_SERVICES`` of them)."""

    def __init__(self) -> None:
        self.services: dict[str, ServiceSummary] = {}
        self.dropped_spans = 0

    def add(self, chunks: Any) -> int:
        """Add every chunk of an iterable; returns the number of spans accepted."""
        accepted = 0
        for chunk in chunks:
            summary = self.services.get(chunk.service)
            if summary is None:
                if len(self.services) >= MAX_SERVICES:
                    self.dropped_spans += len(chunk)
                    continue
                summary = self.services[chunk.service] = ServiceSummary(chunk.service)
            summary.add_chunk(chunk)
            accepted += len(chunk)
        return accepted
