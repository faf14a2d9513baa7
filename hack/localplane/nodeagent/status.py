"""The pod status the agent writes back through ``pods/status``: phase, conditions and each
container's state, written only when it changed."""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from hack.localplane.nodeagent import LOG, now
from hack.localplane.nodeagent.pods import Container, PodRunner


def report_status(core: client.CoreV1Api, runner: PodRunner) -> bool:
    """Write the pod's status if it changed since last written; False when the pod is gone from
    the API server. A failed write is retried at the next report."""
    status = pod_status(runner)
    fingerprint = json.dumps(status, sort_keys=True)
    if fingerprint == runner.last_status:
        return True
    stamp = now()
    for item in status["conditions"]:
        item["lastTransitionTime"] = stamp
    try:
        core.patch_namespaced_pod_status(
            runner.name, runner.namespace, {"status": status}, _preload_content=False
        )
        runner.last_status = fingerprint
    except ApiException as err:
        if err.status == 404:
            return False
        LOG.warning("status update failed pod=%s/%s: %s", runner.namespace, runner.name,
                    err.reason)  # fmt: skip
    return True


def pod_status(runner: PodRunner) -> dict[str, Any]:
    """The pod's status as it is now, on 127.0.0.1 (pods share the host's network here)."""
    ready = runner.phase == "Running" and all(c.ready for c in runner.containers)
    initialized = all((c.terminated or {}).get("exitCode") == 0 for c in runner.init_containers)
    return {
        "phase": runner.phase,
        "hostIP": "127.0.0.1",
        "hostIPs": [{"ip": "127.0.0.1"}],
        "podIP": "127.0.0.1",
        "podIPs": [{"ip": "127.0.0.1"}],
        "startTime": runner.started_at,
        "reason": runner.reason,
        "message": runner.message,
        "conditions": [
            condition("PodScheduled", True),
            condition("Initialized", initialized),
            condition("ContainersReady", ready),
            condition("Ready", ready),
        ],
        "initContainerStatuses": [container_status(c) for c in runner.init_containers],
        "containerStatuses": [container_status(c) for c in runner.containers],
    }


def condition(kind: str, value: bool) -> dict[str, Any]:
    """A pod condition; its lastTransitionTime is set when the status is written."""
    return {"type": kind, "status": "True" if value else "False", "lastProbeTime": None}


def container_status(container: Container) -> dict[str, Any]:
    """One container's status: running, terminated or waiting, and how it last terminated."""
    state: dict[str, Any]
    if container.process is not None:
        state = {"running": {"startedAt": container.started_at}}
    elif container.terminated is not None:
        state = {"terminated": container.terminated}
    else:
        state = {"waiting": {"reason": container.waiting or "ContainerCreating"}}
    return {
        "name": container.name,
        "image": container.spec.get("image", ""),
        "imageID": "",
        "containerID": f"process://{container.process.pid}" if container.process else "",
        "ready": container.ready,
        "started": container.process is not None,
        "restartCount": container.restarts,
        "state": state,
        "lastState": {"terminated": container.last_terminated} if container.last_terminated else {},
    }
