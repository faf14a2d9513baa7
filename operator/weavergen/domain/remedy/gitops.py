"""Objects a GitOps controller keeps as Git says: who tracks them, whether it reverts a change
made in the cluster, and which planned changes it would revert.

Argo CD tracks an object by the ``argocd.argoproj.io/tracking-id`` annotation (annotation
tracking, the default since Argo CD 3) or by the ``app.kubernetes.io/instance`` label (label
tracking; Helm sets the same label, so it counts only when an Application of that name exists);
it reverts drift when the Application's automated sync policy has ``selfHeal``. Flux's
kustomize-controller labels what it applies (``kustomize.toolkit.fluxcd.io/name``) and corrects
drift at every interval unless the Kustomization is suspended or the object opts out
(``kustomize.toolkit.fluxcd.io/reconcile: disabled``); its helm-controller labels
(``helm.toolkit.fluxcd.io/name``) and corrects drift only with ``driftDetection.mode: enabled``.
A tracker that cannot be read is assumed to revert: a fix that silently comes undone is worse
than one that waits for a person.

A change Git does not hold is no drift: a restart's pod-template annotations, a Rollout's
``restartAt``, the operator's own bookkeeping annotations, and the replicas of a workload an
autoscaler scales (Git leaves them to the HPA). Everything else a fix changes is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from weavergen.api.keys import BOUNDS_BEFORE, CACHE_EPOCH, REPLICAS_BEFORE
from weavergen.domain.remedy.kinds import RESTARTED_AT, autoscaler_of

Manifest = dict[str, Any]
ARGOCD_TRACKING_ID = "argocd.argoproj.io/tracking-id"
ARGOCD_INSTANCE_LABEL = "app.kubernetes.io/instance"
FLUX_KUSTOMIZE = "kustomize.toolkit.fluxcd.io"
FLUX_HELM = "helm.toolkit.fluxcd.io"
FLUX_RECONCILE = f"{FLUX_KUSTOMIZE}/reconcile"
# Paths (as ``changed_paths`` writes them) of changes Git does not hold.
GIT_FREE_PATHS = frozenset(
    {
        f"spec.template.metadata.annotations.{RESTARTED_AT}",
        f"spec.template.metadata.annotations.{CACHE_EPOCH}",
        "spec.restartAt",
        f"metadata.annotations.{REPLICAS_BEFORE}",
        f"metadata.annotations.{BOUNDS_BEFORE}",
    }
)


@dataclass(frozen=True)
class Tracker:
    """The GitOps object that tracks a target object: an Argo CD Application, a Flux
    Kustomization or HelmRelease."""

    tool: str
    kind: str
    namespace: str
    name: str

    def describe(self) -> str:
        return f"{self.tool} {self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class Reverting:
    """A tracker that reverts changes made in the cluster, and why the operator thinks so."""

    tracker: Tracker
    why: str


def tracker_of(obj: Mapping[str, Any], argocd_namespace: str) -> Tracker | None:
    """Who tracks ``obj``, from its metadata alone; an Argo CD instance label is a candidate
    the caller confirms by finding the Application."""
    meta = obj.get("metadata") or {}
    annotations, labels = meta.get("annotations") or {}, meta.get("labels") or {}
    tracking = annotations.get(ARGOCD_TRACKING_ID)
    if tracking:
        app = tracking.split(":", 1)[0]
        namespace, _, name = app.rpartition("_")  # apps in any namespace: <namespace>_<name>
        return Tracker("Argo CD", "Application", namespace or argocd_namespace, name)
    if annotations.get(FLUX_RECONCILE) == "disabled":
        return None
    for group, kind in ((FLUX_KUSTOMIZE, "Kustomization"), (FLUX_HELM, "HelmRelease")):
        name = labels.get(f"{group}/name")
        if name:
            namespace = labels.get(f"{group}/namespace") or meta.get("namespace", "")
            return Tracker("Flux", kind, namespace, name)
    instance = labels.get(ARGOCD_INSTANCE_LABEL)
    if instance:
        return Tracker("Argo CD", "Application", argocd_namespace, instance)
    return None


def inferred(obj: Mapping[str, Any], tracker: Tracker) -> bool:
    """Whether ``tracker`` was only inferred from the instance label Helm sets too."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return tracker.tool == "Argo CD" and ARGOCD_TRACKING_ID not in annotations


def reverting(
    tracker: Tracker, found: Mapping[str, Any] | None, *, readable: bool, guessed: bool
) -> Reverting | None:
    """Whether ``tracker`` (``found`` as read, None if not found) reverts changes made in the
    cluster. ``guessed``: the tracker was inferred from a label another tool sets too."""
    what = tracker.describe()
    if not readable:
        return Reverting(tracker, f"{what} could not be read: assumed to revert changes")
    if found is None:
        if guessed:
            return None
        return Reverting(
            tracker, f"{what} is not in this cluster (managed from another?): assumed to revert"
        )
    spec = found.get("spec") or {}
    if tracker.kind == "Application":
        automated = (spec.get("syncPolicy") or {}).get("automated")
        if automated is not None and automated.get("enabled", True) and automated.get("selfHeal"):
            return Reverting(tracker, f"{what} syncs automatically with self-heal on")
        return None
    if tracker.kind == "Kustomization":
        if spec.get("suspend"):
            return None
        return Reverting(tracker, f"{what} re-applies Git every {spec.get('interval', '?')}")
    if (spec.get("driftDetection") or {}).get("mode") == "enabled" and not spec.get("suspend"):
        return Reverting(tracker, f"{what} corrects drift (driftDetection.mode: enabled)")
    return None


def changed_paths(before: Any, after: Any, prefix: str = "") -> list[str]:
    """The dotted paths of the leaves that differ (lists compared whole; a missing mapping is
    an empty one, so an annotation added where there were none is that annotation's path)."""
    if isinstance(before, Mapping) or isinstance(after, Mapping):
        if not isinstance(before, Mapping | None) or not isinstance(after, Mapping | None):
            return [prefix]
        before, after = before or {}, after or {}
        paths: list[str] = []
        for key in sorted(set(before) | set(after)):
            here = f"{prefix}.{key}" if prefix else str(key)
            paths += changed_paths(before.get(key), after.get(key), here)
        return paths
    return [] if before == after else [prefix]


def drift(
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any],
    objects: Mapping[str, Manifest],
) -> list[str]:
    """The paths of a planned change that Git holds: what a reverting tracker would undo."""
    paths = changed_paths(before or {}, after)
    autoscaled = autoscaler_of(dict(after), objects) is not None
    return [
        p
        for p in paths
        if p not in GIT_FREE_PATHS
        and not (autoscaled and p == "spec.replicas")
        and not p.startswith(("status", "metadata.resourceVersion", "metadata.generation"))
    ]


def drift_notes(
    planned: Iterable[tuple[str, Mapping[str, Any] | None, Mapping[str, Any]]],
    reverted: Mapping[str, Reverting],
    objects: Mapping[str, Manifest],
) -> list[dict[str, Any]]:
    """For each planned ``(key, before, after)`` on an object a tracker reverts: the paths Git
    holds and who would revert them. Empty when the plan drifts from nothing."""
    notes = []
    for key, before, after in planned:
        owner = reverted.get(key)
        paths = drift(before, after, objects) if owner else []
        if owner and paths:
            notes.append(
                {
                    "object": key,
                    "tracker": owner.tracker.describe(),
                    "why": owner.why,
                    "paths": paths,
                }
            )
    return notes
