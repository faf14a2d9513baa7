"""Sampled spans: each span's sampling probability, read from its tracestate's ``ot=th``, and
what a summary of them stands for.

Spans come through a sampler (an OpenTelemetry Collector's probabilistic sampler keeps a share of
the traces) that writes its rejection threshold into the tracestate of the spans it keeps.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from weavergen.domain.measure.otlp import (
    adjusted_count,
    decode_json,
    decode_protobuf,
    threshold_of,
    tracestate_adjusted_count,
)
from weavergen.domain.measure.spans import otlp_json
from weavergen.domain.measure.summary import OperationStats, ServiceSummary

# -- reading the threshold --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("threshold", "probability"),
    [
        ("c", 0.25),
        ("8", 0.5),
        ("0", 1.0),
        ("f", 1 / 16),
        ("e8", 0.09375),
        ("fffffffffffff", 2**-52),
    ],
)
def test_a_threshold_says_the_probability_a_span_was_kept(
    threshold: str, probability: float
) -> None:
    assert adjusted_count(threshold) == pytest.approx(1 / probability)
    assert threshold_of(probability) == threshold


@pytest.mark.parametrize(
    "threshold",
    ["", "C", "0x8", "123456789abcdef", "8 ", "-8", "g", "8.0"],
)
def test_a_threshold_that_is_not_one_says_nothing(threshold: str) -> None:
    assert adjusted_count(threshold) == 0.0


@pytest.mark.parametrize(
    ("tracestate", "adjusted"),
    [
        ("ot=th:c", 4.0),
        ("ot=rv:0123456789abcd;th:8", 2.0),
        ("ot=th:8;rv:0123456789abcd", 2.0),
        ("rojo=00f067aa0ba902b7,ot=th:c", 4.0),
        ("ot=th:c , congo=t61rcWkgMzE", 4.0),
        ("rojo=00f067aa0ba902b7", 0.0),  # another vendor's member only
        ("ot=rv:0123456789abcd", 0.0),  # randomness, no threshold
        ("ot=th:zz", 0.0),
        ("xot=th:c", 0.0),
        ("ot", 0.0),
        ("", 0.0),
    ],
)
def test_the_threshold_is_read_from_the_ot_member_of_a_tracestate(
    tracestate: str, adjusted: float
) -> None:
    assert tracestate_adjusted_count(tracestate) == adjusted


# (tracestate, sampling.threshold attribute, expected adjusted count); the attribute counts only
# where the tracestate says no threshold.
SPANS: list[tuple[str, Any, float]] = [
    ("ot=th:c", None, 4.0),
    ("rojo=00f067aa0ba902b7,ot=rv:0123456789abcd;th:8", None, 2.0),
    ("ot=th:0", None, 1.0),
    ("ot=th:C", None, 0.0),
    ("ot=th:123456789abcdef", None, 0.0),
    ("", "c", 4.0),
    ("ot=rv:0123456789abcd", "8", 2.0),
    ("ot=th:c", "8", 4.0),
    ("", "not hex", 0.0),
    ("", 12, 0.0),  # an int attribute is no threshold
    ("", None, 0.0),
]


def request(spans: list[tuple[str, Any, float]]) -> bytes:
    message = ExportTraceServiceRequest()
    resource = message.resource_spans.add()
    kv = resource.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "shop"
    scope = resource.scope_spans.add()
    for i, (tracestate, threshold, _) in enumerate(spans):
        span = scope.spans.add()
        span.trace_id = i.to_bytes(16, "big")
        span.span_id = (i + 1).to_bytes(8, "big")
        span.name = "GET /"
        span.kind = 2
        span.trace_state = tracestate
        span.start_time_unix_nano = 1_700_000_000_000_000_000
        span.end_time_unix_nano = 1_700_000_000_001_000_000
        if threshold is not None:
            attribute = span.attributes.add()
            attribute.key = "sampling.threshold"
            if isinstance(threshold, int):
                attribute.value.int_value = threshold
            else:
                attribute.value.string_value = threshold
    return message.SerializeToString()


def test_protobuf_and_json_read_each_spans_adjusted_count() -> None:
    data = request(SPANS)
    expected = [adjusted for _, _, adjusted in SPANS]
    (from_protobuf,) = decode_protobuf(data)
    (from_json,) = decode_json(json.dumps(otlp_json(data)))
    assert from_protobuf.adjusted.tolist() == expected
    assert from_json.adjusted.tolist() == expected


def test_a_request_that_says_no_threshold_anywhere_reads_as_unsampled() -> None:
    (chunk,) = decode_protobuf(request([("rojo=00f067aa0ba902b7", None, 0.0)] * 3))
    assert chunk.adjusted.tolist() == [0.0, 0.0, 0.0]


def test_a_tracestate_of_the_wrong_json_type_is_ignored_not_an_error() -> None:
    document = otlp_json(request([("ot=th:c", None, 4.0), ("ot=th:8", None, 2.0)]))
    spans = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans[0]["traceState"] = 8
    spans[1]["traceState"] = {"ot": "th:8"}
    (chunk,) = decode_json(json.dumps(document))
    assert chunk.adjusted.tolist() == [0.0, 0.0]


def test_looking_for_the_attribute_does_not_make_bad_attributes_an_error_sooner() -> None:
    """Attributes that do not decode are the summary's to report, when it inspects the span."""
    document = otlp_json(request([("", "c", 4.0), ("", None, 0.0)]))
    spans = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans[1]["attributes"] = [{"key": 5}]
    (chunk,) = decode_json(json.dumps(document))
    assert chunk.adjusted.tolist() == [4.0, 0.0]


def test_slices_keep_their_adjusted_counts() -> None:
    (chunk,) = decode_protobuf(request(SPANS))
    assert chunk.slice(5, 8).adjusted.tolist() == [4.0, 2.0, 4.0]


# -- summaries ----------------------------------------------------------------------------------


def test_a_summary_counts_the_spans_of_known_probability_and_what_they_stand_for() -> None:
    (chunk,) = decode_protobuf(request(SPANS))
    summary = ServiceSummary("shop")
    summary.add_chunk(chunk)
    op = summary.operations["GET /"]
    known = [adjusted for _, _, adjusted in SPANS if adjusted]
    assert (op.count, op.sampled, op.adjusted) == (len(SPANS), len(known), sum(known))
    assert (op.sampled_entries, op.adjusted_entries) == (len(known), sum(known))  # server spans
    unknown = len(SPANS) - len(known)
    assert summary.represented_spans == sum(known) + unknown  # the others: as not sampled
    assert summary.assuming(0.5).represented_spans == sum(known) + unknown / 0.5
    assert summary.sampling_ratio() == pytest.approx(len(SPANS) / (sum(known) + unknown))


def test_sampling_counts_merge_and_round_trip_and_are_omitted_when_none() -> None:
    (chunk,) = decode_protobuf(request(SPANS))
    a, b = ServiceSummary("shop"), ServiceSummary("shop")
    a.add_chunk(chunk)
    b.add_chunk(chunk)
    a.merge(b)
    op = a.operations["GET /"]
    known = [adjusted for _, _, adjusted in SPANS if adjusted]
    assert (op.sampled, op.adjusted) == (2 * len(known), 2 * sum(known))
    again = ServiceSummary.from_dict(json.loads(json.dumps(a.to_dict())))
    assert again.to_dict() == a.to_dict()
    assert again.represented_spans == a.represented_spans

    plain = OperationStats(kind=2, count=10, entries=10).to_dict()
    assert not {"sampled", "adjusted", "sampledEntries", "adjustedEntries"} & set(plain)
    old = OperationStats.from_dict(plain)  # a summary stored before sampling was read
    assert (old.sampled, old.adjusted, old.represented(1.0)) == (0, 0.0, 10.0)


def test_a_summary_that_says_its_fallback_ratio_keeps_it() -> None:
    summary = ServiceSummary("shop", operations={"GET /": OperationStats(count=100, entries=100)})
    assert summary.assuming(0.25).represented_spans == 400
    captured = ServiceSummary.from_dict(replace(summary, fallback_ratio=1.0).to_dict())
    assert captured.assuming(0.25).represented_spans == 100  # captured unsampled: stays so
