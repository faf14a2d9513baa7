"""Workloads as they are deployed: StatefulSets, an autoscaler, Argo Rollouts, on the plane.

The StatefulSet and HPA tests run against the plane's own controllers (statefulset, the
horizontal-pod-autoscaler); the Rollout tests against the real Argo Rollouts controller, built
from its Go module (``hack/build-argo-rollouts.sh``), one per test namespace.
"""

from __future__ import annotations

import copy
import fcntl
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hack.localplane.plane import Plane
from hack.localplane.services import (
    argo_rollouts,
    argocd_application_crd,
    flux_kustomization_crd,
    rollouts_controller,
)
from tests.integration.conftest import await_status, wait_for
from tests.integration.test_operator import start_healthy
from tests.scenario import (
    BROKEN,
    GOOD,
    HealingExporter,
    OperatorProcess,
    apply,
    charter_spec,
    config_map,
    deployment,
    put,
    run_strategy,
    spans,
)
from weavergen.api.charter import RegenerationCharterSpec
from weavergen.api.cycle import FINAL_PHASES
from weavergen.api.keys import APPROVAL_ANNOTATION, NUDGED_ANNOTATION
from weavergen.domain.remedy import kinds
from weavergen.domain.remedy.actions import ActionInput, plan_action
from weavergen.domain.remedy.gitops import ARGOCD_TRACKING_ID, FLUX_KUSTOMIZE, changed_paths
from weavergen.domain.remedy.snapshot import Snapshot
from weavergen.domain.simulation.simulator import Faults
from weavergen.k8s.cluster_target import ClusterTarget
from weavergen.k8s.jobs import job_finished, result_name
from weavergen.k8s.rest import Rest
from weavergen.k8s.targets import Targets


def statefulset(image: str = "app:1", **spec: Any) -> dict[str, Any]:
    """The scenario's workload ``web`` as a StatefulSet with a claim per pod."""
    sts = deployment("web", image)
    sts["kind"] = "StatefulSet"
    sts["spec"] |= {
        "serviceName": "web",
        "volumeClaimTemplates": [
            {
                "metadata": {"name": "data"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Mi"}},
                },
            }
        ],
        **spec,
    }
    return sts


def target(rest: Rest, namespace: str, kind: str) -> ClusterTarget:
    spec = charter_spec()
    spec["target"]["workloads"] = [{"kind": kind, "name": "web"}]
    return ClusterTarget(
        rest, namespace, "web", RegenerationCharterSpec.model_validate(spec), sleep=lambda _: None
    )


def broken(rest: Rest, namespace: str, kind: str) -> ClusterTarget:
    """The workload healthy with a golden snapshot, then its config corrupted."""
    found = target(rest, namespace, kind)
    wait_for(found.targets.rolled_out, 90, what=f"the {kind} to roll out")
    put(rest, namespace, config_map("web-baseline", {"spans.json": spans(Faults(), 1)}))
    put(rest, namespace, config_map("web-spans", {"spans.json": spans(Faults(), 2)}))
    assert found.measure().entropy_level == "low"
    found.store_golden()
    put(rest, namespace, config_map("web-config", BROKEN))
    put(rest, namespace, config_map("web-spans", {"spans.json": spans(Faults(error_rate=0.3), 3)}))
    return found


def differences(expected: Snapshot, found: Snapshot) -> dict[str, list[str]]:
    """The fields that differ, object by object: what a failed byte-identical check shows."""
    return {
        key: changed_paths(expected.objects.get(key), found.objects.get(key))
        for key in sorted(set(expected.objects) | set(found.objects))
        if expected.objects.get(key) != found.objects.get(key)
    }


def undo_report(rest: Rest, namespace: str, undo: dict[str, Any]) -> str:
    """What an undo that did not roll out wrote, and what the Rollouts controller made of it:
    the Rollout's status and each ReplicaSet's hash, revision and template."""
    sets = [
        {
            "name": rs["metadata"]["name"],
            "annotations": rs["metadata"].get("annotations"),
            "replicas": rs["spec"].get("replicas"),
            "template": rs["spec"]["template"],
        }
        for rs in rest.list("ReplicaSet", namespace, {"app": "web"})
    ]
    live = rest.get("Rollout", namespace, "web") or {}
    meta = live.get("metadata") or {}
    written = [obj["spec"]["template"] for obj in undo.values()]
    # Who wrote the Rollout last, and what it holds now: a failure once showed generation 4
    # (create, bad release, undo, and one more write) with the canary's hash still current.
    managers = [
        {k: field.get(k) for k in ("manager", "operation", "time", "subresource")}
        for field in meta.get("managedFields") or []
    ]
    live_spec = {k: (live.get("spec") or {}).get(k) for k in ("paused", "template")}
    return json.dumps(
        {
            "generation": meta.get("generation"),
            "managers": managers,
            "spec": live_spec,
            "status": live.get("status"),
            "written": written,
            "replicaSets": sets,
        },
        indent=1,
    )


def pods(rest: Rest, namespace: str) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p for p in rest.list("Pod", namespace, {"app": "web"})}


def claims(rest: Rest, namespace: str) -> dict[str, str]:
    return {
        c["metadata"]["name"]: c["metadata"]["uid"]
        for c in rest.list("PersistentVolumeClaim", namespace)
    }


def test_a_config_fault_on_an_on_delete_statefulset_is_healed_pod_by_pod_keeping_its_claims(
    plane: Plane, rest: Rest, namespace: str
) -> None:
    apply(plane, namespace, statefulset(updateStrategy={"type": "OnDelete"}))
    apply(plane, namespace, config_map("web-config", GOOD))
    sts = broken(rest, namespace, "StatefulSet")
    before_pods = {name: p["metadata"]["uid"] for name, p in pods(rest, namespace).items()}
    before_claims = wait_for(lambda: len(claims(rest, namespace)) == 2 and claims(rest, namespace))
    entropy = sts.measure().entropy_score
    with HealingExporter(rest, namespace, "StatefulSet") as exporter:
        sts.sleep = exporter.settled
        run, _ = run_strategy(sts, "partial-regeneration", entropy)
    assert run.data["outcome"] == "succeeded", run.data.get("failure")
    live = rest.get("StatefulSet", namespace, "web")
    assert live is not None
    assert live["spec"]["updateStrategy"] == {"type": "OnDelete"}
    update = live["status"]["updateRevision"]
    # Its controller replaces no pod under OnDelete: the operator did, each one.
    after = pods(rest, namespace)
    assert sorted(after) == sorted(before_pods) == ["web-0", "web-1"]
    for name, pod in after.items():
        assert pod["metadata"]["uid"] != before_pods[name]
        assert pod["metadata"]["labels"][kinds.STATEFULSET_REVISION_LABEL] == update
    assert claims(rest, namespace) == before_claims  # the same claims, never deleted


def test_a_bad_release_of_a_staged_statefulset_is_undone_to_its_previous_revision(
    plane: Plane, rest: Rest, namespace: str
) -> None:
    """Partition 1: only web-1 ever runs the bad release; the undo leaves web-0 alone."""
    staged = {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}
    apply(plane, namespace, statefulset("app:1", updateStrategy=staged))
    targets = Targets(rest, namespace, target(rest, namespace, "StatefulSet").spec.target)
    wait_for(targets.rolled_out, 90, what="the first release")
    apply(plane, namespace, statefulset("app:2-bad", updateStrategy=staged))
    wait_for(targets.rolled_out, 90, what="the bad release on web-1")
    first = pods(rest, namespace)
    assert first["web-1"]["spec"]["containers"][0]["image"] == "app:2-bad"
    assert first["web-0"]["spec"]["containers"][0]["image"] == "app:1"
    given = ActionInput(targets.objects(), previous_templates=targets.previous_templates())
    for obj in plan_action("rollout_undo", given).values():
        targets.write(obj)
    assert targets.wait_rollout(90)
    live = rest.get("StatefulSet", namespace, "web")
    assert live is not None
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "app:1"
    assert live["spec"]["updateStrategy"] == staged
    after = pods(rest, namespace)
    assert after["web-1"]["spec"]["containers"][0]["image"] == "app:1"
    assert after["web-0"]["metadata"]["uid"] == first["web-0"]["metadata"]["uid"]


def test_an_unmet_fix_on_a_statefulset_rolls_back_to_a_byte_identical_state(
    plane: Plane, rest: Rest, namespace: str
) -> None:
    apply(plane, namespace, statefulset(updateStrategy={"type": "OnDelete"}))
    apply(plane, namespace, config_map("web-config", GOOD))
    sts = broken(rest, namespace, "StatefulSet")
    before = sts.objects()
    run, operators = run_strategy(sts, "agent-reset", sts.measure().entropy_score)
    assert run.data["outcome"] == "rolled_back"
    assert operators.calls[-2:] == ["restore_snapshot", "verify_restored"]
    expected, found = Snapshot.take(before), Snapshot.take(sts.objects())
    assert found.sha256 == expected.sha256, differences(expected, found)


def test_a_statefulset_scaled_out_and_rolled_back_keeps_every_claim(
    plane: Plane, rest: Rest, namespace: str
) -> None:
    """Scaling out adds web-2 with its claim; the rollback scales back to two, and the claim
    of web-2 stays (retention Retain, the default: the operator deletes none)."""
    apply(plane, namespace, statefulset(), config_map("web-config", GOOD))
    sts = broken(rest, namespace, "StatefulSet")
    before = sts.objects()
    seen: list[list[str]] = []
    sts.sleep = lambda _: seen.append(sorted(pods(rest, namespace)))  # after wait_rollout
    run, _ = run_strategy(sts, "workflow-optimization", sts.measure().entropy_score)
    assert seen[0] == ["web-0", "web-1", "web-2"]  # rolled out in ordinal order, all ready
    assert run.data["outcome"] == "rolled_back", run.data.get("failure")
    expected, found = Snapshot.take(before), Snapshot.take(sts.objects())
    assert found.sha256 == expected.sha256, differences(expected, found)
    wait_for(lambda: sorted(pods(rest, namespace)) == ["web-0", "web-1"], 60, what="web-2 gone")
    assert sorted(claims(rest, namespace)) == ["data-web-0", "data-web-1", "data-web-2"]


def autoscaler(low: int, high: int) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": low,
            "maxReplicas": high,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 80},
                    },
                }
            ],
        },
    }


def test_a_scale_out_moves_the_hpa_bounds_the_autoscaler_applies_and_rollback_restores(
    plane: Plane, rest: Rest, namespace: str
) -> None:
    apply(plane, namespace, deployment("web"), config_map("web-config", GOOD), autoscaler(1, 3))
    web = broken(rest, namespace, "Deployment")
    before = web.objects()
    assert f"HorizontalPodAutoscaler/{namespace}/web" in before
    assert web.context().autoscalers == (f"HorizontalPodAutoscaler/{namespace}/web",)
    seen: list[tuple[int, int]] = []

    def settle(_: float) -> None:  # after wait_rollout: what the HPA has done by then
        live, hpa = rest.get("Deployment", namespace, "web"), rest.get(kinds.HPA, namespace, "web")
        assert live is not None and hpa is not None
        seen.append((live["spec"]["replicas"], hpa["spec"]["minReplicas"]))

    web.sleep = settle
    run, _ = run_strategy(web, "workflow-optimization", web.measure().entropy_score)
    # The operator raised the HPA's minimum; the autoscaler, not the operator, scaled to it.
    assert seen[0] == (3, 3)
    assert run.data["outcome"] == "rolled_back", run.data.get("failure")  # nothing healed it
    expected, found = Snapshot.take(before), Snapshot.take(web.objects())
    assert found.sha256 == expected.sha256, differences(expected, found)
    hpa = rest.get(kinds.HPA, namespace, "web")
    assert hpa is not None and (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 3)


def install_crds(plane: Plane, path: Path) -> None:
    """Another project's CRDs on the plane, applied by one test at a time, and established."""
    with (plane.state / "foreign-crds.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        applied = plane.kubectl(
            "apply", "--server-side", "--force-conflicts", "-f", str(path), "-o", "name"
        )
        plane.wait_established(applied.stdout.split())


# -- Argo Rollouts ------------------------------------------------------------------------------


@pytest.fixture
def rollouts(plane: Plane, namespace: str, tmp_path: Path) -> Iterator[None]:
    """Argo Rollouts' CRDs on the plane (once) and a Rollouts controller for this namespace."""
    install_crds(plane, argo_rollouts() / "crds")
    with rollouts_controller(plane.kubeconfig, namespace, tmp_path):
        yield


def rollout(image: str) -> dict[str, Any]:
    """The scenario's ``web`` as a canary Rollout that pauses at half way for a person."""
    ro = deployment("web", image)
    ro["apiVersion"], ro["kind"] = "argoproj.io/v1alpha1", "Rollout"
    ro["spec"]["strategy"] = {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}}
    return ro


def test_a_rollout_paused_mid_update_is_undone_to_stable_and_restarted_by_its_controller(
    plane: Plane, rest: Rest, namespace: str, rollouts: None
) -> None:
    targets = Targets(rest, namespace, target(rest, namespace, "Rollout").spec.target)
    apply(plane, namespace, rollout("app:1"))
    wait_for(targets.rolled_out, 120, what="the Rollout's first release to be Healthy")
    stable = (rest.get("Rollout", namespace, "web") or {})["status"]["stableRS"]
    apply(plane, namespace, rollout("app:2-bad"))

    def paused() -> bool:
        status = (rest.get("Rollout", namespace, "web") or {}).get("status") or {}
        return status.get("phase") == "Paused" and status.get("currentPodHash") != stable

    wait_for(paused, 120, what="the bad release to pause at its canary step")
    assert not targets.rolled_out()
    given = ActionInput(targets.objects(), previous_templates=targets.previous_templates())
    undo = plan_action("rollout_undo", given)
    for obj in undo.values():
        targets.write(obj)
    assert targets.wait_rollout(120), undo_report(rest, namespace, undo)
    live = rest.get("Rollout", namespace, "web")
    assert live is not None
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "app:1"
    assert live["status"]["stableRS"] == live["status"]["currentPodHash"] == stable
    snapshot = Snapshot.take(targets.objects())
    # A restart is the Rollout's own: spec.restartAt, its controller replaces the pods.
    old = {p["metadata"]["uid"] for p in pods(rest, namespace).values()}
    # Argo restarts the pods created before restartAt (to the second): the undo's are new.
    time.sleep(1.1)
    restart = plan_action(
        "rollout_restart",
        ActionInput(targets.objects(), now=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")),
    )
    assert set(restart) == {f"Rollout/{namespace}/web"}
    for obj in restart.values():
        assert obj["spec"]["template"] == live["spec"]["template"]
        targets.write(copy.deepcopy(obj))

    def replaced() -> bool:
        current = pods(rest, namespace).values()
        running = [p for p in current if not p["metadata"].get("deletionTimestamp")]
        return len(running) == 2 and not old & {p["metadata"]["uid"] for p in running}

    wait_for(replaced, 120, what="the Rollouts controller to restart every pod")
    assert targets.wait_rollout(60)
    # The snapshot taken before the restart, restored, is what is live again, byte for byte.
    target(rest, namespace, "Rollout").restore(snapshot)
    restored = Snapshot.take(targets.objects())
    assert restored.sha256 == snapshot.sha256, differences(snapshot, restored)


def test_a_rollout_its_controller_has_not_observed_is_requeued_without_counting_as_an_edit(
    plane: Plane, rest: Rest, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No Rollouts controller serves this namespace: the Rollout's new spec stays unobserved,
    # as when an update event is lost and the controller's resync is minutes away.
    install_crds(plane, argo_rollouts() / "crds")
    apply(plane, namespace, rollout("app:1"))
    targets = Targets(rest, namespace, target(rest, namespace, "Rollout").spec.target)
    before = Snapshot.take(targets.objects())
    lagging: dict[str, float] = {}
    assert targets.nudge_lagging(lagging) == [], "first seen lagging: not requeued yet"
    monkeypatch.setattr("weavergen.k8s.targets.NUDGE_AFTER_SECONDS", 0.0)
    assert targets.nudge_lagging(lagging) == [f"Rollout/{namespace}/web"]
    live = rest.get("Rollout", namespace, "web") or {}
    assert NUDGED_ANNOTATION in live["metadata"]["annotations"]
    assert live["metadata"]["generation"] == 1, "an annotation is no new spec"
    assert Snapshot.take(targets.objects()).sha256 == before.sha256, "nor an edit of it"
    assert not targets.wait_rollout(0.1)


# -- GitOps -------------------------------------------------------------------------------------


def application(namespace: str) -> dict[str, Any]:
    """An Argo CD Application with self-heal (in the workload's namespace: apps in any
    namespace)."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "shop"},
        "spec": {
            "project": "default",
            "source": {"repoURL": "https://git.invalid/shop.git", "path": "web"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
        },
    }


def kustomization() -> dict[str, Any]:
    """A Flux Kustomization, which re-applies what Git holds at every interval."""
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "shop"},
        "spec": {
            "interval": "5m",
            "path": "./web",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": "shop"},
        },
    }


TRACKERS = {
    "argocd": (
        argocd_application_crd,
        application,
        lambda ns: {"annotations": {ARGOCD_TRACKING_ID: f"{ns}_shop:/ConfigMap:{ns}/web-config"}},
        "Argo CD Application {ns}/shop",
        "self-heal on",
    ),
    "flux": (
        flux_kustomization_crd,
        lambda ns: kustomization(),
        lambda ns: {
            "labels": {f"{FLUX_KUSTOMIZE}/name": "shop", f"{FLUX_KUSTOMIZE}/namespace": ns}
        },
        "Flux Kustomization {ns}/shop",
        "re-applies Git every 5m",
    ),
}


@pytest.mark.parametrize("tool", sorted(TRACKERS))
def test_in_enforce_mode_a_fix_gitops_would_revert_waits_for_approval_with_what_to_commit(
    plane: Plane, rest: Rest, namespace: str, operator: OperatorProcess, tool: str
) -> None:
    crd, tracker_object, metadata, tracker, why = TRACKERS[tool]
    install_crds(plane, crd())
    apply(plane, namespace, tracker_object(namespace))
    # With phase Jobs, Implement's Job starts ahead (enforce mode) and is withdrawn while the
    # plan waits for a person; it starts again once approved.
    executor = "job" if tool == "flux" else "inline"
    start_healthy(plane, rest, namespace, operator, executor=executor)
    broken_config = config_map("web-config", BROKEN)
    broken_config["metadata"] |= metadata(namespace)
    put(rest, namespace, broken_config)
    put(rest, namespace, config_map("web-spans", {"spans.json": spans(Faults(error_rate=0.3), 3)}))
    cycles = wait_for(lambda: rest.list("RegenerationCycle", namespace), 60, what="a cycle")
    assert isinstance(cycles, list) and len(cycles) == 1
    name = cycles[0]["metadata"]["name"]
    waiting = await_status(
        rest,
        namespace,
        "RegenerationCycle",
        name,
        lambda s: s.get("phase") in ("AwaitingApproval", *FINAL_PHASES),
        timeout=120,
        what=f"the cycle to wait for approval (operator log: {operator})",
    )
    assert waiting["phase"] == "AwaitingApproval", waiting.get("message")
    assert "status.gitOps" in waiting["message"]
    drift = {note["object"]: note for note in waiting["gitOps"]}
    note = drift[f"ConfigMap/{namespace}/web-config"]
    assert note["tracker"] == tracker.format(ns=namespace)
    assert why in note["why"] and "data.timeout_ms" in note["paths"]
    assert any(step["object"] == f"ConfigMap/{namespace}/web-config" for step in waiting["plan"])
    if executor == "job":

        def withdrawn() -> bool:
            job = rest.get("Job", namespace, result_name(name, "implement"))
            return job is None or job_finished(job)

        wait_for(withdrawn, 60, what=f"the Implement Job to be withdrawn ({operator})")
    # Nothing changed while it waits; a person approves, and the fix is carried out.
    assert (rest.get("ConfigMap", namespace, "web-config") or {})["data"] == BROKEN
    with HealingExporter(rest, namespace):
        plane.kubectl("annotate", "-n", namespace, f"rcy/{name}", f"{APPROVAL_ANNOTATION}=true")
        final = await_status(
            rest,
            namespace,
            "RegenerationCycle",
            name,
            lambda s: s.get("phase") in FINAL_PHASES,
            timeout=180,
            what=f"the approved cycle to finish (operator log: {operator})",
        )
    assert final["phase"] == "Succeeded", final.get("message")
