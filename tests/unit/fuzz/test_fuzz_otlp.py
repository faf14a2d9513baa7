"""Bad input to the OTLP decoders and the receiver: fuzzed, bounded, refused with a reason.

The decoders (``otlp.decode``, ``spans.decode_records_json/protobuf``) get random bytes, random
JSON, near-valid OTLP/JSON documents with a wrong type in any field, and bit-flipped or truncated
protobuf; the only exception they may raise is ``OtlpError`` with a message. Decoding is lazy
(attributes are read when the summariser samples a span), so every input is decoded, every
attribute read and everything summarised. Summaries stay within their caps whatever the input,
and the receiver answers every request with 2xx/4xx: 413 for oversized, chunked or
decompression-bomb bodies (without inflating past the limit), 401 without the token.

Runs are bounded by example counts, not wall-clock, and are deterministic by default
(``derandomize``) so ``make test`` is stable. ``WEAVERGEN_FUZZ_SCALE=20`` multiplies the example
counts and draws fresh random inputs on every run, for a longer fuzzing session.

``tracemalloc`` sees what Python and numpy allocate, not what the protobuf runtime (upb) holds
in its own arenas; the memory bounds below are about the former.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import gzip
import json
import os
import threading
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest
from aiohttp import ClientSession
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from weavergen.domain.measure import otlp, spans
from weavergen.domain.measure.otlp import OtlpError, SpanChunk
from weavergen.domain.measure.sketch import KMV_SIZE
from weavergen.domain.measure.summary import (
    MAX_ATTRIBUTE_KEYS,
    MAX_OPERATIONS,
    MAX_SERVICES,
    MAX_VALUE_LENGTH,
    MAX_VALUES,
    ServiceSummary,
    Summariser,
)
from weavergen.domain.simulation.simulator import (
    EntropySimulator,
    Faults,
    to_otlp_json,
    to_otlp_protobuf,
)
from weavergen.telemetry.receiver import ReceiverConfig, build_app, serve
from weavergen.telemetry.windows import WindowStore

T = TypeVar("T")
SCALE = max(1, int(os.environ.get("WEAVERGEN_FUZZ_SCALE", "1")))
MIB = 1024 * 1024


def fuzz(examples: int) -> settings:
    """Settings of one fuzz test: ``examples`` inputs (times SCALE), no deadline, no database."""
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        database=None,
        derandomize=SCALE == 1,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# -- consuming decoded input the way the operator does -------------------------------------------


def summarise(chunks: Iterable[SpanChunk]) -> Summariser:
    """Read every attribute of every span (decoding is lazy), then summarise and serialise."""
    chunks = list(chunks)
    for chunk in chunks:
        for i in range(len(chunk)):
            chunk.attributes(i)
    summariser = Summariser()
    accepted = summariser.add(chunks)
    assert accepted + summariser.dropped_spans == sum(len(c) for c in chunks)
    for summary in summariser.services.values():
        again = ServiceSummary.from_dict(json.loads(json.dumps(summary.to_dict())))
        assert again.span_count == summary.span_count
    return summariser


def refused_or_done(decode: Callable[[], T]) -> T | None:
    """Run a decoder: its result, or None when it refused the input with an ``OtlpError``.

    Any other exception propagates and fails the test (hypothesis shrinks the input first).
    """
    try:
        return decode()
    except OtlpError as err:
        assert str(err), "an OtlpError must say what is wrong"
        return None


def check_all_decoders(body: bytes, content_type: str = "") -> None:
    refused_or_done(lambda: summarise(otlp.decode(body, content_type)))
    refused_or_done(lambda: spans.decode_records_json(body))
    refused_or_done(lambda: spans.decode_records_protobuf(body))


# -- strategies -----------------------------------------------------------------------------------

# Text with every code point, lone surrogates included (JSON can carry them as \\udXXX escapes).
any_text = st.text(st.characters(exclude_categories=()), max_size=12)
big_ints = st.integers(min_value=-(2**70), max_value=2**70) | st.sampled_from(
    [2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**400]
)
json_scalars = st.none() | st.booleans() | big_ints | st.floats() | any_text
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=12,
)


def sometimes_junk(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The field's own kind of value, or any JSON value instead."""
    return strategy | json_values


hex_ids = sometimes_junk(
    st.binary(max_size=20).map(bytes.hex)
    | st.binary(max_size=20).map(lambda b: b.hex().upper())
    | st.text("0123456789abcdefxyz -", max_size=40)
)
times = sometimes_junk(big_ints | big_ints.map(str) | st.sampled_from(["", " 12 ", "1e9", "0x10"]))
enum_values = sometimes_junk(
    st.integers(min_value=-3, max_value=9)
    | big_ints
    | st.sampled_from(
        [
            "SPAN_KIND_SERVER",
            "SPAN_KIND_CLIENT",
            "SPAN_KIND_BOGUS",
            "STATUS_CODE_ERROR",
            "STATUS_CODE_OK",
            "STATUS_CODE_NOPE",
        ]
    )
)
scalar_any_values = st.one_of(
    st.builds(lambda v: {"stringValue": v}, sometimes_junk(any_text)),
    st.builds(lambda v: {"intValue": v}, sometimes_junk(big_ints | big_ints.map(str))),
    st.builds(
        lambda v: {"doubleValue": v},
        sometimes_junk(st.floats() | big_ints | st.sampled_from(["1.5", "nan", "-inf", "x"])),
    ),
    st.builds(lambda v: {"boolValue": v}, sometimes_junk(st.booleans())),
    st.builds(
        lambda v: {"bytesValue": v},
        sometimes_junk(st.binary(max_size=12).map(lambda b: base64.b64encode(b).decode())),
    ),
    st.just({}),
    json_values,
)


def key_values(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = st.sampled_from(["service.name", "http.request.resend_count"]) | any_text
    kv = st.fixed_dictionaries({"key": sometimes_junk(keys)}, optional={"value": values})
    return sometimes_junk(st.lists(kv, max_size=5))


any_values = st.recursive(
    scalar_any_values,
    lambda inner: st.one_of(
        st.builds(lambda v: {"arrayValue": {"values": v}}, sometimes_junk(st.lists(inner))),
        st.builds(lambda v: {"kvlistValue": {"values": v}}, key_values(inner)),
        st.builds(lambda v: {"arrayValue": v}, json_values),
    ),
    max_leaves=8,
)
attributes = key_values(any_values)
events = sometimes_junk(
    st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "name": sometimes_junk(any_text),
                "timeUnixNano": times,
                "attributes": attributes,
            },
        ),
        max_size=3,
    )
)
otlp_spans = st.fixed_dictionaries(
    {},
    optional={
        "traceId": hex_ids,
        "spanId": hex_ids,
        "parentSpanId": hex_ids,
        "name": sometimes_junk(st.sampled_from(["GET /", "db.query"]) | any_text),
        "kind": enum_values,
        "startTimeUnixNano": times,
        "endTimeUnixNano": times,
        "attributes": attributes,
        "events": events,
        "links": sometimes_junk(st.lists(st.fixed_dictionaries({"traceId": hex_ids}), max_size=2)),
        "status": sometimes_junk(
            st.fixed_dictionaries(
                {}, optional={"code": enum_values, "message": sometimes_junk(any_text)}
            )
        ),
    },
)
scope_spans = sometimes_junk(
    st.fixed_dictionaries(
        {},
        optional={
            "scope": json_values,
            "spans": sometimes_junk(st.lists(sometimes_junk(otlp_spans), max_size=4)),
        },
    )
)
resource_attributes = sometimes_junk(
    st.lists(
        st.fixed_dictionaries(
            {"key": st.just("service.name"), "value": scalar_any_values},
        ),
        max_size=2,
    )
)
resource_spans = sometimes_junk(
    st.fixed_dictionaries(
        {},
        optional={
            "resource": sometimes_junk(
                st.fixed_dictionaries({}, optional={"attributes": resource_attributes})
            ),
            "scopeSpans": sometimes_junk(st.lists(scope_spans, max_size=3)),
        },
    )
)
otlp_documents = st.fixed_dictionaries(
    {}, optional={"resourceSpans": sometimes_junk(st.lists(resource_spans, max_size=3))}
)


def span_document(span: dict[str, Any]) -> bytes:
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).encode()


def with_attribute(value: Any) -> bytes:
    return span_document({"name": "a", "attributes": [{"key": "k", "value": value}]})


# One span whose attributes are anything: the decoders read attributes lazily, while summarising.
attribute_documents = attributes.map(lambda a: span_document({"name": "a", "attributes": a})) | (
    any_values.map(with_attribute)
)


def simulated_chunks(seed: int = 3) -> list[Any]:
    sim = EntropySimulator(seed)
    return list(sim.chunks(sim.system("shop"), Faults(error_rate=0.1), 1, window_s=1))


def rich_request() -> bytes:
    """A small request using every field the decoders read, so a flip lands somewhere useful."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    kv = resource_spans.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "rich"
    for i in range(3):
        span = resource_spans.scope_spans.add().spans.add()
        span.trace_id, span.span_id, span.parent_span_id = bytes(16), b"\1" * 8, b"\2" * 8
        span.name, span.kind = f"op{i}", 2 + i
        span.start_time_unix_nano, span.end_time_unix_nano = 2**62, 2**62 + 10**9
        span.status.code, span.status.message = 2, "boom"
        for key, setter in (
            ("s", lambda v: setattr(v, "string_value", "x")),
            ("i", lambda v: setattr(v, "int_value", -(2**63))),
            ("d", lambda v: setattr(v, "double_value", 1.5)),
            ("b", lambda v: setattr(v, "bool_value", True)),
            ("y", lambda v: setattr(v, "bytes_value", b"\0\1")),
        ):
            attribute = span.attributes.add()
            attribute.key = key
            setter(attribute.value)
        nested = span.attributes.add()
        nested.key = "nested"
        inner = nested.value.array_value.values.add().kvlist_value.values.add()
        inner.key, inner.value.string_value = "k", "v"
        event = span.events.add()
        event.name, event.time_unix_nano = "exception", 2**62 + 5
        link = span.links.add()
        link.trace_id, link.span_id = b"\3" * 16, b"\4" * 8
    return request.SerializeToString()


SIMULATED = simulated_chunks()
SIMULATED_PB = to_otlp_protobuf(SIMULATED)
SIMULATED_JSON = json.dumps(to_otlp_json(SIMULATED)).encode()
RICH_PB = rich_request()


@st.composite
def mutated_protobuf(draw: st.DrawFn) -> bytes:
    """A real request with bits flipped, bytes overwritten, inserted or cut, or truncated."""
    data = bytearray(draw(st.sampled_from([SIMULATED_PB, RICH_PB])))
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        at = draw(st.integers(min_value=0, max_value=len(data) - 1))
        operation = draw(st.sampled_from(["flip", "byte", "insert", "delete", "ones"]))
        if operation == "flip":
            data[at] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        elif operation == "byte":
            data[at] = draw(st.integers(min_value=0, max_value=255))
        elif operation == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif operation == "ones":  # a fixed64 (a time) or a varint (a length) at its largest
            data[at : at + 8] = b"\xff" * len(data[at : at + 8])
        elif len(data) > 1:
            del data[at]
    if draw(st.booleans()):
        data = data[: draw(st.integers(min_value=0, max_value=len(data)))]
    return bytes(data)


uint64s = st.integers(min_value=0, max_value=2**64 - 1) | st.sampled_from([0, 2**63, 2**64 - 1])
int64s = st.integers(min_value=-(2**63), max_value=2**63 - 1)
int32s = st.integers(min_value=-(2**31), max_value=2**31 - 1)
pb_text = st.text(max_size=8)  # protobuf strings are valid UTF-8: no lone surrogates
pb_values = st.recursive(
    st.tuples(st.just("string_value"), pb_text)
    | st.tuples(st.just("int_value"), int64s)
    | st.tuples(st.just("double_value"), st.floats())
    | st.tuples(st.just("bool_value"), st.booleans())
    | st.tuples(st.just("bytes_value"), st.binary(max_size=8))
    | st.tuples(st.just("unset"), st.none()),
    lambda inner: (
        st.tuples(st.just("array_value"), st.lists(inner, max_size=3))
        | st.tuples(st.just("kvlist_value"), st.lists(st.tuples(pb_text, inner), max_size=3))
    ),
    max_leaves=6,
)
pb_attributes = st.lists(
    st.tuples(st.sampled_from(["service.name", "http.request.resend_count"]) | pb_text, pb_values),
    max_size=4,
)


def set_value(message: Any, value: tuple[str, Any]) -> None:
    kind, raw = value
    if kind == "array_value":
        for item in raw:
            set_value(message.array_value.values.add(), item)
        message.array_value.SetInParent()
    elif kind == "kvlist_value":
        add_attributes(message.kvlist_value.values, raw)
        message.kvlist_value.SetInParent()
    elif kind != "unset":
        setattr(message, kind, raw)


def add_attributes(container: Any, attributes: list[tuple[str, Any]]) -> None:
    for key, value in attributes:
        kv = container.add()
        kv.key = key
        set_value(kv.value, value)


@st.composite
def protobuf_requests(draw: st.DrawFn) -> bytes:
    """Well-formed requests with any value in each field: times up to 2^64-1, unknown enums."""
    request = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        resource_spans = request.resource_spans.add()
        add_attributes(resource_spans.resource.attributes, draw(pb_attributes))
        for _ in range(draw(st.integers(min_value=0, max_value=2))):
            for _ in range(draw(st.integers(min_value=0, max_value=3))):
                span = resource_spans.scope_spans.add().spans.add()
                span.trace_id, span.span_id = (
                    draw(st.binary(max_size=20)),
                    draw(st.binary(max_size=9)),
                )
                span.name, span.kind = draw(pb_text), draw(int32s)
                span.start_time_unix_nano, span.end_time_unix_nano = draw(uint64s), draw(uint64s)
                span.status.code = draw(int32s)
                add_attributes(span.attributes, draw(pb_attributes))
                for _ in range(draw(st.integers(min_value=0, max_value=2))):
                    event = span.events.add()
                    event.name, event.time_unix_nano = draw(pb_text), draw(uint64s)
                    add_attributes(event.attributes, draw(pb_attributes))
    return request.SerializeToString()


def encode_documents(documents: list[Any]) -> bytes:
    """One JSON document, or several as JSON lines (NaN and Infinity as Python writes them)."""
    return "\n".join(json.dumps(d) for d in documents).encode()


content_types = st.sampled_from(
    ["", "application/json", "application/x-protobuf", "application/protobuf", "text/plain"]
)


# -- 1. the decoders never crash ------------------------------------------------------------------


@fuzz(400)
@given(body=st.binary(max_size=2048) | st.binary(max_size=64).map(b"{".__add__), ct=content_types)
def test_random_bytes_are_decoded_or_refused(body: bytes, ct: str) -> None:
    check_all_decoders(body, ct)


@fuzz(300)
@given(value=json_values)
def test_random_json_is_decoded_or_refused(value: Any) -> None:
    check_all_decoders(json.dumps(value).encode(), "application/json")


@fuzz(300)
@given(body=attribute_documents)
def test_any_attribute_is_decoded_or_refused(body: bytes) -> None:
    check_all_decoders(body, "application/json")


@fuzz(500)
@given(documents=st.lists(otlp_documents, min_size=1, max_size=2))
def test_near_valid_otlp_json_is_decoded_or_refused(documents: list[Any]) -> None:
    body = encode_documents(documents)
    refused_or_done(lambda: summarise(otlp.decode(encode_documents(documents[:1]), "")))
    refused_or_done(lambda: spans.decode_records_json(body))


@fuzz(400)
@given(body=mutated_protobuf())
def test_mutated_protobuf_is_decoded_or_refused(body: bytes) -> None:
    refused_or_done(lambda: summarise(otlp.decode(body, "application/x-protobuf")))
    refused_or_done(lambda: spans.decode_records_protobuf(body))


@fuzz(300)
@given(body=protobuf_requests())
def test_any_protobuf_request_is_decoded_or_refused(body: bytes) -> None:
    refused_or_done(lambda: summarise(otlp.decode(body, "application/x-protobuf")))
    refused_or_done(lambda: spans.decode_records_protobuf(body))


def test_the_unmutated_inputs_decode() -> None:
    """The fuzzers start from valid input: both decoders accept it whole."""
    spans_in = sum(len(c) for c in SIMULATED)
    for body, kind in ((SIMULATED_PB, "application/x-protobuf"), (SIMULATED_JSON, "")):
        assert sum(s.span_count for s in summarise(otlp.decode(body, kind)).services.values()) == (
            spans_in
        )
    assert len(spans.decode_records_protobuf(SIMULATED_PB)) == spans_in
    assert len(spans.decode_records_json(SIMULATED_JSON)) == spans_in
    assert len(spans.decode_records_protobuf(RICH_PB)) == 3
    summarise(otlp.decode(RICH_PB, "application/x-protobuf"))


def deep_any_value(depth: int) -> bytes:
    nested = '{"stringValue":"x"}'
    for _ in range(depth):
        nested = '{"arrayValue":{"values":[' + nested + "]}}"
    return (
        '{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"a","attributes":'
        '[{"key":"k","value":' + nested + "}]}]}]}]}"
    ).encode()


def one_span_request(**fields: Any) -> bytes:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    for name, value in fields.items():
        setattr(span, name, value)
    return request.SerializeToString()


# The smallest inputs found by the fuzzers above that broke a decoder; kept as regressions.
BAD_INPUTS = {
    "doubleValue not a number": with_attribute({"doubleValue": "abc"}),
    "doubleValue too big for a float": with_attribute({"doubleValue": 10**400}),
    "startTimeUnixNano over int64": span_document({"startTimeUnixNano": str(2**64)}),
    "endTimeUnixNano under int64": span_document({"endTimeUnixNano": -(2**63) - 1}),
    "lone surrogate in a span name": span_document({"name": "\ud800"}),
    "lone surrogate in a string value": with_attribute({"stringValue": "\udc00"}),
    "JSON nested too deep": b"[" * 50_000,
    "AnyValue nested too deep": deep_any_value(400),
    "protobuf fixed64 time over int64": one_span_request(start_time_unix_nano=2**64 - 1),
    "resource not an object": b'{"resourceSpans": [{"resource": true}]}',
    "attributes not a list": span_document({"name": "a", "attributes": 3}),
}


@pytest.mark.parametrize("body", list(BAD_INPUTS.values()), ids=list(BAD_INPUTS))
def test_bad_inputs_found_by_fuzzing_are_refused_or_decoded(body: bytes) -> None:
    check_all_decoders(body)
    check_all_decoders(body, "application/json")


# -- 2. bounded memory ----------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(tag: int, payload: bytes) -> bytes:
    return bytes([tag]) + _varint(len(payload)) + payload


def _scalar(value: str) -> bytes:
    return _field(0x0A, value.encode())  # AnyValue.string_value


def _key_value(key: str, value: str) -> bytes:
    return _field(0x0A, key.encode()) + _field(0x12, _scalar(value))  # KeyValue.key, .value


def absurd_request(services: int, names: int, keys: int, value_length: int) -> bytes:
    """Protobuf with one service whose ``names`` spans each have a name of their own and ``keys``
    attributes (every other key new, each value new and ``value_length`` long), then
    ``services`` one-span services. Written as raw protobuf fields: building 10^5 spans through
    the message API would take longer than decoding them."""

    def resource_spans(service: str, scope: bytes) -> bytes:
        resource = _field(0x0A, _key_value("service.name", service))  # Resource.attributes
        return _field(0x0A, _field(0x0A, resource) + _field(0x12, scope))  # ResourceSpans

    filler = "v" * value_length
    spans_pb = bytearray()
    for i in range(names):
        span = _field(0x0A, i.to_bytes(16, "big")) + _field(0x2A, f"op-{i}".encode())
        span += b"".join(
            _field(0x4A, _key_value(f"k{k}" if k % 2 else f"k{i}.{k}", f"{i}{filler}"))
            for k in range(keys)
        )
        span += b"\x39" + (i * 1000).to_bytes(8, "little")  # Span.start_time_unix_nano
        span += b"\x41" + (i * 2000 + 5).to_bytes(8, "little")  # Span.end_time_unix_nano
        spans_pb += _field(0x12, span)  # ScopeSpans.spans
    body = bytearray(resource_spans("absurd", bytes(spans_pb)))
    for s in range(services):
        span = _field(0x0A, s.to_bytes(16, "big")) + _field(0x2A, b"op")  # trace_id, name
        body += resource_spans(f"svc-{s}", _field(0x12, span))
    return bytes(body)


def assert_within_caps(summary: ServiceSummary) -> None:
    assert len(summary.operations) <= MAX_OPERATIONS
    assert summary.traces.hashes.size <= KMV_SIZE
    assert summary.operation_names.hashes.size <= KMV_SIZE
    for op in summary.operations.values():
        assert len(op.attributes) <= MAX_ATTRIBUTE_KEYS
        for stats in op.attributes.values():
            assert len(stats.values) <= MAX_VALUES
            assert all(len(text) <= MAX_VALUE_LENGTH for text in stats.values)
            assert stats.distinct.hashes.size <= KMV_SIZE
            assert len(stats.value_types) <= 7


ABSURD_SERVICES = MAX_SERVICES + 50
ABSURD_NAMES = MAX_OPERATIONS + 100
ABSURD_KEYS = MAX_ATTRIBUTE_KEYS + 8


def test_absurd_cardinality_stays_within_the_summary_caps() -> None:
    body = absurd_request(
        ABSURD_SERVICES, ABSURD_NAMES, ABSURD_KEYS, value_length=MAX_VALUE_LENGTH + 10
    )
    chunks = list(otlp.decode(body, "application/x-protobuf"))
    summariser = summarise(chunks)
    assert len(summariser.services) == MAX_SERVICES
    assert summariser.dropped_spans == ABSURD_SERVICES + 1 - MAX_SERVICES
    for summary in summariser.services.values():
        assert_within_caps(summary)
    absurd = summariser.services["absurd"]
    assert len(absurd.operations) == MAX_OPERATIONS
    assert max(len(op.attributes) for op in absurd.operations.values()) == MAX_ATTRIBUTE_KEYS
    assert max(
        len(a.values) for op in absurd.operations.values() for a in op.attributes.values()
    ) == (MAX_VALUES)
    assert absurd.operation_names.estimate() > MAX_OPERATIONS  # the sketch still counts them

    # The receiver's store keeps as many services, and windows merged from slots stay capped.
    now = [0.0]
    store = WindowStore(slot_seconds=1, max_slots=2, clock=lambda: now[0])
    assert store.add(chunks) == (
        ABSURD_NAMES + MAX_SERVICES - 1,
        ABSURD_SERVICES + 1 - MAX_SERVICES,
    )
    assert len(store.services()) == MAX_SERVICES
    absurd_chunks = [c for c in chunks if c.service == "absurd"]
    for _ in range(2):
        now[0] += 1
        store.add(absurd_chunks)
    merged = store.window("absurd", 60)
    assert_within_caps(merged)
    assert merged.span_count == 2 * ABSURD_NAMES  # the two newest slots
    # Merging slots of the same operations, keys and values adds counts, not entries.
    newest = store.window("absurd", 0)  # the slot being filled, alone
    assert newest.span_count == ABSURD_NAMES
    assert len(json.dumps(merged.to_dict())) <= 1.05 * len(json.dumps(newest.to_dict()))


@contextmanager
def peak_allocation() -> Iterator[list[int]]:
    """Peak bytes traced by ``tracemalloc`` inside the block (set on exit)."""
    gc.collect()
    result: list[int] = []
    tracemalloc.start()
    try:
        yield result
    finally:
        result.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()


UNIQUE_SPANS = 200_000
UNIQUE_SPANS_PEAK = 64 * MIB
"""Peak allocation decoding and summarising UNIQUE_SPANS spans, each with a name of its own and
one attribute (a ~15 MB request); most of it is the name table."""


def test_peak_memory_of_200k_uniquely_named_spans_is_bounded() -> None:
    body = absurd_request(0, UNIQUE_SPANS, 1, value_length=0)
    with peak_allocation() as peak:
        summariser = Summariser()
        summariser.add(otlp.decode(body, "application/x-protobuf"))
    (summary,) = summariser.services.values()
    assert summary.span_count == UNIQUE_SPANS
    assert_within_caps(summary)
    print(f"\npeak {peak[0] / MIB:.1f} MiB decoding a {len(body) / MIB:.1f} MiB request")
    assert peak[0] < UNIQUE_SPANS_PEAK


# -- 3. the receiver over HTTP --------------------------------------------------------------------


class Receiver:
    """The receiver app served on a real socket by an event loop in a thread of its own."""

    def __init__(self, config: ReceiverConfig) -> None:
        self.config = config
        self.store = WindowStore(slot_seconds=5)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner, port = self.run(serve(build_app(self.store, config), port=0))
        self.url = f"http://127.0.0.1:{port}"
        self.session: ClientSession = self.run(self._session())

    @staticmethod
    async def _session() -> ClientSession:
        return ClientSession()

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def post(self, data: Any, headers: dict[str, str]) -> tuple[int, bytes, str]:
        return self.request("POST", "/v1/traces", data, headers)

    def request(
        self, method: str, path: str, data: Any, headers: dict[str, str]
    ) -> tuple[int, bytes, str]:
        async def send() -> tuple[int, bytes, str]:
            async with self.session.request(
                method,
                self.url + path,
                data=data,
                headers=headers,
                skip_auto_headers=["Content-Type"],
            ) as resp:
                return resp.status, await resp.read(), resp.content_type

        result: tuple[int, bytes, str] = self.run(send())
        return result

    def close(self) -> None:
        self.run(self.session.close())
        self.run(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@contextmanager
def receiver(config: ReceiverConfig) -> Iterator[Receiver]:
    server = Receiver(config)
    try:
        yield server
    finally:
        server.close()


LIMITS = ReceiverConfig(max_body_bytes=64 * 1024, max_decompressed_bytes=256 * 1024)


@pytest.fixture(scope="module")
def limited() -> Iterator[Receiver]:
    with receiver(LIMITS) as server:
        yield server


header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)
request_content_types = (
    st.sampled_from(
        [
            "application/json",
            "application/x-protobuf",
            "application/protobuf",
            "Application/JSON; charset=utf-8",
            " application/x-protobuf ;x=y",
            "text/plain",
            "",
        ]
    )
    | header_text
)
encodings = st.sampled_from(["", "gzip", "GZIP ", "identity", "br", "deflate"]) | header_text


@st.composite
def request_bodies(draw: st.DrawFn) -> bytes:
    body: bytes = draw(
        st.one_of(
            st.binary(max_size=512),
            st.sampled_from([SIMULATED_PB, SIMULATED_JSON, RICH_PB]),
            mutated_protobuf(),
            protobuf_requests(),
            otlp_documents.map(lambda d: encode_documents([d])),
            attribute_documents,
            st.integers(
                min_value=LIMITS.max_body_bytes - 2, max_value=LIMITS.max_body_bytes + 2
            ).map(lambda n: b"\0" * n),
        )
    )
    if draw(st.booleans()):
        body = gzip.compress(body, compresslevel=1)
        if draw(st.booleans()):
            body = body[: draw(st.integers(min_value=0, max_value=len(body)))]
    return body


def supported(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("application/json", "application/x-protobuf", "application/protobuf")


@fuzz(300)
@given(body=request_bodies(), content_type=request_content_types, encoding=encodings)
def test_any_request_gets_an_answer_with_a_reason_never_a_server_error(
    limited: Receiver, body: bytes, content_type: str, encoding: str
) -> None:
    headers = {"Content-Type": content_type}
    if encoding:
        headers["Content-Encoding"] = encoding
    status, answer, answer_type = limited.post(body, headers)
    note(f"{status} {answer[:300]!r}")
    assert status in (200, 400, 413, 415), status
    if status == 200:
        if content_type.split(";", maxsplit=1)[0].strip().lower() == "application/json":
            assert answer_type == "application/json"
            json.loads(answer)
        else:
            ExportTraceServiceResponse().ParseFromString(answer)
        return
    assert json.loads(answer)["message"]
    coding = encoding.strip().lower()
    if not supported(content_type):
        assert status == 415
    elif len(body) > LIMITS.max_body_bytes:
        assert status == 413
    elif coding not in ("", "gzip", "identity"):
        assert status == 415
    elif status == 413:
        assert coding == "gzip"
    else:
        assert status == 400


@pytest.mark.parametrize("body", list(BAD_INPUTS.values()), ids=list(BAD_INPUTS))
def test_bad_inputs_found_by_fuzzing_get_a_reason_from_the_receiver(
    limited: Receiver, body: bytes
) -> None:
    kind = "application/json" if body[:1] in b"{[" else "application/x-protobuf"
    status, answer, _ = limited.post(body, {"Content-Type": kind})
    assert status in (200, 400), (status, answer[:300])
    if status == 400:
        assert json.loads(answer)["message"]


@pytest.mark.parametrize("encoding", ["", "gzip"])
def test_a_body_over_the_limit_is_refused_with_413(limited: Receiver, encoding: str) -> None:
    headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": encoding}
    limit = LIMITS.max_body_bytes
    status, answer, _ = limited.post(os.urandom(limit + 1), headers)
    assert status == 413
    assert f"limit of {limit} bytes" in json.loads(answer)["message"]
    status, _, _ = limited.post(b"\0" * limit, {"Content-Type": "application/x-protobuf"})
    assert status == 400  # at the limit: read and decoded (zeros are not a request)


def test_a_chunked_body_over_the_limit_is_refused_with_413(limited: Receiver) -> None:
    sent = [0]

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(LIMITS.max_body_bytes // 4096 + 8):
            sent[0] += 4096
            yield b"\0" * 4096

    status, answer, _ = limited.post(chunks(), {"Content-Type": "application/x-protobuf"})
    assert status == 413
    assert "over the limit" in json.loads(answer)["message"]
    assert sent[0] > LIMITS.max_body_bytes  # no Content-Length: only reading finds it out


def gzip_bomb(size: int) -> bytes:
    """``size`` zero bytes gzip-compressed, built without holding them (~1/1000 of the size)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(MIB)
    parts = [compressor.compress(block) for _ in range(size // MIB)]
    return b"".join([*parts, compressor.flush()])


BOMB_SIZE = 256 * MIB


def test_a_gzip_bomb_is_refused_without_being_inflated() -> None:
    bomb = gzip_bomb(BOMB_SIZE)
    config = ReceiverConfig(max_body_bytes=MIB, max_decompressed_bytes=4 * MIB)
    assert len(bomb) < config.max_body_bytes
    headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}
    with receiver(config) as server, peak_allocation() as peak:
        status, answer, _ = server.post(bomb, headers)
    assert status == 413
    assert "decompressed body is over the limit" in json.loads(answer)["message"]
    print(f"\npeak {peak[0] / MIB:.1f} MiB refusing a {len(bomb) / 1024:.0f} KiB gzip bomb")
    assert peak[0] < 4 * config.max_decompressed_bytes  # < 1/16 of the bomb's 256 MiB


@fuzz(60)
@given(authorization=st.none() | header_text | header_text.map("Bearer ".__add__))
def test_without_the_bearer_token_requests_get_401(authorization: str | None) -> None:
    headers = {"Content-Type": "application/x-protobuf"}
    if authorization is not None:
        headers["Authorization"] = authorization
    expected = 200 if authorization == f"Bearer {TOKEN}" else 401
    with_token = token_receiver()
    assert with_token.post(SIMULATED_PB, headers)[0] == expected


TOKEN = "s3cret"
_TOKEN_RECEIVERS: list[Receiver] = []


def token_receiver() -> Receiver:
    """One receiver requiring TOKEN, shared by the examples (closed at the end of the module)."""
    if not _TOKEN_RECEIVERS:
        _TOKEN_RECEIVERS.append(Receiver(ReceiverConfig(token=TOKEN)))
    return _TOKEN_RECEIVERS[0]


@pytest.fixture(scope="module", autouse=True)
def _close_token_receiver() -> Iterator[None]:
    yield
    while _TOKEN_RECEIVERS:
        _TOKEN_RECEIVERS.pop().close()


def test_the_right_token_is_accepted_and_a_wrong_one_refused() -> None:
    server = token_receiver()
    headers = {"Content-Type": "application/x-protobuf"}
    for authorization, expected in (
        (None, 401),
        ("Bearer wrong", 401),
        (f"bearer {TOKEN}", 401),
        (f"Bearer {TOKEN}x", 401),
        (f"Bearer {TOKEN}", 200),
    ):
        sent = dict(headers, **({"Authorization": authorization} if authorization else {}))
        status, answer, _ = server.post(SIMULATED_PB, sent)
        assert status == expected, (authorization, answer)
        if status == 401:
            assert "bearer token" in json.loads(answer)["message"]
        status, _, _ = server.request("GET", "/v1/summaries/shop", None, sent)
        assert status == expected
