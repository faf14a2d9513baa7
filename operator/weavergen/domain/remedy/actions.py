"""What each workflow action does to Kubernetes objects, as pure functions on manifests.

Develop uses them to show a dry-run plan (diffs); the Kubernetes layer and the simulation twin
apply the objects they return. An action takes the current objects and what it needs (the
known-good snapshot, previous revisions, parameters) and returns the changed objects only.
"""

from __future__ import annotations

import copy
import difflib
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from weavergen.api.keys import BOUNDS_BEFORE, CACHE_EPOCH, REPLICAS_BEFORE
from weavergen.domain.remedy.kinds import (
    RESTARTED_AT,
    WORKLOAD_KINDS,
    Manifest,
    autoscaler_of,
    restart,
    template_of,
)

__all__ = ["RESTARTED_AT", "WORKLOAD_KINDS", "Manifest"]


def key_of(obj: Mapping[str, Any]) -> str:
    """``Kind/namespace/name``: how objects are named in plans, snapshots and the twin."""
    meta = obj["metadata"]
    return f"{obj['kind']}/{meta.get('namespace', '')}/{meta['name']}"


@dataclass(frozen=True)
class ActionInput:
    """Everything an action may need; ``objects`` are the current target objects by key."""

    objects: Mapping[str, Manifest]
    golden: Mapping[str, Manifest] = field(default_factory=dict)
    previous_templates: Mapping[str, Manifest] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    now: str = "1970-01-01T00:00:00Z"


def workloads(objects: Mapping[str, Manifest]) -> dict[str, Manifest]:
    return {k: v for k, v in objects.items() if v["kind"] in WORKLOAD_KINDS}


def templated(objects: Mapping[str, Manifest]) -> dict[str, Manifest]:
    """The workloads that carry their own pod template (not a Rollout's ``workloadRef``)."""
    return {k: v for k, v in workloads(objects).items() if template_of(v) is not None}


def config_maps(objects: Mapping[str, Manifest]) -> dict[str, Manifest]:
    return {k: v for k, v in objects.items() if v["kind"] == "ConfigMap"}


def _template_annotations(obj: Manifest) -> dict[str, str]:
    meta = obj["spec"]["template"].setdefault("metadata", {})
    annotations: dict[str, str] = meta.setdefault("annotations", {}) or {}
    meta["annotations"] = annotations
    return annotations


def _changed(
    objects: Mapping[str, Manifest], edit: Callable[[Manifest], None]
) -> dict[str, Manifest]:
    out = {}
    for key, obj in objects.items():
        new = copy.deepcopy(obj)
        edit(new)
        if new != obj:
            out[key] = new
    return out


def rollout_restart(given: ActionInput) -> dict[str, Manifest]:
    return _changed(workloads(given.objects), lambda o: restart(o, given.now))


def bump_cache_epoch(given: ActionInput) -> dict[str, Manifest]:
    def bump(o: Manifest) -> None:
        annotations = _template_annotations(o)
        annotations[CACHE_EPOCH] = str(int(annotations.get(CACHE_EPOCH, "0")) + 1)

    return _changed(templated(given.objects), bump)


def reset_config_from_baseline(given: ActionInput) -> dict[str, Manifest]:
    def reset(o: Manifest) -> None:
        golden = given.golden.get(key_of(o))
        if golden is not None:
            o["data"] = copy.deepcopy(golden.get("data") or {})
            o["binaryData"] = copy.deepcopy(golden.get("binaryData") or {})
            if not o["binaryData"]:
                del o["binaryData"]

    return _changed(config_maps(given.objects), reset)


def scale_workloads(given: ActionInput) -> dict[str, Manifest]:
    """More (or fewer) replicas. A workload an HPA scales is scaled through the HPA's bounds
    (its ``minReplicas``, and ``maxReplicas`` if that is lower), the bounds before kept in an
    annotation: setting the replicas would only start a tug of war with the autoscaler."""
    delta = int(given.params.get("replicas_delta", 1))
    out: dict[str, Manifest] = {}
    for key, obj in workloads(given.objects).items():
        replicas = max(0, obj["spec"].get("replicas", 1) + delta)
        hpa = autoscaler_of(obj, given.objects)
        if hpa is None:
            out |= _changed({key: obj}, functools.partial(_replicas, replicas=replicas))
        else:
            out |= _changed({key_of(hpa): hpa}, functools.partial(_bound, replicas=replicas))
    return out


def _replicas(obj: Manifest, replicas: int) -> None:
    obj["spec"]["replicas"] = replicas


def _bound(hpa: Manifest, replicas: int) -> None:
    spec = hpa["spec"]
    low, high = spec.get("minReplicas", 1), spec["maxReplicas"]
    annotations = hpa["metadata"].setdefault("annotations", {})
    annotations.setdefault(BOUNDS_BEFORE, f"{low}-{high}")
    spec["minReplicas"] = max(1, replicas)
    spec["maxReplicas"] = max(high, spec["minReplicas"])


def scale_to_zero(given: ActionInput) -> dict[str, Manifest]:
    def zero(o: Manifest) -> None:
        o["metadata"].setdefault("annotations", {})[REPLICAS_BEFORE] = str(
            o["spec"].get("replicas", 1)
        )
        o["spec"]["replicas"] = 0

    return _changed(workloads(given.objects), zero)


def restore_replicas(given: ActionInput) -> dict[str, Manifest]:
    def restore(o: Manifest) -> None:
        annotations = o["metadata"].get("annotations") or {}
        if REPLICAS_BEFORE in annotations:
            o["spec"]["replicas"] = int(annotations.pop(REPLICAS_BEFORE))

    return _changed(workloads(given.objects), restore)


def reapply_golden_manifests(given: ActionInput) -> dict[str, Manifest]:
    def reapply(o: Manifest) -> None:
        golden = given.golden.get(key_of(o))
        if golden is not None:
            o["spec"]["template"] = copy.deepcopy(golden["spec"]["template"])

    return _changed(templated(given.objects), reapply)


def rollout_undo(given: ActionInput) -> dict[str, Manifest]:
    def undo(o: Manifest) -> None:
        previous = given.previous_templates.get(key_of(o))
        if previous is not None:
            o["spec"]["template"] = copy.deepcopy(previous)

    return _changed(templated(given.objects), undo)


def tune_sampling(given: ActionInput) -> dict[str, Manifest]:
    ratio = float(given.params.get("ratio", 0.25))

    def tune(o: Manifest) -> None:
        for container in o["spec"]["template"]["spec"].get("containers", []):
            env = [
                e
                for e in container.get("env", []) or []
                if e["name"] not in ("OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG")
            ]
            env += [
                {"name": "OTEL_TRACES_SAMPLER", "value": "parentbased_traceidratio"},
                {"name": "OTEL_TRACES_SAMPLER_ARG", "value": str(ratio)},
            ]
            container["env"] = env

    return _changed(templated(given.objects), tune)


def no_object_change(given: ActionInput) -> dict[str, Manifest]:
    """Actions that act on pods, the charter or nothing (recreate_pods, waits, checks)."""
    return {}


PLANNERS: dict[str, Callable[[ActionInput], dict[str, Manifest]]] = {
    "rollout_restart": rollout_restart,
    "bump_cache_epoch": bump_cache_epoch,
    "reset_config_from_baseline": reset_config_from_baseline,
    "scale_workloads": scale_workloads,
    "scale_to_zero": scale_to_zero,
    "restore_replicas": restore_replicas,
    "reapply_golden_manifests": reapply_golden_manifests,
    "rollout_undo": rollout_undo,
    "tune_sampling": tune_sampling,
}


def plan_action(action: str, given: ActionInput) -> dict[str, Manifest]:
    """The objects ``action`` would change, as they would be afterwards."""
    return PLANNERS.get(action, no_object_change)(given)


def diff(before: Manifest | None, after: Manifest) -> str:
    """A unified diff of two manifests as YAML."""
    a = yaml.safe_dump(before, sort_keys=True).splitlines() if before else []
    b = yaml.safe_dump(after, sort_keys=True).splitlines()
    name = key_of(after)
    return "\n".join(difflib.unified_diff(a, b, f"{name} (now)", f"{name} (planned)", lineterm=""))
