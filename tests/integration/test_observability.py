"""What the operator shows on the local plane: cycle traces that `validate` passes, /metrics,
control-chart signals, and the entropy gate (answers, and a cycle requested through it)."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from hack.localplane.plane import Plane
from tests.integration.conftest import await_status, wait_for
from tests.integration.test_operator import corrupt_and_wait_for_the_cycle, start_healthy
from tests.scenario import BROKEN, HealingExporter, OperatorProcess, config_map, put, spans
from weavergen.domain.measure.spans import decode_records_protobuf, otlp_json
from weavergen.domain.simulation.simulator import Faults
from weavergen.k8s.rest import Rest

# Errors, slowness and a renamed attribute: HIGH entropy, healed by resetting the config.
HIGH_ENTROPY = Faults(error_rate=0.5, renamed=("http.request.method",), latency_factor=3.0)
PHASE_SPANS = {f"dmedi_{p}" for p in ("define", "measure", "explore", "develop", "implement")}


class SpanSink:
    """An OTLP/HTTP endpoint that keeps every export request it receives (a tiny collector)."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                with sink.lock:
                    sink.requests.append(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def span_names(self, trace_id: str) -> set[str]:
        with self.lock:
            requests = list(self.requests)
        return {
            r.name
            for body in requests
            for r in decode_records_protobuf(body)
            if r.trace_id == trace_id
        }

    def write_json_lines(self, path: Path) -> None:
        with self.lock:
            lines = [json.dumps(otlp_json(body)) for body in self.requests]
        path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def sink() -> Iterator[SpanSink]:
    collector = SpanSink()
    collector.thread.start()
    try:
        yield collector
    finally:
        collector.server.shutdown()


def traced_operator(
    plane: Plane, namespace: str, log: Path, kubeconfig: Path, sink: SpanSink
) -> OperatorProcess:
    """An operator (not started) whose OTLP exporter, and its Jobs', point at ``sink``."""
    return OperatorProcess(
        plane,
        namespace,
        log,
        kubeconfig,
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        },
    )


@pytest.fixture
def traced(
    plane: Plane, namespace: str, tmp_path: Path, operator_kubeconfig: Path, sink: SpanSink
) -> Iterator[tuple[OperatorProcess, SpanSink]]:
    """An operator exporting its traces, and through its Jobs theirs, to ``sink``."""
    process = traced_operator(
        plane, namespace, tmp_path / "operator.log", operator_kubeconfig, sink
    )
    process.start()
    try:
        yield process, sink
    finally:
        process.stop()


def validate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "weavergen.cli", "regeneration", "validate", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


Sample = tuple[str, frozenset[tuple[str, str]]]
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def samples(text: str) -> dict[Sample, float]:
    """Prometheus text exposition -> {(name, labels): value}, comments left out."""
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            name, _, labels = key.partition("{")
            found[(name, frozenset(LABEL.findall(labels)))] = float(value)
    return found


def sample(found: dict[Sample, float], name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    assert key in found, f"no sample {name}{labels} in /metrics"
    return found[key]


def test_a_cycle_in_jobs_exports_one_trace_that_validate_passes_and_metrics_show_it(
    plane: Plane,
    rest: Rest,
    namespace: str,
    tmp_path: Path,
    traced: tuple[OperatorProcess, SpanSink],
) -> None:
    operator, sink = traced
    start_healthy(
        plane, rest, namespace, operator, executor="job", spec_update={"spc": {"baselinePoints": 8}}
    )
    # Eight healthy measurements build the control chart's phase-I baseline.
    await_status(
        rest,
        namespace,
        "RegenerationCharter",
        "web",
        lambda s: (s.get("controlCharts") or {}).get("entropy", {}).get("phase") == "monitoring",
        timeout=90,
        what="the entropy control chart to leave its baseline phase",
    )
    base = f"http://127.0.0.1:{operator.receiver_port()}"
    code, body = get(f"{base}/gate/{namespace}/web")
    assert (code, json.loads(body)["decision"]) == (200, "allowed")
    name, final = corrupt_and_wait_for_the_cycle(rest, namespace, operator)
    assert final["phase"] == "Succeeded", final.get("message")
    described = plane.kubectl("describe", "rcy", name, "-n", namespace).stdout
    events = described[described.index("Events:") :]
    assert all(reason in events for reason in ("Defined", "Implemented", "Succeeded"))
    trace_id = final["traceId"]
    wait_for(
        lambda: {"dmedi_cycle", *PHASE_SPANS} <= sink.span_names(trace_id),
        timeout=30,
        what=f"the cycle's root and five phase spans (have {sink.span_names(trace_id)})",
    )
    charter = await_status(
        rest,
        namespace,
        "RegenerationCharter",
        "web",
        lambda s: (s.get("controlCharts") or {}).get("cycleDuration"),
        timeout=30,
        what="the cycle duration charted",
    )
    _, metrics_text = get(f"{base}/metrics")
    code, body = get(f"{base}/gate/{namespace}/web")
    assert (code, json.loads(body)["decision"]) == (200, "allowed")
    operator.stop()
    assert_the_trace_validates(sink, tmp_path, trace_id, final)
    assert_metrics(samples(metrics_text), namespace)
    # The jump in entropy was a control-chart signal: status, Event and metric say so.
    entropy_chart = charter["controlCharts"]["entropy"]
    assert any(s["rule"] == "WE1" and s["side"] == "upper" for s in entropy_chart["signals"])
    events = json.loads(plane.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)
    assert any(e["reason"] == "ControlChartWE1" for e in events["items"])
    assert_the_report_shows_it(plane, namespace, tmp_path, final)


def assert_the_report_shows_it(
    plane: Plane, namespace: str, tmp_path: Path, final: dict[str, Any]
) -> None:
    """`regeneration report --charter` reads the cluster and draws the charts and the cycle."""
    page = tmp_path / "report.html"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "weavergen.cli",
            "regeneration",
            "report",
            "--charter",
            f"{namespace}/web",
            "-o",
            str(page),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **plane.env()},
    )
    assert done.returncode == 0, done.stderr
    html = page.read_text()
    assert html.count("<svg") >= 4  # entropy, health, cycle duration, the cycle's phases
    assert final["traceId"] in html and final["chosenStrategy"] in html


def assert_the_trace_validates(
    sink: SpanSink, tmp_path: Path, trace_id: str, final: dict[str, Any]
) -> None:
    """Phase spans came from five Job processes, the root from the operator: one trace that
    passes; with a phase removed, or with no improvement, it fails and says why."""
    spans_file = tmp_path / "spans.jsonl"
    sink.write_json_lines(spans_file)
    passed = validate("--spans", str(spans_file), "--cycle", trace_id, "--output", "json")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    (cycle,) = json.loads(passed.stdout)["cycles"]
    assert cycle["phases_completed"] == 5 and cycle["outcome"] == "Succeeded"
    assert cycle["entropy_improvement"] > 0.2 and cycle["health_improvement"] > 0
    assert cycle["strategy"] == final["chosenStrategy"]
    services = {
        r.service_name
        for body in sink.requests
        for r in decode_records_protobuf(body)
        if r.trace_id == trace_id
    }
    assert services == {"weavergen-operator", "weavergen-phase"}
    lines = spans_file.read_text().splitlines()
    without_explore = tmp_path / "without-explore.jsonl"
    without_explore.write_text(
        "\n".join(json.dumps(drop_spans(json.loads(line), "dmedi_explore")) for line in lines)
    )
    failed = validate("--spans", str(without_explore), "--cycle", trace_id)
    assert failed.returncode == 1
    assert "4 of 5 phases" in failed.stdout and "dmedi_explore missing" in failed.stdout
    no_gain = tmp_path / "no-gain.jsonl"
    no_gain.write_text(
        "\n".join(json.dumps(same_entropy_after(json.loads(line))) for line in lines)
    )
    failed = validate("--spans", str(no_gain), "--cycle", trace_id)
    assert failed.returncode == 1 and "entropy improvement 0.00 is not above 0.20" in failed.stdout


def assert_metrics(found: dict[Sample, float], namespace: str) -> None:
    """Every metric family, with this cycle's values."""
    web = {"namespace": namespace, "charter": "web"}
    assert 0 <= sample(found, "weavergen_entropy_score", **web) <= 1
    assert 0 <= sample(found, "weavergen_health_score", **web) <= 1
    assert sample(found, "weavergen_entropy_level", **web) in (0, 1, 2, 3)
    assert sample(found, "weavergen_validation_errors", **web) >= 0
    assert sample(found, "weavergen_circuit_breaker_open", **web) == 0
    assert sample(found, "weavergen_cycles_total", **web, outcome="Succeeded") == 1
    assert sample(found, "weavergen_rollbacks_total", **web) == 0
    for phase in ("define", "measure", "explore", "develop", "implement"):
        assert sample(found, "weavergen_phase_duration_seconds_count", phase=phase) == 1
        assert sample(found, "weavergen_phase_duration_seconds_sum", phase=phase) > 0
    assert sample(found, "weavergen_cycle_duration_seconds_count", outcome="Succeeded") == 1
    severity = sample(found, "weavergen_drift_indicator_severity", **web, type="retry_storm")
    assert 0 <= severity <= 1
    assert sample(found, "weavergen_spans_received_total") >= 0
    assert sample(found, "weavergen_spans_dropped_total") == 0
    assert sample(found, "weavergen_receiver_requests_total", result="rejected") == 0
    assert sample(found, "weavergen_gate_decisions_total", decision="allowed") >= 1
    signals = [
        value
        for (name, labels), value in found.items()
        if name == "weavergen_spc_signals_total" and ("namespace", namespace) in labels
    ]
    assert len(signals) >= 8 and sum(signals) >= 1


def drop_spans(document: dict[str, Any], name: str) -> dict[str, Any]:
    for resource in document.get("resourceSpans", []):
        for scope in resource.get("scopeSpans", []):
            scope["spans"] = [s for s in scope.get("spans", []) if s["name"] != name]
    return document


def same_entropy_after(document: dict[str, Any]) -> dict[str, Any]:
    for resource in document.get("resourceSpans", []):
        for scope in resource.get("scopeSpans", []):
            for span in scope.get("spans", []):
                attributes = {a["key"]: a for a in span.get("attributes", [])}
                if span["name"] == "dmedi_cycle":
                    attributes["weavergen.entropy.after"]["value"] = attributes[
                        "weavergen.entropy.before"
                    ]["value"]
    return document


def test_the_gate_blocks_a_degraded_system_then_a_requested_cycle_heals_it(
    plane: Plane,
    rest: Rest,
    namespace: str,
    tmp_path: Path,
    operator_kubeconfig: Path,
) -> None:
    operator = OperatorProcess(plane, namespace, tmp_path / "operator.log", operator_kubeconfig)
    operator.start()
    try:
        start_healthy(
            plane,
            rest,
            namespace,
            operator,
            executor="inline",
            spec_update={"trigger": {"mode": "manual", "level": "medium"}},
        )
        port = operator.receiver_port()
        gate = [
            sys.executable,
            "-m",
            "weavergen.cli",
            "gate",
            "--charter",
            f"{namespace}/web",
            "--url",
            f"http://127.0.0.1:{port}",
            "--output",
            "json",
        ]
        put(rest, namespace, config_map("web-config", BROKEN))
        put(
            rest,
            namespace,
            config_map("web-spans", {"spans.json": spans(HIGH_ENTROPY, 3)}),
        )
        await_status(
            rest,
            namespace,
            "RegenerationCharter",
            "web",
            lambda s: s.get("entropy", {}).get("level") in ("high", "critical"),
            timeout=60,
            what="the charter to measure the fault",
        )
        blocked = subprocess.run(gate, check=False, capture_output=True, text=True, timeout=30)
        assert blocked.returncode == 1, blocked.stderr
        assert json.loads(blocked.stdout)["decision"] == "blocked"
        assert rest.list("RegenerationCycle", namespace) == []  # manual: the operator waits
        with HealingExporter(rest, namespace):
            healed = subprocess.run(
                [*gate, "--trigger", "--wait", "150s", "--interval", "1"],
                check=False,
                capture_output=True,
                text=True,
                timeout=200,
            )
        answers = [json.loads(line) for line in healed.stdout.splitlines()]
        assert healed.returncode == 0, (
            healed.stdout,
            healed.stderr,
            operator.log.read_text()[-2000:],
        )
        assert answers[0]["cycleRequested"] is True
        assert answers[-1]["decision"] == "allowed"
        assert "waiting: regenerating" in healed.stderr, healed.stderr
        (cycle,) = rest.list("RegenerationCycle", namespace)
        assert "requested through the gate" in cycle["spec"]["reason"]
        assert cycle["status"]["phase"] == "Succeeded"
    finally:
        operator.stop()
