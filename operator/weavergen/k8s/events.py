"""Kubernetes Events about the operator's objects, for people running kubectl describe."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from weavergen.k8s.rest import Rest


def post_event(
    rest: Rest, involved: dict[str, Any], reason: str, message: str, warning: bool = False
) -> None:
    """An Event about ``involved`` (apiVersion, kind, name, namespace, uid)."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    namespace = involved["namespace"]
    rest.create(
        "Event",
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{involved['name']}.", "namespace": namespace},
            "involvedObject": involved,
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": "weavergen-operator"},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        },
    )


def involved(obj: dict[str, Any]) -> dict[str, Any]:
    """The involvedObject reference of a stored object."""
    meta = obj["metadata"]
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": meta["name"],
        "namespace": meta["namespace"],
        "uid": meta.get("uid"),
    }
