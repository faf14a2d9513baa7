"""The `weavergen` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from weavergen import __version__
from weavergen.api.charter import PHASES
from weavergen.cli.cluster import add_auto, add_implement, add_operator, cmd_phase_run
from weavergen.cli.common import UsageError
from weavergen.cli.crds import cmd_crds_generate, rendered_crds
from weavergen.cli.demo import add_demo
from weavergen.cli.observe import add_gate, add_report, add_validate
from weavergen.cli.regeneration import (
    add_define,
    add_develop,
    add_explore,
    add_measure,
    add_simulate,
)
from weavergen.config import ConfigError

__all__ = ["main", "rendered_crds"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="weavergen",
        description="WeaverGen Regeneration Operator: DMEDI regeneration cycles for Kubernetes.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")

    crds = groups.add_parser("crds", help="the CustomResourceDefinitions")
    crds_cmds = crds.add_subparsers(dest="command", required=True, metavar="COMMAND")
    generate = crds_cmds.add_parser(
        "generate",
        help="generate the CRDs from the models",
        description="Print the CRDs as YAML, or write them to each --out directory.",
    )
    generate.add_argument(
        "--out", action="append", default=[], metavar="DIR", help="write the CRD files here"
    )
    generate.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a file in --out is stale"
    )
    generate.set_defaults(func=cmd_crds_generate)

    regen = groups.add_parser("regeneration", help="DMEDI regeneration commands")
    regen_cmds = regen.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (
        add_define,
        add_measure,
        add_explore,
        add_develop,
        add_simulate,
        add_implement,
        add_auto,
        add_validate,
        add_report,
    ):
        add(regen_cmds)
    add_operator(groups)
    add_gate(groups)
    add_demo(groups)
    phase = groups.add_parser("phase", help="run one DMEDI phase of a cycle (in a Job)")
    phase_cmds = phase.add_subparsers(dest="command", required=True, metavar="COMMAND")
    phase_run = phase_cmds.add_parser(
        "run",
        help="run one phase and write its result ConfigMap",
        description="What a phase Job runs: one phase of a cycle, its result into <cycle>-<phase>.",
    )
    phase_run.add_argument("--phase", required=True, choices=PHASES)
    phase_run.add_argument("--cycle", required=True, metavar="NAMESPACE/NAME")
    phase_run.add_argument(
        "--wait-turn",
        action="store_true",
        help="started ahead: wait until the operator gives the phase its turn (see k8s/jobs)",
    )
    phase_run.set_defaults(func=cmd_phase_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except (UsageError, ConfigError) as err:
        print(f"weavergen: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # A reader such as `head` closed the pipe: not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code
