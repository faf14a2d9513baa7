"""Each workload kind driven as its controller expects: restart, undo, rollout state, HPAs."""

from __future__ import annotations

from typing import Any

import pytest

from weavergen.api.keys import BOUNDS_BEFORE
from weavergen.domain.remedy import kinds
from weavergen.domain.remedy.actions import ActionInput, key_of, plan_action

NS = "shop"


def workload(kind: str, name: str = "db", **spec: Any) -> dict[str, Any]:
    api = "argoproj.io/v1alpha1" if kind == "Rollout" else "apps/v1"
    return {
        "apiVersion": api,
        "kind": kind,
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "generation": 3},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "db:2"}]},
            },
            **spec,
        },
    }


def hpa(target: dict[str, Any], low: int = 2, high: int = 5) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "scaler", "namespace": NS},
        "spec": {
            "scaleTargetRef": {
                "apiVersion": target["apiVersion"],
                "kind": target["kind"],
                "name": target["metadata"]["name"],
            },
            "minReplicas": low,
            "maxReplicas": high,
        },
    }


def by_key(*objects: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {key_of(o): o for o in objects}


def test_a_rollout_restarts_through_restart_at_and_the_others_through_their_template() -> None:
    objects = by_key(workload("Rollout", "api"), workload("StatefulSet"), workload("Deployment"))
    changed = plan_action("rollout_restart", ActionInput(objects, now="2026-12-04T00:00:00Z"))
    rollout = changed[f"Rollout/{NS}/api"]
    assert rollout["spec"]["restartAt"] == "2026-12-04T00:00:00Z"
    assert rollout["spec"]["template"] == objects[f"Rollout/{NS}/api"]["spec"]["template"]
    for key in (f"StatefulSet/{NS}/db", f"Deployment/{NS}/db"):
        annotations = changed[key]["spec"]["template"]["metadata"]["annotations"]
        assert annotations == {kinds.RESTARTED_AT: "2026-12-04T00:00:00Z"}


def test_template_actions_leave_a_rollout_that_references_a_deployment_alone() -> None:
    ref = workload("Rollout", "api")
    del ref["spec"]["template"]
    ref["spec"]["workloadRef"] = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"}
    objects = by_key(ref)
    given = ActionInput(objects, golden=objects, params={"ratio": 0.1})
    for action in ("bump_cache_epoch", "tune_sampling", "reapply_golden_manifests"):
        assert plan_action(action, given) == {}
    assert plan_action("rollout_restart", given)  # restartAt needs no template


def _statefulset_status(**status: Any) -> dict[str, Any]:
    base = {"observedGeneration": 3, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 3}
    return base | status


@pytest.mark.parametrize(
    ("strategy", "status", "done"),
    [
        ({}, {}, True),
        ({}, {"updatedReplicas": 2}, False),
        ({}, {"readyReplicas": 2}, False),
        ({}, {"observedGeneration": 2}, False),
        # A staged rollout: pods below the partition keep the old template by design.
        (
            {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}},
            {"updatedReplicas": 1},
            True,
        ),
        (
            {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}},
            {"updatedReplicas": 0},
            False,
        ),
        ({"type": "OnDelete"}, {"updatedReplicas": 1}, False),
    ],
)
def test_a_statefulset_is_rolled_out_as_far_as_its_update_strategy_goes(
    strategy: dict[str, Any], status: dict[str, Any], done: bool
) -> None:
    sts = workload("StatefulSet", updateStrategy=strategy) if strategy else workload("StatefulSet")
    sts["status"] = _statefulset_status(**status)
    assert kinds.rolled_out(sts) is done


@pytest.mark.parametrize(
    ("status", "done"),
    [
        ({"observedGeneration": "3", "phase": "Healthy"}, True),
        ({"observedGeneration": "3", "phase": "Paused"}, False),
        ({"observedGeneration": "3", "phase": "Progressing"}, False),
        ({"observedGeneration": "2", "phase": "Healthy"}, False),
        ({}, False),
    ],
)
def test_a_rollout_is_rolled_out_when_its_status_says_healthy_for_this_generation(
    status: dict[str, Any], done: bool
) -> None:
    assert kinds.rolled_out(workload("Rollout") | {"status": status}) is done


def pod(name: str, revision: str, ready: bool = True, **meta: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {kinds.STATEFULSET_REVISION_LABEL: revision}, **meta},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def test_an_on_delete_statefulset_has_its_stale_pods_replaced_highest_ordinal_first() -> None:
    sts = workload("StatefulSet", updateStrategy={"type": "OnDelete"})
    sts["status"] = {"updateRevision": "db-new"}
    pods = [pod("db-0", "db-old"), pod("db-1", "db-old"), pod("db-2", "db-new")]
    assert kinds.next_pod_to_replace(sts, pods) == "db-1"
    # One at a time: nothing while a pod is not ready, or one is missing (being recreated).
    assert kinds.next_pod_to_replace(sts, [*pods[:2], pod("db-2", "db-new", ready=False)]) is None
    assert kinds.next_pod_to_replace(sts, pods[:2]) is None
    deleting = pod("db-2", "db-new", deletionTimestamp="2026-12-04T00:00:00Z")
    assert kinds.next_pod_to_replace(sts, [*pods[:2], deleting]) is None
    assert kinds.next_pod_to_replace(sts, [pod(f"db-{i}", "db-new") for i in range(3)]) is None
    # A rolling-update StatefulSet's controller does this itself.
    rolling = workload("StatefulSet") | {"status": {"updateRevision": "db-new"}}
    assert kinds.next_pod_to_replace(rolling, pods) is None


def revision(sts: dict[str, Any], name: str, number: int, image: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "ownerReferences": [{"uid": sts["metadata"]["uid"]}]},
        "revision": number,
        "data": {
            "spec": {
                "template": {
                    "$patch": "replace",
                    "metadata": {"labels": {"app": "db"}},
                    "spec": {"containers": [{"name": "c", "image": image}]},
                }
            }
        },
    }


def test_a_statefulset_undoes_to_its_previous_controller_revision() -> None:
    sts = workload("StatefulSet") | {"status": {"updateRevision": "db-3"}}
    history = [
        revision(sts, "db-1", 1, "db:0"),
        revision(sts, "db-3", 3, "db:2-bad"),
        revision(sts, "db-2", 2, "db:1"),
        revision({"metadata": {"uid": "someone-else"}}, "other-9", 9, "other:9"),
    ]
    template = kinds.previous_template(sts, history)
    assert template == {
        "metadata": {"labels": {"app": "db"}},
        "spec": {"containers": [{"name": "c", "image": "db:1"}]},
    }
    assert kinds.previous_template(sts, history[1:2]) is None


def replica_set(owner: dict[str, Any], number: int, image: str, hash_: str) -> dict[str, Any]:
    annotation = kinds.ROLLOUT_REVISION if owner["kind"] == "Rollout" else kinds.DEPLOYMENT_REVISION
    label = "rollouts-pod-template-hash" if owner["kind"] == "Rollout" else "pod-template-hash"
    return {
        "metadata": {
            "name": f"rs-{hash_}",
            "annotations": {annotation: str(number)},
            "labels": {label: hash_},
            "ownerReferences": [{"uid": owner["metadata"]["uid"]}],
        },
        "spec": {
            "template": {
                "metadata": {"labels": {"app": "api", label: hash_}},
                "spec": {"containers": [{"name": "c", "image": image}]},
            }
        },
    }


def test_a_rollout_in_mid_update_undoes_to_its_stable_replica_set() -> None:
    rollout = workload("Rollout", "api")
    sets = [replica_set(rollout, n, f"api:{n}", f"h{n}") for n in (1, 2, 3)]
    rollout["status"] = {"stableRS": "h1", "currentPodHash": "h3"}  # 2 was aborted before
    stable = kinds.previous_template(rollout, sets)
    assert stable is not None
    assert stable["spec"]["containers"][0]["image"] == "api:1"
    assert stable["metadata"]["labels"] == {"app": "api"}
    # Fully promoted: the previous revision, as kubectl argo rollouts undo does.
    rollout["status"] = {"stableRS": "h3", "currentPodHash": "h3"}
    previous = kinds.previous_template(rollout, sets)
    assert previous is not None and previous["spec"]["containers"][0]["image"] == "api:2"


def test_a_workload_an_hpa_scales_is_scaled_through_the_hpa_bounds() -> None:
    web = workload("Deployment", "web")
    scaler = hpa(web, low=2, high=3)
    objects = by_key(web, scaler)
    changed = plan_action("scale_workloads", ActionInput(objects, params={"replicas_delta": 2}))
    assert list(changed) == [f"HorizontalPodAutoscaler/{NS}/scaler"]  # never the replicas
    spec = changed[f"HorizontalPodAutoscaler/{NS}/scaler"]["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (5, 5)
    annotations = changed[f"HorizontalPodAutoscaler/{NS}/scaler"]["metadata"]["annotations"]
    assert annotations == {BOUNDS_BEFORE: "2-3"}
    # Without an HPA the replicas change, as before.
    alone = plan_action("scale_workloads", ActionInput(by_key(web), params={"replicas_delta": 2}))
    assert alone[f"Deployment/{NS}/web"]["spec"]["replicas"] == 5
    # An HPA of another workload does not count.
    other = hpa(workload("Deployment", "other"))
    assert autoscaled_keys(by_key(web, other)) == [f"Deployment/{NS}/web"]


def autoscaled_keys(objects: dict[str, dict[str, Any]]) -> list[str]:
    return list(plan_action("scale_workloads", ActionInput(objects)))


def test_no_action_scales_down_a_statefulset_that_deletes_its_claims_when_scaled() -> None:
    keeps = workload("StatefulSet", "keeps")
    deletes = workload("StatefulSet", persistentVolumeClaimRetentionPolicy={"whenScaled": "Delete"})
    assert kinds.refused_actions(by_key(keeps)) == {}
    refused = kinds.refused_actions(by_key(keeps, deletes))
    assert list(refused) == ["scale_to_zero"]
    assert f"StatefulSet/{NS}/db" in refused["scale_to_zero"]
    assert "whenScaled: Delete" in refused["scale_to_zero"]


def test_a_workload_is_rolled_out_only_once_its_autoscaler_has_brought_it_within_bounds() -> None:
    web = workload("Deployment", "web")
    objects = by_key(web, hpa(web, low=4, high=6))
    assert not kinds.within_bounds(web, objects)  # 3 replicas, the HPA's minimum now 4
    assert kinds.within_bounds(web | {"spec": web["spec"] | {"replicas": 4}}, objects)
    assert kinds.within_bounds(web | {"spec": web["spec"] | {"replicas": 0}}, objects)
    assert kinds.within_bounds(web, by_key(web))  # no autoscaler


@pytest.mark.parametrize(
    ("kind", "generation", "status", "behind"),
    [
        ("Deployment", 3, {"observedGeneration": 3}, False),
        ("Deployment", 3, {"observedGeneration": 2}, True),
        ("Rollout", 5, {"observedGeneration": "5"}, False),
        ("Rollout", 5, {"observedGeneration": "4"}, True),
        ("StatefulSet", 1, {}, True),
    ],
)
def test_a_workload_is_behind_while_its_controller_has_not_observed_its_generation(
    kind: str, generation: int, status: dict[str, Any], behind: bool
) -> None:
    obj = {"kind": kind, "metadata": {"generation": generation}, "status": status}
    assert kinds.generation_behind(obj) is behind
