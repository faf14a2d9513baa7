"""Commands that look at what the operator did: `regeneration validate|report` and `gate`."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from weavergen.cli.common import fail, load_json_or_yaml, write_output
from weavergen.domain.decide.gate import GateAnswer
from weavergen.domain.measure.cycle_validation import render_text, validate_spans
from weavergen.domain.measure.spans import load_records
from weavergen.reports.html import render_report, split_objects

# -- regeneration validate ----------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    records = []
    for path in args.spans:
        try:
            records.extend(load_records(Path(path)))
        except OSError as err:
            fail(f"cannot read spans file {path}: {err.strerror}")
        except ValueError as err:
            fail(str(err))
    try:
        report = validate_spans(
            records,
            trace_id=args.cycle,
            min_improvement=args.min_improvement,
            min_success_rate=args.min_success_rate,
            min_health_improvement=args.min_health_improvement,
            min_accuracy=args.min_accuracy,
        )
    except ValueError as err:
        fail(str(err))
    if not report.cycles:
        fail(f"no DMEDI cycle spans (dmedi_*) in {', '.join(args.spans)}")
    if args.output == "json":
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(render_text(report))
    return 0 if report.passed else 1


def add_validate(regen_cmds: Any) -> None:
    validate = regen_cmds.add_parser(
        "validate",
        help="validate cycles from their exported spans (phases, entropy and health gains)",
        description=(
            "Read OTLP spans (JSON, JSON lines, or protobuf) exported by the operator and its "
            "phase Jobs. A cycle passes when all five dmedi_* phases completed and entropy fell "
            "by more than --min-improvement (relative). Given many cycles it also checks the "
            "regeneration success rate and the average health improvement over the cycles that "
            "regenerated (NotNeeded and Escalated cycles changed nothing on purpose) and, for "
            "cycles with ground truth (`regeneration simulate --spans-out`), the "
            "entropy-detection accuracy. Exit 0 pass, 1 fail."
        ),
    )
    validate.add_argument(
        "--spans", required=True, action="append", metavar="FILE", help="OTLP spans file"
    )
    validate.add_argument("--cycle", metavar="TRACE_ID", help="validate this cycle's trace only")
    validate.add_argument("--min-improvement", type=float, default=0.2, metavar="FRACTION")
    validate.add_argument("--min-success-rate", type=float, default=0.8, metavar="FRACTION")
    validate.add_argument("--min-health-improvement", type=float, default=0.3, metavar="SCORE")
    validate.add_argument("--min-accuracy", type=float, default=0.95, metavar="FRACTION")
    validate.add_argument("--output", choices=("json", "text"), default="text")
    validate.set_defaults(func=cmd_validate)


# -- regeneration report ------------------------------------------------------------------------


def split_reference(value: str, flag: str) -> tuple[str, str]:
    namespace, sep, name = value.partition("/")
    if not sep or not namespace or not name:
        fail(f"{flag} {value!r}: expected NAMESPACE/NAME")
    return namespace, name


class Reader(Protocol):
    """What reads objects from a cluster: ``Rest``, or the kubectl plugin's client."""

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None: ...

    def list(self, kind: str, namespace: str) -> list[dict[str, Any]]: ...


def charter_objects(reader: Reader, namespace: str, name: str) -> tuple[dict[str, Any], list[Any]]:
    """The charter and its cycles, read from the cluster."""
    charter = reader.get("RegenerationCharter", namespace, name)
    if charter is None:
        fail(f"no RegenerationCharter {namespace}/{name}")
    cycles = reader.list("RegenerationCycle", namespace)
    return split_objects({"kind": "List", "items": [charter, *cycles]})


def cluster_objects(reference: str, kubeconfig: str | None) -> tuple[dict[str, Any], list[Any]]:
    """The charter of ``--charter NAMESPACE/NAME`` and its cycles."""
    from weavergen.k8s.client import api_client  # noqa: PLC0415 - only --charter needs a cluster
    from weavergen.k8s.rest import Rest  # noqa: PLC0415

    namespace, name = split_reference(reference, "--charter")
    return charter_objects(Rest(api_client(kubeconfig)), namespace, name)


def write_report(charter: dict[str, Any], cycles: list[Any], out: str | None) -> None:
    """The HTML report to ``out`` (or stdout), saying where it went."""
    page = render_report(charter, cycles, generated_at=datetime.now(UTC).replace(tzinfo=None))
    write_output(page, out)
    if out not in (None, "-"):
        print(f"wrote {out} ({len(cycles)} cycles)", file=sys.stderr)


def cmd_report(args: argparse.Namespace) -> int:
    if args.source:
        document = load_json_or_yaml(args.source, "objects file")
        if not isinstance(document, dict):
            fail(f"objects file {args.source}: expected `kubectl get rch,rcy -o json` output")
        try:
            charter, cycles = split_objects(document)
        except ValueError as err:
            fail(f"objects file {args.source}: {err}")
    else:
        charter, cycles = cluster_objects(args.charter, args.kubeconfig)
    write_report(charter, cycles, args.out)
    return 0


def add_report(regen_cmds: Any) -> None:
    report = regen_cmds.add_parser(
        "report",
        help="write a self-contained HTML report: control charts, cycles, decisions",
        description=(
            "Render one charter's control charts, forecast, cycles, phase timings and the "
            "decisions with their reasons as one HTML page (inline SVG, no scripts)."
        ),
    )
    source = report.add_mutually_exclusive_group(required=True)
    source.add_argument("--charter", metavar="NAMESPACE/NAME", help="read from the cluster")
    source.add_argument(
        "--from",
        dest="source",
        metavar="FILE",
        help="read `kubectl get rch,rcy -o json` output saved to FILE",
    )
    report.add_argument("--kubeconfig", help="kubeconfig (default: $KUBECONFIG)")
    report.add_argument("-o", "--out", default="-", metavar="FILE", help="output (default: -)")
    report.set_defaults(func=cmd_report)


# -- gate ---------------------------------------------------------------------------------------

DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``5m``, ``1h``, ``500ms`` -> seconds."""
    found = DURATION.match(text.strip())
    if not found:
        fail(f"--wait {text!r}: expected a duration such as 90s, 5m or 1h")
    return float(found.group(1)) * UNIT_SECONDS[found.group(2) or "s"]


class HttpGate:
    """The operator's gate endpoint."""

    def __init__(self, url: str, token: str | None, timeout: float) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _call(self, method: str, path: str) -> GateAnswer:
        request = urllib.request.Request(f"{self.url}{path}", method=method)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as err:
            body = err.read()
            if err.code != 423:
                fail(f"gate {self.url}{path}: HTTP {err.code}: {_message(body)}")
        except (urllib.error.URLError, TimeoutError) as err:
            fail(f"gate {self.url}{path}: unreachable: {getattr(err, 'reason', err)}")
        return GateAnswer.from_dict(json.loads(body))

    def answer(self, namespace: str, name: str) -> GateAnswer:
        return self._call("GET", f"/gate/{namespace}/{name}")

    def request_cycle(self, namespace: str, name: str) -> GateAnswer:
        return self._call("POST", f"/gate/{namespace}/{name}/cycle")


class ClusterGate:
    """The same answer computed from the charter's status with the caller's own kubeconfig."""

    def __init__(self, kubeconfig: str | None) -> None:
        from weavergen.k8s.client import api_client  # noqa: PLC0415
        from weavergen.k8s.gate import Gate  # noqa: PLC0415
        from weavergen.k8s.rest import Rest  # noqa: PLC0415

        self.gate = Gate(Rest(api_client(kubeconfig)), ttl=0)

    def answer(self, namespace: str, name: str) -> GateAnswer:
        from weavergen.domain.errors import CharterNotFound  # noqa: PLC0415

        try:
            return self.gate.answer(namespace, name)
        except CharterNotFound as err:
            fail(str(err))

    def request_cycle(self, namespace: str, name: str) -> GateAnswer:
        return self.gate.request_cycle(namespace, name, datetime.now(UTC).replace(tzinfo=None))


def _message(body: bytes) -> str:
    try:
        return str(json.loads(body).get("message", body[:200]))
    except (ValueError, AttributeError):
        return body[:200].decode(errors="replace")


def cmd_gate(args: argparse.Namespace) -> int:
    namespace, name = split_reference(args.charter, "--charter")
    wait = parse_duration(args.wait) if args.wait else 0.0
    url = args.url or os.environ.get("WEAVERGEN_GATE_URL")
    token = args.token or os.environ.get("WEAVERGEN_GATE_TOKEN")
    gate: HttpGate | ClusterGate = (
        HttpGate(url, token, args.timeout) if url else ClusterGate(args.kubeconfig)
    )
    deadline = time.monotonic() + wait
    answer = gate.answer(namespace, name)
    if args.trigger and answer.decision == "blocked":
        answer = gate.request_cycle(namespace, name)
        _show(answer, args.output)
    while not answer.allowed and time.monotonic() + args.interval <= deadline:
        print(f"waiting: {answer.decision}: {answer.reason}", file=sys.stderr, flush=True)
        time.sleep(args.interval)
        answer = gate.answer(namespace, name)
    _show(answer, args.output)
    return 0 if answer.allowed else 1


def _show(answer: GateAnswer, output: str) -> None:
    if output == "json":
        print(json.dumps(answer.to_dict()), flush=True)
    else:
        print(f"{answer.charter}: {answer.decision}: {answer.reason}", flush=True)


def add_gate(groups: Any) -> None:
    gate = groups.add_parser(
        "gate",
        help="the entropy gate: may a pipeline deploy now? (exit 0 allowed, 1 not)",
        description=(
            "Ask the operator's entropy gate (--url, or $WEAVERGEN_GATE_URL, e.g. "
            "http://weavergen-operator.weavergen:4318) or, without a URL, compute the same "
            "answer from the charter's status with your kubeconfig. allowed: entropy below "
            "HIGH; blocked: HIGH or CRITICAL; regenerating: a cycle is running. The answer "
            "comes from the latest measurement, never from a new one. For CI/CD and Argo CD "
            "PreSync hooks. Exit 0 allowed, 1 blocked or regenerating (after --wait), 2 error."
        ),
    )
    gate.add_argument("--charter", required=True, metavar="NAMESPACE/NAME")
    gate.add_argument("--wait", metavar="DURATION", help="wait up to this long to be allowed")
    gate.add_argument(
        "--trigger", action="store_true", help="when blocked, ask the operator for a cycle"
    )
    gate.add_argument("--interval", type=float, default=2.0, help="seconds between polls")
    gate.add_argument("--url", help="the operator's gate base URL")
    gate.add_argument("--token", help="bearer token (default: $WEAVERGEN_GATE_TOKEN)")
    gate.add_argument("--timeout", type=float, default=5.0, help="HTTP timeout, seconds")
    gate.add_argument("--kubeconfig", help="kubeconfig, without --url")
    gate.add_argument("--output", choices=("json", "text"), default="text")
    gate.set_defaults(func=cmd_gate)
