"""What a charter's workloads consume, and which of it changed outside the charter's targets.

A fix acts on the targets; when it fails, the cause is often something the pods read that the
charter does not list: a ConfigMap or Secret mounted as a volume or read into the environment,
or an image whose tag now names other bytes. These functions read that from pod templates and
pods (pure); the Kubernetes layer fetches the objects. Secrets are named, never read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from weavergen.domain.remedy.actions import Manifest
from weavergen.domain.times import parse_time


@dataclass(frozen=True, order=True)
class ConsumedInput:
    kind: str  # ConfigMap or Secret
    name: str
    via: str  # how, for people: "envFrom of Deployment/shop"

    def describe(self) -> str:
        return f"{self.kind} {self.name} ({self.via})"


def consumed_inputs(workloads: Iterable[Manifest]) -> list[ConsumedInput]:
    """The ConfigMaps and Secrets the workloads' pod templates reference, sorted, one per
    (kind, name) with the first way it is consumed."""
    found: dict[tuple[str, str], ConsumedInput] = {}
    for workload in workloads:
        owner = f"{workload['kind']}/{workload['metadata']['name']}"
        pod = workload.get("spec", {}).get("template", {}).get("spec", {})
        for kind, name, how in _references(pod):
            found.setdefault((kind, name), ConsumedInput(kind, name, f"{how} of {owner}"))
    return sorted(found.values())


# Where a pod spec names a ConfigMap or Secret: envFrom, env valueFrom, volumes (and projected
# volumes' sources). A volume's Secret is under secretName, every other reference under name.
REFERENCES = {
    "configMapRef": "ConfigMap",
    "secretRef": "Secret",
    "configMapKeyRef": "ConfigMap",
    "secretKeyRef": "Secret",
    "configMap": "ConfigMap",
    "secret": "Secret",
}


def _references(pod: Mapping[str, Any]) -> Iterable[tuple[str, str, str]]:
    for container in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]:
        for source in container.get("envFrom") or []:
            yield from _named(source, "envFrom")
        for env in container.get("env") or []:
            yield from _named(env.get("valueFrom") or {}, f"env {env['name']}")
    for volume in pod.get("volumes") or []:
        how = f"volume {volume['name']}"
        yield from _named(volume, how)
        for source in (volume.get("projected") or {}).get("sources") or []:
            yield from _named(source, how)


def _named(holder: Mapping[str, Any], how: str) -> Iterable[tuple[str, str, str]]:
    for key, kind in REFERENCES.items():
        ref = holder.get(key)
        if isinstance(ref, Mapping) and (name := ref.get("name") or ref.get("secretName")):
            yield kind, str(name), how


def last_changed(obj: Mapping[str, Any]) -> str | None:
    """When an object was last written: the latest of its managed fields' times (every write
    records one), else its creation time."""
    metadata = obj.get("metadata") or {}
    times = [m["time"] for m in metadata.get("managedFields") or [] if m.get("time")]
    return max(times, default=metadata.get("creationTimestamp"))


def changed_inputs(
    consumed: Sequence[ConsumedInput],
    metadata: Mapping[tuple[str, str], Manifest | None],
    *,
    targets: Iterable[str],
    since: datetime,
) -> list[str]:
    """Consumed inputs outside the ``targets`` (ConfigMap names) written at or after ``since``,
    described for people. ``metadata`` holds each input's metadata, None when it does not exist
    (a pod cannot start without it), and no entry when it could not be read."""
    listed = set(targets)
    out = []
    for item in consumed:
        if item.kind == "ConfigMap" and item.name in listed:
            continue
        if (item.kind, item.name) not in metadata:
            out.append(f"{item.describe()}, not inspected: no permission to read its metadata")
            continue
        obj = metadata[(item.kind, item.name)]
        if obj is None:
            out.append(f"{item.describe()}, missing")
            continue
        changed = last_changed(obj)
        changed_at = parse_time(changed)
        if changed_at is not None and changed_at >= since:
            out.append(f"{item.describe()}, changed {changed}")
    return out


def image_drift(pods: Iterable[Manifest]) -> list[str]:
    """Images whose tag runs as more than one digest across the pods: it was re-pushed under
    the same tag, and pods started since run other bytes than the older ones."""
    digests: dict[str, set[str]] = {}
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            image, image_id = status.get("image"), status.get("imageID")
            if image and image_id and "@" not in image:
                digests.setdefault(image, set()).add(image_id.rpartition("@")[2] or image_id)
    return [
        f"image {image} (its tag runs as {len(ids)} digests: re-pushed)"
        for image, ids in sorted(digests.items())
        if len(ids) > 1
    ]


def fingerprint(objects: Iterable[Manifest]) -> str:
    """A digest of what the pods run and read: pod templates, ConfigMap data (not metadata or
    status, which controllers rewrite), so only an edit changes it."""
    parts = []
    for obj in objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        if kind == "ConfigMap":
            content: Any = [obj.get("data") or {}, obj.get("binaryData") or {}]
        else:
            content = (obj.get("spec") or {}).get("template") or {}
        parts.append([kind, name, content])
    text = json.dumps(sorted(parts, key=lambda p: (p[0], p[1])), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
