"""Snapshots of target objects: normalised manifests, their SHA-256, and integrity checks.

A manifest is normalised by dropping what the API server owns (status, resourceVersion, uid,
managedFields, timestamps, generation) so that re-applying it restores the object and hashing it
says whether live equals snapshot. Secrets are never snapshotted by value: only a hash of their
data is kept, so a snapshot can say a Secret changed without ever holding its contents.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from weavergen.api.keys import NUDGED_ANNOTATION

Manifest = dict[str, Any]
SERVER_OWNED_METADATA = (
    "resourceVersion",
    "uid",
    "managedFields",
    "creationTimestamp",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
)
# Written by controllers, or by the operator only to requeue a workload (no edit of it).
SERVER_OWNED_ANNOTATIONS = (
    "deployment.kubernetes.io/revision",
    "rollout.argoproj.io/revision",
    NUDGED_ANNOTATION,
)


class SnapshotIntegrityError(ValueError):
    """A snapshot whose content no longer matches its recorded hash: refused for restore."""


class TargetEdited(RuntimeError):
    """Someone else changed or deleted a target object during the cycle: it is not overwritten."""


def normalise(obj: Mapping[str, Any]) -> Manifest:
    """The manifest without server-owned fields; Secret data replaced by its hash."""
    out = copy.deepcopy(dict(obj))
    out.pop("status", None)
    meta = out.setdefault("metadata", {})
    for field in SERVER_OWNED_METADATA:
        meta.pop(field, None)
    annotations = meta.get("annotations") or {}
    for name in SERVER_OWNED_ANNOTATIONS:
        annotations.pop(name, None)
    if not annotations:
        meta.pop("annotations", None)
    if out.get("kind") == "Secret":
        data = json.dumps(out.pop("data", {}) or {}, sort_keys=True).encode()
        out.pop("stringData", None)
        out["dataSha256"] = hashlib.sha256(data).hexdigest()
    return out


def canonical(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def fingerprints(objects: Mapping[str, Manifest]) -> dict[str, str]:
    """SHA-256 of each normalised object, by key: what an object looked like at some moment."""
    return {k: hashlib.sha256(canonical(normalise(v))).hexdigest() for k, v in objects.items()}


Writes = dict[str, list[str]]  # fingerprints a cycle wrote or was about to write, by key


def with_writes(recorded: Mapping[str, list[str]], prints: Mapping[str, str]) -> Writes:
    """The recorded writes and ``prints`` together, each fingerprint once per key."""
    merged = {key: list(values) for key, values in recorded.items()}
    for key, print_ in prints.items():
        if print_ not in merged.setdefault(key, []):
            merged[key].append(print_)
    return merged


def edits_by_others(
    expected: Mapping[str, str], live: Mapping[str, Manifest], ours: Mapping[str, list[str]]
) -> list[str]:
    """Keys whose live object is neither as ``expected`` nor in a state the operator itself
    wrote (``ours``), or that were deleted: someone else's edits, each as a short sentence."""
    now = fingerprints({k: v for k, v in live.items() if k in expected})
    found = []
    for key, print_ in sorted(expected.items()):
        if key not in now:
            found.append(f"{key} was deleted")
        elif now[key] != print_ and now[key] not in ours.get(key, []):
            found.append(f"{key} was changed")
    return found


def digest(objects: Mapping[str, Manifest]) -> str:
    """SHA-256 over the normalised manifests in key order."""
    h = hashlib.sha256()
    for key in sorted(objects):
        h.update(key.encode() + b"\0" + canonical(normalise(objects[key])) + b"\0")
    return h.hexdigest()


@dataclass(frozen=True)
class Snapshot:
    """Normalised manifests by key, and the hash they had when taken."""

    objects: dict[str, Manifest]
    sha256: str

    @classmethod
    def take(cls, objects: Mapping[str, Manifest]) -> Snapshot:
        normalised = {k: normalise(v) for k, v in objects.items()}
        return cls(normalised, digest(normalised))

    def verify(self) -> None:
        actual = digest(self.objects)
        if actual != self.sha256:
            raise SnapshotIntegrityError(
                f"snapshot content hashes to {actual[:12]}, recorded {self.sha256[:12]}: "
                "it was changed after it was taken and is refused for restore"
            )

    def matches(self, live: Mapping[str, Manifest]) -> bool:
        """Whether live objects equal the snapshot (after normalisation)."""
        return digest({k: live[k] for k in self.objects if k in live}) == self.sha256 and set(
            self.objects
        ) <= set(live)
