"""Reading and writing a charter's target objects, and waiting for their rollouts."""

from __future__ import annotations

import time

from kubernetes.client.exceptions import ApiException

from weavergen.api.charter import TargetSpec, WorkloadRef
from weavergen.domain.remedy.actions import WORKLOAD_KINDS, Manifest, key_of
from weavergen.domain.remedy.snapshot import normalise
from weavergen.k8s.rest import Rest

REVISION = "deployment.kubernetes.io/revision"


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

    def objects(self) -> dict[str, Manifest]:
        """The workloads and ConfigMaps of the target, by ``Kind/namespace/name``."""
        found = {key_of(obj): obj for obj in self.workloads()}
        for name in self.target.config_maps:
            config_map = self.rest.get("ConfigMap", self.namespace, name)
            if config_map:
                found[key_of(config_map)] = config_map
        return found

    def previous_templates(self) -> dict[str, Manifest]:
        """Each Deployment's previous pod template, from its ReplicaSets' revisions."""
        out: dict[str, Manifest] = {}
        for key, obj in self.objects().items():
            if obj["kind"] != "Deployment":
                continue
            labels = obj["spec"]["selector"].get("matchLabels") or {}
            owned = [
                rs
                for rs in self.rest.list("ReplicaSet", self.namespace, labels)
                if any(
                    o.get("uid") == obj["metadata"]["uid"]
                    for o in rs["metadata"].get("ownerReferences", [])
                )
            ]
            owned.sort(
                key=lambda rs: int((rs["metadata"].get("annotations") or {}).get(REVISION, 0))
            )
            if len(owned) >= 2:
                template = owned[-2]["spec"]["template"]
                (template.get("metadata") or {}).get("labels", {}).pop("pod-template-hash", None)
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
        """Every workload's newest generation is observed, updated and available."""
        for obj in self.objects().values():
            if obj["kind"] not in WORKLOAD_KINDS:
                continue
            spec, status = obj["spec"], obj.get("status", {})
            want = spec.get("replicas", 1)
            if status.get("observedGeneration", 0) < obj["metadata"].get("generation", 0):
                return False
            if obj["kind"] == "Deployment":
                done = (
                    status.get("updatedReplicas", 0) == want
                    and status.get("replicas", 0) == want
                    and status.get("availableReplicas", 0) == want
                )
            else:
                done = (
                    status.get("currentRevision") == status.get("updateRevision")
                    and status.get("readyReplicas", 0) == want
                )
            if not done:
                return False
        return True

    def wait_rollout(self, timeout_seconds: float, poll: float = 0.5) -> bool:
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if self.rolled_out():
                return True
            time.sleep(poll)
        return self.rolled_out()
