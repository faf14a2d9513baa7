"""OTLP decoding: JSON and protobuf agree, and malformed input gets a clear error."""

from __future__ import annotations

import json

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from weavergen.domain.measure.measure import summarise
from weavergen.domain.measure.otlp import OtlpError, decode_json, decode_protobuf, hash_trace_ids
from weavergen.domain.simulation.simulator import (
    EntropySimulator,
    Faults,
    to_otlp_json,
    to_otlp_protobuf,
)


@pytest.fixture(scope="module")
def chunks() -> list:  # type: ignore[type-arg]
    sim = EntropySimulator(5)
    return list(sim.chunks(sim.system("checkout"), Faults(error_rate=0.1), 1, window_s=10))


def test_json_and_protobuf_decode_to_the_same_summary(chunks: list) -> None:  # type: ignore[type-arg]
    as_json = summarise([(json.dumps(to_otlp_json(chunks)).encode(), "application/json")])
    as_pb = summarise([(to_otlp_protobuf(chunks), "application/x-protobuf")])
    a, b = as_json["checkout"], as_pb["checkout"]
    assert a.to_dict() == b.to_dict()
    assert a.span_count == sum(len(c) for c in chunks)
    assert a.error_count == sum(int(c.errors.sum()) for c in chunks)


def test_json_hex_ids_string_ints_and_integer_enums() -> None:
    doc = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "a"}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "name": "GET /",
                                "kind": 2,
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000000250000000",
                                "status": {"code": 2},
                                "attributes": [
                                    {
                                        "key": "http.response.status_code",
                                        "value": {"intValue": "503"},
                                    }
                                ],
                            }
                        ]
                    }
                ],
            }
        ]
    }
    (chunk,) = decode_json(json.dumps(doc))
    assert chunk.service == "a"
    assert chunk.name_table == ["GET /"] and chunk.name_codes.tolist() == [0]
    assert (
        chunk.trace_hashes.tolist()
        == hash_trace_ids([bytes.fromhex("5b8efff798038103d269b633813fc60c")]).tolist()
    )
    assert chunk.durations_ns.tolist() == [250_000_000]
    assert chunk.errors.tolist() == [True]
    assert chunk.attributes(0) == [("http.response.status_code", "int", 503)]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("[1, 2]", "must be an object"),
        ('{"resourceSpans": {}}', "resourceSpans: expected a list"),
        ('{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": 5}]}]}]}', ".name: expected"),
        (
            '{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}',
            "'soon' is not an integer",
        ),
        ('{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}', "is not hex"),
        ("{not json", "invalid OTLP/JSON"),
    ],
)
def test_wrong_json_types_name_the_field(document: str, message: str) -> None:
    with pytest.raises(OtlpError, match=r"resourceSpans|OTLP/JSON") as caught:
        list(decode_json(document))
    assert message in str(caught.value)


def test_truncated_protobuf_is_an_error(chunks: list) -> None:  # type: ignore[type-arg]
    data = to_otlp_protobuf(chunks)
    with pytest.raises(OtlpError, match="invalid OTLP/protobuf"):
        list(decode_protobuf(data[: len(data) // 2 + 3]))


def test_a_million_attributes_on_one_span_are_bounded() -> None:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.name, span.end_time_unix_nano = "big", 10
    for i in range(1_000_000):
        kv = span.attributes.add()
        kv.key = f"k{i}"
    (chunk,) = decode_protobuf(request.SerializeToString())
    assert len(chunk.attributes(0)) == 128  # the SDK's default limit: the rest is not inspected
    summary = summarise([(request.SerializeToString(), "application/x-protobuf")])
    assert summary["unknown_service"].span_count == 1
