"""The CRDs on a real API server: samples admitted, each broken rule refused with its field path."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hack.localplane.plane import Plane
from tests.helpers import REPO, SAMPLES, manifests
from tests.integration.conftest import wait_for
from tests.invalid_charters import BASE_SPEC, INVALID_SPECS, InvalidCase
from tests.scenario import asked_cycle

SAMPLE_FILES = sorted(p for p in SAMPLES.glob("*.yaml") if manifests(p))


def charter(spec: dict[str, Any], name: str = "checkout") -> str:
    return json.dumps(
        {
            "apiVersion": "regeneration.weavergen.io/v1alpha1",
            "kind": "RegenerationCharter",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_every_sample_passes_server_side_dry_run(plane: Plane, namespace: str, path: Any) -> None:
    # The samples name their own namespaces; the dry run goes to the test's.
    objects = [
        {**o, "metadata": {**o["metadata"], "namespace": namespace}} for o in manifests(path)
    ]
    result = plane.kubectl(
        "apply", "--dry-run=server", "-f", "-", stdin=json.dumps({"apiVersion": "v1",
        "kind": "List", "items": objects}), check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("case", INVALID_SPECS, ids=[c.id for c in INVALID_SPECS])
def test_broken_rule_is_refused_with_the_field_path(
    plane: Plane, namespace: str, case: InvalidCase
) -> None:
    result = plane.kubectl(
        "apply", "-n", namespace, "--dry-run=server", "-f", "-", stdin=charter(case.spec),
        check=False,
    )  # fmt: skip
    assert result.returncode != 0, "the API server admitted a broken charter"
    assert f"spec.{case.field}" in result.stderr, result.stderr
    assert case.server_words in result.stderr, result.stderr


def test_base_charter_is_admitted_with_defaults_applied(plane: Plane, namespace: str) -> None:
    plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=charter(BASE_SPEC))
    stored = json.loads(
        plane.kubectl("get", "rch", "checkout", "-n", namespace, "-o", "json").stdout
    )
    spec = stored["spec"]
    assert spec["mode"] == "enforce" and spec["executor"] == "job"
    assert spec["trigger"] == {"mode": "auto", "level": "high"}
    assert spec["circuitBreaker"]["maxStrategyFailures"] == 2
    assert spec["telemetry"]["baseline"] == {"captureWindows": 3}
    assert "thresholds" not in spec  # left to the system type's profile


def test_system_id_is_immutable(plane: Plane, namespace: str) -> None:
    plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=charter(BASE_SPEC))
    result = plane.kubectl(
        "patch", "rch", "checkout", "-n", namespace, "--type=merge",
        "-p", '{"spec":{"systemId":"other"}}', check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "spec.systemId" in result.stderr and "systemId is immutable" in result.stderr


def test_cycle_spec_is_immutable_and_short_names_work(plane: Plane, namespace: str) -> None:
    cycle = asked_cycle("c1", "checkout", "test")
    plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(cycle))
    result = plane.kubectl(
        "patch", "rcy", "c1", "-n", namespace, "--type=merge", "-p", '{"spec":{"dryRun":true}}',
        check=False,
    )  # fmt: skip
    assert result.returncode != 0 and "spec is immutable" in result.stderr
    listed = plane.kubectl("get", "weavergen", "-n", namespace, "-o", "name").stdout
    assert "regenerationcycle.regeneration.weavergen.io/c1" in listed


def test_status_is_a_subresource(plane: Plane, namespace: str) -> None:
    plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=charter(BASE_SPEC))
    # A status written through the main resource is ignored...
    plane.kubectl(
        "patch", "rch", "checkout", "-n", namespace, "--type=merge",
        "-p", '{"status":{"activeCycle":"x"}}',
    )  # fmt: skip
    got = json.loads(plane.kubectl("get", "rch", "checkout", "-n", namespace, "-o", "json").stdout)
    assert "status" not in got
    # ...and accepted through /status, where the printer columns read it.
    plane.kubectl(
        "patch", "rch", "checkout", "-n", namespace, "--subresource=status", "--type=merge",
        "-p", '{"status":{"entropy":{"score":0.42,"level":"medium","healthScore":0.8}}}',
    )  # fmt: skip
    table = plane.kubectl("get", "rch", "checkout", "-n", namespace).stdout
    header, row = table.splitlines()[:2]
    assert header.split()[:5] == ["NAME", "SYSTEM", "MODE", "LEVEL", "ENTROPY"]
    assert row.split()[:5] == ["checkout", "web-service", "enforce", "medium", "0.42"]
    wide = plane.kubectl("get", "rch", "checkout", "-n", namespace, "-o", "wide").stdout
    assert wide.split()[7:12] == ["ESCALATED", "CYCLE", "LAST", "BREAKER", "FORECAST"]


@pytest.mark.parametrize(
    ("kind", "section"),
    [
        ("regenerationcharter", "spec"),
        ("regenerationcharter", "status"),
        ("regenerationcycle", "spec"),
        ("regenerationcycle", "status"),
    ],
)
def test_kubectl_explain_describes_every_field(plane: Plane, kind: str, section: str) -> None:
    """`kubectl explain` reads the published OpenAPI: every field of each section is there with
    its description (from the pydantic models)."""
    crd = next(
        c
        for c in manifests(REPO / "crds" / f"regeneration.weavergen.io_{kind}s.yaml")
        if c["kind"] == "CustomResourceDefinition"
    )
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"][section]
    # The API server publishes a new CRD's OpenAPI a moment after it is established.
    explained = str(
        wait_for(
            lambda: (
                (r := plane.kubectl("explain", f"{kind}.{section}", check=False)).returncode == 0
                and r.stdout
            ),
            30,
            what=f"kubectl explain {kind}.{section}",
        )
    )
    for field, node in schema["properties"].items():
        first_words = " ".join(node["description"].split()[:3])
        assert f"  {field}\t" in explained, (field, explained)
        assert first_words in " ".join(explained.split()), (field, first_words)


def test_kubectl_explain_says_what_each_target_kind_supports(plane: Plane) -> None:
    path = "regenerationcharter.spec.target.workloads.kind"
    explained = " ".join(
        str(
            wait_for(
                lambda: (
                    (r := plane.kubectl("explain", path, check=False)).returncode == 0 and r.stdout
                ),
                30,
                what=f"kubectl explain {path}",
            )
        ).split()
    )
    for promise in (
        "Deployment (apps/v1)",
        "StatefulSet (apps/v1)",
        "updateStrategy OnDelete",
        "no PersistentVolumeClaim is ever deleted",
        "Rollout (argoproj.io/v1alpha1, Argo Rollouts): restart by spec.restartAt",
        "HorizontalPodAutoscaler that scales the workload is part of the target",
    ):
        assert promise in explained, (promise, explained)
