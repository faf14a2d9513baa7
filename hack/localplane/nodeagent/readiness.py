"""Readiness probes (httpGet, tcpSocket) against 127.0.0.1, so a rollout waits for a new pod to
serve before the old one is stopped; a container without one is ready while it runs."""

from __future__ import annotations

import contextlib
import os
import socket
import time
import urllib.request
from typing import Any

from hack.localplane.nodeagent.pods import Container


def probe_readiness(container: Container) -> None:
    """Run the container's readiness probe (httpGet or tcpSocket) at most twice a second."""
    if container.process is None:
        container.ready = False
        return
    spec = container.spec.get("readinessProbe") or {}
    target = spec.get("httpGet") or spec.get("tcpSocket")
    if not target:
        container.ready = True
        return
    if time.monotonic() - container.probed_at < 0.5:
        return
    container.probed_at = time.monotonic()
    port = probe_port(container, target)
    if not listens(container.process.pid, int(port or 0)):
        # Pods share the host's network here: another pod's process (an old replica, with
        # SO_REUSEPORT) may answer on the same port, so this one must itself be listening.
        container.ready = False
        return
    container.ready = answers(spec, target, port)


def probe_port(container: Container, target: dict[str, Any]) -> Any:
    """The probe's port: a number, or the containerPort of the port it names (None if none)."""
    port = target.get("port")
    if isinstance(port, str) and not port.isdigit():
        named = {p.get("name"): p.get("containerPort") for p in container.spec.get("ports", [])}
        port = named.get(port)
    return port


def answers(spec: dict[str, Any], target: dict[str, Any], port: Any) -> bool:
    """Whether the probe passes: httpGet answered 2xx or 3xx, or tcpSocket connected."""
    try:
        if "httpGet" in spec:
            url = f"http://127.0.0.1:{port}{target.get('path', '/')}"
            with urllib.request.urlopen(url, timeout=0.5) as answer:
                return 200 <= answer.status < 400
        else:
            with socket.create_connection(("127.0.0.1", int(port)), timeout=0.5):
                return True
    except (OSError, ValueError, TypeError):
        return False


def listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds a listening TCP socket on ``port`` (from /proc)."""
    inodes = set()
    try:
        descriptors = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in descriptors:
        with contextlib.suppress(OSError):  # a descriptor may close while we look
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as sockets:
            for line in list(sockets)[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port and inode in inodes:
                    return True
    return False
