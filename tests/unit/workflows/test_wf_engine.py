"""The engine: registry, validation, restricted expressions, failures, pending operators, state."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow

from tests.unit.workflows.fakes import CYCLE, Recorder, run, start, strategy_path
from weavergen.domain.remedy.vocabulary import VOCABULARY
from weavergen.workflows.engine import (
    InvalidWorkflow,
    RestrictedScriptEngine,
    UnsafeExpression,
    WorkflowFailed,
    WorkflowRun,
    compile_restricted,
    load_process,
    load_process_text,
    validate,
)
from weavergen.workflows.registry import ServiceRegistry, UnknownOperator

HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" '
    'targetNamespace="https://weavergen.io/test">\n'
    '<bpmn:error id="err" name="task failed"><bpmn:extensionElements>'
    "<spiffworkflow:variableName>failure</spiffworkflow:variableName>"
    "</bpmn:extensionElements></bpmn:error>\n"
)


def task_xml(task_id: str, operator: str, params: dict[str, tuple[str, str]], catch: bool) -> str:
    plist = "".join(
        f'<spiffworkflow:parameter id="{k}" type="{t}" value="{v}"/>'
        for k, (t, v) in params.items()
    )
    xml = (
        f'<bpmn:serviceTask id="{task_id}"><bpmn:extensionElements>'
        f'<spiffworkflow:serviceTaskOperator id="{operator}"><spiffworkflow:parameters>{plist}'
        "</spiffworkflow:parameters></spiffworkflow:serviceTaskOperator>"
        "</bpmn:extensionElements></bpmn:serviceTask>\n"
    )
    if catch:
        xml += (
            f'<bpmn:boundaryEvent id="{task_id}_failed" attachedToRef="{task_id}">'
            '<bpmn:errorEventDefinition errorRef="err"/></bpmn:boundaryEvent>\n'
            f'<bpmn:sequenceFlow id="f_{task_id}_failed" sourceRef="{task_id}_failed" '
            'targetRef="mark_failed"/>\n'
        )
    return xml


def linear(
    tasks: list[tuple[str, dict[str, tuple[str, str]]]],
    *,
    catch: bool = True,
    condition: str | None = None,
) -> str:
    """A process: start -> tasks -> [gateway on condition] -> ok | failed."""
    body = '<bpmn:startEvent id="start"/>\n'
    previous = "start"
    for i, (operator, params) in enumerate(tasks):
        task_id = f"t{i}"
        body += task_xml(task_id, operator, params, catch)
        body += f'<bpmn:sequenceFlow id="f{i}" sourceRef="{previous}" targetRef="{task_id}"/>\n'
        previous = task_id
    if condition is not None:
        body += (
            '<bpmn:exclusiveGateway id="gw" default="f_no"/>\n'
            f'<bpmn:sequenceFlow id="f_gw" sourceRef="{previous}" targetRef="gw"/>\n'
            '<bpmn:sequenceFlow id="f_yes" sourceRef="gw" targetRef="mark_ok">'
            f"<bpmn:conditionExpression>{condition}</bpmn:conditionExpression>"
            "</bpmn:sequenceFlow>\n"
            '<bpmn:sequenceFlow id="f_no" sourceRef="gw" targetRef="mark_failed"/>\n'
        )
    else:
        body += f'<bpmn:sequenceFlow id="f_end" sourceRef="{previous}" targetRef="mark_ok"/>\n'
    body += (
        '<bpmn:scriptTask id="mark_ok"><bpmn:script>outcome = "succeeded"</bpmn:script>'
        "</bpmn:scriptTask>\n"
        '<bpmn:sequenceFlow id="f_ok" sourceRef="mark_ok" targetRef="end_ok"/>\n'
        '<bpmn:endEvent id="end_ok"/>\n'
        '<bpmn:scriptTask id="mark_failed"><bpmn:script>outcome = "failed"</bpmn:script>'
        "</bpmn:scriptTask>\n"
        '<bpmn:sequenceFlow id="f_failed" sourceRef="mark_failed" targetRef="end_failed"/>\n'
        '<bpmn:endEvent id="end_failed"/>\n'
    )
    process = f'<bpmn:process id="p" isExecutable="true">\n{body}</bpmn:process>\n'
    return HEAD + process + "</bpmn:definitions>\n"


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------


def test_registry_names_get_and_vocabulary_parameters() -> None:
    registry = ServiceRegistry()

    def noop(params: dict[str, Any], data: dict[str, Any]) -> None:
        return None

    registry.register("settle", noop)
    registry.register("custom_probe", noop, {"depth": int})
    assert registry.names() == ["custom_probe", "settle"]
    assert dict(registry.get("settle").params) == {"seconds": int}
    assert dict(registry.get("custom_probe").params) == {"depth": int}
    with pytest.raises(UnknownOperator, match=r"'nope'.*custom_probe, settle"):
        registry.get("nope")
    with pytest.raises(TypeError, match="list"):
        registry.register("bad", noop, {"x": list})
    with pytest.raises(ValueError, match="identifier"):
        registry.register("not an id", noop)


# ---------------------------------------------------------------------------------------------
# Validation happens before anything runs
# ---------------------------------------------------------------------------------------------


def test_unknown_operator_fails_validation_before_any_task_runs() -> None:
    spec, subs = load_process_text(linear([("check_dependencies", {}), ("rm_rf_everything", {})]))
    recorder = Recorder()
    with pytest.raises(InvalidWorkflow, match="unknown operator 'rm_rf_everything'") as err:
        WorkflowRun.start(spec, subs, recorder.registry(), {})
    assert err.value.problems == ["p/t1: unknown operator 'rm_rf_everything'"]
    assert recorder.calls == []


def test_parameter_problems_are_listed() -> None:
    xml = linear(
        [
            ("settle", {}),  # missing seconds
            ("wait_rollout", {"timeout_seconds": ("int", "'soon'")}),  # not an int
            ("scale_workloads", {"replicas_delta": ("str", "1")}),  # declared type differs
            ("remeasure", {"extra": ("int", "1")}),  # takes no parameter
        ]
    )
    spec, subs = load_process_text(xml)
    problems = validate(spec, Recorder().registry(), subs)
    assert problems == [
        "p/t0: operator 'settle' needs parameter 'seconds'",
        "p/t1: parameter 'timeout_seconds' = 'soon' is not int",
        "p/t2: parameter 'replicas_delta' has type 'str', operator 'scale_workloads' takes int",
        "p/t3: operator 'remeasure' takes no parameter 'extra'",
    ]


def test_a_service_task_without_error_boundary_fails_validation() -> None:
    spec, subs = load_process_text(linear([("remeasure", {})], catch=False))
    assert validate(spec, Recorder().registry(), subs) == [
        "p/t0: no interrupting error boundary event catches a failure of 'remeasure'"
    ]


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.bpmn"
    broken.write_text("<bpmn:definitions")
    with pytest.raises(InvalidWorkflow, match=r"broken\.bpmn"):
        load_process(broken)
    with pytest.raises(InvalidWorkflow, match="nope"):
        load_process(CYCLE, "nope")


# ---------------------------------------------------------------------------------------------
# Restricted expressions
# ---------------------------------------------------------------------------------------------

ATTACKS = [
    "__import__('os').system('touch /tmp/pwned')",
    "().__class__.__bases__[0].__subclasses__()",
    "data.__class__",
    "getattr(data, 'get')",
    "open('/etc/passwd').read()",
    "[c for c in ()]",
    "(lambda: 1)()",
    "'{0.__class__}'.format(1)",
    "exec('1')",
    "eval('1')",
    "9 ** 9 ** 9",
    "x := 1",
    "__builtins__",
]


@pytest.mark.parametrize("source", ATTACKS)
def test_unsafe_expressions_are_rejected(source: str) -> None:
    with pytest.raises(UnsafeExpression):
        compile_restricted(source, "eval")


def a_task(engine: RestrictedScriptEngine, data: dict[str, Any]) -> Any:
    """A real task of a small workflow (Spiff's exceptions inspect it)."""
    spec, subs = load_process_text(linear([("remeasure", {})]))
    task = BpmnWorkflow(spec, subs, script_engine=engine).task_tree
    task.data = data
    return task


def test_safe_expressions_evaluate_against_the_data() -> None:
    engine = RestrictedScriptEngine()
    task = a_task(engine, {"criteria_met": True, "n": [1, 2, 3]})
    assert engine.evaluate(task, "criteria_met == True and len(n) == 3") is True
    assert engine.evaluate(task, "data.get('settle_seconds', 60)") == 60
    assert engine.evaluate(task, "max(n) + abs(-2) if 'x' not in data else 0") == 5
    engine.execute(task, "outcome = 'succeeded'")
    assert task.data["outcome"] == "succeeded"


def test_the_engine_never_runs_unsafe_code(tmp_path: Path) -> None:
    engine = RestrictedScriptEngine()
    target = tmp_path / "pwned"
    task = a_task(engine, {})
    with pytest.raises(WorkflowTaskException, match="not allowed"):
        engine.evaluate(task, f"__import__('pathlib').Path({str(target)!r}).touch()")
    with pytest.raises(WorkflowTaskException, match="not allowed"):
        engine.execute(task, f"import os; os.system('touch {target}')")
    assert not target.exists()


def test_a_gateway_condition_importing_os_fails_validation() -> None:
    spec, subs = load_process_text(linear([("remeasure", {})], condition="__import__('os')"))
    recorder = Recorder()
    with pytest.raises(InvalidWorkflow, match="calling '__import__' is not allowed"):
        WorkflowRun.start(spec, subs, recorder.registry(), {})
    assert recorder.calls == []


def test_an_unsafe_gateway_condition_stops_the_workflow_without_running_it(
    tmp_path: Path,
) -> None:
    """Even when validation is skipped, the engine refuses the condition at run time."""
    target = tmp_path / "pwned"
    condition = f"__import__('pathlib').Path({str(target)!r}).touch() is None"
    spec, subs = load_process_text(linear([("remeasure", {})], condition=condition))
    recorder = Recorder()
    registry = recorder.registry()
    workflow = WorkflowRun(
        BpmnWorkflow(spec, subs, script_engine=RestrictedScriptEngine(registry)), registry
    )
    with pytest.raises(WorkflowFailed, match="not allowed"):
        workflow.run()
    assert not target.exists()
    assert not workflow.completed
    assert list(workflow.errors) == ["gw"]


def test_an_unsafe_parameter_becomes_a_bpmn_error(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    value = f"__import__('pathlib').Path('{target}').touch()"
    spec, subs = load_process_text(linear([("escalate", {"reason": ("str", value)})]))
    recorder = Recorder()
    registry = recorder.registry()
    with pytest.raises(InvalidWorkflow, match="parameter reason"):
        WorkflowRun.start(spec, subs, registry, {})
    workflow = WorkflowRun(
        BpmnWorkflow(spec, subs, script_engine=RestrictedScriptEngine(registry)), registry
    )
    workflow.run()
    assert workflow.outcome == "failed"
    assert "not allowed" in workflow.data["failure"]["error"]
    assert recorder.calls == []
    assert not target.exists()


# ---------------------------------------------------------------------------------------------
# Failures of service tasks
# ---------------------------------------------------------------------------------------------


def test_an_uncaught_failure_stops_the_workflow_loudly() -> None:
    spec, subs = load_process_text(linear([("remeasure", {})], catch=False))
    recorder = Recorder(fail="remeasure")
    registry = recorder.registry()
    workflow = WorkflowRun(
        BpmnWorkflow(spec, subs, script_engine=RestrictedScriptEngine(registry)), registry
    )
    with pytest.raises(WorkflowFailed, match="remeasure exploded"):
        workflow.run()
    assert not workflow.completed
    assert "remeasure exploded" in workflow.errors["t0"]


def test_a_bad_result_is_a_task_failure() -> None:
    spec, subs = load_process_text(linear([("remeasure", {})]))
    registry = ServiceRegistry()
    registry.register("remeasure", lambda params, data: ["not", "a", "mapping"])  # type: ignore[arg-type,return-value]
    workflow = WorkflowRun.start(spec, subs, registry, {})
    workflow.run()
    assert workflow.outcome == "failed"
    assert "returned list, not a mapping" in workflow.data["failure"]["error"]

    registry.register("remeasure", lambda params, data: {"when": object()})
    workflow = WorkflowRun.start(spec, subs, registry, {})
    workflow.run()
    assert "not JSON serializable" in workflow.data["failure"]["error"]


def test_a_wrongly_typed_parameter_value_is_a_task_failure() -> None:
    spec, subs = load_process_text(
        linear([("settle", {"seconds": ("int", "data.get('settle_seconds', 60)")})])
    )
    recorder = Recorder()
    workflow = WorkflowRun.start(spec, subs, recorder.registry(), {"settle_seconds": "ten"})
    workflow.run()
    assert workflow.outcome == "failed"
    assert "'seconds' must be int, got str 'ten'" in workflow.data["failure"]["error"]
    assert recorder.calls == []


def test_start_data_must_be_json() -> None:
    spec, subs = load_process(strategy_path("observe-escalate"))
    with pytest.raises(ValueError, match="JSON"):
        WorkflowRun.start(spec, subs, Recorder().registry(), {"x": object()})


# ---------------------------------------------------------------------------------------------
# Stepping, pending operators, state
# ---------------------------------------------------------------------------------------------


def test_step_runs_one_service_task_at_a_time() -> None:
    recorder = Recorder()
    workflow = start(strategy_path("agent-reset"), recorder)
    assert workflow.step() == "step01_snapshot_targets"
    assert recorder.names == ["snapshot_targets"]
    assert workflow.data["snapshot"]["name"] == "wg-snap-demo-1"
    seen: list[str] = []
    workflow.run(seen.append)
    assert seen[0] == "step02_verify_snapshot"
    assert seen[-1] == "step07_verify_success_criteria"
    assert workflow.completed
    assert workflow.step() is None


def test_a_pending_operator_is_called_again_on_the_next_step() -> None:
    recorder = Recorder(pending="measure_phase", pending_times=2)
    workflow = start(CYCLE, recorder)
    workflow.run()
    assert workflow.waiting
    assert workflow.pending == {"measure": "measure_phase: job still running"}
    assert recorder.names == ["define_phase"]
    workflow.run()
    assert workflow.waiting
    workflow.run()
    assert not workflow.waiting
    assert workflow.outcome == "succeeded"
    assert recorder.names == [
        "define_phase", "measure_phase", "explore_phase", "develop_phase", "implement_phase"
    ]  # fmt: skip


def test_dumps_is_small_gzip_json_and_loads_back() -> None:
    recorder = Recorder()
    workflow = run(strategy_path("full-regeneration"), recorder)
    blob = workflow.dumps()
    assert len(blob) < 12_000
    state = json.loads(gzip.decompress(blob))
    assert state["serializer_version"] == "1.5"
    restored = WorkflowRun.loads(blob, recorder.registry())
    assert restored.completed
    assert restored.data == workflow.data
    assert restored.dumps() == blob


def test_loads_rejects_garbage_and_a_registry_without_the_operators() -> None:
    with pytest.raises(ValueError, match="not a saved workflow state"):
        WorkflowRun.loads(b"not gzip", Recorder().registry())
    blob = start(strategy_path("agent-reset"), Recorder()).dumps()
    registry = ServiceRegistry()
    with pytest.raises(InvalidWorkflow, match="unknown operator 'snapshot_targets'"):
        WorkflowRun.loads(blob, registry)


def test_every_vocabulary_operator_is_used_by_some_workflow() -> None:
    used: set[str] = set()
    for path in [*sorted(strategy_path("x").parent.glob("*.bpmn")), CYCLE]:
        spec, _ = load_process(path)
        used |= {t.operation_name for t in spec.task_specs.values() if hasattr(t, "operation_name")}
    assert used == set(VOCABULARY)
