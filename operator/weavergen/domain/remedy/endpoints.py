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


def selects(service: Mapping[str, Any], template_labels: Mapping[str, str]) -> bool:
    """Whether the Service routes to pods with these labels (a Service without a selector
    routes to what someone else lists, and is not the workload's)."""
    selector = (service.get("spec") or {}).get("selector") or {}
    return bool(selector) and all(template_labels.get(k) == v for k, v in selector.items())


def stale_endpoints(
    slices: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]]
) -> list[str]:
    """The ready endpoints among ``slices`` whose pod is terminating or gone (``pods``: those
    the Service selects, as they are now), each as ``slice/pod``."""
    running = {
        p["metadata"]["name"]
        for p in pods
        if not (p.get("metadata") or {}).get("deletionTimestamp")
    }
    stale = []
    for endpoint_slice in slices:
        for endpoint in endpoint_slice.get("endpoints") or []:
            ref = endpoint.get("targetRef") or {}
            # An unset ready condition means ready (the EndpointSlice API's rule).
            ready = (endpoint.get("conditions") or {}).get("ready") is not False
            if ready and ref.get("kind") == "Pod" and ref.get("name") not in running:
                stale.append(f"{endpoint_slice['metadata']['name']}/{ref.get('name')}")
    return sorted(stale)
