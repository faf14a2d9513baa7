"""Commands against a cluster: `regeneration implement|auto`, `phase run`, `operator run`."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from weavergen.api.charter import RegenerationCharter
from weavergen.api.profiles import resolve_spec
from weavergen.cli.common import (
    fail,
    load_charter,
    load_json_or_yaml,
)
from weavergen.phases.operators import Operators
from weavergen.telemetry import tracing


def peering_priority(value: str) -> int:
    """An integer, or ``auto``: a stable priority from the host name (distinct per pod)."""
    if value == "auto":
        digest = hashlib.sha256(socket.gethostname().encode()).hexdigest()
        return int(digest[:8], 16) % 1_000_000 + 1
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is neither an integer nor auto") from None


def _charter_gateway(args: argparse.Namespace) -> tuple[RegenerationCharter, Any]:
    from weavergen.k8s.client import api_client  # noqa: PLC0415 - only these need a cluster
    from weavergen.k8s.cluster_target import ClusterTarget  # noqa: PLC0415
    from weavergen.k8s.rest import Rest  # noqa: PLC0415

    charter = load_charter(args.charter)
    namespace = args.namespace or charter.metadata.namespace or "default"
    target = ClusterTarget(
        Rest(api_client(args.kubeconfig)),
        namespace,
        charter.metadata.name,
        charter.spec,
        receiver_url=args.receiver,
        charter_uid=charter.metadata.uid,
    )
    return charter, target


def _progress(task: str) -> None:
    print(f"  done: {task}", file=sys.stderr, flush=True)


def cmd_implement(args: argparse.Namespace) -> int:
    from weavergen.workflows.runs import run_strategy  # noqa: PLC0415 - not for a phase Job

    solution = load_json_or_yaml(args.solution, "solution file")
    if not isinstance(solution, dict) or "workflow" not in solution:
        fail(f"solution file {args.solution}: expected the JSON of `regeneration develop`")
    if args.dry_run:
        for step in solution["plan"]:
            for change in step["changes"]:
                print(f"# {step['action']}\n{change['diff']}")
        print(f"dry run: {solution['strategy']} would make the changes above; nothing changed")
        return 0
    charter, target = _charter_gateway(args)
    criteria = resolve_spec(charter.spec).success_criteria
    settings = target.settings
    operators = Operators(target, criteria, settings.objectives, settings.min_spans)
    print(f"implementing {solution['strategy']} on {target.namespace}", file=sys.stderr)
    run = run_strategy(
        solution["strategy"],
        operators.registry(),
        {"entropy_before": solution["entropy_before"], **solution["parameters"]},
        _progress,
    )
    outcome = run.data.get("outcome")
    print(
        json.dumps(
            {
                "outcome": outcome,
                "verdict": run.data.get("verdict"),
                "failure": run.data.get("failure"),
                "calls": operators.calls,
            },
            indent=2,
        )
    )
    return 0 if outcome in ("succeeded", "escalated") else 1


def cmd_auto(args: argparse.Namespace) -> int:
    from weavergen.api.cycle import RegenerationCycleSpec  # noqa: PLC0415
    from weavergen.phases.cycle import CyclePhases  # noqa: PLC0415
    from weavergen.workflows.runs import start_cycle_workflow  # noqa: PLC0415

    charter, target = _charter_gateway(args)
    cycle = RegenerationCycleSpec.model_validate(
        {
            "charterRef": {"name": charter.metadata.name},
            "reason": "weavergen regeneration auto",
            "dryRun": args.dry_run,
        }
    )
    phases = CyclePhases(target, charter.spec, cycle, target.context())
    run = start_cycle_workflow(phases.registry())
    print(f"DMEDI cycle for {target.namespace}/{charter.metadata.name}", file=sys.stderr)
    run.run(_progress)
    data = run.data
    before, after = data.get("measurement_before") or {}, data.get("measurement_after") or {}
    print(
        json.dumps(
            {
                "outcome": data.get("outcome"),
                "strategy": (data.get("chosen") or {}).get("strategy"),
                "entropy_before": before.get("entropy_score"),
                "entropy_after": after.get("entropy_score"),
                "implementation": data.get("implementation"),
            },
            indent=2,
        )
    )
    return 0 if data.get("outcome") in ("succeeded", "escalated", "not_needed") else 1


def cmd_phase_run(args: argparse.Namespace) -> int:
    marks = {"started": process_started(), "main": time.time()}
    from weavergen.domain.errors import RegenerationError  # noqa: PLC0415
    from weavergen.k8s.client import RIDE_OUT_RESTARTS, api_client  # noqa: PLC0415 - only Jobs
    from weavergen.k8s.jobs import await_turn, run_phase  # noqa: PLC0415
    from weavergen.k8s.rest import Rest  # noqa: PLC0415

    namespace, sep, cycle = args.cycle.partition("/")
    if not sep or not namespace or not cycle:
        fail(f"--cycle {args.cycle!r}: expected NAMESPACE/NAME")
    # The pod's log is where people look for what a phase did and why it took its time.
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("spiff").setLevel(logging.WARNING)  # a line per task state change
    tracing.configure("weavergen-phase")
    marks["imported"] = time.time()
    rest = Rest(api_client(retries=RIDE_OUT_RESTARTS))
    if args.wait_turn:
        if not await_turn(rest, namespace, cycle, args.phase):
            print(f"phase {args.phase} of {args.cycle} not run: the cycle went another way")
            return 0
        marks["turn"] = time.time()
    try:
        result = run_phase(rest, namespace, cycle, args.phase)
    except (RegenerationError, ValueError) as err:
        print(f"phase {args.phase} of {args.cycle} failed: {err}", file=sys.stderr)
        return 1
    finally:
        marks["ran"] = time.time()
        tracing.flush()
        marks["flushed"] = time.time()
        # Where a phase Job's seconds go, for benchmarks/phase_jobs.py: epoch seconds.
        print(f"phase timings: {json.dumps(marks)}", file=sys.stderr)
    print(f"phase {args.phase} of {args.cycle} done: {', '.join(sorted(result))}")
    return 0


def process_started() -> float | None:
    """When this process started, in epoch seconds (Linux), to 10 ms: the interpreter's start
    is part of a phase Job's time too."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))


def cmd_operator_run(args: argparse.Namespace) -> int:
    # The flags go into the environment before the handlers are imported: importing them reads
    # the operator's configuration (weavergen.config), once. kopf's own login reads KUBECONFIG.
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig
    os.environ.setdefault("WEAVERGEN_RECEIVER_PORT", str(args.receiver_port))
    os.environ.setdefault("WEAVERGEN_RECEIVER_HOST", args.receiver_host)
    if args.receiver_grpc_port is not None:
        os.environ.setdefault("WEAVERGEN_RECEIVER_GRPC_PORT", str(args.receiver_grpc_port))
    os.environ["WEAVERGEN_NAMESPACES"] = ",".join(args.namespace)

    import kopf  # noqa: PLC0415 - only the operator needs kopf at start-up

    import weavergen.handlers  # noqa: F401, PLC0415 - registers the handlers

    log_format = kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.FULL
    kopf.configure(log_format=log_format, verbose=args.verbose)
    kopf.run(
        priority=args.priority,
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        # Active/standby needs kopf's peering CRDs (config/crd/kopf-peering.yaml); without a
        # peering name the operator runs alone rather than waiting for them.
        standalone=args.standalone or not args.peering,
        peering_name=None if args.standalone else args.peering,
        liveness_endpoint=args.liveness,
    )
    return 0


def cluster_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--charter", required=True, metavar="FILE", help="the charter (YAML)")
    command.add_argument("--namespace", "-n", help="namespace (default: the charter's)")
    command.add_argument("--kubeconfig", help="kubeconfig (default: $KUBECONFIG)")
    command.add_argument(
        "--receiver", metavar="URL", help="operator OTLP receiver, for telemetry.source otlp"
    )


def add_implement(regen_cmds: Any) -> None:
    implement = regen_cmds.add_parser(
        "implement",
        help="carry out a developed solution on the cluster, inline, with rollback",
        description=(
            "Run the solution's strategy workflow against the current kubeconfig: snapshot, "
            "actions, rollout, settle, re-measure, judge; roll back when it does not hold."
        ),
    )
    implement.add_argument(
        "--solution", required=True, metavar="FILE", help="JSON of `regeneration develop`"
    )
    implement.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    cluster_arguments(implement)
    implement.set_defaults(func=cmd_implement)


def add_auto(regen_cmds: Any) -> None:
    auto = regen_cmds.add_parser(
        "auto",
        help="run one whole DMEDI cycle for a charter, inline, printing progress",
        description="Define, Measure, Explore, Develop, Implement once, without the operator.",
    )
    auto.add_argument("--dry-run", action="store_true", help="plan only, change nothing")
    cluster_arguments(auto)
    auto.set_defaults(func=cmd_auto)


def add_operator(groups: Any) -> None:
    operator = groups.add_parser("operator", help="run the operator")
    commands = operator.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="run the kopf operator (charters, cycles, OTLP receiver)",
        description=(
            "Reconcile RegenerationCharters and RegenerationCycles with kopf, and receive spans "
            "over OTLP/HTTP (and OTLP/gRPC). Uses --kubeconfig, $KUBECONFIG or ~/.kube/config, "
            "else the in-cluster service account."
        ),
    )
    run.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        help="watch this namespace (repeatable); default: all namespaces",
    )
    run.add_argument("--kubeconfig", help="kubeconfig file")
    run.add_argument(
        "--standalone",
        action="store_true",
        help="no peering, even with --peering (the default without it)",
    )
    run.add_argument(
        "--peering",
        metavar="NAME",
        help="active/standby with the other instances of this peering name "
        "(needs config/crd/kopf-peering.yaml)",
    )
    run.add_argument(
        "--priority",
        type=peering_priority,
        default=0,
        help="with --peering: the highest priority instance is active, others wait; 'auto' "
        "derives a stable one from the host (pod) name, so replicas never tie (tied instances "
        "would all pause)",
    )
    run.add_argument(
        "--liveness",
        default=None,
        metavar="URL",
        help="serve liveness/readiness, e.g. http://0.0.0.0:8080/healthz",
    )
    run.add_argument("--receiver-port", type=int, default=4318, help="OTLP/HTTP port")
    run.add_argument("--receiver-host", default="127.0.0.1", help="OTLP/HTTP bind address")
    run.add_argument(
        "--receiver-grpc-port",
        type=int,
        default=None,
        help="OTLP/gRPC port on the same address (0: any free port); default: no gRPC",
    )
    run.add_argument("--log-format", choices=("json", "text"), default="json")
    run.add_argument("--verbose", action="store_true", help="debug logging")
    run.set_defaults(func=cmd_operator_run)
