"""A pod's object on the API server: bound to this node (there is no scheduler), and deleted for
good once its processes are gone, as a kubelet does."""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from hack.localplane.node import NODE_NAME
from hack.localplane.nodeagent import LOG


def bind(core: client.CoreV1Api, pod: dict[str, Any]) -> None:
    """Bind the pod to this node; a pod gone or already bound meanwhile is left alone."""
    meta = pod["metadata"]
    body = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        "target": {"apiVersion": "v1", "kind": "Node", "name": NODE_NAME},
    }
    try:
        core.create_namespaced_binding(meta["namespace"], body, _preload_content=False)
        LOG.info("bound pod=%s/%s", meta["namespace"], meta["name"])
    except ApiException as err:
        if err.status not in (404, 409):
            raise


def finish_deletion(core: client.CoreV1Api, meta: dict[str, Any]) -> None:
    """Remove a terminating pod with grace 0, only the one with this uid (not a successor)."""
    try:
        core.delete_namespaced_pod(
            meta["name"],
            meta["namespace"],
            body={"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}},
        )
        LOG.info("deleted pod=%s/%s", meta["namespace"], meta["name"])
    except ApiException as err:
        if err.status not in (404, 409):
            raise
