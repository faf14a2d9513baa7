"""What every command shares: one-line usage errors, output formats, reading files."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import yaml
from pydantic import ValidationError

from weavergen.api.charter import RegenerationCharter
from weavergen.api.common import format_validation_error


class UsageError(Exception):
    """Bad input from the command line: printed as one line, exit code 2."""


def fail(message: str) -> NoReturn:
    raise UsageError(message)


def dump(document: Any, output_format: str) -> str:
    if output_format == "json":
        return json.dumps(document, indent=2) + "\n"
    return yaml.safe_dump(document, sort_keys=False)


def write_output(text: str, path: str | None) -> None:
    if path is None or path == "-":
        sys.stdout.write(text)
        return
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as err:
        fail(f"cannot write {path}: {err.strerror}")


def read_bytes(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        fail(f"cannot read {what} {path}: {err.strerror}")


def load_json_or_yaml(path: str, what: str) -> Any:
    try:
        return yaml.safe_load(read_bytes(path, what))
    except yaml.YAMLError:
        fail(f"{what} {path}: neither JSON nor YAML")


def load_charter(path: str) -> RegenerationCharter:
    try:
        document = yaml.safe_load(read_bytes(path, "charter file"))
    except yaml.YAMLError:
        fail(f"charter file {path}: invalid YAML")
    try:
        return RegenerationCharter.model_validate(document)
    except ValidationError as err:
        fail(f"charter file {path}: {format_validation_error(err)}")


def otlp_payloads(path: str, what: str) -> list[tuple[bytes, str]]:
    """An OTLP file: one protobuf request, one JSON document, or JSON lines (one per line)."""
    data = read_bytes(path, what)
    if data.lstrip()[:1] != b"{":
        return [(data, "application/x-protobuf")]
    try:
        json.loads(data)
    except ValueError:
        lines = [line for line in data.splitlines() if line.strip()]
        return [(line, "application/json") for line in lines]
    return [(data, "application/json")]
