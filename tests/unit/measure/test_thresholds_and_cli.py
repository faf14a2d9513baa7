"""ThresholdCalculator and `weavergen regeneration measure`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from weavergen.cli import main
from weavergen.domain.define import define_charter
from weavergen.domain.measure.entropy import DEFAULT_THRESHOLDS
from weavergen.domain.measure.summary import ServiceSummary
from weavergen.domain.measure.thresholds import ThresholdCalculator
from weavergen.domain.simulation.simulator import (
    EntropySimulator,
    Faults,
    sample_traces,
    to_otlp_json,
    to_otlp_protobuf,
)


def test_computed_thresholds_never_fall_below_the_defaults_and_widen_with_noise() -> None:
    sim = EntropySimulator(3)
    quiet_system = sim.system("quiet")
    quiet = sim.summary(quiet_system, Faults(), 1)
    computed = ThresholdCalculator(DEFAULT_THRESHOLDS, 0.2, samples=60).compute(quiet)
    t = computed.thresholds
    assert t.medium >= 0.3 and t.high >= 0.6 and t.critical >= 0.8
    assert t.medium < t.high < t.critical <= 0.95
    # A tiny baseline is noisy: its resampled windows reach higher entropy by chance.
    tiny = ServiceSummary("tiny")
    tiny.merge(sim.summary(quiet_system, Faults(), 2, window_s=1))
    noisy = ThresholdCalculator(DEFAULT_THRESHOLDS, 0.2, samples=60).compute(tiny)
    assert noisy.noise_p99 >= computed.noise_p99
    assert noisy.thresholds.medium >= t.medium


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    sim = EntropySimulator(12)
    system = sim.system("checkout")
    root = tmp_path_factory.mktemp("spans")
    base = list(sim.chunks(system, Faults(), 1))
    sick = list(sim.chunks(system, Faults(error_rate=0.35, renamed=("url.scheme",)), 2))
    paths = {
        "baseline": root / "baseline.json",
        "sick": root / "sick.pb",
        "lines": root / "sick.jsonl",
        "tiny": root / "tiny.json",
    }
    paths["baseline"].write_text(json.dumps(to_otlp_json(base)))
    paths["sick"].write_bytes(to_otlp_protobuf(sick))
    paths["lines"].write_text("\n".join(json.dumps(to_otlp_json([c])) for c in sick))
    tiny = list(sim.chunks(system, Faults(), 3, window_s=0.5))
    paths["tiny"].write_text(json.dumps(to_otlp_json(tiny)))
    return paths


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["regeneration", "measure", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_measure_prints_the_contract(capsys: pytest.CaptureFixture[str], files: dict) -> None:  # type: ignore[type-arg]
    code, out, _ = run(capsys, "--spans", str(files["sick"]), "--baseline", str(files["baseline"]))
    assert code == 0
    result = json.loads(out)
    for key in (
        "entropy_score",
        "entropy_level",
        "health_score",
        "drift_indicators",
        "validation_errors",
        "span_count",
    ):
        assert key in result
    assert result["entropy_level"] in ("medium", "high", "critical")
    types = {i["type"] for i in result["drift_indicators"]}
    assert {"error_rate_increase", "semantic_drift"} <= types
    assert all({"type", "severity", "evidence"} <= set(i) for i in result["drift_indicators"])
    assert {"code": "missing_attribute", "attribute": "url.schema"}.items() <= next(
        e for e in result["validation_errors"] if e["attribute"] == "url.schema"
    ).items()


def test_json_lines_give_the_same_result(capsys: pytest.CaptureFixture[str], files: dict) -> None:  # type: ignore[type-arg]
    first = run(capsys, "--spans", str(files["sick"]), "--baseline", str(files["baseline"]))
    second = run(capsys, "--spans", str(files["lines"]), "--baseline", str(files["baseline"]))
    a, b = json.loads(first[1]), json.loads(second[1])
    assert (a["entropy_score"], a["span_count"]) == (b["entropy_score"], b["span_count"])


def test_text_report_and_charter(
    capsys: pytest.CaptureFixture[str],
    files: dict,
    tmp_path: Path,  # type: ignore[type-arg]
) -> None:
    charter = define_charter("checkout", "api-gateway")
    path = tmp_path / "charter.yaml"
    path.write_text(
        yaml.safe_dump(charter.model_dump(by_alias=True, exclude_none=True, mode="json"))
    )
    code, out, _ = run(
        capsys,
        "--spans",
        str(files["sick"]),
        "--baseline",
        str(files["baseline"]),
        "--charter",
        str(path),
        "--output",
        "text",
    )
    assert code == 0
    assert out.startswith("checkout: entropy ")
    assert "error_rate_increase" in out and "url.schema" in out
    assert "thresholds: medium 0.25, high 0.5, critical 0.75" in out  # the api-gateway profile


def test_insufficient_data(capsys: pytest.CaptureFixture[str], files: dict) -> None:  # type: ignore[type-arg]
    code, out, _ = run(capsys, "--spans", str(files["tiny"]), "--baseline", str(files["baseline"]))
    result = json.loads(out)
    assert code == 0 and result["status"] == "insufficient_data"
    assert result["entropy_score"] is None and "fewer than 100" in result["reason"]


@pytest.mark.parametrize(
    ("spans", "message"),
    [
        ("/nonexistent.json", "cannot read spans file /nonexistent.json"),
        ("garbage", "invalid OTLP/protobuf"),
        ("badjson", "invalid OTLP/JSON"),
    ],
)
def test_bad_files_exit_2_naming_the_problem(
    capsys: pytest.CaptureFixture[str],
    files: dict,
    tmp_path: Path,
    spans: str,
    message: str,  # type: ignore[type-arg]
) -> None:
    if spans == "garbage":
        (tmp_path / spans).write_bytes(b"\x0a\xff\xff\xff\x0f")
        spans = str(tmp_path / spans)
    elif spans == "badjson":
        (tmp_path / spans).write_text('{"resourceSpans": [')
        spans = str(tmp_path / spans)
    code, out, err = run(capsys, "--spans", spans, "--baseline", str(files["baseline"]))
    assert code == 2 and out == "" and message in err and err.count("\n") == 1


def test_unknown_service_names_those_found(capsys: pytest.CaptureFixture[str], files: dict) -> None:  # type: ignore[type-arg]
    code, _, err = run(
        capsys,
        "--spans",
        str(files["sick"]),
        "--baseline",
        str(files["baseline"]),
        "--service",
        "cart",
    )
    assert code == 2 and "no spans of service 'cart' (services found: checkout)" in err


def test_spans_without_a_threshold_are_read_at_the_sampling_ratio_given(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Both files came through a sampler that wrote no threshold: the ratio scales what they
    stand for, and a bad ratio is refused before anything is measured."""
    sim = EntropySimulator(12)
    system = sim.system("checkout")
    for name, seed in (("baseline", 1), ("current", 2)):
        kept = sample_traces(list(sim.chunks(system, Faults(), seed)), 0.25, say_threshold=False)
        (tmp_path / f"{name}.pb").write_bytes(to_otlp_protobuf(kept))
    files = ("--spans", str(tmp_path / "current.pb"), "--baseline", str(tmp_path / "baseline.pb"))
    code, out, _ = run(capsys, *files, "--min-spans", "10", "--sampling-ratio", "0.25")
    result = json.loads(out)
    assert code == 0 and result["status"] == "ok"
    assert result["sampling_ratio"] == 0.25
    assert result["represented_spans"] == 4 * result["span_count"]
    code, out, err = run(capsys, *files, "--sampling-ratio", "0")
    assert code == 2 and out == "" and "--sampling-ratio must be above 0" in err
