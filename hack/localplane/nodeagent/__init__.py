"""A node agent for the local control plane: it registers a Ready Node and runs pods as processes.

Test harness only, never shipped: it stands in for a kubelet where no container runtime exists.
Pods are bound to the node by the agent itself (there is no scheduler). Each container's command
runs as a local process from the project's own environment (the image name is ignored; images
without a command run the entrypoint mapped by ``--image-entrypoint``), with the pod's env and a
kubeconfig holding a TokenRequest token of the pod's service account, so RBAC applies to the
process as it would in a cluster. Status goes back through ``pods/status``; deleted pods have their
process group killed and are then removed with grace 0.

Not supported, by design: volumes, ports, liveness probes and exec probes. Readiness probes
(httpGet, tcpSocket) are run against 127.0.0.1, so a rollout waits for a new pod to serve before
the old one is stopped; without one, a running process counts as ready.

``python -m hack.localplane.nodeagent`` runs it (``__main__``). The modules, by concern:
``agent`` (the main loop: pod events in, each pod stepped), ``registration`` (the Node and its
heartbeat), ``podwatch`` (pod events from the API server), ``binding`` (binding pods here and
deleting them for good), ``pods`` (what the agent keeps of a pod), ``environment`` (each
container's env and the pod's kubeconfig), ``processes`` (starting, reaping and killing a
container's process), ``lifecycle`` (restart policy, init containers first, the pod's phase),
``readiness`` (readiness probes) and ``status`` (the pod status written back).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

LOG = logging.getLogger("nodeagent")


def now() -> str:
    """The current time as Kubernetes writes it in statuses (UTC, whole seconds)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
