"""Snapshots stored in immutable ConfigMaps, chunked under the 1 MiB object limit.

A snapshot is written once and never overwritten: writing the same snapshot again is a no-op,
writing different content under the same name is refused. Reading it back checks that every
chunk is there and that the content still hashes to the recorded SHA-256.
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes.client.exceptions import ApiException

from weavergen.api.keys import CHUNKS_ANNOTATION, INDEX_ANNOTATION, SHA_ANNOTATION, SNAPSHOT_LABEL
from weavergen.domain.names import child_name, label_value
from weavergen.domain.remedy.snapshot import Snapshot, SnapshotIntegrityError
from weavergen.k8s.rest import Rest

CHUNK_BYTES = 900 * 1024
DATA_KEY = "objects.json"


class SnapshotConflict(RuntimeError):
    """A snapshot of that name already exists with other content: it is never overwritten."""


def chunk_name(name: str, index: int) -> str:
    return name if index == 0 else child_name(name, str(index))


def store(
    rest: Rest,
    namespace: str,
    name: str,
    snapshot: Snapshot,
    owner: dict[str, Any] | None = None,
) -> int:
    """Write the snapshot as ``name``, ``name-1``, ...; returns the number of chunks.

    The first chunk is written last: it is the commit. A process that dies before it leaves no
    snapshot (readers look for ``name``), and writing the same snapshot again completes it.
    """
    payload = json.dumps(snapshot.objects, sort_keys=True, separators=(",", ":"))
    parts = [payload[i : i + CHUNK_BYTES] for i in range(0, len(payload), CHUNK_BYTES)] or [""]
    for index, part in reversed(list(enumerate(parts))):
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "immutable": True,
            "metadata": {
                "name": chunk_name(name, index),
                "namespace": namespace,
                "labels": {SNAPSHOT_LABEL: label_value(name)},
                "annotations": {
                    SHA_ANNOTATION: snapshot.sha256,
                    INDEX_ANNOTATION: str(index),
                    CHUNKS_ANNOTATION: str(len(parts)),
                },
                **({"ownerReferences": [owner]} if owner else {}),
            },
            "data": {DATA_KEY: part},
        }
        try:
            rest.create("ConfigMap", namespace, body)
        except ApiException as err:
            if err.status != 409:
                raise
            existing = rest.get("ConfigMap", namespace, chunk_name(name, index)) or {}
            recorded = (existing.get("metadata", {}).get("annotations") or {}).get(SHA_ANNOTATION)
            if recorded != snapshot.sha256:
                raise SnapshotConflict(
                    f"snapshot {namespace}/{name} exists with sha256 {str(recorded)[:12]}; "
                    "snapshots are never overwritten"
                ) from None
    return len(parts)


def _annotations(obj: dict[str, Any]) -> dict[str, str]:
    annotations: dict[str, str] = obj["metadata"].get("annotations") or {}
    return annotations


def load(rest: Rest, namespace: str, name: str) -> Snapshot:
    """Read a snapshot back, whole or not at all; ``SnapshotIntegrityError`` if tampered."""
    first = rest.get("ConfigMap", namespace, name)
    if first is None:
        raise SnapshotIntegrityError(f"snapshot {namespace}/{name} does not exist")
    chunks = int(_annotations(first).get(CHUNKS_ANNOTATION, "1"))
    sha = _annotations(first).get(SHA_ANNOTATION, "")
    parts = []
    for index in range(chunks):
        chunk = first if index == 0 else rest.get("ConfigMap", namespace, chunk_name(name, index))
        if chunk is None:
            raise SnapshotIntegrityError(
                f"snapshot {namespace}/{name} is missing chunk {index} of {chunks}"
            )
        if _annotations(chunk).get(SHA_ANNOTATION) != sha:
            raise SnapshotIntegrityError(
                f"chunk {index} of {namespace}/{name} belongs to another snapshot"
            )
        parts.append((chunk.get("data") or {}).get(DATA_KEY, ""))
    try:
        objects = json.loads("".join(parts))
    except ValueError:
        raise SnapshotIntegrityError(f"snapshot {namespace}/{name} is not valid JSON") from None
    snapshot = Snapshot(objects, sha)
    snapshot.verify()
    return snapshot
