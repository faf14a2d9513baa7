"""``python -m hack.localplane.nodeagent``: the node agent's command line, as the plane's
``_start_node_agent`` runs it; SIGTERM or SIGINT stops it, its pods' processes killed."""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path

from hack.localplane import nodeagent
from hack.localplane.nodeagent.agent import NodeAgent


def parse_entrypoints(values: list[str]) -> dict[str, list[str]]:
    """``--image-entrypoint IMAGE_GLOB=COMMAND`` values as a mapping of glob to argv."""
    mapping = {}
    for value in values:
        pattern, sep, command = value.partition("=")
        if not sep or not command:
            raise SystemExit(f"--image-entrypoint {value!r}: expected IMAGE_GLOB=COMMAND")
        mapping[pattern] = command.split()
    return mapping


def main() -> None:
    """Parse the command line, then run the agent until it is signalled to stop."""
    parser = argparse.ArgumentParser(
        prog="python -m hack.localplane.nodeagent",
        description=(nodeagent.__doc__ or "").splitlines()[0],
    )
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument(
        "--image-entrypoint",
        action="append",
        default=["*weavergen*=weavergen"],
        metavar="IMAGE_GLOB=COMMAND",
        help="what to run for containers without a command, by image",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    args.state.mkdir(parents=True, exist_ok=True)
    agent = NodeAgent(args.kubeconfig, args.state, parse_entrypoints(args.image_entrypoint))
    signal.signal(signal.SIGTERM, lambda *_: agent.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: agent.stopping.set())
    agent.run()


if __name__ == "__main__":
    main()
