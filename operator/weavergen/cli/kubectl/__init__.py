"""`kubectl weavergen`: charters and cycles from the terminal, as a kubectl plugin.

kubectl runs an executable named ``kubectl-weavergen`` on the PATH for ``kubectl weavergen``,
passing the remaining arguments unchanged, so the plugin parses kubectl's own connection flags
(``--kubeconfig``, ``--context``, ``-n``, ``-A``) itself, before or after the command.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TypeAlias

from weavergen import __version__
from weavergen.cli.common import UsageError
from weavergen.cli.kubectl.actions import ACTIONS
from weavergen.cli.kubectl.commands import (
    KIND_NAMES,
    Refused,
    cmd_action,
    cmd_get,
    cmd_report,
    cmd_watch,
    cmd_why,
)

CONNECTION_DEFAULTS = {"kubeconfig": None, "context": None, "namespace": None}


def connection_flags() -> argparse.ArgumentParser:
    """kubectl's flags, accepted before and after the command (SUPPRESS: a flag given before
    the command is not reset by the command's own default)."""
    flags = argparse.ArgumentParser(add_help=False)
    flags.add_argument(
        "--kubeconfig", default=argparse.SUPPRESS, help="kubeconfig file (default: $KUBECONFIG)"
    )
    flags.add_argument(
        "--context", default=argparse.SUPPRESS, help="kubeconfig context (default: current)"
    )
    flags.add_argument(
        "-n",
        "--namespace",
        default=argparse.SUPPRESS,
        help="namespace (default: the context's, else default)",
    )
    return flags


Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_get(commands: Commands, flags: argparse.ArgumentParser) -> None:
    get = commands.add_parser(
        "get",
        parents=[flags],
        help="list charters and cycles: level, entropy, last outcome, breaker",
        description="List charters (rch) and cycles (rcy); both unless KIND says which.",
    )
    get.add_argument("kind", nargs="?", choices=sorted(KIND_NAMES), metavar="KIND")
    get.add_argument("name", nargs="?", metavar="NAME", help="only the object of this name")
    get.add_argument("--charter", metavar="NAME", help="only the cycles of this charter")
    get.add_argument(
        "-A", "--all-namespaces", action="store_true", help="list across all namespaces"
    )
    get.add_argument("-o", "--output", choices=("json", "yaml", "wide"), help="output format")
    get.set_defaults(func=cmd_get)


def add_watch(commands: Commands, flags: argparse.ArgumentParser) -> None:
    watch = commands.add_parser(
        "watch",
        parents=[flags],
        help="live view of a charter's measurements or a cycle's phases",
        description=(
            "Show a fresh screen at every change of the object (a Kubernetes watch, no "
            "polling) until Ctrl-C. TARGET is a cycle or charter name, or rcy/NAME, rch/NAME."
        ),
    )
    watch.add_argument("target", metavar="CHARTER|CYCLE")
    watch.add_argument(
        "--until-done",
        action="store_true",
        help="stop when the cycle ends: exit 0 Succeeded or NotNeeded, 1 otherwise",
    )
    watch.set_defaults(func=cmd_watch)


def add_cycle_commands(commands: Commands, flags: argparse.ArgumentParser) -> None:
    why = commands.add_parser(
        "why",
        parents=[flags],
        help="the ranked options, the chosen plan with its diffs, the rollback",
        description="Why a cycle chose what it did, from its status and phase results.",
    )
    why.add_argument("cycle", metavar="CYCLE")
    why.set_defaults(func=cmd_why)
    helps = {
        "approve": "carry out the plan of a cycle AwaitingApproval",
        "reject": "do not carry out the plan of a cycle AwaitingApproval",
        "abort": "stop a running cycle (its snapshot is restored if it changed anything)",
        "retry": "start a new cycle for a Failed, RolledBack or Aborted one",
    }
    for verb, action in ACTIONS.items():
        command = commands.add_parser(
            verb,
            parents=[flags],
            help=helps[verb],
            description=f"{helps[verb][0].upper()}{helps[verb][1:]}: sets {action.annotation} "
            "and requested-by (your kubeconfig user) on the cycle.",
        )
        command.add_argument("cycle", metavar="CYCLE")
        if action.takes_reason:
            command.add_argument("--reason", help="why, recorded on the cycle")
        command.set_defaults(func=cmd_action)
    report = commands.add_parser(
        "report",
        parents=[flags],
        help="a charter's HTML report (control charts, cycles, decisions)",
        description="The report of `weavergen regeneration report`, read with your kubeconfig.",
    )
    report.add_argument("charter", metavar="CHARTER")
    report.add_argument("--out", default="-", metavar="FILE", help="output (default: stdout)")
    report.set_defaults(func=cmd_report)


def build_parser() -> argparse.ArgumentParser:
    flags = connection_flags()
    parser = argparse.ArgumentParser(
        prog="kubectl weavergen",
        parents=[flags],
        description="WeaverGen regeneration charters and cycles, with your kubeconfig and RBAC.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_get(commands, flags)
    add_watch(commands, flags)
    add_cycle_commands(commands, flags)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    for name, default in CONNECTION_DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, default)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        code: int = args.func(args)
    except (UsageError, Refused) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code
