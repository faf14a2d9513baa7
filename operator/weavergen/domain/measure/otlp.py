"""OTLP trace decoding (OTLP/JSON and OTLP/protobuf) into columnar span chunks.

A chunk holds the spans of one resource and scope, as columns: the summariser aggregates them
with numpy and reads attributes only for the spans it samples, because walking every attribute
of every span in Python would cost more than everything else together.

OTLP/JSON is parsed with :mod:`json`: ``google.protobuf.json_format`` expects base64 ids where
OTLP/JSON uses hex, and 64-bit integers arrive as strings.

Spans may come through a sampler (the OpenTelemetry Collector's probabilistic sampler keeps a
share of the traces): each span's sampling probability is read from the OpenTelemetry section of
its W3C tracestate, ``ot=th:<hex>``, the rejection threshold T of 56 bits (trailing zeros
dropped), so p = 1 - T / 2^56; a span attribute ``sampling.threshold`` says the same where the
tracestate does not. A chunk keeps 1/p per span, the number of spans it stands for.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

STATUS_ERROR = 2
UNKNOWN_SERVICE = "unknown_service"
MAX_ATTRIBUTES_PER_SPAN = 128
"""As the OpenTelemetry SDK's default limit; attributes past it are not inspected."""
INT64_MAX = 2**63 - 1

Attribute = tuple[str, str, Any]
"""(key, OTLP value kind, value); kinds: string, int, double, bool, array, kvlist, bytes."""


class OtlpError(ValueError):
    """Input that is not valid OTLP traces; the message says where and what."""


@dataclass
class SpanChunk:
    """The spans of one resource and scope, as columns.

    Span names are coded: ``name_codes[i]`` indexes ``name_table``; ``name_kinds`` holds the OTLP
    span kind of each name (of its first span: 2 server, 3 client, 4 producer, ...). Trace ids
    are reduced to well-mixed 64-bit hashes (``trace_hashes``), all the summary needs of them.
    ``entries`` marks the spans that are requests to the service: server and consumer spans,
    and local roots (no parent), so a retry storm of client spans is not more traffic.
    ``adjusted`` is each span's adjusted count, 1/p of its sampling probability p: the spans it
    stands for. It is 0 where no probability was given (the measurement assumes one then).
    ``starts_ns`` is each span's start (the sender's clock), where the decoder kept it.
    """

    service: str
    name_codes: np.ndarray
    name_table: list[str]
    name_kinds: list[int]
    durations_ns: np.ndarray
    errors: np.ndarray
    trace_hashes: np.ndarray
    entries: np.ndarray
    adjusted: np.ndarray
    start_ns: int
    end_ns: int
    attributes: Callable[[int], list[Attribute]]
    starts_ns: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.name_codes)

    def slice(self, start: int, stop: int) -> SpanChunk:
        """Spans ``start:stop`` as a chunk of their own (attributes re-indexed)."""
        return SpanChunk(
            service=self.service,
            name_codes=self.name_codes[start:stop],
            name_table=self.name_table,
            name_kinds=self.name_kinds,
            durations_ns=self.durations_ns[start:stop],
            errors=self.errors[start:stop],
            trace_hashes=self.trace_hashes[start:stop],
            entries=self.entries[start:stop],
            adjusted=self.adjusted[start:stop],
            start_ns=self.start_ns,
            end_ns=self.end_ns,
            attributes=lambda i: self.attributes(start + i),
            starts_ns=None if self.starts_ns is None else self.starts_ns[start:stop],
        )


def code_names(names: Iterable[str], count: int) -> tuple[np.ndarray, list[str]]:
    """Integer codes for names, in order of first appearance, and the table of names."""
    table: dict[str, int] = {}
    codes = np.fromiter((table.setdefault(n, len(table)) for n in names), np.int32, count)
    return codes, list(table)


def first_kinds(codes: np.ndarray, kinds: Callable[[int], int], groups: int) -> list[int]:
    """The span kind of the first span of each coded name."""
    _, first = np.unique(codes, return_index=True)
    return [kinds(int(i)) for i in first] if len(first) == groups else [0] * groups


ENTRY_KINDS = (2, 5)  # SPAN_KIND_SERVER, SPAN_KIND_CONSUMER


def entry_spans(codes: np.ndarray, kinds: list[int], roots: np.ndarray) -> np.ndarray:
    """Which spans are requests: of an entry kind (by their name's kind) or local roots."""
    entry_kind = np.isin(np.asarray(kinds, dtype=np.int64), ENTRY_KINDS)
    marked: np.ndarray = entry_kind[codes] | roots if len(kinds) else roots
    return marked


def splitmix64(values: np.ndarray) -> np.ndarray:
    """A well-mixing 64-bit finaliser, vectorised (sequential ids come out uniform)."""
    with np.errstate(over="ignore"):
        x = values.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        mixed: np.ndarray = x ^ (x >> np.uint64(31))
        return mixed


def hash_trace_ids(trace_ids: Sequence[bytes]) -> np.ndarray:
    """64-bit hashes of trace ids: splitmix64 of the last 8 bytes, which W3C makes random."""
    raw = b"".join(trace_ids)
    if len(raw) == 16 * len(trace_ids):
        tails = np.frombuffer(raw, dtype=">u8").reshape(-1, 2)[:, 1]
        return splitmix64(tails)
    padded = b"".join(t[-8:].rjust(8, b"\0") for t in trace_ids)
    return splitmix64(np.frombuffer(padded, dtype=">u8"))


# -- sampling ---------------------------------------------------------------------------------

THRESHOLD_ATTRIBUTE = "sampling.threshold"
THRESHOLD_DIGITS = 14
_THRESHOLD = re.compile(r"[0-9a-f]{1,14}")
_MAX_THRESHOLD = 1 << 4 * THRESHOLD_DIGITS  # 2^56: T is a 56-bit rejection threshold
_THRESHOLD_BYTES = THRESHOLD_ATTRIBUTE.encode()


def adjusted_count(threshold: str) -> float:
    """1/p for an OpenTelemetry rejection threshold (``th``), 0 when the value is not one.

    ``th`` is 1 to 14 lowercase hex digits with trailing zeros dropped: ``c`` is 0xc0000000000000,
    so p = 1 - T / 2^56 = 0.25 and each kept span stands for 4; ``0`` keeps everything.
    """
    if _THRESHOLD.fullmatch(threshold) is None:
        return 0.0
    rejected = int(threshold.ljust(THRESHOLD_DIGITS, "0"), 16)
    return _MAX_THRESHOLD / (_MAX_THRESHOLD - rejected)


def threshold_of(probability: float) -> str:
    """The ``th`` a sampler keeping ``probability`` of the traces writes (what ``adjusted_count``
    reads): T = (1 - p) 2^56 in 14 hex digits, trailing zeros dropped."""
    rejected = min(_MAX_THRESHOLD - 1, max(0, round((1 - probability) * _MAX_THRESHOLD)))
    return f"{rejected:014x}".rstrip("0") or "0"


def tracestate_threshold(tracestate: str) -> str | None:
    """The ``th`` of the OpenTelemetry (``ot``) member of a W3C tracestate, if it has one.

    Members are ``key=value`` separated by commas (other vendors' too); the ``ot`` value is
    ``key:value`` fields separated by semicolons (``th``, ``rv`` and others).
    """
    for member in tracestate.split(","):
        key, equals, value = member.strip().partition("=")
        if key != "ot" or not equals:
            continue
        for part in value.split(";"):
            name, colon, threshold = part.partition(":")
            if name == "th" and colon:
                return threshold
        return None
    return None


def tracestate_adjusted_count(tracestate: str) -> float:
    """1/p of a span with this tracestate; 0 when it says no (valid) sampling threshold."""
    threshold = tracestate_threshold(tracestate) if tracestate else None
    return 0.0 if threshold is None else adjusted_count(threshold)


def adjusted_counts(
    states: Sequence[str], attributes: Callable[[int], list[Attribute]] | None
) -> np.ndarray:
    """Each span's adjusted count from its tracestate, or else its ``sampling.threshold``.

    The spans of one sampler repeat a handful of tracestates (most often one, or none), so each
    distinct one is parsed once. ``attributes`` is given only when a request mentions the
    attribute at all (a byte search over it): reading every span's attributes otherwise would
    double the cost of decoding.
    """
    parsed = {state: tracestate_adjusted_count(state) for state in set(states)}
    if len(parsed) == 1:
        adjusted = np.full(len(states), next(iter(parsed.values())))
    else:
        adjusted = np.fromiter(map(parsed.__getitem__, states), np.float64, len(states))
    if attributes is not None:
        for i in np.flatnonzero(adjusted == 0):
            adjusted[i] = _attribute_adjusted_count(attributes, int(i))
    return adjusted


def _attribute_adjusted_count(attributes: Callable[[int], list[Attribute]], i: int) -> float:
    """1/p from span ``i``'s ``sampling.threshold``; 0 without a valid one. Attributes that do
    not decode are left to the summary, which reports them if it inspects the span."""
    try:
        found = [(kind, value) for key, kind, value in attributes(i) if key == THRESHOLD_ATTRIBUTE]
    except OtlpError:
        return 0.0
    if not found or found[0][0] != "string":
        return 0.0
    return adjusted_count(found[0][1])


# -- protobuf ---------------------------------------------------------------------------------

_KINDS = {
    "string_value": "string",
    "int_value": "int",
    "double_value": "double",
    "bool_value": "bool",
    "array_value": "array",
    "kvlist_value": "kvlist",
    "bytes_value": "bytes",
}


def _pb_value(value: AnyValue) -> tuple[str, Any]:
    which = value.WhichOneof("value")
    if which is None:
        return "string", ""
    return _KINDS[which], getattr(value, which)


def _nanos(times: np.ndarray) -> np.ndarray:
    """OTLP's unsigned 64-bit times as int64, past year 2262 clamped to its largest value."""
    clamped: np.ndarray = np.minimum(times, INT64_MAX).astype(np.int64)
    return clamped


def _pb_kind(spans: Sequence[Any]) -> Callable[[int], int]:
    return lambda i: int(spans[i].kind)


def _pb_service(resource: Any) -> str:
    for kv in resource.attributes:
        if kv.key == "service.name" and kv.value.WhichOneof("value") == "string_value":
            return str(kv.value.string_value)
    return UNKNOWN_SERVICE


# The fields the columns need, each read by a C-level pass (``map`` of a getter) over a block of
# spans: a Python loop over the spans would cost about as much again as everything else in
# decoding, and one getter of every field at once would make a tuple per span, allocations that
# set the garbage collector running (a sixth slower, measured). A block keeps its span objects
# alive between the passes, and bounds how many are alive at once.
_PB_NAME = attrgetter("name")
_PB_TRACE_ID = attrgetter("trace_id")
_PB_TRACE_STATE = attrgetter("trace_state")
_PB_START = attrgetter("start_time_unix_nano")
_PB_END = attrgetter("end_time_unix_nano")
_PB_STATUS_CODE = attrgetter("status.code")
_PB_PARENT = attrgetter("parent_span_id")
_PB_BLOCK = 4096


def _pb_columns(spans: Sequence[Any]) -> tuple[np.ndarray, list[str], list[bytes], list[str]]:
    """(start, end, error, parent id length) as rows of numbers; names, trace ids and
    tracestates as lists."""
    count = len(spans)
    numbers = np.empty((4, count), np.uint64)
    names: list[str] = []
    trace_ids: list[bytes] = []
    states: list[str] = []
    for first in range(0, count, _PB_BLOCK):
        block = spans[first : first + _PB_BLOCK]
        names += map(_PB_NAME, block)
        trace_ids += map(_PB_TRACE_ID, block)
        states += map(_PB_TRACE_STATE, block)
        rows = (
            map(_PB_START, block),
            map(_PB_END, block),
            # A status code may be any int32 (negative too): only whether it is an error is kept.
            map(STATUS_ERROR.__eq__, map(_PB_STATUS_CODE, block)),
            map(len, map(_PB_PARENT, block)),
        )
        for row, values in enumerate(rows):
            numbers[row, first : first + len(block)] = np.fromiter(values, np.uint64, len(block))
    return numbers, names, trace_ids, states


def _spans_by_service(resources: Iterable[Any]) -> Iterator[tuple[str, Sequence[Any]]]:
    """The spans of each service, gathered from all its resources and scopes (one chunk per
    service). A Collector's load_balancing exporter sends a resource for every trace, and a
    chunk costs about 0.1 ms to decode and summarise whatever its size: chunked by resource,
    its requests were taken at a twentieth of the rate. A service's only list of spans is
    passed on as it is: listing its spans would hold a Python object for each at once."""
    gathered: dict[str, list[Sequence[Any]]] = {}
    for resource_spans in resources:
        lists = gathered.setdefault(_pb_service(resource_spans.resource), [])
        lists.extend(scope.spans for scope in resource_spans.scope_spans if scope.spans)
    for service, lists in gathered.items():
        yield service, lists[0] if len(lists) == 1 else [s for spans in lists for s in spans]


def decode_protobuf(data: bytes) -> Iterator[SpanChunk]:
    """Chunks of an ``ExportTraceServiceRequest`` in protobuf encoding."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(data)
    except DecodeError as err:
        raise OtlpError(f"invalid OTLP/protobuf: {err}") from None
    mentions_threshold = _THRESHOLD_BYTES in data
    for service, spans in _spans_by_service(request.resource_spans):
        if spans:
            yield _pb_chunk(service, spans, mentions_threshold)


def _pb_chunk(service: str, spans: Sequence[Any], mentions_threshold: bool) -> SpanChunk:
    numbers, names, trace_ids, states = _pb_columns(spans)
    starts, ends = _nanos(numbers[0]), _nanos(numbers[1])

    def attributes(i: int) -> list[Attribute]:
        attrs = spans[i].attributes
        return [(kv.key, *_pb_value(kv.value)) for kv in attrs[:MAX_ATTRIBUTES_PER_SPAN]]

    codes, table = code_names(names, len(names))
    kinds = first_kinds(codes, _pb_kind(spans), len(table))
    return SpanChunk(
        service=service,
        name_codes=codes,
        name_table=table,
        name_kinds=kinds,
        durations_ns=np.maximum(ends - starts, 0),
        errors=numbers[2].astype(bool),
        trace_hashes=hash_trace_ids(trace_ids),
        entries=entry_spans(codes, kinds, numbers[3] == 0),
        adjusted=adjusted_counts(states, attributes if mentions_threshold else None),
        start_ns=int(starts.min()),
        end_ns=int(ends.max()),
        attributes=attributes,
        starts_ns=starts,
    )


# -- JSON -------------------------------------------------------------------------------------

_JSON_KINDS = {
    "stringValue": "string",
    "intValue": "int",
    "doubleValue": "double",
    "boolValue": "bool",
    "arrayValue": "array",
    "kvlistValue": "kvlist",
    "bytesValue": "bytes",
}


def _json_value(value: Any, where: str) -> tuple[str, Any]:
    if not isinstance(value, dict):
        raise OtlpError(f"{where}: expected an AnyValue object")
    for key, kind in _JSON_KINDS.items():
        if key in value:
            raw = value[key]
            if kind == "int":
                return kind, _int(raw, where)
            if kind == "double" and not isinstance(raw, (int, float, str)):
                raise OtlpError(f"{where}: doubleValue must be a number")
            if kind == "string" and not isinstance(raw, str):
                raise OtlpError(f"{where}: stringValue must be a string")
            if kind == "double":
                try:
                    return kind, float(raw)
                except (ValueError, OverflowError):
                    raise OtlpError(f"{where}: doubleValue is not a number") from None
            return kind, raw
    return "string", ""


def _int(raw: Any, where: str) -> int:
    """OTLP/JSON 64-bit integers are strings; small ones may be numbers."""
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise OtlpError(f"{where}: expected an integer (or a string holding one)")
    try:
        return int(raw)
    except ValueError:
        raise OtlpError(f"{where}: {raw!r} is not an integer") from None


def _time(raw: Any, where: str) -> int:
    """A time in ns, clamped to what int64 holds (OTLP's are unsigned 64-bit)."""
    return min(max(_int(raw, where), 0), INT64_MAX)


def _list(obj: Any, key: str, where: str) -> list[Any]:
    value = obj.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        raise OtlpError(f"{where}.{key}: expected a list")
    return value


def _hex_id(raw: Any, where: str) -> bytes:
    if raw in (None, ""):
        return b""
    if not isinstance(raw, str):
        raise OtlpError(f"{where}: expected a hex string")
    try:
        return bytes.fromhex(raw)
    except ValueError:
        raise OtlpError(f"{where}: {raw!r} is not hex") from None


def _json_attributes(raw: Any, where: str) -> list[Attribute]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise OtlpError(f"{where}: expected a list of key/value objects")
    out = []
    for j, kv in enumerate(raw[:MAX_ATTRIBUTES_PER_SPAN]):
        if not isinstance(kv, dict) or not isinstance(kv.get("key"), str):
            raise OtlpError(f"{where}[{j}]: expected {{key, value}}")
        out.append((kv["key"], *_json_value(kv.get("value", {}), f"{where}[{j}].value")))
    return out


def decode_json(data: bytes | str) -> Iterator[SpanChunk]:
    """Chunks of an OTLP/JSON traces document (hex ids, integer enums, string 64-bit ints)."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as err:  # UnicodeDecodeError is a ValueError
        raise OtlpError(f"invalid OTLP/JSON: {err}") from None
    if not isinstance(document, dict):
        raise OtlpError("invalid OTLP/JSON: the document must be an object with resourceSpans")
    mentions_threshold = (
        THRESHOLD_ATTRIBUTE in data if isinstance(data, str) else _THRESHOLD_BYTES in data
    )
    for r, resource_spans in enumerate(_list(document, "resourceSpans", "")):
        where = f"resourceSpans[{r}]"
        if not isinstance(resource_spans, dict):
            raise OtlpError(f"{where}: expected an object")
        resource = resource_spans.get("resource") or {}
        if not isinstance(resource, dict):
            raise OtlpError(f"{where}.resource: expected an object")
        service = next(
            (
                value
                for key, kind, value in _json_attributes(
                    resource.get("attributes"), f"{where}.resource.attributes"
                )
                if key == "service.name" and kind == "string"
            ),
            UNKNOWN_SERVICE,
        )
        for s, scope_spans in enumerate(_list(resource_spans, "scopeSpans", where)):
            at = f"{where}.scopeSpans[{s}]"
            chunk = _json_chunk(service, scope_spans, at, mentions_threshold)
            if chunk is not None:
                yield chunk


def _json_chunk(
    service: str, scope_spans: Any, where: str, mentions_threshold: bool
) -> SpanChunk | None:
    if not isinstance(scope_spans, dict):
        raise OtlpError(f"{where}: expected an object")
    spans = _list(scope_spans, "spans", where)
    if not spans:
        return None
    names, starts, ends, errors, trace_ids, roots, states = [], [], [], [], [], [], []
    for i, span in enumerate(spans):
        at = f"{where}.spans[{i}]"
        if not isinstance(span, dict):
            raise OtlpError(f"{at}: expected an object")
        name = span.get("name", "")
        if not isinstance(name, str):
            raise OtlpError(f"{at}.name: expected a string")
        names.append(name)
        starts.append(_time(span.get("startTimeUnixNano", 0), f"{at}.startTimeUnixNano"))
        ends.append(_time(span.get("endTimeUnixNano", 0), f"{at}.endTimeUnixNano"))
        status = span.get("status") or {}
        if not isinstance(status, dict):
            raise OtlpError(f"{at}.status: expected an object")
        code = status.get("code", 0)
        errors.append(code in (STATUS_ERROR, "STATUS_CODE_ERROR"))
        trace_ids.append(_hex_id(span.get("traceId"), f"{at}.traceId"))
        roots.append(not _hex_id(span.get("parentSpanId"), f"{at}.parentSpanId"))
        state = span.get("traceState", "")
        states.append(state if isinstance(state, str) else "")  # not one: no threshold either
    start_arr = np.array(starts, dtype=np.int64)
    end_arr = np.array(ends, dtype=np.int64)

    def attributes(i: int) -> list[Attribute]:
        return _json_attributes(spans[i].get("attributes"), f"{where}.spans[{i}].attributes")

    codes, table = code_names(names, len(names))
    kinds = first_kinds(codes, lambda i: _span_kind(spans[i], f"{where}.spans[{i}]"), len(table))
    return SpanChunk(
        service=service,
        name_codes=codes,
        name_table=table,
        name_kinds=kinds,
        durations_ns=np.maximum(end_arr - start_arr, 0),
        errors=np.array(errors, dtype=bool),
        trace_hashes=hash_trace_ids(trace_ids),
        entries=entry_spans(codes, kinds, np.array(roots, dtype=bool)),
        adjusted=adjusted_counts(states, attributes if mentions_threshold else None),
        start_ns=int(start_arr.min()),
        end_ns=int(end_arr.max()),
        attributes=attributes,
        starts_ns=start_arr,
    )


def _span_kind(span: dict[str, Any], where: str) -> int:
    kind = span.get("kind", 0)
    if isinstance(kind, str):
        return _KIND_NAMES.get(kind, 0)
    if isinstance(kind, bool) or not isinstance(kind, int):
        raise OtlpError(f"{where}.kind: expected an integer span kind")
    return kind


_KIND_NAMES = {
    "SPAN_KIND_INTERNAL": 1,
    "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3,
    "SPAN_KIND_PRODUCER": 4,
    "SPAN_KIND_CONSUMER": 5,
}


def decode(data: bytes, content_type: str = "") -> Iterator[SpanChunk]:
    """Decode by content type, or by sniffing when none is given (JSON starts with ``{``)."""
    if "json" in content_type or (not content_type and data.lstrip()[:1] == b"{"):
        return decode_json(data)
    return decode_protobuf(data)
