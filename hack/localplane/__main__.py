"""``python -m hack.localplane up|down|destroy|status`` — the plane behind make cluster-up/down.

``watch --owner PID`` is the watchdog ``Plane.up(owner_pid=...)`` starts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hack.localplane.plane import Binaries, Plane, PlaneError, default_state


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.localplane")
    parser.add_argument("command", choices=("build", "up", "down", "destroy", "status", "watch"))
    parser.add_argument("--state", type=Path, default=default_state(), help="state directory")
    parser.add_argument(
        "--node",
        choices=("kubelet", "agent"),
        default="kubelet",
        help="a real kubelet and containerd (default), or the node agent (pods as processes)",
    )
    parser.add_argument("--owner", type=int, help="watch: stop the plane when this pid exits")
    args = parser.parse_args()
    if args.command == "watch" and args.owner is None:
        parser.error("watch needs --owner")
    if args.command == "build":
        Binaries.from_cache().ensure_built()
        return 0
    plane = Plane(args.state)
    if args.command == "up":
        try:
            plane.up(node_kind=args.node)
            plane.install_crds()
        except PlaneError as err:
            print(f"cluster-up failed: {err}", file=sys.stderr)
            print("what did start keeps running: `make cluster-down` stops it", file=sys.stderr)
            return 1
        print(plane.kubectl("get", "nodes", "-o", "wide").stdout, end="")
        print(f"logs: {plane.logs}")
        print(f"kubectl and helm: {plane.binaries.kubectl.parent} {plane.binaries.helm.parent}")
        print(f"export KUBECONFIG={plane.kubeconfig}")
    elif args.command == "down":
        plane.down()
        print(f"stopped the plane in {plane.state}")
    elif args.command == "watch":
        plane.watch(args.owner)
    elif args.command == "destroy":
        plane.destroy()
        print(f"removed {plane.state}")
    else:
        for name, pid in plane.running().items():
            print(f"{name:24} {f'running (pid {pid})' if pid else 'stopped'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
