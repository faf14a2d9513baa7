"""Real spans from the official OpenTelemetry instrumentations, measured as the CLI measures them.

``instrumented_shop.py`` runs a WSGI app (opentelemetry-instrumentation-wsgi) that queries sqlite3
(opentelemetry-instrumentation-dbapi) and is called with requests
(opentelemetry-instrumentation-requests), once per ``OTEL_SEMCONV_STABILITY_OPT_IN`` mode, each in
its own process. Simulated spans only show that the validator agrees with the simulator; these
show that the shipped registry agrees with what instrumented services really send.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.measure.instrumented_shop import SPANS_PER_REQUEST
from weavergen.cli import main
from weavergen.domain.measure.measure import DEFAULT_MIN_SPANS, summarise
from weavergen.domain.measure.semconv import Registry, validate

SHOP = Path(__file__).with_name("instrumented_shop.py")
REQUESTS_PER_WINDOW = max(60, math.ceil(1.2 * DEFAULT_MIN_SPANS / SPANS_PER_REQUEST))
# Mode -> OTEL_SEMCONV_STABILITY_OPT_IN (None: unset, the instrumentations' old conventions).
MODES = {"old": None, "stable": "http,database", "dup": "http/dup,database/dup"}

# What the old conventions of these instrumentation versions emit, with the replacement the
# reference model names ("renamed_to"); None where it names none (an uncategorized deprecation).
OLD_ATTRIBUTES = {
    "db.statement": "db.query.text",
    "db.system": "db.system.name",
    "http.flavor": None,  # split into network.protocol.name and .version
    "http.host": None,  # server.address, client.address or a header, by usage
    "http.method": "http.request.method",
    "http.scheme": "url.scheme",
    "http.server_name": "server.address",
    "http.status_code": "http.response.status_code",
    "http.url": "url.full",
    "http.user_agent": "user_agent.original",
    "net.host.name": "server.address",
    "net.host.port": "server.port",
    "net.peer.ip": "network.peer.address",
}


def _run_root(request: pytest.FixtureRequest) -> Path:
    """The run's temporary root, shared by all xdist workers (each has its own basetemp)."""
    base = request.config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    return Path(base.parent if hasattr(request.config, "workerinput") else base)


@pytest.fixture(scope="session")
def recorded(request: pytest.FixtureRequest) -> Callable[[str], Path]:
    """Records a mode's two windows once per run: the first worker to ask runs the shop."""
    root = _run_root(request) / "real-instrumentation"
    root.mkdir(parents=True, exist_ok=True)

    def record(mode: str) -> Path:
        out = root / mode
        with (root / f"{mode}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (out / "done").exists():
                out.mkdir(exist_ok=True)
                env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
                if MODES[mode] is not None:
                    env["OTEL_SEMCONV_STABILITY_OPT_IN"] = str(MODES[mode])
                shop = subprocess.run(
                    [sys.executable, str(SHOP), str(out), str(REQUESTS_PER_WINDOW)],
                    env=env,
                    timeout=120,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                assert shop.returncode == 0, f"the {mode} shop failed:\n{shop.stderr}"
                (out / "done").touch()
        return out

    return record


def measure_cli(capsys: pytest.CaptureFixture[str], spans: Path, baseline: Path) -> dict[str, Any]:
    """``weavergen regeneration measure --output json``, in process."""
    argv = ["regeneration", "measure", "--spans", str(spans), "--baseline", str(baseline)]
    code = main([*argv, "--output", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


def span_attributes(path: Path) -> Iterator[dict[str, Any]]:
    """Each span's attributes from an OTLP/JSON file, as {key: AnyValue}."""
    document = json.loads(path.read_text(encoding="utf-8"))
    for resource_spans in document["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                yield {a["key"]: a["value"] for a in span.get("attributes", [])}


def observed_keys(path: Path) -> set[str]:
    return {key for attributes in span_attributes(path) for key in attributes}


def deprecated_findings(result: dict[str, Any], field: str) -> dict[str, str]:
    return {f["attribute"]: f["detail"] for f in result[field] if f["code"] == "deprecated"}


def expected_details() -> dict[str, str]:
    return {
        name: f"renamed to {to}" if to else "deprecated without a single replacement"
        for name, to in OLD_ATTRIBUTES.items()
    }


def test_stable_conventions_of_healthy_traffic_measure_low_with_no_findings(
    recorded: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = recorded("stable")
    result = measure_cli(capsys, out / "current.pb", out / "baseline.json")
    assert result["status"] == "ok"
    assert result["span_count"] == SPANS_PER_REQUEST * REQUESTS_PER_WINDOW
    assert result["entropy_level"] == "low", result
    assert result["drift_indicators"] == []
    assert result["validation_errors"] == []
    assert result["validation_known"] == []
    # The opt-in really took: only the stable names, from all three instrumentations.
    keys = observed_keys(out / "current.json")
    assert {"http.request.method", "http.response.status_code", "url.full"} <= keys  # requests
    assert {"client.address", "url.scheme", "server.port"} <= keys  # wsgi
    assert {"db.system.name", "db.query.text"} <= keys  # dbapi
    assert not keys & set(OLD_ATTRIBUTES)
    # Healthy traffic has its 404s: the client span says error.type "404", as the conventions ask,
    # and that is no finding either (error.type's enum lists only the _OTHER fallback).
    spans = list(span_attributes(out / "current.json"))
    error_types = [attributes["error.type"] for attributes in spans if "error.type" in attributes]
    assert error_types
    assert all(value == {"stringValue": "404"} for value in error_types)


def test_protobuf_and_json_of_real_spans_summarise_alike(
    recorded: Callable[[str], Path],
) -> None:
    out = recorded("stable")
    as_pb = summarise([((out / "current.pb").read_bytes(), "application/x-protobuf")])
    as_json = summarise([((out / "current.json").read_bytes(), "application/json")])
    assert as_pb.keys() == {"shop"}
    assert as_pb["shop"].to_dict() == as_json["shop"].to_dict()


def test_old_conventions_are_deprecated_findings_naming_their_replacements(
    recorded: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    stable, old = recorded("stable"), recorded("old")
    assert observed_keys(old / "current.json") >= set(OLD_ATTRIBUTES)
    # A service that falls back to the old conventions: each deprecated name is a new finding.
    result = measure_cli(capsys, old / "current.pb", stable / "baseline.json")
    assert result["status"] == "ok"
    assert deprecated_findings(result, "validation_errors") == expected_details()
    assert {f["code"] for f in result["validation_errors"]} == {"deprecated"}
    assert result["validation_known"] == []
    counts = {f["attribute"]: f["count"] for f in result["validation_errors"]}
    # Each finding counts the recorded spans carrying the name (client and server spans for
    # http.method); the recording, not the request count, is the truth (under load a server span
    # can end after the recorder's flush).
    carried = [key for attributes in span_attributes(old / "current.json") for key in attributes]
    assert counts["http.method"] == carried.count("http.method") >= 2 * REQUESTS_PER_WINDOW - 2
    assert counts["db.statement"] == carried.count("db.statement") >= REQUESTS_PER_WINDOW - 1


def test_old_conventions_the_baseline_already_had_are_known_and_not_counted(
    recorded: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = recorded("old")
    result = measure_cli(capsys, out / "current.pb", out / "baseline.json")
    assert result["entropy_level"] == "low", result
    assert result["drift_indicators"] == []
    assert result["validation_errors"] == []
    assert deprecated_findings(result, "validation_known") == expected_details()


def test_dup_mode_finds_only_the_old_names_and_their_replacements_are_emitted(
    recorded: Callable[[str], Path],
) -> None:
    out = recorded("dup")
    current = (out / "current.pb").read_bytes()
    (summary,) = summarise([(current, "application/x-protobuf")]).values()
    findings = validate(summary.observed_attributes(), Registry.builtin())
    # The stable twins pass; every finding is an old name (dup adds net.peer.port on clients).
    assert {f.code for f in findings} == {"deprecated"}
    assert {f.attribute for f in findings} == {*OLD_ATTRIBUTES, "net.peer.port"}
    # Each replacement the registry names is one the instrumentations emit themselves. Not always
    # on the same span: the wsgi server span's http.url becomes url.scheme (url.path and
    # url.query only where the server sets RAW_URI or REQUEST_URI, which wsgiref does not), and
    # its net.peer.ip becomes client.address; the reference model renames them to url.full and
    # network.peer.address, which the requests client spans carry.
    replacements = {to for to in OLD_ATTRIBUTES.values() if to is not None}
    assert replacements <= observed_keys(out / "current.json")
