"""A real local Kubernetes control plane for the tests and the demo (not part of the operator).

etcd, kube-apiserver and kube-controller-manager built from their Go modules
(``hack/build-control-plane.sh``), and a node: a real one (containerd, runc, the CNI bridge, a
kubelet and kube-proxy, ``node.py``) running the images ``hack/build-images.sh`` builds, or the
node agent, which runs pods as local processes (``nodeagent/``, the tests' fast path).
``python -m hack.localplane up|down|status`` drives it; ``make cluster-up`` calls that.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def versions() -> dict[str, str]:
    """The pinned versions from hack/versions.env."""
    pins = {}
    for line in (REPO / "hack" / "versions.env").read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            pins[key.strip()] = value.strip()
    return pins


def log(message: str, who: str = "plane") -> None:
    print(f"[{who} {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def read_text(path: Path) -> str:
    """The file's text, empty when it cannot be read (gone, or never written)."""
    try:
        return path.read_text()
    except OSError:
        return ""
