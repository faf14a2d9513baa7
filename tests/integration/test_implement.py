"""Implement on a real API server: snapshots in ConfigMaps, real actions, BPMN, rollback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from hack.localplane.plane import Plane
from tests.integration.conftest import wait_for
from tests.scenario import (
    BROKEN,
    GOOD,
    HealingExporter,
    apply,
    charter_spec,
    config_map,
    deployment,
    put,
    run_strategy,
    spans,
)
from weavergen.api.charter import RegenerationCharterSpec
from weavergen.demo.manifests import CONTAINER_SECURITY, IMAGE, POD_SECURITY
from weavergen.domain.remedy.actions import RESTARTED_AT, ActionInput, key_of, plan_action
from weavergen.domain.remedy.endpoints import SERVICE_NAME_LABEL
from weavergen.domain.remedy.snapshot import Snapshot, SnapshotIntegrityError
from weavergen.domain.simulation.simulator import Faults
from weavergen.k8s import snapshots
from weavergen.k8s.cluster_target import ClusterTarget
from weavergen.k8s.rest import Rest
from weavergen.k8s.targets import Targets


def test_snapshots_are_chunked_immutable_and_checked(rest: Rest, namespace: str) -> None:
    big = {
        f"ConfigMap/{namespace}/c{i}": config_map(f"c{i}", {"blob": "x" * 700_000})
        for i in range(3)
    }
    snapshot = Snapshot.take(big)
    chunks = snapshots.store(rest, namespace, "snap", snapshot)
    assert chunks == 3  # 2.1 MB of manifests under the 1 MiB object limit
    again = snapshots.load(rest, namespace, "snap")
    assert again.sha256 == snapshot.sha256 and again.objects == snapshot.objects
    assert snapshots.store(rest, namespace, "snap", snapshot) == 3  # the same again: a no-op
    other = Snapshot.take({"ConfigMap/x/y": config_map("y", {"a": "b"})})
    with pytest.raises(snapshots.SnapshotConflict, match="never overwritten"):
        snapshots.store(rest, namespace, "snap", other)
    # Chunks are immutable ConfigMaps; one deleted and recreated with other content is refused.
    rest.delete("ConfigMap", namespace, "snap-1")
    forged = rest.get("ConfigMap", namespace, "snap-2")
    assert forged is not None
    forged["metadata"] = {**forged["metadata"], "name": "snap-1"}
    forged["metadata"].pop("resourceVersion")
    forged["metadata"].pop("uid")
    rest.create("ConfigMap", namespace, forged)
    with pytest.raises(SnapshotIntegrityError, match=r"refused for restore|not valid JSON"):
        snapshots.load(rest, namespace, "snap")
    rest.delete("ConfigMap", namespace, "snap-2")
    with pytest.raises(SnapshotIntegrityError, match="missing chunk 2 of 3"):
        snapshots.load(rest, namespace, "snap")


def test_rollout_undo_returns_to_the_previous_revision(
    plane: Plane, rest: Rest, namespace: str
) -> None:
    apply(plane, namespace, deployment("web", "app:1"))
    plane.kubectl("rollout", "status", "deploy/web", "-n", namespace, "--timeout=60s")
    apply(plane, namespace, deployment("web", "app:2-bad"))
    plane.kubectl("rollout", "status", "deploy/web", "-n", namespace, "--timeout=60s")
    targets = Targets(
        rest, namespace, RegenerationCharterSpec.model_validate(charter_spec()).target
    )
    given = ActionInput(targets.objects(), previous_templates=targets.previous_templates())
    for obj in plan_action("rollout_undo", given).values():
        targets.write(obj)
    assert targets.wait_rollout(60)
    live = targets.objects()[f"Deployment/{namespace}/web"]
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "app:1"


@pytest.mark.real_node
def test_settling_waits_until_no_endpoint_is_ready_on_a_pod_going_away(
    plane: Plane, rest: Rest, namespace: str
) -> None:
    # The real node: its EndpointSlice controller and pods with addresses.
    web = deployment("web", IMAGE)
    web["spec"]["template"]["spec"]["securityContext"] = POD_SECURITY
    web["spec"]["template"]["spec"]["containers"][0]["securityContext"] = CONTAINER_SECURITY
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    apply(plane, namespace, web, service)
    plane.kubectl("rollout", "status", "deploy/web", "-n", namespace, "--timeout=120s")
    targets = Targets(
        rest, namespace, RegenerationCharterSpec.model_validate(charter_spec()).target
    )

    def ready_endpoints() -> list[str]:
        found = rest.list("EndpointSlice", namespace, {SERVICE_NAME_LABEL: "web"})
        return [
            e["targetRef"]["name"]
            for s in found
            for e in s.get("endpoints") or []
            if e["conditions"].get("ready")
        ]

    wait_for(lambda: len(ready_endpoints()) == 2, 60, what="both pods ready behind the Service")
    assert targets.stale_endpoints() == []
    # A slice kept by someone else (not the EndpointSlice controller), ready on a gone pod.
    kept = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "web-kept",
            "labels": {SERVICE_NAME_LABEL: "web", "endpointslice.kubernetes.io/managed-by": "t"},
        },
        "addressType": "IPv4",
        "endpoints": [
            {
                "addresses": ["10.255.0.9"],
                "conditions": {"ready": True},
                "targetRef": {"kind": "Pod", "name": "web-gone", "namespace": namespace},
            }
        ],
        "ports": [{"port": 8080, "protocol": "TCP"}],
    }
    apply(plane, namespace, kept)
    assert targets.stale_endpoints() == ["web-kept/web-gone"]
    assert not targets.wait_endpoints(0.5)
    rest.delete("EndpointSlice", namespace, "web-kept")
    # A pod going away: the controller marks its endpoint not ready as it begins to stop.
    going = sorted(ready_endpoints())[0]
    rest.delete("Pod", namespace, going)
    assert targets.wait_endpoints(30), targets.stale_endpoints()
    assert going not in ready_endpoints()


@pytest.fixture
def broken_target(plane: Plane, rest: Rest, namespace: str) -> Iterator[ClusterTarget]:
    """A healthy Deployment and ConfigMap with a golden snapshot, then the config corrupted."""
    apply(plane, namespace, deployment("web"), config_map("web-config", GOOD))
    put(rest, namespace, config_map("web-baseline", {"spans.json": spans(Faults(), 1)}))
    put(rest, namespace, config_map("web-spans", {"spans.json": spans(Faults(), 2)}))
    plane.kubectl("rollout", "status", "deploy/web", "-n", namespace, "--timeout=60s")
    target = ClusterTarget(
        rest,
        namespace,
        "web",
        RegenerationCharterSpec.model_validate(charter_spec()),
        sleep=lambda _: None,
    )
    assert target.measure().entropy_level == "low"
    target.store_golden()
    put(rest, namespace, config_map("web-config", BROKEN))
    put(rest, namespace, config_map("web-spans", {"spans.json": spans(Faults(error_rate=0.3), 3)}))
    yield target


def test_partial_regeneration_resets_config_restarts_and_succeeds(
    plane: Plane, rest: Rest, namespace: str, broken_target: ClusterTarget
) -> None:
    before = broken_target.measure()
    assert before.entropy_level in ("medium", "high", "critical")
    with HealingExporter(rest, namespace) as exporter:
        broken_target.sleep = exporter.settled
        run, operators = run_strategy(broken_target, "partial-regeneration", before.entropy_score)
    assert run.data["outcome"] == "succeeded", run.data.get("failure")
    assert run.data["criteria_met"] is True
    live = broken_target.objects()
    assert live[f"ConfigMap/{namespace}/web-config"]["data"] == GOOD
    assert operators.calls[:4] == [
        "snapshot_targets",
        "verify_snapshot",
        "reset_config_from_baseline",
        "rollout_restart",
    ]
    wait_for(broken_target.targets.rolled_out, what="the restart to roll out")


def test_unmet_criteria_roll_back_to_a_byte_identical_state(
    rest: Rest, namespace: str, broken_target: ClusterTarget
) -> None:
    before_objects = broken_target.objects()
    before = broken_target.measure()
    run, operators = run_strategy(broken_target, "agent-reset", before.entropy_score)
    assert run.data["outcome"] == "rolled_back"
    assert run.data["criteria_met"] is False
    assert operators.calls[-2:] == ["restore_snapshot", "verify_restored"]
    assert operators.snapshot is not None
    after = broken_target.objects()
    assert Snapshot.take(after).sha256 == Snapshot.take(before_objects).sha256
    template = after[
        key_of(deployment("web") | {"metadata": {"name": "web", "namespace": namespace}})
    ]
    assert RESTARTED_AT not in (
        (template["spec"]["template"].get("metadata") or {}).get("annotations") or {}
    )


def test_regeneration_auto_runs_one_cycle_inline_from_the_cli(
    plane: Plane, rest: Rest, namespace: str, broken_target: ClusterTarget, tmp_path: Any
) -> None:
    path = tmp_path / "charter.json"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "regeneration.weavergen.io/v1alpha1",
                "kind": "RegenerationCharter",
                "metadata": {"name": "web", "namespace": namespace},
                "spec": {
                    **charter_spec(),
                    "successCriteria": {
                        "maxEntropyScore": 0.3,
                        "minHealthScore": 0.9,
                        "minEntropyReduction": 0.2,
                        "maxRecoverySeconds": 120,
                        "settleSeconds": 1,
                        "verifyWindows": 1,
                    },
                },
            }
        )
    )
    with HealingExporter(rest, namespace):
        result = subprocess.run(
            [sys.executable, "-m", "weavergen.cli", "regeneration", "auto", "--charter", str(path)],
            capture_output=True,
            text=True,
            env={**os.environ, **plane.env()},
            timeout=300,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["outcome"] == "succeeded" and summary["strategy"] == "partial-regeneration"
    assert summary["entropy_after"] < summary["entropy_before"]
    assert "done: implement" in result.stderr  # progress, task by task
