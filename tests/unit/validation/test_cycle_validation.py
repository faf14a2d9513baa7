"""DMEDI cycle validation from spans: decoding OTLP captures and judging the cycles in them.

Spans are built once as plain values and written both as a real OTLP protobuf export request and,
independently, as OTLP/JSON text, so the decoders are checked against each other.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan

from weavergen.domain.measure.cycle_validation import (
    PHASES,
    Check,
    render_text,
    validate_cycle,
    validate_spans,
)
from weavergen.domain.measure.spans import (
    SpanRecord,
    decode_records_json,
    decode_records_protobuf,
    load_records,
    otlp_json,
)

OPERATOR = "weavergen-operator"
JOB = "weavergen-phase-job"
T0 = 1_700_000_000_000_000_000
SECOND = 1_000_000_000


@dataclass
class Span:
    """A span to encode: ids as bytes, attributes as Python values."""

    trace: bytes
    span: bytes
    parent: bytes
    name: str
    attributes: dict[str, Any]
    start: int = T0
    end: int = T0 + SECOND
    status: int = 0
    message: str = ""
    events: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    service: str = OPERATOR


def trace_id(n: int) -> bytes:
    return (0xA1B2C3D4_00000000_00000000_00000000 + n).to_bytes(16, "big")


def cycle(
    n: int,
    *,
    phases: Iterable[str] = PHASES,
    entropy: tuple[float, float] = (0.8, 0.3),
    health: tuple[float, float] = (0.5, 0.9),
    levels: tuple[str, str] = ("high", "low"),
    outcome: str = "Succeeded",
    expected_level: str | None = None,
) -> list[Span]:
    """One cycle's spans as the operator emits them: the root, then one span per phase."""
    trace, root_id = trace_id(n), bytes([n, 0, 0, 0, 0, 0, 0, 1])
    start = T0 + n * 100 * SECOND
    attributes: dict[str, Any] = {
        "weavergen.cycle.name": f"checkout-{n}",
        "weavergen.cycle.namespace": "shop",
        "weavergen.charter.name": "checkout",
        "weavergen.system.id": "checkout",
        "weavergen.cycle.outcome": outcome,
        "weavergen.entropy.before": entropy[0],
        "weavergen.entropy.after": entropy[1],
        "weavergen.entropy.level.before": levels[0],
        "weavergen.entropy.level.after": levels[1],
        "weavergen.health.before": health[0],
        "weavergen.health.after": health[1],
        "weavergen.strategy": "scale_out",
    }
    if expected_level is not None:
        attributes["weavergen.simulation.expected_level"] = expected_level
    root = Span(trace, root_id, b"", "dmedi_cycle", attributes, start, start + 50 * SECOND)
    children = [
        Span(
            trace,
            bytes([n, 0, 0, 0, 0, 0, 1, i + 1]),
            root_id,
            f"dmedi_{phase}",
            {"weavergen.phase": phase, "weavergen.system.id": "checkout"},
            start + i * SECOND,
            start + (i + 1) * SECOND,
        )
        for i, phase in enumerate(phases)
    ]
    return [root, *children]


def named(spans: list[Span], name: str) -> Span:
    return next(s for s in spans if s.name == name)


# -- encoders ---------------------------------------------------------------------------------


def _set_value(target: AnyValue, value: Any) -> None:
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        target.int_value = value
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, list):
        target.array_value.SetInParent()
        for item in value:
            _set_value(target.array_value.values.add(), item)
    else:
        target.string_value = value


def _by_service(spans: list[Span]) -> dict[str, list[Span]]:
    grouped: dict[str, list[Span]] = {}
    for span in spans:
        grouped.setdefault(span.service, []).append(span)
    return grouped


def to_protobuf(spans: list[Span]) -> bytes:
    """The spans as one ExportTraceServiceRequest, one resource per service."""
    request = ExportTraceServiceRequest()
    for service, group in _by_service(spans).items():
        resource_spans = request.resource_spans.add()
        kv = resource_spans.resource.attributes.add()
        kv.key, kv.value.string_value = "service.name", service
        scope = resource_spans.scope_spans.add()
        scope.scope.name = "weavergen"
        for s in group:
            span = scope.spans.add()
            span.trace_id, span.span_id, span.parent_span_id = s.trace, s.span, s.parent
            span.name, span.kind = s.name, OtlpSpan.SPAN_KIND_INTERNAL
            span.start_time_unix_nano, span.end_time_unix_nano = s.start, s.end
            span.status.code, span.status.message = s.status, s.message  # type: ignore[assignment]
            for key, value in s.attributes.items():
                attribute = span.attributes.add()
                attribute.key = key
                _set_value(attribute.value, value)
            for name, time, attributes in s.events:
                event = span.events.add()
                event.name, event.time_unix_nano = name, time
                for key, value in attributes.items():
                    attribute = event.attributes.add()
                    attribute.key = key
                    _set_value(attribute.value, value)
    return request.SerializeToString()


def _json_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):  # OTLP/JSON writes int64 as strings; small ones may be numbers
        return {"intValue": str(value) if value > 100 else value}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [_json_value(v) for v in value]}}
    return {"stringValue": value}


def _json_attributes(attributes: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _json_value(v)} for k, v in attributes.items()]


def to_json_document(spans: list[Span]) -> dict[str, Any]:
    """The spans as one OTLP/JSON traces document, written by hand (hex ids, string int64s)."""
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": _json_attributes({"service.name": service})},
                "scopeSpans": [
                    {
                        "scope": {"name": "weavergen"},
                        "spans": [
                            {
                                "traceId": s.trace.hex().upper(),  # hex is case-insensitive
                                "spanId": s.span.hex(),
                                **({"parentSpanId": s.parent.hex()} if s.parent else {}),
                                "name": s.name,
                                "kind": 1,
                                "startTimeUnixNano": str(s.start),
                                "endTimeUnixNano": s.end,  # numbers are accepted too
                                "attributes": _json_attributes(s.attributes),
                                "events": [
                                    {
                                        "timeUnixNano": str(t),
                                        "name": name,
                                        "attributes": _json_attributes(attributes),
                                    }
                                    for name, t, attributes in s.events
                                ],
                                "status": (
                                    {"code": s.status, "message": s.message} if s.status else {}
                                ),
                            }
                            for s in group
                        ],
                    }
                ],
            }
            for service, group in _by_service(spans).items()
        ]
    }


def records(spans: list[Span]) -> list[SpanRecord]:
    return decode_records_protobuf(to_protobuf(spans))


# -- single cycles ----------------------------------------------------------------------------


def test_a_complete_improving_cycle_passes() -> None:
    report = validate_spans(records(cycle(1, expected_level="high")))
    (result,) = report.cycles
    assert result.passed and result.reasons == ()
    assert result.trace_id == trace_id(1).hex()
    assert (result.cycle, result.charter, result.outcome) == ("checkout-1", "checkout", "Succeeded")
    assert result.phases_completed == 5
    assert result.missing_phases == result.failed_phases == ()
    assert result.entropy_improvement == pytest.approx((0.8 - 0.3) / 0.8)
    assert result.health_improvement == pytest.approx(0.4)
    assert result.strategy == "scale_out"
    assert not result.rolled_back
    assert (result.detected_level, result.expected_level) == ("high", "high")
    assert report.checks == (Check("cycles_passed", 1, 1, True, 1),)
    assert report.passed
    assert report.detection_accuracy == 1.0 and report.detection_cases == 1


def test_a_missing_phase_fails_naming_it() -> None:
    spans = [s for s in cycle(1) if s.name != "dmedi_explore"]
    report = validate_spans(records(spans))
    (result,) = report.cycles
    assert not result.passed and not report.passed
    assert result.phases_completed == 4
    assert result.missing_phases == ("explore",)
    assert result.reasons == ("only 4 of 5 phases completed: dmedi_explore missing",)
    assert report.checks == (Check("cycles_passed", 0, 1, False, 1),)


@pytest.mark.parametrize(
    ("entropy", "improvement", "reason"),
    [
        ((0.5, 0.48), 0.04, "entropy improvement 0.04 is not above 0.20 (entropy 0.5 -> 0.48)"),
        ((0.5, 0.6), -0.2, "entropy improvement -0.20 is not above 0.20 (entropy 0.5 -> 0.6)"),
        ((0.5, 0.4), 0.2, "entropy improvement 0.20 is not above 0.20 (entropy 0.5 -> 0.4)"),
    ],
)
def test_too_little_entropy_improvement_fails_naming_it(
    entropy: tuple[float, float], improvement: float, reason: str
) -> None:
    result = validate_cycle(records(cycle(1, entropy=entropy)))
    assert not result.passed
    assert result.phases_completed == 5
    assert result.entropy_improvement == pytest.approx(improvement)
    assert result.reasons == (reason,)


def test_the_improvement_threshold_is_configurable() -> None:
    spans = records(cycle(1, entropy=(0.5, 0.45)))
    assert not validate_cycle(spans).passed
    assert validate_cycle(spans, min_improvement=0.05).passed


def test_missing_entropy_measurements_fail_with_a_reason() -> None:
    spans = cycle(1)
    del spans[0].attributes["weavergen.entropy.after"]
    result = validate_cycle(records(spans))
    assert not result.passed
    assert (result.entropy_after, result.entropy_improvement) == (None, 0.0)
    assert result.reasons == (
        "dmedi_cycle does not record weavergen.entropy.before and weavergen.entropy.after",
    )


def test_a_failed_phase_is_not_counted() -> None:
    spans = cycle(1)
    named(spans, "dmedi_develop").status = 2
    named(spans, "dmedi_develop").message = "Job develop-x1 failed: BackoffLimitExceeded"
    result = validate_cycle(records(spans))
    assert not result.passed
    assert result.phases_completed == 4
    assert result.failed_phases == ("develop",) and result.missing_phases == ()
    assert result.reasons == (
        "only 4 of 5 phases completed: dmedi_develop failed "
        "(Job develop-x1 failed: BackoffLimitExceeded)",
    )


def test_a_retried_phase_counts_once_if_a_try_succeeded() -> None:
    spans = cycle(1)
    develop = named(spans, "dmedi_develop")
    failed_try = replace(develop, span=b"\x01" * 8, status=2, message="OOMKilled")
    second_ok = replace(develop, span=b"\x02" * 8)
    result = validate_cycle(records([*spans, failed_try, second_ok]))
    assert result.passed
    assert result.phases_completed == 5

    all_failed = [s for s in spans if s is not develop]
    all_failed += [failed_try, replace(failed_try, span=b"\x03" * 8, message="timeout")]
    result = validate_cycle(records(all_failed))
    assert result.phases_completed == 4 and result.failed_phases == ("develop",)
    assert "dmedi_develop failed (timeout)" in result.reasons[0]


def test_phase_spans_from_other_resources_still_count() -> None:
    spans = cycle(1)
    for span in spans[1:]:
        span.service = JOB if span.name in ("dmedi_develop", "dmedi_implement") else "measurer"
    decoded = records(spans)
    assert {r.service_name for r in decoded} == {OPERATOR, JOB, "measurer"}
    assert validate_cycle(decoded).passed


def test_a_trace_without_the_root_fails_with_a_reason() -> None:
    spans = cycle(1)[1:]
    report = validate_spans(records(spans))
    (result,) = report.cycles
    assert not result.passed and not report.passed
    assert result.phases_completed == 5
    assert (result.outcome, result.entropy_before, result.strategy) == ("", None, None)
    assert result.reasons == (f"no dmedi_cycle root span in trace {trace_id(1).hex()}",)


def test_a_not_needed_cycle_fails() -> None:
    spans = cycle(
        1,
        phases=("define", "measure"),
        entropy=(0.1, 0.1),
        health=(0.95, 0.95),
        levels=("low", "low"),
        outcome="NotNeeded",
    )
    result = validate_cycle(records(spans))
    assert not result.passed
    assert result.phases_completed == 2
    assert result.missing_phases == ("explore", "develop", "implement")
    assert result.reasons == (
        "only 2 of 5 phases completed: dmedi_explore, dmedi_develop, dmedi_implement missing"
        " (outcome NotNeeded)",
        "entropy improvement 0.00 is not above 0.20 (entropy 0.1 -> 0.1)",
    )


def test_a_rollback_event_is_detected_and_explains_the_failure() -> None:
    spans = cycle(1, entropy=(0.8, 0.79))
    spans[0].events.append(
        (
            "rollback",
            T0 + 40 * SECOND,
            {"weavergen.rollback.reason": "health fell", "weavergen.rollback.restored_objects": 3},
        )
    )
    result = validate_cycle(records(spans))
    assert result.rolled_back
    assert result.reasons == (
        "entropy improvement 0.01 is not above 0.20 (entropy 0.8 -> 0.79),"
        " rolled back: health fell",
    )
    assert validate_cycle(records(cycle(2, outcome="RolledBack"))).rolled_back
    assert not validate_cycle(records(cycle(3))).rolled_back


# -- several cycles ---------------------------------------------------------------------------


def fleet() -> list[Span]:
    """Five cycles: four improve (one misdetected), one was NotNeeded."""
    spans = []
    for n in range(1, 5):
        spans += cycle(
            n,
            health=(0.5, 0.5 + 0.1 * n),
            levels=("high" if n != 4 else "medium", "low"),
            expected_level="high",
        )
    spans += cycle(
        5,
        phases=("define", "measure"),
        entropy=(0.1, 0.1),
        health=(0.9, 0.9),
        levels=("low", "low"),
        outcome="NotNeeded",
        expected_level="low",
    )
    unrelated = Span(trace_id(99), b"\x09" * 8, b"", "GET /checkout", {"http.route": "/c"})
    return [unrelated, *reversed(spans)]


def test_several_cycles_are_judged_together() -> None:
    report = validate_spans(records(fleet()))
    assert [c.cycle for c in report.cycles] == [f"checkout-{n}" for n in range(1, 6)]
    assert [c.passed for c in report.cycles] == [True, True, True, True, False]
    # The NotNeeded cycle found a healthy system: it counts for detection only.
    assert report.regeneration_cases == 4
    assert report.success_rate == pytest.approx(1.0)
    assert report.average_health_improvement == pytest.approx((0.1 + 0.2 + 0.3 + 0.4) / 4)
    assert report.detection_cases == 5
    assert report.detection_accuracy == pytest.approx(0.8)
    assert [(c.name, c.passed, c.cases) for c in report.checks] == [
        ("regeneration_success_rate", True, 4),
        ("average_health_improvement", False, 4),
        ("entropy_detection_accuracy", False, 5),
    ]
    assert [c.value for c in report.checks] == pytest.approx([1.0, 0.25, 0.8])
    assert [c.target for c in report.checks] == [0.8, 0.3, 0.95]
    assert not report.passed


def test_failed_regenerations_count_but_not_needed_cycles_do_not() -> None:
    spans = fleet() + cycle(6, entropy=(0.8, 0.75), health=(0.5, 0.5), outcome="RolledBack")
    report = validate_spans(records(spans))
    assert report.regeneration_cases == 5
    assert report.success_rate == pytest.approx(4 / 5)
    assert report.average_health_improvement == pytest.approx(1.0 / 5)
    assert report.detection_cases == 5


def test_aggregate_thresholds_are_configurable_and_tolerate_rounding() -> None:
    report = validate_spans(
        records(fleet()), min_success_rate=1.0, min_health_improvement=0.25, min_accuracy=0.8
    )
    assert all(check.passed for check in report.checks)
    assert report.passed
    # 0.7 - 0.4 is 0.29999999999999993 in floating point: still a health improvement of 0.3.
    report = validate_spans(records(cycle(1, health=(0.4, 0.7)) + cycle(2, health=(0.4, 0.7))))
    assert report.average_health_improvement is not None
    assert report.average_health_improvement < 0.3
    assert report.passed


def not_needed(n: int, expected_level: str | None = None) -> list[Span]:
    return cycle(
        n,
        phases=("define", "measure"),
        entropy=(0.1, 0.1),
        health=(0.95, 0.95),
        levels=("low", "low"),
        outcome="NotNeeded",
        expected_level=expected_level,
    )


def test_when_no_cycle_needed_regeneration_only_detection_is_judged() -> None:
    report = validate_spans(records(not_needed(1, "low") + not_needed(2, "low")))
    assert report.regeneration_cases == 0
    assert report.success_rate is None and report.average_health_improvement is None
    assert report.checks == (Check("entropy_detection_accuracy", 1.0, 0.95, True, 2),)
    assert report.passed
    without_truth = validate_spans(records(not_needed(1) + not_needed(2)))
    assert without_truth.checks == (Check("cycles_passed", 0, 1, False, 2),)
    assert not without_truth.passed


def test_without_ground_truth_there_is_no_accuracy_check() -> None:
    report = validate_spans(records(cycle(1) + cycle(2, health=(0.2, 0.9))))
    assert report.detection_accuracy is None and report.detection_cases == 0
    assert [c.name for c in report.checks] == [
        "regeneration_success_rate",
        "average_health_improvement",
    ]
    assert report.passed


def test_no_cycle_at_all_fails() -> None:
    report = validate_spans(records([Span(trace_id(7), b"\x01" * 8, b"", "GET /", {})]))
    assert report.cycles == ()
    assert report.checks == (Check("cycles_passed", 0, 1, False, 0),)
    assert not report.passed
    assert "no DMEDI cycle spans found" in render_text(report)


def test_one_trace_can_be_selected() -> None:
    spans = records(fleet())
    wanted = trace_id(5).hex()
    report = validate_spans(spans, trace_id=wanted)
    assert [c.trace_id for c in report.cycles] == [wanted]
    assert [c.name for c in report.checks] == ["cycles_passed"] and not report.passed
    assert validate_spans(spans, trace_id=trace_id(2).hex().upper()).passed
    assert validate_spans(spans, trace_id=wanted[:30] + "05").cycles[0].trace_id == wanted


def test_an_unknown_or_ambiguous_trace_is_an_error() -> None:
    spans = records(fleet())
    with pytest.raises(ValueError, match=r"^no spans of trace 00ff$"):
        validate_spans(spans, trace_id="00ff")
    with pytest.raises(ValueError, match="ambiguous"):
        validate_spans(spans, trace_id="a1b2c3d4")


def test_reports_serialise_and_render() -> None:
    report = validate_spans(records(fleet()))
    document = json.loads(json.dumps(report.to_dict()))
    assert document["passed"] is False
    assert (document["regeneration_cases"], document["detection_cases"]) == (4, 5)
    assert document["checks"][0] == {
        "name": "regeneration_success_rate",
        "value": pytest.approx(1.0),
        "target": 0.8,
        "passed": True,
        "cases": 4,
    }
    assert document["cycles"][4]["missing_phases"] == ["explore", "develop", "implement"]
    assert document["cycles"][0]["entropy_improvement"] == pytest.approx(0.625)

    lines = render_text(report).splitlines()
    assert " ".join(lines[0].split()) == "trace cycle outcome phases entropy health result"
    first = lines[1]
    assert first.startswith("a1b2c3d4  checkout-1")
    assert "5/5" in first and "0.8 -> 0.3 (62%)" in first and "0.5 -> 0.6" in first
    assert first.endswith("PASS")
    assert "FAIL: only 2 of 5 phases completed" in lines[5] and "NotNeeded" in lines[5]
    assert any(
        line.startswith("average_health_improvement")
        and "0.25 (target >= 0.3)" in line
        and "over the 4 cycles that regenerated (not NotNeeded or Escalated) (of 5)" in line
        and line.endswith("FAIL")
        for line in lines
    )
    assert any(
        line.startswith("entropy_detection_accuracy")
        and "over the 5 cycles with a known true level (of 5)" in line
        for line in lines
    )
    assert lines[-1] == "FAILED"


# -- decoding ---------------------------------------------------------------------------------


def sample() -> list[Span]:
    """A cycle with every value kind, an event, an error status and three resources."""
    spans = cycle(1, expected_level="high")
    spans[0].attributes.update({"big": 2**40, "flag": True, "tags": ["a", 1, 2.5, False]})
    spans[0].events.append(("rollback", T0 + 7, {"weavergen.rollback.restored_objects": 2}))
    named(spans, "dmedi_explore").status = 2
    named(spans, "dmedi_explore").message = "boom"
    named(spans, "dmedi_develop").service = JOB
    named(spans, "dmedi_implement").service = ""
    return spans


def test_json_and_protobuf_decode_to_identical_records() -> None:
    spans = sample()
    from_protobuf = decode_records_protobuf(to_protobuf(spans))
    from_document = decode_records_json(json.dumps(to_json_document(spans), indent=2))
    json_lines = "\n".join(json.dumps(to_json_document([s])) for s in spans) + "\n\n"
    from_lines = decode_records_json(json_lines.encode())
    assert from_protobuf == from_document == from_lines

    root = from_protobuf[0]
    assert root.trace_id == trace_id(1).hex() and len(root.span_id) == 16
    assert root.parent_span_id == "" and root.name == "dmedi_cycle"
    assert (root.start_ns, root.end_ns) == (T0 + 100 * SECOND, T0 + 150 * SECOND)
    assert root.attributes["big"] == 2**40 and root.attributes["flag"] is True
    assert root.attributes["tags"] == ["a", 1, 2.5, False]
    assert root.attributes["weavergen.entropy.before"] == 0.8
    assert root.events == (("rollback", T0 + 7, {"weavergen.rollback.restored_objects": 2}),)
    assert root.service_name == OPERATOR
    explore = next(r for r in from_protobuf if r.name == "dmedi_explore")
    assert (explore.status_code, explore.status_message) == (2, "boom")
    assert explore.parent_span_id == root.span_id
    assert {r.service_name for r in from_protobuf} == {OPERATOR, JOB, ""}


def test_json_status_codes_may_be_enum_names() -> None:
    document = to_json_document(cycle(1)[:1])
    document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["status"] = {
        "code": "STATUS_CODE_ERROR"
    }
    (record,) = decode_records_json(json.dumps(document))
    assert record.status_code == 2


def test_otlp_json_round_trips() -> None:
    data = to_protobuf(sample())
    document = otlp_json(data)
    root, span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][:2]
    assert span["traceId"] == trace_id(1).hex()
    assert span["parentSpanId"] == root["spanId"] == bytes([1, 0, 0, 0, 0, 0, 0, 1]).hex()
    assert span["startTimeUnixNano"] == str(T0 + 100 * SECOND)
    assert decode_records_json(json.dumps(otlp_json(data))) == decode_records_protobuf(data)
    assert otlp_json(b"") == {}


def test_files_decode_by_content(tmp_path: Path) -> None:
    spans = sample()
    lines = tmp_path / "capture.jsonl"
    lines.write_text("".join(json.dumps(otlp_json(to_protobuf([s]))) + "\n" for s in spans))
    binary = tmp_path / "capture.bin"
    binary.write_bytes(to_protobuf(spans))
    document = tmp_path / "capture.json"
    document.write_text("\n  " + json.dumps(to_json_document(spans), indent=1))
    assert load_records(lines) == load_records(binary) == load_records(document)
    assert validate_spans(load_records(binary)).cycles[0].phases_completed == 4
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert load_records(empty) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"resourceSpans": []}\n\n{"resourceSpans": [\n', "{path} line 3: not valid JSON: "),
        (b'{"resourceSpans": [}', "{path}: not valid JSON: Expecting value: line 1 column 20"),
        (b"\x00\x01garbage", "{path}: neither OTLP/JSON nor an OTLP protobuf ExportTrace"),
        (b"plain text, not spans", "{path}: neither OTLP/JSON nor an OTLP protobuf ExportTrace"),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}',
            "{path}: resourceSpans[0].scopeSpans[0].spans[0].traceId: 'zz' is not hex",
        ),
        (
            b'{"resourceSpans": []}\n{"resourceSpans": [{"scopeSpans": [{"spans": '
            b'[{"attributes": [{"key": "n", "value": {"intValue": "x"}}]}]}]}]}',
            "{path} line 2: resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value: "
            "'x' is not an integer",
        ),
        (b'{"resourceSpans": "no"}', "{path}: .resourceSpans: expected a list"),
        (b"[1]", "{path}: neither OTLP/JSON"),
        (b'{"a": "\xff"}', "{path}: not UTF-8 text"),
    ],
)
def test_bad_files_give_one_line_errors_naming_the_file(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "spans.json"
    path.write_bytes(content)
    with pytest.raises(ValueError) as caught:
        load_records(path)
    text = str(caught.value)
    assert text.startswith(message.format(path=path))
    assert "\n" not in text


def test_a_missing_file_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(ValueError, match=r"absent\.json: cannot read: No such file"):
        load_records(path)
