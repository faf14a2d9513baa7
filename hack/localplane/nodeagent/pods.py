"""What the agent keeps of each pod bound to this node: its containers and their processes."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hack.localplane.nodeagent import now


@dataclass
class Container:
    """One container of a pod and the process that runs it."""

    name: str
    spec: dict[str, Any]
    init: bool = False
    process: subprocess.Popen[bytes] | None = None
    started_at: str | None = None
    restarts: int = 0
    restart_after: float = 0.0
    terminated: dict[str, Any] | None = None
    last_terminated: dict[str, Any] | None = None
    waiting: str | None = "ContainerCreating"
    ready: bool = False
    probed_at: float = 0.0


@dataclass
class PodRunner:
    """The processes of one pod bound to this node."""

    uid: str
    namespace: str
    name: str
    pod: dict[str, Any]
    directory: Path
    init_containers: list[Container]
    containers: list[Container]
    env: dict[str, dict[str, str]] = field(default_factory=dict)
    started_at: str = field(default_factory=now)
    started_monotonic: float = field(default_factory=time.monotonic)
    phase: str = "Pending"
    reason: str | None = None
    message: str | None = None
    last_status: str = ""

    @property
    def restart_policy(self) -> str:
        """The pod's restartPolicy, Always when unset as in Kubernetes."""
        policy: str = self.pod["spec"].get("restartPolicy", "Always")
        return policy

    def all_containers(self) -> list[Container]:
        """Init containers first, then the others: the order they run in."""
        return [*self.init_containers, *self.containers]
