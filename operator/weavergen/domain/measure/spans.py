"""Whole OTLP spans as records, for checking what a DMEDI cycle did.

``otlp.py`` decodes spans into columns for measuring large volumes; validating a cycle needs each
of a few spans whole (parent, status, events, every attribute), so plain records suffice here.
Both decoders produce identical records for the same spans, so a capture can be kept as OTLP/JSON
lines (what the OpenTelemetry Collector's file exporter writes) or as protobuf.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from weavergen.domain.measure.otlp import OtlpError, _hex_id, _int, _json_value, _list, _pb_value

Event = tuple[str, int, dict[str, Any]]
"""A span event: (name, time in ns since the epoch, attributes)."""

_STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


@dataclass(frozen=True)
class SpanRecord:
    """One span with everything a cycle check reads; ids are lowercase hex."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    status_code: int
    status_message: str
    events: tuple[Event, ...]
    service_name: str


# -- protobuf ---------------------------------------------------------------------------------


def _pb_plain(value: AnyValue) -> Any:
    kind, raw = _pb_value(value)
    if kind == "array":
        return [_pb_plain(item) for item in raw.values]
    if kind == "kvlist":
        return {kv.key: _pb_plain(kv.value) for kv in raw.values}
    return raw


def _pb_attributes(attributes: Any) -> dict[str, Any]:
    return {kv.key: _pb_plain(kv.value) for kv in attributes}


def _service(resource_attributes: dict[str, Any]) -> str:
    name = resource_attributes.get("service.name")
    return name if isinstance(name, str) else ""


def _parse_request(data: bytes) -> ExportTraceServiceRequest:
    """Parse, rejecting bytes that only "parse" as unknown fields (any text nearly does)."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(data)
    except DecodeError as err:
        raise OtlpError(f"not an OTLP protobuf ExportTraceServiceRequest: {err}") from None
    if data and not request.resource_spans:
        raise OtlpError("not an OTLP protobuf ExportTraceServiceRequest: no resourceSpans")
    return request


def decode_records_protobuf(data: bytes) -> list[SpanRecord]:
    """The spans of one serialised ``ExportTraceServiceRequest``."""
    records: list[SpanRecord] = []
    for resource_spans in _parse_request(data).resource_spans:
        service = _service(_pb_attributes(resource_spans.resource.attributes))
        for scope_spans in resource_spans.scope_spans:
            records.extend(
                SpanRecord(
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    parent_span_id=span.parent_span_id.hex(),
                    name=span.name,
                    start_ns=span.start_time_unix_nano,
                    end_ns=span.end_time_unix_nano,
                    attributes=_pb_attributes(span.attributes),
                    status_code=int(span.status.code),
                    status_message=span.status.message,
                    events=tuple(
                        (event.name, event.time_unix_nano, _pb_attributes(event.attributes))
                        for event in span.events
                    ),
                    service_name=service,
                )
                for span in scope_spans.spans
            )
    return records


def otlp_json(request_bytes: bytes) -> dict[str, Any]:
    """One serialised ``ExportTraceServiceRequest`` as an OTLP/JSON document.

    ``MessageToDict`` already writes camelCase, integer enums and 64-bit integers as strings;
    only the span and link ids differ from OTLP/JSON, which wants them hex rather than base64.
    """
    document = json_format.MessageToDict(_parse_request(request_bytes), use_integers_for_enums=True)
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for holder in (span, *span.get("links", [])):
                    for key in _ID_FIELDS:
                        if key in holder:
                            holder[key] = base64.b64decode(holder[key]).hex()
    return document


# -- JSON -------------------------------------------------------------------------------------


def _json_plain(value: Any, where: str) -> Any:
    kind, raw = _json_value(value, where)
    if kind in ("array", "kvlist") and not isinstance(raw, dict):
        raise OtlpError(f"{where}: expected an object with values")
    if kind == "array":
        items = _list(raw, "values", where)
        return [_json_plain(item, f"{where}.values[{k}]") for k, item in enumerate(items)]
    if kind == "kvlist":
        return _json_attributes(raw.get("values"), f"{where}.values")
    if kind == "bytes":
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise OtlpError(f"{where}: bytesValue is not base64") from None
    return raw


def _json_attributes(raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise OtlpError(f"{where}: expected a list of key/value objects")
    out = {}
    for j, kv in enumerate(raw):
        if not isinstance(kv, dict) or not isinstance(kv.get("key"), str):
            raise OtlpError(f"{where}[{j}]: expected {{key, value}}")
        out[kv["key"]] = _json_plain(kv.get("value", {}), f"{where}[{j}].value")
    return out


def _object(raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise OtlpError(f"{where}: expected an object")
    return raw


def _string(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key, "")
    if not isinstance(value, str):
        raise OtlpError(f"{where}.{key}: expected a string")
    return value


def _status_code(raw: Any, where: str) -> int:
    if isinstance(raw, str) and raw in _STATUS_NAMES:
        return _STATUS_NAMES[raw]
    return _int(raw, where)


def _json_span(span: Any, service: str, where: str) -> SpanRecord:
    span = _object(span, where)
    status = _object(span.get("status"), f"{where}.status")
    events = []
    for e, raw_event in enumerate(_list(span, "events", where)):
        at = f"{where}.events[{e}]"
        event = _object(raw_event, at)
        events.append(
            (
                _string(event, "name", at),
                _int(event.get("timeUnixNano", 0), f"{at}.timeUnixNano"),
                _json_attributes(event.get("attributes"), f"{at}.attributes"),
            )
        )
    return SpanRecord(
        trace_id=_hex_id(span.get("traceId"), f"{where}.traceId").hex(),
        span_id=_hex_id(span.get("spanId"), f"{where}.spanId").hex(),
        parent_span_id=_hex_id(span.get("parentSpanId"), f"{where}.parentSpanId").hex(),
        name=_string(span, "name", where),
        start_ns=_int(span.get("startTimeUnixNano", 0), f"{where}.startTimeUnixNano"),
        end_ns=_int(span.get("endTimeUnixNano", 0), f"{where}.endTimeUnixNano"),
        attributes=_json_attributes(span.get("attributes"), f"{where}.attributes"),
        status_code=_status_code(status.get("code", 0), f"{where}.status.code"),
        status_message=_string(status, "message", f"{where}.status"),
        events=tuple(events),
        service_name=service,
    )


def _json_document(document: Any) -> Iterator[SpanRecord]:
    if not isinstance(document, dict):
        raise OtlpError("expected an object with resourceSpans")
    for r, raw_resource_spans in enumerate(_list(document, "resourceSpans", "")):
        where = f"resourceSpans[{r}]"
        resource_spans = _object(raw_resource_spans, where)
        resource = _object(resource_spans.get("resource"), f"{where}.resource")
        service = _service(
            _json_attributes(resource.get("attributes"), f"{where}.resource.attributes")
        )
        for s, scope_spans in enumerate(_list(resource_spans, "scopeSpans", where)):
            at = f"{where}.scopeSpans[{s}]"
            for i, span in enumerate(_list(_object(scope_spans, at), "spans", at)):
                yield _json_span(span, service, f"{at}.spans[{i}]")


def _located(source: str, line: int | None) -> str:
    place = " ".join(part for part in (source, f"line {line}" if line else "") if part)
    return f"{place}: " if place else ""


def _json_documents(text: str, source: str) -> list[tuple[int | None, Any]]:
    """One document, or JSON lines: (line number or None, parsed document) pairs."""
    try:
        return [(None, json.loads(text))]
    except (ValueError, RecursionError) as whole:
        documents: list[tuple[int | None, Any]] = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                documents.append((number, json.loads(line)))
            except (ValueError, RecursionError) as err:
                if not documents:  # not JSON lines either: the error of the whole text is clearer
                    raise OtlpError(f"{_located(source, None)}not valid JSON: {whole}") from None
                raise OtlpError(f"{_located(source, number)}not valid JSON: {err}") from None
        return documents


def _decode_json(text: str | bytes, source: str) -> list[SpanRecord]:
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as err:
            raise OtlpError(f"{_located(source, None)}not UTF-8 text: {err}") from None
    records: list[SpanRecord] = []
    for line, document in _json_documents(text, source):
        try:
            records.extend(_json_document(document))
        except OtlpError as err:
            raise OtlpError(f"{_located(source, line)}{err}") from None
        except RecursionError:
            raise OtlpError(f"{_located(source, line)}values nested too deeply") from None
    return records


def decode_records_json(text: str | bytes) -> list[SpanRecord]:
    """The spans of one OTLP/JSON traces document, or of JSON lines of them."""
    return _decode_json(text, "")


def load_records(path: Path) -> list[SpanRecord]:
    """The spans in a file of OTLP/JSON (lines) or of one OTLP protobuf export request.

    Raises ``ValueError`` (``OtlpError``) with a one-line message naming the file.
    """
    try:
        data = path.read_bytes()
    except OSError as err:
        raise OtlpError(f"{path}: cannot read: {err.strerror or err}") from None
    if data.lstrip()[:1] == b"{":
        return _decode_json(data, str(path))
    try:
        return decode_records_protobuf(data)
    except OtlpError:
        raise OtlpError(
            f"{path}: neither OTLP/JSON nor an OTLP protobuf ExportTraceServiceRequest"
        ) from None
