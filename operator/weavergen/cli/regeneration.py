"""`weavergen regeneration define|measure|explore|develop|simulate`: the phases offline."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from weavergen.api.charter import Stakeholder, SystemType
from weavergen.api.common import format_validation_error
from weavergen.api.profiles import resolve_spec
from weavergen.cli.common import (
    dump,
    fail,
    load_charter,
    load_json_or_yaml,
    otlp_payloads,
    read_bytes,
    write_output,
)
from weavergen.config import operator_config
from weavergen.domain.decide.explore import TargetContext, explore
from weavergen.domain.decide.reconcile import strategy_records
from weavergen.domain.define import InvalidName, InvalidTarget, define_charter, parse_target
from weavergen.domain.measure.measure import (
    MeasureSettings,
    measure,
    pick_service,
    render_text,
    summarise,
)
from weavergen.domain.measure.otlp import OtlpError
from weavergen.domain.measure.semconv import Registry, RegistryError
from weavergen.domain.measure.thresholds import ThresholdCalculator
from weavergen.domain.remedy.actions import key_of
from weavergen.domain.remedy.develop import develop
from weavergen.phases.operators import validation_registry
from weavergen.telemetry import tracing

_STAKEHOLDERS = TypeAdapter(list[Stakeholder])


def load_stakeholders(path: str) -> list[Stakeholder]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        fail(f"cannot read stakeholder file {path}: {err.strerror}")
    except UnicodeDecodeError:
        fail(f"cannot read stakeholder file {path}: not UTF-8 text")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(err, "problem", None)
        fail(f"stakeholder file {path}: invalid YAML{where}" + (f": {problem}" if problem else ""))
    if not isinstance(data, list):
        fail(f"stakeholder file {path}: expected a YAML list of {{name, role, requirements}}")
    try:
        return _STAKEHOLDERS.validate_python(data)
    except ValidationError as err:
        fail(f"stakeholder file {path}: {format_validation_error(err)}")


def cmd_define(args: argparse.Namespace) -> int:
    if args.system_type not in {t.value for t in SystemType}:
        known = ", ".join(t.value for t in SystemType)
        fail(f"unknown system type {args.system_type!r} (known: {known})")
    try:
        targets = [parse_target(t) for t in args.target]
    except InvalidTarget as err:
        fail(str(err))
    stakeholders = load_stakeholders(args.stakeholders) if args.stakeholders else []
    try:
        charter = define_charter(
            args.system_id,
            args.system_type,
            namespace=args.namespace,
            targets=targets,
            stakeholders=stakeholders,
        )
    except InvalidName as err:
        fail(str(err))
    document = charter.model_dump(by_alias=True, exclude_none=True, mode="json")
    write_output(dump(document, args.output), args.output_file)
    return 0


def cmd_measure(args: argparse.Namespace) -> int:
    settings = (
        MeasureSettings.from_charter(load_charter(args.charter).spec)
        if args.charter
        else MeasureSettings()
    )
    registry = Registry.builtin()
    if args.registry:
        text = read_bytes(args.registry, "registry file").decode(errors="replace")
        try:
            registry = registry.extended(Registry.from_weaver_yaml(text, args.registry))
        except RegistryError as err:
            fail(str(err))
    service = args.service or settings.service
    try:
        current = pick_service(
            summarise(otlp_payloads(args.spans, "spans file")), service, args.spans
        )
        baseline = pick_service(
            summarise(otlp_payloads(args.baseline, "baseline file")),
            current.service,
            args.baseline,
        )
    except (OtlpError, ValueError) as err:
        fail(str(err))
    ratio = settings.sampling_ratio if args.sampling_ratio is None else args.sampling_ratio
    if not 0 < ratio <= 1:
        fail(f"--sampling-ratio must be above 0 and at most 1, not {ratio}")
    thresholds = settings.thresholds
    if settings.compute_thresholds:
        calculator = ThresholdCalculator(thresholds, settings.complexity)
        assumed = baseline.assuming(ratio)
        thresholds = calculator.compute(assumed, registry, settings.objectives).thresholds
    result = measure(
        current,
        baseline,
        registry=registry,
        objectives=settings.objectives,
        thresholds=thresholds,
        min_spans=settings.min_spans if args.min_spans is None else args.min_spans,
        sampling_ratio=ratio,
    )
    if args.output == "json":
        sys.stdout.write(json.dumps(result.as_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(render_text(result))
    return 0


def cmd_explore(args: argparse.Namespace) -> int:
    measurement = load_json_or_yaml(args.measurement, "measurement file")
    if not isinstance(measurement, dict) or "entropy_level" not in measurement:
        fail(f"measurement file {args.measurement}: expected the JSON of `regeneration measure`")
    if measurement.get("status") == "insufficient_data":
        fail(f"measurement file {args.measurement}: insufficient data, nothing to explore")
    context = TargetContext(
        recent_rollout=args.recent_rollout,
        config_changed=args.config_changed,
        restarts=args.restarts,
        workloads=args.workloads,
        replicas=args.replicas,
    )
    objective, allow, deny, history = 300.0, [], [], []
    if args.charter:
        charter = load_charter(args.charter)
        spec = resolve_spec(charter.spec)
        objective = float(spec.success_criteria.max_recovery_seconds)
        allow, deny = spec.strategies.allow, spec.strategies.deny
        history = strategy_records(
            charter.status.model_dump(mode="json", by_alias=True) if charter.status else {}
        )
    result = explore(
        measurement,
        context,
        recovery_objective_seconds=objective,
        history=history,
        allow=allow,
        deny=deny,
    )
    if args.output == "json":
        sys.stdout.write(json.dumps(result.as_dict(), indent=2) + "\n")
        return 0
    print(f"signature: {result.signature}")
    likely = sorted(result.causes.items(), key=lambda kv: -kv[1])[:3]
    print("likely causes: " + ", ".join(f"{c} {p:.2f}" for c, p in likely))
    for option in result.options:
        print(
            f"{option.rank:>2}. {option.strategy:<22} score {option.score:.3f}  "
            f"success {option.success_probability:.2f}  ~{option.recovery_time_seconds:.0f}s  "
            f"risk {option.risk:.2f}"
        )
        for reason in option.reasons:
            print(f"      - {reason}")
    return 0


def manifests_by_key(path: str | None, what: str) -> dict[str, Any]:
    if path is None:
        return {}
    documents = load_json_or_yaml(path, what)
    items = documents.get("items", [documents]) if isinstance(documents, dict) else documents
    if not isinstance(items, list) or not all(isinstance(o, dict) and "kind" in o for o in items):
        fail(f"{what} {path}: expected Kubernetes objects (a list, or a List with items)")
    return {key_of(o): o for o in items}


def cmd_develop(args: argparse.Namespace) -> int:
    # The workflow engine and the simulator load here, not with the command line: a phase
    # Job's pod runs the same command line and needs neither.
    from weavergen.workflows.engine import load_process, validate  # noqa: PLC0415

    exploration = load_json_or_yaml(args.options, "options file")
    options = exploration.get("options") if isinstance(exploration, dict) else None
    if not options:
        fail(f"options file {args.options}: expected the JSON of `regeneration explore`")
    chosen = (
        next((o for o in options if o["strategy"] == args.strategy), None)
        if args.strategy
        else options[0]
    )
    if chosen is None:
        fail(f"--strategy {args.strategy!r} is not among the ranked options")
    solution = develop(
        chosen,
        entropy_before=args.entropy_before,
        objects=manifests_by_key(args.objects, "objects file"),
        golden=manifests_by_key(args.golden, "golden file"),
        now=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    spec, _ = load_process(operator_config().bpmn_dir / solution.workflow, solution.process_id)
    problems = validate(spec, validation_registry())
    document = {**solution.as_dict(), "workflow_valid": not problems, "workflow_problems": problems}
    if args.output == "json":
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        print(
            f"strategy {solution.strategy}: workflow {solution.workflow} "
            f"({'valid' if not problems else 'INVALID: ' + '; '.join(problems)})"
        )
        print(
            f"predicted entropy {solution.predicted_entropy:.3f} "
            f"(from {solution.entropy_before:.3f}, success {solution.success_probability:.2f})"
        )
        for step in solution.steps:
            print(f"- {step.action}")
            for change in step.changes:
                print("    " + change["diff"].replace("\n", "\n    "))
    return 0 if not problems else 1


def cmd_simulate(args: argparse.Namespace) -> int:
    from weavergen.phases.simulate import (  # noqa: PLC0415 - see cmd_develop
        ScenarioResult,
        SimulationEngine,
        incident_summary,
    )

    engine = SimulationEngine(seed=args.seed, failure_share=args.failure_share)

    def progress(done: int, result: ScenarioResult) -> None:
        if not args.quiet:
            print(
                f"[{done}/{args.scenarios}] cause={result.cause or 'none'} "
                f"level={result.level_measured} strategy={result.strategy or '-'} "
                f"outcome={result.outcome}",
                file=sys.stderr,
            )

    if args.spans_out:
        spans_out = Path(args.spans_out)
        try:
            spans_out.write_bytes(b"")
        except OSError as err:
            fail(f"cannot write spans file {spans_out}: {err.strerror}")
        tracing.shutdown()  # this command's spans go to the file, whatever was set up before
        tracing.configure("weavergen-simulator", tracing.OtlpJsonFileExporter(spans_out))
    try:
        summary = engine.run(args.scenarios, progress).summary()
        if args.incidents:
            summary["incidents"] = incident_summary(engine.incidents(args.incidents))
    finally:
        if args.spans_out:
            tracing.flush()
            tracing.shutdown()
    if args.spans_out:
        print(f"spans of {args.scenarios} simulated cycles: {args.spans_out}", file=sys.stderr)
    if args.output == "json":
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    else:
        for key, value in summary.items():
            if key not in ("per_cause", "incidents"):
                print(f"{key:<40} {value}")
        for cause, outcomes in summary["per_cause"].items():
            print(f"  {cause:<32} " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
        for key, value in (summary.get("incidents") or {}).items():
            print(f"incidents: {key:<29} {value}")
    return 0


def add_define(regen_cmds: Any) -> None:
    define = regen_cmds.add_parser(
        "define",
        help="print a RegenerationCharter for a system",
        description=(
            "Print a complete RegenerationCharter manifest, ready for `kubectl apply -f -`: the "
            "system type's thresholds, success criteria, cadence and phase deadlines written out, "
            "stakeholder requirements merged in (they only tighten it)."
        ),
    )
    define.add_argument("--system-id", required=True, metavar="ID", help="system id (DNS label)")
    define.add_argument(
        "--system-type",
        required=True,
        metavar="TYPE",
        help="one of: " + ", ".join(t.value for t in SystemType),
    )
    define.add_argument("--namespace", "-n", metavar="NS", help="namespace of the charter")
    define.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="KIND/NAME",
        help="Deployment, StatefulSet, ConfigMap or Secret to cover (repeatable); "
        "default: Deployment/<system id>",
    )
    define.add_argument(
        "--stakeholders", metavar="FILE", help="YAML list of {name, role, requirements}"
    )
    define.add_argument("--output", choices=("yaml", "json"), default="yaml", help="format")
    define.add_argument("-o", dest="output_file", metavar="FILE", help="write to FILE")
    define.set_defaults(func=cmd_define)


def add_measure(regen_cmds: Any) -> None:
    measure_cmd = regen_cmds.add_parser(
        "measure",
        help="measure entropy of spans against a baseline",
        description=(
            "Measure the entropy of a window of OpenTelemetry spans against a healthy baseline: "
            "health against the objectives, drift indicators with their evidence, and "
            "semantic-convention findings new since the baseline. Files are OTLP/JSON (one "
            "document or one per line) or OTLP/protobuf (an ExportTraceServiceRequest)."
        ),
    )
    measure_cmd.add_argument("--spans", required=True, metavar="FILE", help="current window")
    measure_cmd.add_argument("--baseline", required=True, metavar="FILE", help="healthy window")
    measure_cmd.add_argument(
        "--registry", metavar="FILE", help="Weaver registry YAML extending the built-in one"
    )
    measure_cmd.add_argument(
        "--charter", metavar="FILE", help="charter whose objectives and thresholds apply"
    )
    measure_cmd.add_argument("--service", metavar="NAME", help="service.name to measure")
    measure_cmd.add_argument(
        "--min-spans", type=int, metavar="N", help="fewer spans: insufficient_data (default 100)"
    )
    measure_cmd.add_argument(
        "--sampling-ratio",
        type=float,
        metavar="R",
        help="share of traces kept upstream, for spans without a tracestate th (default 1)",
    )
    measure_cmd.add_argument("--output", choices=("json", "text"), default="json", help="format")
    measure_cmd.set_defaults(func=cmd_measure)


def add_explore(regen_cmds: Any) -> None:
    explore_cmd = regen_cmds.add_parser(
        "explore",
        help="rank remediation strategies for a measurement",
        description="Rank the strategies fit for a measurement, each with its reasons.",
    )
    explore_cmd.add_argument(
        "--measurement", required=True, metavar="FILE", help="JSON of `regeneration measure`"
    )
    explore_cmd.add_argument("--charter", metavar="FILE", help="charter: objectives, allow/deny")
    explore_cmd.add_argument("--recent-rollout", action="store_true", help="a rollout just ran")
    explore_cmd.add_argument("--config-changed", action="store_true", help="a ConfigMap changed")
    explore_cmd.add_argument("--restarts", action="store_true", help="pods are restarting")
    explore_cmd.add_argument("--workloads", type=int, default=1, help="workloads in the target")
    explore_cmd.add_argument("--replicas", type=int, default=2, help="replicas per workload")
    explore_cmd.add_argument("--output", choices=("json", "text"), default="json", help="format")
    explore_cmd.set_defaults(func=cmd_explore)


def add_develop(regen_cmds: Any) -> None:
    develop_cmd = regen_cmds.add_parser(
        "develop",
        help="build the solution for the top option: workflow, plan, prediction",
        description="Pick an option, validate its BPMN workflow and print a dry-run plan.",
    )
    develop_cmd.add_argument(
        "--options", required=True, metavar="FILE", help="JSON of `regeneration explore`"
    )
    develop_cmd.add_argument("--strategy", help="use this option instead of the top one")
    develop_cmd.add_argument("--objects", metavar="FILE", help="current target objects (YAML)")
    develop_cmd.add_argument("--golden", metavar="FILE", help="known-good objects (YAML)")
    develop_cmd.add_argument(
        "--entropy-before",
        type=float,
        default=0.6,
        metavar="SCORE",
        help="entropy now, for the prediction",
    )
    develop_cmd.add_argument("--output", choices=("json", "text"), default="json", help="format")
    develop_cmd.set_defaults(func=cmd_develop)


def add_simulate(regen_cmds: Any) -> None:
    simulate_cmd = regen_cmds.add_parser(
        "simulate",
        help="run simulated regeneration scenarios on digital twins",
        description=(
            "Run the real measure, explore, develop and implement path against digital twins "
            "with known causes, and print success rate, health improvement, detection "
            "accuracy, Brier score and per-cause outcomes."
        ),
    )
    simulate_cmd.add_argument("--scenarios", type=int, default=100, metavar="N")
    simulate_cmd.add_argument("--seed", type=int, default=0, metavar="S")
    simulate_cmd.add_argument(
        "--failure-share",
        type=float,
        default=0.05,
        help="share of scenarios with a failure injected mid-workflow",
    )
    simulate_cmd.add_argument("--quiet", action="store_true", help="no per-scenario progress")
    simulate_cmd.add_argument(
        "--incidents",
        type=int,
        default=0,
        metavar="N",
        help="also play N four-minute incidents (the causes in turn) through the charter's "
        "decisions: mutating cycles per unfixable incident, escalations per unchanged one",
    )
    simulate_cmd.add_argument(
        "--spans-out",
        metavar="FILE",
        help="write each scenario's DMEDI cycle spans to FILE as OTLP/JSON lines, as the "
        "operator records them (check them with `regeneration validate --spans FILE`)",
    )
    simulate_cmd.add_argument("--output", choices=("json", "text"), default="text", help="format")
    simulate_cmd.set_defaults(func=cmd_simulate)
