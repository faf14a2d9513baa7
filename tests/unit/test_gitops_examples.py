"""The Argo CD GitOps example: apps point at real paths, CRDs (wave 0) come before charters
(wave 1), the charters are valid, and the PreSync hook's command is one `weavergen` accepts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.helpers import REPO
from tests.unit.test_crds import validate_against_crd
from weavergen.cli import build_parser

GITOPS = REPO / "deploy" / "argocd" / "gitops"


def load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def applications() -> dict[str, dict[str, Any]]:
    apps = [doc for p in sorted(GITOPS.rglob("*.yaml")) for doc in load(p)]
    return {a["metadata"]["name"]: a for a in apps if a["kind"] == "Application"}


def test_every_application_points_at_a_path_of_this_repository() -> None:
    apps = applications()
    assert set(apps) == {"weavergen", "weavergen-operator", "weavergen-charters"}
    for app in apps.values():
        assert (REPO / app["spec"]["source"]["path"]).is_dir(), app["metadata"]["name"]


def test_the_operator_and_its_crds_sync_before_the_charters() -> None:
    apps = applications()

    def wave(name: str) -> int:
        return int(apps[name]["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])

    assert wave("weavergen-operator") < wave("weavergen-charters")
    assert apps["weavergen-operator"]["spec"]["source"]["path"] == "charts/weavergen-operator"
    assert any((REPO / "charts/weavergen-operator/crds").glob("*charters.yaml"))
    options = apps["weavergen-charters"]["spec"]["syncPolicy"]["syncOptions"]
    assert "SkipDryRunOnMissingResource=true" in options


def test_the_charters_are_valid() -> None:
    charters = [doc for p in (GITOPS / "charters").glob("*.yaml") for doc in load(p)]
    assert charters
    for charter in charters:
        validate_against_crd(charter)


def test_the_presync_hook_runs_a_gate_command_weavergen_accepts() -> None:
    (job,) = load(GITOPS / "presync-gate.yaml")
    assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync"
    container = job["spec"]["template"]["spec"]["containers"][0]
    args = build_parser().parse_args(container["args"])
    assert args.group == "gate" and args.trigger and args.wait == "10m"
    assert args.charter == "shop/checkout"
    assert args.url == "http://weavergen-operator.weavergen-system:4318"
