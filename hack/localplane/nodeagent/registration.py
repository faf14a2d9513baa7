"""The agent's Node: registered Ready at start, its status renewed by a heartbeat."""

from __future__ import annotations

import contextlib
import os
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from hack.localplane.node import NODE_NAME
from hack.localplane.nodeagent import LOG, now


def register_node(core: client.CoreV1Api) -> None:
    """Create the Node (kept if it exists), untainted and Ready, so pods may be bound to it."""
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": NODE_NAME,
            "labels": {
                "kubernetes.io/hostname": NODE_NAME,
                "kubernetes.io/os": "linux",
                "node.weavergen.io/local": "true",
            },
        },
        "spec": {},
    }
    with contextlib.suppress(ApiException):
        core.create_node(node)
    # The NodeTaint admission plugin adds a not-ready taint to new Nodes; this node is ready.
    core.patch_node(NODE_NAME, {"spec": {"taints": None}})
    heartbeat(core)
    LOG.info("registered node name=%s", NODE_NAME)


def heartbeat(core: client.CoreV1Api) -> None:
    """Renew the Node's status, so the node lifecycle controller keeps it Ready."""
    core.patch_node_status(NODE_NAME, {"status": node_status(now())})


def node_status(stamp: str) -> dict[str, Any]:
    """A Ready node on 127.0.0.1 with room for every pod a test starts."""
    return {
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "NodeAgentReady",
                "message": "weavergen local node agent is running pods as processes",
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": stamp,
            }
        ],
        "addresses": [
            {"type": "InternalIP", "address": "127.0.0.1"},
            {"type": "Hostname", "address": NODE_NAME},
        ],
        "capacity": {"cpu": "16", "memory": "64Gi", "pods": "250"},
        "allocatable": {"cpu": "16", "memory": "64Gi", "pods": "250"},
        "nodeInfo": {
            "architecture": "amd64",
            "operatingSystem": "linux",
            "kubeletVersion": "weavergen-node-agent",
            "kubeProxyVersion": "",
            "containerRuntimeVersion": "process://local",
            "osImage": "local processes",
            "kernelVersion": os.uname().release,
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
        },
    }
