"""The chart ships the Grafana dashboard as a ConfigMap the Grafana sidecar picks up.

Runs the pinned helm binary (the one the local control plane uses); no cluster is needed.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.localplane.plane import Binaries, versions
from tests.helpers import REPO

CHART = REPO / "charts" / "weavergen-operator"
DASHBOARD = CHART / "dashboards" / "weavergen-operator.json"
NAME = "t-weavergen-operator-dashboard"


@pytest.fixture(scope="module")
def helm() -> Path:
    """The pinned helm, built first when missing (as the ``plane`` fixture does; never skipped)."""
    binaries = Binaries.from_cache()
    binaries.ensure_built()
    return binaries.helm


def run(helm: Path, *args: str) -> str:
    done = subprocess.run(
        [str(helm), *args], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, f"helm {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def template(helm: Path, *sets: str, namespace: str = "weavergen-system") -> list[dict[str, Any]]:
    """Render the chart as release ``t`` (for the pinned Kubernetes version: the chart's
    kubeVersion excludes helm's built-in default) and return its objects."""
    out = run(
        helm,
        "template",
        "t",
        str(CHART),
        "--namespace",
        namespace,
        "--kube-version",
        versions()["KUBE_VERSION"],
        *(arg for value in sets for arg in ("--set", value)),
    )
    return [doc for doc in yaml.safe_load_all(out) if doc]


def dashboards(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == NAME]


def test_renders_the_dashboard_for_the_sidecar(helm: Path) -> None:
    [configmap] = dashboards(template(helm))
    meta = configmap["metadata"]
    assert meta["namespace"] == "weavergen-system"
    assert meta["labels"]["grafana_dashboard"] == "1"
    assert meta["labels"]["app.kubernetes.io/name"] == "weavergen-operator"
    assert meta["labels"]["app.kubernetes.io/instance"] == "t"
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert meta["labels"]["helm.sh/chart"] == "weavergen-operator-0.1.0"
    assert "annotations" not in meta
    assert configmap["data"].keys() == {"weavergen-operator.json"}
    shipped = configmap["data"]["weavergen-operator.json"]
    assert shipped == DASHBOARD.read_text()  # byte for byte, final newline included
    assert json.loads(shipped)["uid"] == "weavergen-operator"


def test_disabled_renders_no_dashboard(helm: Path) -> None:
    assert dashboards(template(helm, "grafana.dashboard.enabled=false")) == []


def test_namespace_label_and_annotations_are_configurable(helm: Path) -> None:
    [configmap] = dashboards(
        template(
            helm,
            "grafana.dashboard.namespace=monitoring",
            "grafana.dashboard.label=my_dashboards",
            "grafana.dashboard.labelValue=yes",
            "grafana.dashboard.annotations.grafana_folder=WeaverGen",
        )
    )
    meta = configmap["metadata"]
    assert meta["namespace"] == "monitoring"
    assert meta["labels"]["my_dashboards"] == "yes"  # quoted: a string, not YAML's true
    assert "grafana_dashboard" not in meta["labels"]
    assert meta["annotations"] == {"grafana_folder": "WeaverGen"}


def test_lint_passes(helm: Path) -> None:
    out = run(helm, "lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in out
