"""Simulated cycles export the operator's spans, and `regeneration validate` judges them."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from weavergen.api.charter import PHASES
from weavergen.cli import main
from weavergen.domain.measure.spans import SpanRecord, load_records
from weavergen.phases.simulate import SimulationEngine
from weavergen.telemetry import tracing

SCENARIOS = 30
SEED = 7
OUTCOMES = {"Succeeded", "RolledBack", "Failed", "NotNeeded", "Escalated"}


@pytest.fixture(autouse=True)
def no_tracing() -> Iterator[None]:
    """Tracing is process-wide: start and end every test without a provider."""
    tracing.shutdown()
    yield
    tracing.shutdown()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One simulation with --spans-out, its JSON summary, and the validation of its spans."""
    spans = tmp_path_factory.mktemp("simulation") / "spans.jsonl"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(
            [
                "regeneration",
                "simulate",
                "--scenarios",
                str(SCENARIOS),
                "--seed",
                str(SEED),
                "--spans-out",
                str(spans),
                "--quiet",
                "--output",
                "json",
            ]
        )
    assert code == 0
    summary = json.loads(out.getvalue())
    validated = io.StringIO()
    with contextlib.redirect_stdout(validated):
        validate_code = main(
            ["regeneration", "validate", "--spans", str(spans), "--output", "json"]
        )
    return {
        "path": spans,
        "stderr": err.getvalue(),
        "summary": summary,
        "report": json.loads(validated.getvalue()),
        "validate_code": validate_code,
    }


def traces(records: list[SpanRecord]) -> dict[str, list[SpanRecord]]:
    grouped: dict[str, list[SpanRecord]] = {}
    for record in records:
        grouped.setdefault(record.trace_id, []).append(record)
    return grouped


def test_the_cli_says_where_the_spans_went_and_leaves_tracing_off(run: dict[str, Any]) -> None:
    assert str(run["path"]) in run["stderr"]
    assert tracing._provider is None


def test_the_file_is_otlp_json_lines_from_the_simulator(run: dict[str, Any]) -> None:
    lines = run["path"].read_text().splitlines()
    assert lines
    for line in lines:
        document = json.loads(line)
        assert document["resourceSpans"]
    records = load_records(run["path"])
    not_needed = sum(r.attributes.get("weavergen.cycle.outcome") == "NotNeeded" for r in records)
    assert len(records) == SCENARIOS * (1 + len(PHASES)) - not_needed * (len(PHASES) - 2)
    assert {r.service_name for r in records} == {"weavergen-simulator"}
    # Ids are hex, as OTLP/JSON (and the Collector's file exporter) writes them.
    first = json.loads(lines[0])["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert len(first["traceId"]) == 32 and int(first["traceId"], 16) > 0


def test_every_scenario_is_one_cycle_trace_with_the_operators_spans(run: dict[str, Any]) -> None:
    by_trace = traces(load_records(run["path"]))
    assert len(by_trace) == SCENARIOS
    per_cause = run["summary"]["per_cause"]
    outcomes: dict[str, int] = {}
    for trace_id, spans in by_trace.items():
        (root,) = [s for s in spans if s.name == tracing.ROOT_SPAN]
        assert root.parent_span_id == "" and root.span_id == tracing.root_span_id(trace_id)
        attributes = root.attributes
        outcome = attributes["weavergen.cycle.outcome"]
        assert outcome in OUTCOMES
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        assert attributes["weavergen.simulation.expected_level"]
        assert attributes["weavergen.cycle.name"].startswith(f"simulation-{SEED}-")
        assert attributes["weavergen.system.id"] and "weavergen.entropy.before" in attributes
        phases = [s for s in spans if s is not root]
        expected = PHASES[:2] if outcome == "NotNeeded" else PHASES
        assert sorted(s.name for s in phases) == sorted(f"dmedi_{p}" for p in expected)
        for span in phases:
            assert span.parent_span_id == root.span_id
            assert span.attributes["weavergen.phase"] == span.name.removeprefix("dmedi_")
            assert root.start_ns <= span.start_ns <= span.end_ns <= root.end_ns
        measure = next(s for s in phases if s.name == "dmedi_measure")
        assert (
            measure.attributes["weavergen.entropy.level.before"]
            == attributes["weavergen.entropy.level.before"]
        )
        if outcome != "NotNeeded":
            assert attributes["weavergen.strategy"]
        if outcome == "Succeeded":  # a fix is verified by measuring again
            assert "weavergen.health.after" in attributes
        if outcome == "Escalated":  # nothing changed, so nothing was measured again
            assert "weavergen.health.after" not in attributes
        rollbacks = [e for e in root.events if e[0] == "rollback"]
        assert bool(rollbacks) == (outcome == "RolledBack")
    simulated = {
        "Succeeded": sum(o.get("succeeded", 0) for o in per_cause.values()),
        "RolledBack": sum(o.get("rolled_back", 0) for o in per_cause.values()),
        "Escalated": sum(o.get("escalated", 0) for o in per_cause.values()),
        "NotNeeded": sum(o.get("not_needed", 0) for o in per_cause.values()),
    }
    assert outcomes == {k: v for k, v in simulated.items() if v}
    assert outcomes.get("RolledBack") and outcomes.get("NotNeeded") and outcomes.get("Escalated")


def test_validate_finds_every_cycle_and_agrees_with_the_simulation(run: dict[str, Any]) -> None:
    report, summary = run["report"], run["summary"]
    assert len(report["cycles"]) == SCENARIOS
    assert report["detection_cases"] == SCENARIOS
    assert report["detection_accuracy"] == pytest.approx(summary["detection_accuracy"])
    outcomes = [c["outcome"] for c in report["cycles"]]
    regenerated = SCENARIOS - outcomes.count("NotNeeded") - outcomes.count("Escalated")
    assert report["regeneration_cases"] == regenerated
    succeeded = sum(o.get("succeeded", 0) for o in summary["per_cause"].values())
    assert report["success_rate"] == pytest.approx(succeeded / regenerated)
    checks = {check["name"]: check for check in report["checks"]}
    assert checks["regeneration_success_rate"]["cases"] == regenerated
    assert checks["entropy_detection_accuracy"]["cases"] == SCENARIOS
    assert run["validate_code"] == (0 if report["passed"] else 1)


def test_trace_ids_follow_the_seed_and_nothing_is_recorded_without_tracing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "spans.jsonl"
    assert tracing.configure("test", tracing.OtlpJsonFileExporter(path))
    SimulationEngine(seed=SEED).run(2)
    tracing.flush()
    first = set(traces(load_records(path)))
    tracing.shutdown()
    path.unlink()
    assert tracing.configure("test", tracing.OtlpJsonFileExporter(path))
    SimulationEngine(seed=SEED).run(2)
    tracing.shutdown()
    assert set(traces(load_records(path))) == first and len(first) == 2
    path.unlink()
    SimulationEngine(seed=SEED).run(2)
    assert not path.exists()
