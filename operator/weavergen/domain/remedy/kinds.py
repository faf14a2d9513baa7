"""Each workload kind as its own controller expects to be driven: restarted, undone, judged
rolled out, scaled by its autoscaler. Pure functions on manifests; the Kubernetes layer reads
the revisions and pods they need and acts on what they return.

- Deployment: a restart is the pod template's ``restartedAt`` annotation; undo takes the
  previous ReplicaSet's template.
- StatefulSet: the same restart, rolled by its controller in ordinal order, never past
  ``rollingUpdate.partition``; with ``updateStrategy: OnDelete`` the controller changes no pod,
  so the operator replaces them one at a time, highest ordinal first, each only once every pod
  is ready; undo takes the previous ControllerRevision; no action scales down a StatefulSet
  whose claims are deleted on scale-down, and none ever deletes a PersistentVolumeClaim.
- Argo Rollouts ``Rollout``: a restart is ``spec.restartAt`` (the Rollout controller restarts
  its pods itself); undo returns the template to the stable ReplicaSet's while an update is in
  progress (Argo's own rollback to stable, which skips the steps), else to the previous
  revision's; rolled out when its status says ``Healthy`` for the current generation.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from weavergen.api.charter import WORKLOAD_KINDS
from weavergen.domain.owners import owned_by

__all__ = ["WORKLOAD_KINDS"]

Manifest = dict[str, Any]
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
DEPLOYMENT_REVISION = "deployment.kubernetes.io/revision"
ROLLOUT_REVISION = "rollout.argoproj.io/revision"
# Labels controllers add to the templates they stamp out; not part of the workload's template.
TEMPLATE_HASH_LABELS = ("pod-template-hash", "rollouts-pod-template-hash")
STATEFULSET_REVISION_LABEL = "controller-revision-hash"
HPA = "HorizontalPodAutoscaler"


def template_of(obj: Mapping[str, Any]) -> Manifest | None:
    """The pod template a workload runs; None for a Rollout that references a Deployment's
    (``workloadRef``), whose template actions act on that Deployment instead."""
    template: Manifest | None = (obj.get("spec") or {}).get("template")
    return template


def restart(obj: Manifest, now: str) -> None:
    """Ask the workload's controller to replace its pods, in place on ``obj``."""
    if obj["kind"] == "Rollout":
        obj["spec"]["restartAt"] = now
        return
    template = obj["spec"]["template"]
    meta = template.setdefault("metadata", {})
    meta["annotations"] = {**(meta.get("annotations") or {}), RESTARTED_AT: now}


def on_delete(obj: Mapping[str, Any]) -> bool:
    """A StatefulSet whose controller replaces no pod on a template change (OnDelete)."""
    strategy = (obj.get("spec") or {}).get("updateStrategy") or {}
    return obj.get("kind") == "StatefulSet" and strategy.get("type") == "OnDelete"


def partition(obj: Mapping[str, Any]) -> int:
    """Pods with an ordinal below this keep the old template: a staged StatefulSet rollout."""
    strategy = (obj.get("spec") or {}).get("updateStrategy") or {}
    if obj.get("kind") != "StatefulSet" or strategy.get("type", "RollingUpdate") == "OnDelete":
        return 0
    return int((strategy.get("rollingUpdate") or {}).get("partition") or 0)


def deletes_claims_on_scale_down(obj: Mapping[str, Any]) -> bool:
    policy = (obj.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
    return obj.get("kind") == "StatefulSet" and policy.get("whenScaled") == "Delete"


def rolled_out(obj: Mapping[str, Any]) -> bool:
    """Whether the workload's controller has finished what its spec asks, as it reports it."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    want = spec.get("replicas", 1)
    generation = (obj.get("metadata") or {}).get("generation", 0)
    if obj["kind"] == "Rollout":
        return bool(
            str(status.get("observedGeneration", "")) == str(generation)
            and status.get("phase") == "Healthy"
        )
    if status.get("observedGeneration", 0) < generation:
        return False
    if obj["kind"] == "StatefulSet":
        return bool(
            status.get("readyReplicas", 0) == want
            and status.get("replicas", 0) == want
            and status.get("updatedReplicas", 0) >= want - partition(obj)
        )
    return bool(
        status.get("updatedReplicas", 0) == want
        and status.get("replicas", 0) == want
        and status.get("availableReplicas", 0) == want
    )


def generation_behind(obj: Mapping[str, Any]) -> bool:
    """Whether the workload's controller has not yet observed its latest spec (a Rollout
    reports the generation as a string)."""
    observed = (obj.get("status") or {}).get("observedGeneration")
    generation = (obj.get("metadata") or {}).get("generation", 0)
    return observed is None or str(observed) != str(generation)


def _ordinal(pod: Mapping[str, Any]) -> int:
    name = str(pod["metadata"]["name"])
    tail = name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else -1


def _ready(pod: Mapping[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return not (pod.get("metadata") or {}).get("deletionTimestamp") and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
    )


def next_pod_to_replace(obj: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> str | None:
    """For an OnDelete StatefulSet: the pod to delete next so it comes back with the new
    template, as its rolling update would: highest ordinal first, one at a time, and only while
    every pod is there and ready. None when there is nothing to do yet (or at all)."""
    if not on_delete(obj):
        return None
    update = (obj.get("status") or {}).get("updateRevision")
    listed = list(pods)
    if not update or len(listed) < (obj.get("spec") or {}).get("replicas", 1):
        return None
    if not all(_ready(p) for p in listed):
        return None
    stale = [
        p
        for p in listed
        if ((p["metadata"].get("labels") or {}).get(STATEFULSET_REVISION_LABEL)) != update
    ]
    return str(max(stale, key=_ordinal)["metadata"]["name"]) if stale else None


def pods_updated(obj: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> bool:
    """For a StatefulSet: every pod its update reaches (ordinals from the partition up) runs
    the update revision and is ready. Its status alone cannot say so: after an undo the
    update revision is the old one again, and pods below the partition already count as
    updated while the ones above still run the release being undone."""
    if obj.get("kind") != "StatefulSet":
        return True
    update = (obj.get("status") or {}).get("updateRevision")
    want = (obj.get("spec") or {}).get("replicas", 1)
    by_ordinal = {_ordinal(p): p for p in pods}
    for ordinal in range(partition(obj), want):
        pod = by_ordinal.get(ordinal)
        if pod is None or not _ready(pod):
            return False
        if (pod["metadata"].get("labels") or {}).get(STATEFULSET_REVISION_LABEL) != update:
            return False
    return True


def autoscaled_as(
    snapshot: Mapping[str, Manifest], live: Mapping[str, Manifest]
) -> dict[str, Manifest]:
    """``live`` with the replicas of every autoscaled workload as ``snapshot`` has them: the
    autoscaler owns that field, so its changes are neither someone else's edit nor a failed
    restore."""
    out = dict(live)
    for key, obj in live.items():
        kept = snapshot.get(key)
        if kept is None or obj["kind"] not in WORKLOAD_KINDS or autoscaler_of(obj, live) is None:
            continue
        out[key] = {**obj, "spec": {**obj["spec"], "replicas": kept["spec"].get("replicas")}}
    return out


def restore_order(objects: Mapping[str, Manifest]) -> list[Manifest]:
    """The objects in the order a restore writes them: autoscalers first, whose bounds decide
    the replicas their workloads are driven to, then the rest as they came."""
    return sorted(objects.values(), key=lambda o: o["kind"] != HPA)


def _stamped_template(template: Mapping[str, Any]) -> Manifest:
    """A template copied from a ReplicaSet or ControllerRevision, without the hash labels its
    controller added."""
    out = copy.deepcopy(dict(template))
    out.pop("$patch", None)
    labels = (out.get("metadata") or {}).get("labels") or {}
    for label in TEMPLATE_HASH_LABELS:
        labels.pop(label, None)
    return out


def _owned(obj: Mapping[str, Any], children: Iterable[Manifest]) -> list[Manifest]:
    uid = obj["metadata"].get("uid")
    return [c for c in children if owned_by(c, uid)]


def previous_template(obj: Mapping[str, Any], children: Iterable[Manifest]) -> Manifest | None:
    """The template to undo to, from the workload's own revision history: ReplicaSets for a
    Deployment or a Rollout, ControllerRevisions for a StatefulSet. None without one."""
    owned = _owned(obj, children)
    if obj["kind"] == "StatefulSet":
        update = (obj.get("status") or {}).get("updateRevision")
        older = sorted(
            (r for r in owned if r["metadata"]["name"] != update), key=lambda r: r["revision"]
        )
        if not older:
            return None
        return _stamped_template(older[-1]["data"]["spec"]["template"])
    annotation = ROLLOUT_REVISION if obj["kind"] == "Rollout" else DEPLOYMENT_REVISION
    owned.sort(key=lambda rs: int((rs["metadata"].get("annotations") or {}).get(annotation, 0)))
    if obj["kind"] == "Rollout":
        status = obj.get("status") or {}
        stable, current = status.get("stableRS"), status.get("currentPodHash")
        if stable and current and stable != current:
            for rs in owned:
                if (rs["metadata"].get("labels") or {}).get(TEMPLATE_HASH_LABELS[1]) == stable:
                    return _stamped_template(rs["spec"]["template"])
    if len(owned) < 2:
        return None
    return _stamped_template(owned[-2]["spec"]["template"])


def autoscaler_of(obj: Mapping[str, Any], objects: Mapping[str, Manifest]) -> Manifest | None:
    """The HorizontalPodAutoscaler among ``objects`` that scales this workload, if any."""
    for candidate in objects.values():
        ref = (candidate.get("spec") or {}).get("scaleTargetRef") or {}
        if (
            candidate["kind"] == HPA
            and ref.get("kind") == obj["kind"]
            and ref.get("name") == obj["metadata"]["name"]
        ):
            return candidate
    return None


def within_bounds(obj: Mapping[str, Any], objects: Mapping[str, Manifest]) -> bool:
    """Whether the autoscaler of ``obj`` (if any) has brought its replicas within its bounds:
    after a scaling strategy changed them, the autoscaler's own scaling is part of the rollout.
    A workload at zero replicas counts: an HPA leaves it alone (scaling is disabled at 0)."""
    hpa = autoscaler_of(obj, objects)
    if hpa is None:
        return True
    replicas = (obj.get("spec") or {}).get("replicas", 1)
    spec = hpa["spec"]
    return bool(replicas == 0 or spec.get("minReplicas", 1) <= replicas <= spec["maxReplicas"])


def refused_actions(objects: Mapping[str, Manifest]) -> dict[str, str]:
    """Actions no strategy may take on these objects, each with the reason."""
    refused: dict[str, str] = {}
    for key, obj in objects.items():
        if deletes_claims_on_scale_down(obj):
            refused["scale_to_zero"] = (
                f"{key} deletes its PersistentVolumeClaims when scaled down "
                "(persistentVolumeClaimRetentionPolicy.whenScaled: Delete): the operator never "
                "deletes a claim"
            )
    return refused
