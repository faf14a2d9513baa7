"""Reading and writing a charter's target objects, and waiting for their rollouts."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from kubernetes.client.exceptions import ApiException

from weavergen.api.charter import TargetSpec, WorkloadRef
from weavergen.api.keys import NUDGED_ANNOTATION
from weavergen.domain.remedy import endpoints, kinds
from weavergen.domain.remedy.actions import WORKLOAD_KINDS, Manifest, key_of
from weavergen.domain.remedy.snapshot import normalise
from weavergen.k8s.rest import Rest

log = logging.getLogger(__name__)

# A workload controller that has not observed a new spec after this long is requeued: an
# informer's update can be lost to a conflict, and a controller's resync can be 15 minutes.
NUDGE_AFTER_SECONDS = 5.0
# Where each kind keeps its revisions: Deployments and Rollouts in ReplicaSets.
REVISIONS = {"StatefulSet": "ControllerRevision", "Deployment": "ReplicaSet"}


class TargetChanged(RuntimeError):
    """An object changed under us between read and write (HTTP 409): someone else edited it."""


class Targets:
    """The target objects of one charter in one namespace."""

    def __init__(self, rest: Rest, namespace: str, target: TargetSpec) -> None:
        self.rest = rest
        self.namespace = namespace
        self.target = target

    def _workloads(self, ref: WorkloadRef) -> list[Manifest]:
        if ref.name:
            found = self.rest.get(ref.kind, self.namespace, ref.name)
            return [found] if found else []
        assert ref.selector is not None
        return self.rest.list(ref.kind, self.namespace, ref.selector.match_labels)

    def workloads(self) -> list[Manifest]:
        """The target's Deployments and StatefulSets as they are now."""
        return [obj for ref in self.target.workloads for obj in self._workloads(ref)]

    def autoscalers(self, workloads: list[Manifest]) -> list[Manifest]:
        """The HorizontalPodAutoscalers that scale the workloads: part of the target, since a
        scaling strategy changes their bounds (and a rollback restores them)."""
        if not workloads:
            return []
        scaled = {(w["kind"], w["metadata"]["name"]) for w in workloads}
        return [
            hpa
            for hpa in self.rest.list(kinds.HPA, self.namespace)
            if ((ref := hpa["spec"].get("scaleTargetRef") or {}).get("kind"), ref.get("name"))
            in scaled
        ]

    def objects(self) -> dict[str, Manifest]:
        """The workloads, their autoscalers and the ConfigMaps of the target, by
        ``Kind/namespace/name``."""
        workloads = self.workloads()
        found = {key_of(obj): obj for obj in [*workloads, *self.autoscalers(workloads)]}
        for name in self.target.config_maps:
            config_map = self.rest.get("ConfigMap", self.namespace, name)
            if config_map:
                found[key_of(config_map)] = config_map
        return found

    def previous_templates(self) -> dict[str, Manifest]:
        """Each workload's template to undo to, from its own revision history."""
        out: dict[str, Manifest] = {}
        for key, obj in self.objects().items():
            if obj["kind"] not in WORKLOAD_KINDS:
                continue
            history = REVISIONS["StatefulSet" if obj["kind"] == "StatefulSet" else "Deployment"]
            labels = obj["spec"]["selector"].get("matchLabels") or {}
            template = kinds.previous_template(obj, self.rest.list(history, self.namespace, labels))
            if template is not None:
                out[key] = template
        return out

    def write(self, obj: Manifest, attempts: int = 5) -> None:
        """Replace (or create) one object, guarded by the live resourceVersion.

        A conflict (409) caused only by what the API server and controllers own (status,
        revision annotations) is retried with fresh state; a conflict where the object's own
        content changed under us is someone else's edit, not overwritten blindly:
        ``TargetChanged``.
        """
        kind, name = obj["kind"], obj["metadata"]["name"]
        body = {**obj, "metadata": {**obj["metadata"], "namespace": self.namespace}}
        body.pop("status", None)
        first = self.rest.get(kind, self.namespace, name)
        if first is None:
            body["metadata"].pop("resourceVersion", None)
            self.rest.create(kind, self.namespace, body)
            return
        live = first
        for _ in range(attempts):
            body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
            try:
                self.rest.replace(kind, self.namespace, name, body)
                return
            except ApiException as err:
                if err.status != 409:
                    raise
            live = self.rest.get(kind, self.namespace, name) or {}
            if normalise(live) != normalise(first):
                raise TargetChanged(
                    f"{kind} {self.namespace}/{name} was edited by someone else while the "
                    "operator was changing it; not overwriting that edit"
                )
        raise TargetChanged(f"{kind} {self.namespace}/{name} kept changing while writing")

    def recreate_pods(self) -> int:
        """Delete every pod of the target workloads; their controllers recreate them."""
        deleted = 0
        for obj in self.objects().values():
            if obj["kind"] in WORKLOAD_KINDS:
                labels = obj["spec"]["selector"].get("matchLabels") or {}
                for pod in self.rest.list("Pod", self.namespace, labels):
                    self.rest.delete("Pod", self.namespace, pod["metadata"]["name"])
                    deleted += 1
        return deleted

    def rolled_out(self) -> bool:
        """Every workload's controller has finished what its spec asks, and its autoscaler
        has brought it within bounds (see ``kinds``)."""
        objects = self.objects()
        return all(
            kinds.rolled_out(obj)
            and kinds.within_bounds(obj, objects)
            and kinds.pods_updated(obj, self._pods(obj) if obj["kind"] == "StatefulSet" else ())
            for obj in objects.values()
            if obj["kind"] in WORKLOAD_KINDS
        )

    def _pods(self, obj: Manifest) -> list[Manifest]:
        return self.rest.list("Pod", self.namespace, obj["spec"]["selector"].get("matchLabels"))

    def advance_on_delete(self) -> str | None:
        """Replace the next stale pod of an OnDelete StatefulSet (its controller will not);
        the pod's name, or None when none is due. One at a time, and level-based: a process
        that dies between two calls resumes where the pods are."""
        for obj in self.workloads():
            if not kinds.on_delete(obj):
                continue
            pod = kinds.next_pod_to_replace(obj, self._pods(obj))
            if pod is not None:
                self.rest.delete("Pod", self.namespace, pod)
                return pod
        return None

    def stale_endpoints(self) -> list[str]:
        """The ready endpoints, of the Services routing to the target workloads' pods, whose
        pod is terminating or gone (see ``endpoints``)."""
        labels = [
            pod["metadata"].get("labels") or {}
            for obj in self.workloads()
            for pod in self._pods(obj)
        ]
        stale = []
        for service in self.rest.list("Service", self.namespace):
            if not any(endpoints.selects(service, pod_labels) for pod_labels in labels):
                continue
            name = service["metadata"]["name"]
            slices = self.rest.list(
                "EndpointSlice", self.namespace, {endpoints.SERVICE_NAME_LABEL: name}
            )
            pods = self.rest.list("Pod", self.namespace, service["spec"]["selector"])
            stale += endpoints.stale_endpoints(slices, pods)
        return stale

    def wait_endpoints(self, timeout_seconds: float, poll: float = 0.2) -> bool:
        """Wait until no Service of the target routes to a pod that is going away; False if
        one still does after ``timeout_seconds`` (logged)."""
        deadline = time.monotonic() + timeout_seconds
        while stale := self.stale_endpoints():
            if time.monotonic() >= deadline:
                log.warning("endpoints still ready on pods going away: %s", ", ".join(stale))
                return False
            time.sleep(poll)
        return True

    def wait_rollout(self, timeout_seconds: float, poll: float = 0.25) -> bool:
        deadline = time.monotonic() + timeout_seconds
        lagging: dict[str, float] = {}
        while time.monotonic() < deadline:
            if self.rolled_out():
                return True
            self.advance_on_delete()
            self.nudge_lagging(lagging)
            time.sleep(poll)
        return self.rolled_out()

    def nudge_lagging(self, since: dict[str, float]) -> list[str]:
        """Requeue each workload whose controller has not observed its latest spec for
        ``NUDGE_AFTER_SECONDS`` (``since``: when each was first seen lagging, kept by the
        caller) by touching an annotation: an update event the controller acts on, which
        changes neither the spec nor what a snapshot compares (a conflict means the object
        changed meanwhile: an update event too). The keys nudged."""
        now = time.monotonic()
        nudged = []
        for obj in self.workloads():
            key = key_of(obj)
            if not kinds.generation_behind(obj):
                since.pop(key, None)
                continue
            if now - since.setdefault(key, now) < NUDGE_AFTER_SECONDS:
                continue
            annotations = obj["metadata"].setdefault("annotations", {})
            annotations[NUDGED_ANNOTATION] = datetime.now(UTC).isoformat(timespec="seconds")
            lagging = (
                f"{key}: its controller has not observed generation "
                f"{obj['metadata'].get('generation')} (observed "
                f"{(obj.get('status') or {}).get('observedGeneration')}) for "
                f"{now - since[key]:.0f} s"
            )
            since[key] = now
            try:
                self.rest.replace(obj["kind"], self.namespace, obj["metadata"]["name"], obj)
            except ApiException as err:
                # 409: changed meanwhile, an update event of its own. Anything else (a policy
                # webhook refusing the write): the wait goes on without the nudge.
                log.warning("%s; could not requeue it: %s", lagging, err.reason)
                continue
            log.warning("%s: requeued it", lagging)
            nudged.append(key)
        return nudged
