"""The `weavergen` command line: define, crds generate, and their errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import SAMPLES
from weavergen.api import RegenerationCharter, SystemType
from weavergen.api.profiles import profile_for
from weavergen.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def define(capsys: pytest.CaptureFixture[str], *argv: str) -> RegenerationCharter:
    code, out, err = run(capsys, "regeneration", "define", *argv)
    assert code == 0, err
    return RegenerationCharter.model_validate(yaml.safe_load(out))


@pytest.mark.parametrize("system_type", [t.value for t in SystemType])
def test_define_prints_a_complete_charter_for_every_system_type(
    capsys: pytest.CaptureFixture[str], system_type: str
) -> None:
    charter = define(capsys, "--system-id", "svc", "--system-type", system_type)
    profile = profile_for(system_type)
    spec = charter.spec
    assert charter.metadata.name == "svc"
    assert spec.thresholds == profile.thresholds
    assert spec.success_criteria == profile.success_criteria
    assert spec.cadence == profile.cadence
    assert spec.phase_policy == profile.phase_policy
    assert spec.target.workloads[0].name == "svc"
    assert spec.telemetry.service_name == "svc"


def test_define_checkout_web_service(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "regeneration", "define", "--system-id", "checkout", "--system-type", "web-service"
    )
    assert code == 0
    doc = yaml.safe_load(out)
    assert doc["apiVersion"] == "regeneration.weavergen.io/v1alpha1"
    assert doc["kind"] == "RegenerationCharter"
    assert doc["spec"]["thresholds"] == {
        "mode": "fixed",
        "medium": 0.3,
        "high": 0.6,
        "critical": 0.8,
    }
    assert doc["spec"]["successCriteria"]["minEntropyReduction"] == 0.2


def test_define_targets_namespace_json_and_output_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out_file = tmp_path / "charter.json"
    code, out, _ = run(
        capsys,
        "regeneration", "define", "--system-id", "orders", "--system-type", "worker",
        "-n", "shop", "--target", "sts/orders", "--target", "Deployment/orders-api",
        "--target", "cm/orders-config", "--target", "secret/orders-db",
        "--output", "json", "-o", str(out_file),
    )  # fmt: skip
    assert code == 0 and out == ""
    charter = RegenerationCharter.model_validate(json.loads(out_file.read_text()))
    assert charter.metadata.namespace == "shop"
    assert [(w.kind, w.name) for w in charter.spec.target.workloads] == [
        ("StatefulSet", "orders"),
        ("Deployment", "orders-api"),
    ]
    assert charter.spec.target.config_maps == ["orders-config"]
    assert charter.spec.target.secrets == ["orders-db"]


def test_stakeholders_tighten_the_criteria_and_never_loosen_them(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    stakeholders = tmp_path / "stakeholders.yaml"
    stakeholders.write_text(
        yaml.safe_dump(
            [
                {"name": "owner", "role": "owner", "requirements": {"minHealthScore": 0.97}},
                # Looser than the web-service profile on every field: must change nothing.
                {
                    "name": "lax",
                    "role": "product",
                    "requirements": {
                        "minHealthScore": 0.5,
                        "maxEntropyScore": 0.9,
                        "maxRecoverySeconds": 3600,
                        "maxErrorRate": 0.5,
                    },
                },
                {
                    "name": "sre",
                    "role": "sre",
                    "requirements": {
                        "maxRecoverySeconds": 20,
                        "maxP99LatencyMs": 500,
                        "approvalRequired": True,
                    },
                },
            ]
        )
    )
    base = profile_for("web-service").success_criteria
    charter = define(
        capsys, "--system-id", "checkout", "--system-type", "web-service",
        "--stakeholders", str(stakeholders),
    )  # fmt: skip
    criteria = charter.spec.success_criteria
    assert criteria is not None
    assert criteria.min_health_score == 0.97
    assert criteria.max_entropy_score == base.max_entropy_score
    assert criteria.max_error_rate == base.max_error_rate
    assert criteria.max_recovery_seconds == 20
    assert criteria.settle_seconds < criteria.max_recovery_seconds
    assert criteria.max_p99_latency_ms == 500
    assert charter.spec.mode == "propose"
    assert [s.name for s in charter.spec.stakeholders] == ["owner", "lax", "sre"]


def test_sample_stakeholders_file_is_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    charter = define(
        capsys, "--system-id", "checkout", "--system-type", "web-service",
        "--stakeholders", str(SAMPLES / "stakeholders.yaml"),
    )  # fmt: skip
    assert len(charter.spec.stakeholders) == 2


BAD_INPUTS = [
    (["--system-type", "mainframe"], "unknown system type 'mainframe' (known: web-service"),
    (["--target", "deployment"], "target 'deployment': expected KIND/NAME"),
    (["--target", "daemonset/agent"], "unknown kind 'daemonset'"),
    (["--target", "deploy/Not_Valid"], "'Not_Valid' is not a valid object name"),
    (["--target", "/x"], "expected KIND/NAME"),
    (["--stakeholders", "/nonexistent/stakeholders.yaml"], "cannot read stakeholder file"),
    (["--system-id", "Bad_Id"], "system id 'Bad_Id' is not a DNS label"),
    (["--namespace", "Shop"], "namespace 'Shop' is not a DNS label"),
    (["--system-id", "a" * 64], "at most 63 characters"),
]


@pytest.mark.parametrize(("extra", "message"), BAD_INPUTS, ids=[m for _, m in BAD_INPUTS])
def test_bad_input_exits_2_with_one_line_naming_the_problem(
    capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    argv = {"--system-id": "checkout", "--system-type": "web-service"}
    rest: list[str] = []
    for flag, value in zip(extra[::2], extra[1::2], strict=True):
        if flag in argv:
            argv[flag] = value
        else:
            rest += [flag, value]
    flat = [part for pair in argv.items() for part in pair]
    code, out, err = run(capsys, "regeneration", "define", *flat, *rest)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("weavergen: error: ")
    assert message in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("- name: [unclosed\n", "invalid YAML at line 2: expected ',' or ']'"),
        ("name: x\n", "expected a YAML list"),
        ("- name: x\n  role: sre\n  requirements: {minHealthScore: 3}\n", "[0].requirements"),
        ("- role: sre\n", "[0].name: Field required"),
    ],
)
def test_bad_stakeholder_files_name_the_problem(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(content)
    code, _, err = run(
        capsys, "regeneration", "define", "--system-id", "a", "--system-type", "cache",
        "--stakeholders", str(path),
    )  # fmt: skip
    assert code == 2
    assert err.count("\n") == 1 and message in err


def test_crds_generate_check_reports_stale_and_generate_repairs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert run(capsys, "crds", "generate", "--out", str(tmp_path))[0] == 0
    assert run(capsys, "crds", "generate", "--check", "--out", str(tmp_path))[0] == 0
    target = next(tmp_path.glob("*charters.yaml"))
    target.write_text(target.read_text().replace("rch", "rc"))
    leftover = tmp_path / "regeneration.weavergen.io_oldkinds.yaml"
    leftover.write_text(target.read_text())  # generated (it has the header), no longer produced
    (tmp_path / "vendored.yaml").write_text("{}")  # not generated: not the generator's to judge
    code, _, err = run(capsys, "crds", "generate", "--check", "--out", str(tmp_path))
    assert code == 1 and target.name in err and leftover.name in err
    assert "vendored.yaml" not in err


def test_crds_generate_prints_both_crds(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "crds", "generate")
    docs = list(yaml.safe_load_all(out))
    assert code == 0
    assert sorted(d["spec"]["names"]["kind"] for d in docs) == [
        "RegenerationCharter",
        "RegenerationCycle",
    ]


def test_console_script_help_lists_only_working_commands() -> None:
    exe = shutil.which("weavergen", path=str(Path(sys.executable).parent))
    assert exe, "the weavergen console script is not installed"
    top = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    assert "crds" in top and "regeneration" in top and "operator" in top
    regen = subprocess.run(
        [exe, "regeneration", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for present in (
        "define",
        "measure",
        "explore",
        "develop",
        "simulate",
        "implement",
        "auto",
        "validate",
        "report",
    ):
        assert f"    {present}" in regen
    assert "    gate" in top
