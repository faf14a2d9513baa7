"""`weavergen regeneration explore` and `develop` from files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from weavergen.cli import main

MEASUREMENT = {
    "status": "ok",
    "entropy_score": 0.55,
    "entropy_level": "medium",
    "health_score": 0.1,
    "drift_indicators": [
        {"type": "error_rate_increase", "severity": 0.9, "evidence": {"on_dependency_calls": False}}
    ],
    "validation_errors": [],
    "span_count": 4000,
}
OBJECTS = [
    {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "a"},
        "spec": {
            "replicas": 2,
            "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}},
        },
    },
    {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "web-config", "namespace": "a"},
        "data": {"timeout_ms": "1"},
    },
]
GOLDEN = [{**OBJECTS[1], "data": {"timeout_ms": "800"}}]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["regeneration", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {n: tmp_path / f"{n}.yaml" for n in ("measurement", "objects", "golden")}
    paths["measurement"].write_text(json.dumps(MEASUREMENT))
    paths["objects"].write_text(yaml.safe_dump(OBJECTS))
    paths["golden"].write_text(yaml.safe_dump(GOLDEN))
    return paths


def test_explore_then_develop(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path
) -> None:
    code, out, _ = run(
        capsys, "explore", "--measurement", str(files["measurement"]), "--config-changed"
    )
    assert code == 0
    exploration = json.loads(out)
    assert exploration["options"][0]["strategy"] == "partial-regeneration"
    assert all(o["reasons"] for o in exploration["options"])
    options = tmp_path / "options.json"
    options.write_text(out)
    code, out, _ = run(
        capsys,
        "develop",
        "--options",
        str(options),
        "--objects",
        str(files["objects"]),
        "--golden",
        str(files["golden"]),
        "--entropy-before",
        "0.55",
    )
    solution = json.loads(out)
    assert code == 0 and solution["workflow_valid"] is True
    assert solution["workflow"] == "strategies/partial-regeneration.bpmn"
    changed = {c["object"] for step in solution["plan"] for c in step["changes"]}
    assert changed == {"ConfigMap/a/web-config", "Deployment/a/web"}
    assert solution["predicted_entropy"] < 0.55


def test_charter_deny_list_applies(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path
) -> None:
    charter = {
        "apiVersion": "regeneration.weavergen.io/v1alpha1",
        "kind": "RegenerationCharter",
        "metadata": {"name": "web"},
        "spec": {
            "systemId": "web",
            "systemType": "web-service",
            "target": {"workloads": [{"name": "web"}]},
            "telemetry": {"serviceName": "web"},
            "strategies": {"deny": ["partial-regeneration"]},
        },
    }
    path = tmp_path / "charter.yaml"
    path.write_text(yaml.safe_dump(charter))
    code, out, _ = run(
        capsys,
        "explore",
        "--measurement",
        str(files["measurement"]),
        "--config-changed",
        "--charter",
        str(path),
    )
    result = json.loads(out)
    assert code == 0
    assert "partial-regeneration" not in [o["strategy"] for o in result["options"]]
    assert result["excluded"]["partial-regeneration"] == "in the charter's deny list"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"hello": 1}', "expected the JSON of `regeneration measure`"),
        ('{"entropy_level": null, "status": "insufficient_data"}', "insufficient data"),
    ],
)
def test_explore_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "m.json"
    path.write_text(content)
    code, out, err = run(capsys, "explore", "--measurement", str(path))
    assert code == 2 and message in err and out == ""
