"""Whether a Service still sends requests to pods that are going away (pure).

A rollout is complete once its controller has replaced the pods, but the pods it replaced still
answer until the endpoints drop them: the EndpointSlice controller marks a terminating pod's
endpoint not ready, and each node's proxy then stops routing new connections to it. Requests
served by those pods are no evidence of the change that replaced them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def selects(service: Mapping[str, Any], pod_labels: Mapping[str, str]) -> bool:
    """Whether the Service's proxies route to a pod with these labels: not a Service without
    a selector (it routes to what someone else lists), nor a headless one (no proxy: clients
    resolve the pods' addresses themselves)."""
    spec = service.get("spec") or {}
    selector = spec.get("selector") or {}
    if not selector or spec.get("clusterIP") == "None":
        return False
    return all(pod_labels.get(k) == v for k, v in selector.items())


def stale_endpoints(
    slices: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]]
) -> list[str]:
    """The ready endpoints among ``slices`` whose pod is terminating or gone (``pods``: those
    the Service selects, as they are now), each as ``slice/pod``."""
    running = [p["metadata"] for p in pods if not p["metadata"].get("deletionTimestamp")]
    names, uids = {m["name"] for m in running}, {m.get("uid") for m in running}
    stale = []
    for endpoint_slice in slices:
        for endpoint in endpoint_slice.get("endpoints") or []:
            ref = endpoint.get("targetRef") or {}
            # An unset ready condition means ready (the EndpointSlice API's rule). A Service
            # that publishes not-ready addresses keeps a terminating pod ready: its proxies
            # still route there, so that pod is waited for until it is gone.
            ready = (endpoint.get("conditions") or {}).get("ready") is not False
            # By uid where the endpoint says it: a StatefulSet's pod comes back by its name.
            gone = ref.get("uid") not in uids if ref.get("uid") else ref.get("name") not in names
            if ready and ref.get("kind") == "Pod" and gone:
                stale.append(f"{endpoint_slice['metadata']['name']}/{ref.get('name')}")
    return sorted(stale)
