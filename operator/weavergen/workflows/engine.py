"""Run BPMN workflows with SpiffWorkflow 3.2.0: restricted expressions, registered operators.

A BPMN service task names an *operator* (``spiffworkflow:serviceTaskOperator id="..."``) and its
parameters (``spiffworkflow:parameter id=... type=... value=...``; a value is a Python expression,
so literals are quoted). The operator is a plain function registered in a `ServiceRegistry`::

    def rollout_restart(params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any] | None

``params`` are the evaluated parameters, ``data`` is a copy of the task data; what the function
returns (JSON values only) is merged into the workflow data. An operator that is not finished yet
(a Job still running) raises `Pending`: the task stays started, the workflow reports itself
waiting, and the next `WorkflowRun.step` calls the operator again. Any other exception becomes a
BPMN error event thrown from the task, with ``{"task", "operator", "error"}`` as its payload; the
shipped workflows catch it with an error boundary event whose ``spiffworkflow:variableName``
stores that payload in the data (``failure``, or ``rollback_failure`` on the rollback path).

Expressions (gateway conditions, parameter values, script tasks, error payloads) are checked
against a small whitelist of Python syntax (no attribute access but a few methods such as ``get``,
no names starting with ``_``, no lambdas, comprehensions or imports) and evaluated with a few safe
builtins only, so ``__import__('os')`` is a validation error, never code execution. The task data
is visible by name, and as a read-only mapping called ``data`` for defaults:
``data.get('settle_seconds', 60)``.

The whole state of a run (spec included) serialises to gzip JSON with `WorkflowRun.dumps` and
comes back with `WorkflowRun.loads`. Persisted state names `OperatorTask` and the serializer
version of SpiffWorkflow: keep the class name and pin the library version.
"""

from __future__ import annotations

import ast
import copy
import gzip
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from types import CodeType, MappingProxyType
from typing import Any, ClassVar, Literal, cast, get_args

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.parser.BpmnParser import full_tag
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent, ThrowingEvent
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.bpmn.specs.mixins.script_task import ScriptTask as ScriptTaskMixin
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.bpmn.specs.mixins.user_task import UserTask as UserTaskMixin
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.specs.MultiChoice import MultiChoice
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.parser.task_spec import ServiceTaskParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.serializer.task_spec import ServiceTaskConverter
from SpiffWorkflow.spiff.specs.defaults import ServiceTask as SpiffServiceTask
from SpiffWorkflow.spiff.specs.event_definitions import ErrorEventDefinition
from SpiffWorkflow.util.task import TaskState

from weavergen.workflows.registry import (
    BPMN_TYPES,
    Pending,
    RegisteredOperator,
    ServiceRegistry,
)

FAILURE_ERROR_CODE = "task_failed"
"""Error code of the BPMN error a failing service task throws (catch it with no code, or this)."""

WorkflowOutcome = Literal[
    "succeeded", "escalated", "rolled_back", "failed", "rollback_failed", "not_needed"
]
OUTCOMES: tuple[str, ...] = get_args(WorkflowOutcome)

_MAX_ERROR_CHARS = 1000
_MAX_EXPRESSION_CHARS = 2000


class InvalidWorkflow(ValueError):
    """A workflow failed validation (or could not be parsed); ``problems`` lists every reason."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid workflow: " + "; ".join(self.problems))


class UnsafeExpression(ValueError):
    """An expression uses Python that the restricted engine does not evaluate."""


class WorkflowFailed(RuntimeError):
    """The workflow cannot go on: a task failed and nothing in the BPMN catches the error."""


# --------------------------------------------------------------------------------------------
# Restricted expressions
# --------------------------------------------------------------------------------------------

SAFE_BUILTINS: Mapping[str, Any] = MappingProxyType(
    {
        "len": len,
        "min": min,
        "max": max,
        "abs": abs,
        "round": round,
        "str": str,
        "int": int,
        "float": float,
        "bool": bool,
        "sum": sum,
        "any": any,
        "all": all,
        "True": True,
        "False": False,
        "None": None,
    }
)
SAFE_METHODS: frozenset[str] = frozenset(
    {"get", "keys", "values", "items", "lower", "upper", "strip", "startswith", "endswith"}
)
_ALLOWED_NODES: tuple[type[ast.AST], ...] = (
    ast.Expression, ast.Module, ast.Assign, ast.Pass,
    ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
    ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod,
    ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE,
    ast.In, ast.NotIn, ast.Is, ast.IsNot,
    ast.IfExp, ast.Call, ast.keyword, ast.Constant, ast.Name, ast.Load, ast.Store,
    ast.Attribute, ast.Subscript, ast.Slice, ast.Dict, ast.List, ast.Tuple, ast.Set,
)  # fmt: skip


@lru_cache(maxsize=1024)
def compile_restricted(source: str, mode: Literal["eval", "exec"] = "eval") -> CodeType:
    """Compile an expression (or, in ``exec`` mode, assignments) after checking its syntax tree.

    Raises `UnsafeExpression` naming the first construct that is not allowed.
    """
    if len(source) > _MAX_EXPRESSION_CHARS:
        raise UnsafeExpression(f"expression longer than {_MAX_EXPRESSION_CHARS} characters")
    try:
        tree = cast(ast.Module | ast.Expression, ast.parse(source.strip(), mode=mode))
    except SyntaxError as exc:
        raise UnsafeExpression(f"syntax error in {source!r}: {exc.msg}") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise UnsafeExpression(f"{type(node).__name__} is not allowed in {source!r}")
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            raise UnsafeExpression(f"name {node.id!r} is not allowed in {source!r}")
        if isinstance(node, ast.Attribute) and node.attr not in SAFE_METHODS:
            raise UnsafeExpression(f"attribute {node.attr!r} is not allowed in {source!r}")
        if isinstance(node, ast.keyword) and (node.arg is None or node.arg.startswith("_")):
            raise UnsafeExpression(f"keyword argument unpacking is not allowed in {source!r}")
        if isinstance(node, ast.Call) and not (
            (isinstance(node.func, ast.Name) and node.func.id in SAFE_BUILTINS)
            or isinstance(node.func, ast.Attribute)
        ):
            what = repr(node.func.id) if isinstance(node.func, ast.Name) else "this"
            raise UnsafeExpression(
                f"calling {what} is not allowed in {source!r} (allowed: {', '.join(SAFE_CALLS)})"
            )
        if isinstance(node, ast.Assign) and not all(isinstance(t, ast.Name) for t in node.targets):
            raise UnsafeExpression(f"only plain names may be assigned in {source!r}")
    code: CodeType = compile(tree, "<bpmn expression>", mode)
    return code


SAFE_CALLS: tuple[str, ...] = tuple(
    sorted(k for k, v in SAFE_BUILTINS.items() if callable(v))
) + tuple(f".{m}()" for m in sorted(SAFE_METHODS))


def _globals(data: Mapping[str, Any], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    names: dict[str, Any] = {k: v for k, v in (extra or {}).items() if not k.startswith("_")}
    names["__builtins__"] = dict(SAFE_BUILTINS)
    names["data"] = MappingProxyType(data)
    return names


class RestrictedScriptEngine(PythonScriptEngine):  # type: ignore[misc]
    """Evaluates BPMN expressions with whitelisted syntax and builtins; calls registry operators."""

    def __init__(self, registry: ServiceRegistry | None = None) -> None:
        super().__init__()
        self.registry = registry if registry is not None else ServiceRegistry()

    def validate(self, expression: str) -> None:
        compile_restricted(expression, "eval")

    def evaluate(
        self, task: Any, expression: str, external_context: Mapping[str, Any] | None = None
    ) -> Any:
        try:
            code = compile_restricted(expression, "eval")
            return eval(code, _globals(task.data, external_context), task.data)
        except Exception as exc:
            raise WorkflowTaskException(
                f"error evaluating {expression!r}: {type(exc).__name__}: {exc}",
                task=task,
                exception=exc,
            ) from exc

    def execute(
        self, task: Any, script: str, external_context: Mapping[str, Any] | None = None
    ) -> bool:
        try:
            code = compile_restricted(script, "exec")
            exec(code, _globals(task.data, external_context), task.data)
        except Exception as exc:
            raise WorkflowTaskException(
                f"error in script {script!r}: {type(exc).__name__}: {exc}",
                task=task,
                exception=exc,
            ) from exc
        return True

    def call_service(
        self,
        task: Any,
        operation_name: str,
        operation_params: Mapping[str, Any],
        **_: Any,
    ) -> str:
        """Call a registered operator; returns its result as JSON (Spiff's contract).

        ``operation_params`` is Spiff's shape (``{name: {"value": v, "type": t}}``) or plain
        values. Exceptions propagate unchanged (`OperatorTask` turns them into BPMN errors).
        """
        op = self.registry.get(operation_name)
        params = {
            k: (v["value"] if isinstance(v, Mapping) and "value" in v else v)
            for k, v in operation_params.items()
        }
        check_params(op, params)
        result = op.fn(params, copy.deepcopy(dict(task.data)))
        if result is None:
            result = {}
        if not isinstance(result, Mapping):
            raise TypeError(
                f"operator {operation_name!r} returned {type(result).__name__}, not a mapping"
            )
        return json.dumps(dict(result))


def check_params(op: RegisteredOperator, params: Mapping[str, Any]) -> None:
    """Raise ``TypeError`` unless ``params`` are exactly the declared ones, of the right types."""
    missing = sorted(set(op.params) - set(params))
    extra = sorted(set(params) - set(op.params))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if extra:
            parts.append(f"unexpected {', '.join(extra)}")
        raise TypeError(f"operator {op.name!r} parameters: {'; '.join(parts)}")
    for name, ptype in op.params.items():
        if not _is_instance(params[name], ptype):
            raise TypeError(
                f"operator {op.name!r} parameter {name!r} must be {ptype.__name__}, "
                f"got {type(params[name]).__name__} {params[name]!r}"
            )


def _is_instance(value: Any, ptype: type) -> bool:
    if ptype is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return ok and math.isfinite(value)
    if ptype is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, ptype)


# --------------------------------------------------------------------------------------------
# The service task
# --------------------------------------------------------------------------------------------


def _describe(exc: BaseException) -> str:
    if isinstance(exc, WorkflowTaskException) and exc.args:
        text = str(exc.args[0])  # our own message, without Spiff's appended notes
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"


class OperatorTask(SpiffServiceTask):  # type: ignore[misc]
    """A service task that calls a registered operator and turns failures into BPMN errors.

    It is ``manual`` so that ``do_engine_steps`` leaves it to `WorkflowRun.step`, which runs one
    at a time (the operator may take minutes; the state is saved between tasks).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.manual = True

    def _execute(self, task: Any) -> bool | None:
        engine = task.workflow.script_engine
        try:
            params = self.evaluate_params(task)
            raw = engine.call_service(
                task, operation_name=self.operation_name, operation_params=params
            )
        except Pending as pending:
            task.internal_data["pending"] = str(pending) or "pending"
            return None
        except Exception as exc:
            task.internal_data.pop("pending", None)
            self._throw_failure(task, exc)
            return None
        task.internal_data.pop("pending", None)
        task.data.update(json.loads(raw))
        return True

    def _throw_failure(self, task: Any, exc: Exception) -> None:
        payload = {"task": self.bpmn_id, "operator": self.operation_name, "error": _describe(exc)}
        definition = ErrorEventDefinition(FAILURE_ERROR_CODE, code=FAILURE_ERROR_CODE)
        event = BpmnEvent(definition, payload=payload, target=task.workflow)
        manager = task.workflow.top_workflow.event_manager
        if not any(t.task_spec.catches(t, event) for t in list(manager.tasks.values())):
            task.internal_data["error"] = payload["error"]
            task._set_state(TaskState.ERROR)
            raise WorkflowFailed(
                f"service task {self.bpmn_id!r} ({self.operation_name}) failed and no error "
                f"boundary event catches it: {payload['error']}"
            ) from exc
        # The interrupting boundary event cancels this (started) task when it runs.
        task.workflow.top_workflow.catch(event)


class _Parser(SpiffBpmnParser):  # type: ignore[misc]
    OVERRIDE_PARSER_CLASSES: ClassVar[dict[str, tuple[type, type]]] = {
        **SpiffBpmnParser.OVERRIDE_PARSER_CLASSES,
        full_tag("serviceTask"): (ServiceTaskParser, OperatorTask),
    }


def _serializer() -> BpmnWorkflowSerializer:
    config = dict(SPIFF_CONFIG)
    config.pop(SpiffServiceTask)
    config[OperatorTask] = ServiceTaskConverter
    return BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(config))


_SERIALIZER = _serializer()


# --------------------------------------------------------------------------------------------
# Loading and validation
# --------------------------------------------------------------------------------------------

Specs = tuple[Any, dict[str, Any]]


def _load(add: Callable[[Any], None], label: str, process_id: str | None) -> Specs:
    parser = _Parser(validator=VALIDATOR)
    try:
        add(parser)
        if process_id is None:
            ids = parser.get_process_ids()
            if len(ids) != 1:
                raise InvalidWorkflow(
                    [f"{label}: give a process id, the file has {len(ids)}: {', '.join(ids)}"]
                )
            process_id = ids[0]
        spec = parser.get_spec(process_id)
        subprocesses = parser.get_subprocess_specs(process_id)
    except InvalidWorkflow:
        raise
    except ValidationException as exc:
        where = label + (f":{exc.line_number}" if getattr(exc, "line_number", "") else "")
        element = f" ({exc.tag} {exc.id!r})" if getattr(exc, "id", "") else ""
        message = str(exc.args[0]) if exc.args else str(exc)
        raise InvalidWorkflow([f"{where}{element}: {message}"]) from exc
    except Exception as exc:  # lxml errors, missing process ids
        raise InvalidWorkflow([f"{label}: {type(exc).__name__}: {exc}"]) from exc
    return spec, dict(subprocesses)


def load_process(path: Path, process_id: str | None = None) -> Specs:
    """Parse (and schema-validate) a BPMN file: ``(spec, subprocess_specs)``.

    Without ``process_id`` the file must hold exactly one process.
    """
    return _load(lambda p: p.add_bpmn_file(str(path)), str(path), process_id)


def load_process_text(xml: str, process_id: str | None = None, name: str = "<bpmn>") -> Specs:
    """`load_process` for BPMN held in a string (a generated workflow)."""
    return _load(lambda p: p.add_bpmn_str(xml.encode(), filename=name), name, process_id)


def service_tasks(spec: Any) -> list[OperatorTask]:
    """The operator tasks of a process spec, in the order the parser met them."""
    return [ts for ts in spec.task_specs.values() if isinstance(ts, OperatorTask)]


def _error_boundaries(spec: Any, task_spec: Any) -> list[Any]:
    split = spec.task_specs.get(f"{task_spec.name}.BoundaryEventSplit")
    if not isinstance(split, BoundaryEventSplit):
        return []
    return [
        out
        for out in split.outputs
        if isinstance(out, BoundaryEvent)
        and isinstance(out.event_definition, ErrorEventDefinition)
        and out.event_definition.code in (None, FAILURE_ERROR_CODE)
        and out.cancel_activity
    ]


def _expressions(task_spec: Any) -> Iterator[tuple[str, str, Literal["eval", "exec"]]]:
    """(where, source, mode) for every expression a task spec evaluates."""
    where = f"{task_spec.bpmn_id or task_spec.name}"
    if isinstance(task_spec, ScriptTaskMixin) and task_spec.script:
        yield where, task_spec.script, "exec"
    for attr in ("prescript", "postscript"):
        script = getattr(task_spec, attr, None)
        if script:
            yield f"{where} {attr}", script, "exec"
    if isinstance(task_spec, MultiChoice):
        for condition, target in task_spec.cond_task_specs:
            args = getattr(condition, "args", ())
            if args and isinstance(args[0], str):
                yield f"{where} -> {target}", args[0], "eval"
    if isinstance(task_spec, CatchingEvent | ThrowingEvent):
        expression = getattr(task_spec.event_definition, "expression", None)
        if expression:
            yield f"{where} payload", expression, "eval"
    if isinstance(task_spec, SpiffServiceTask):
        for pname, param in task_spec.operation_params.items():
            yield f"{where} parameter {pname}", str(param.get("value", "")), "eval"


def _validate_one(
    spec: Any, registry: ServiceRegistry, protected: bool, problems: list[str]
) -> None:
    ids = {ts.bpmn_id for ts in spec.task_specs.values() if getattr(ts, "bpmn_id", None)}
    for task_spec in spec.task_specs.values():
        where = f"{spec.name}/{task_spec.bpmn_id or task_spec.name}"
        for label, source, mode in _expressions(task_spec):
            try:
                compile_restricted(source, mode)
            except UnsafeExpression as exc:
                problems.append(f"{spec.name}/{label}: {exc}")
        if isinstance(task_spec, UserTaskMixin) or (
            task_spec.manual and not isinstance(task_spec, OperatorTask)
        ):
            problems.append(f"{where}: a {type(task_spec).__name__} would wait for a person")
        if isinstance(task_spec, SpiffServiceTask) and not isinstance(task_spec, OperatorTask):
            problems.append(f"{where}: service task not parsed by weavergen.workflows")
            continue
        if not isinstance(task_spec, OperatorTask):
            continue
        _validate_operator_task(
            spec, task_spec, registry=registry, protected=protected, ids=ids, problems=problems
        )


def _validate_operator_task(
    spec: Any,
    task_spec: OperatorTask,
    *,
    registry: ServiceRegistry,
    protected: bool,
    ids: set[str],
    problems: list[str],
) -> None:
    where = f"{spec.name}/{task_spec.bpmn_id}"
    name = task_spec.operation_name
    if name in ids:
        problems.append(f"{where}: operator {name!r} equals a BPMN element id")
    if not protected and not _error_boundaries(spec, task_spec):
        problems.append(
            f"{where}: no interrupting error boundary event catches a failure of {name!r}"
        )
    if name not in registry:
        problems.append(f"{where}: unknown operator {name!r}")
        return
    op = registry.get(name)
    given = task_spec.operation_params
    for pname in sorted(set(op.params) - set(given)):
        problems.append(f"{where}: operator {name!r} needs parameter {pname!r}")
    for pname in sorted(set(given) - set(op.params)):
        problems.append(f"{where}: operator {name!r} takes no parameter {pname!r}")
    for pname, ptype in op.params.items():
        if pname not in given:
            continue
        declared = BPMN_TYPES.get(str(given[pname].get("type", "")))
        if declared is not ptype:
            problems.append(
                f"{where}: parameter {pname!r} has type {given[pname].get('type')!r}, "
                f"operator {name!r} takes {ptype.__name__}"
            )
        try:
            literal = ast.literal_eval(str(given[pname].get("value", "")))
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue  # an expression over the data: checked when it runs
        if not _is_instance(literal, ptype):
            problems.append(f"{where}: parameter {pname!r} = {literal!r} is not {ptype.__name__}")


def validate(
    spec: Any, registry: ServiceRegistry, subprocess_specs: Mapping[str, Any] | None = None
) -> list[str]:
    """Every problem that would stop the workflow (empty: it may run).

    Checks operator names and parameters against the registry, every expression against the
    restricted syntax, that no task waits for a person, and that every service task has an
    interrupting error boundary event (directly, or on an enclosing sub-process).
    """
    problems: list[str] = []
    subs = dict(subprocess_specs or {})
    protected_subs: set[str] = set()
    for parent in (spec, *subs.values()):
        for ts in parent.task_specs.values():
            if isinstance(ts, SubWorkflowTask) and _error_boundaries(parent, ts):
                protected_subs.add(ts.spec)
    _validate_one(spec, registry, False, problems)
    for name, sub in subs.items():
        _validate_one(sub, registry, name in protected_subs, problems)
    return problems


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


def _json_copy(data: Mapping[str, Any], what: str) -> dict[str, Any]:
    try:
        result = json.loads(json.dumps(dict(data)))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be JSON data: {exc}") from exc
    assert isinstance(result, dict)
    return result


class WorkflowRun:
    """One run of a BPMN workflow, advanced one service task at a time and serialisable."""

    def __init__(self, workflow: BpmnWorkflow, registry: ServiceRegistry) -> None:
        self._wf = workflow
        self.registry = registry

    @classmethod
    def start(
        cls,
        spec: Any,
        subprocesses: Mapping[str, Any] | None,
        registry: ServiceRegistry,
        data: Mapping[str, Any] | None = None,
    ) -> WorkflowRun:
        """Validate the spec against the registry and start a run with ``data`` (JSON values).

        Raises `InvalidWorkflow` listing every problem; nothing runs then.
        """
        problems = validate(spec, registry, subprocesses)
        if problems:
            raise InvalidWorkflow(problems)
        initial = _json_copy(data or {}, "workflow data")
        wf = BpmnWorkflow(
            spec, dict(subprocesses or {}), script_engine=RestrictedScriptEngine(registry)
        )
        wf.task_tree.data.update(initial)
        return cls(wf, registry)

    # -- state ---------------------------------------------------------------------------------

    @property
    def workflow(self) -> BpmnWorkflow:
        """The underlying SpiffWorkflow object (for inspection)."""
        return self._wf

    @property
    def completed(self) -> bool:
        return bool(self._wf.completed)

    @property
    def pending(self) -> dict[str, str]:
        """Started service tasks whose operator raised `Pending`: BPMN id -> its message."""
        return {
            t.task_spec.bpmn_id: str(t.internal_data["pending"])
            for t in self._wf.get_tasks(state=TaskState.STARTED)
            if isinstance(t.task_spec, OperatorTask) and "pending" in t.internal_data
        }

    @property
    def waiting(self) -> bool:
        """Not completed, and an operator said `Pending`: `step` calls it again."""
        return not self.completed and bool(self.pending)

    @property
    def data(self) -> dict[str, Any]:
        """The workflow data: the final data once completed, else what the next task sees."""
        source: Mapping[str, Any] = self._wf.task_tree.data
        if self.completed:
            source = self._wf.data
        else:
            for state in (TaskState.STARTED, TaskState.READY, TaskState.ERROR):
                current = [t for t in self._wf.get_tasks(state=state) if t.workflow is self._wf]
                if current:
                    source = current[0].data
                    break
        return {k: v for k, v in source.items() if k != "data_objects"}

    @property
    def outcome(self) -> str | None:
        """``data["outcome"]`` once completed (``succeeded``, ``rolled_back``, ...)."""
        value = self.data.get("outcome") if self.completed else None
        return str(value) if value is not None else None

    # -- running -------------------------------------------------------------------------------

    def _next_operator_task(self) -> Any | None:
        for state in (TaskState.READY, TaskState.STARTED):
            for task in self._wf.get_tasks(state=state):
                if isinstance(task.task_spec, OperatorTask) and (
                    state == TaskState.READY or "pending" in task.internal_data
                ):
                    return task
        return None

    def step(self) -> str | None:
        """Run exactly one service task (and the gateways, events and scripts around it).

        Returns the BPMN id of the service task that ran (or was called again while pending),
        ``None`` when the workflow is completed or has nothing to run. Raises `WorkflowFailed`
        when the workflow cannot go on: a task failed with no error boundary event to catch it,
        or a gateway condition or script failed (`errors` keeps the reason in the state).
        """
        self._engine_steps()
        task = self._next_operator_task()
        if task is None:
            return None
        task.run()
        self._engine_steps()
        return str(task.task_spec.bpmn_id)

    def _engine_steps(self) -> None:
        try:
            self._wf.do_engine_steps()
        except WorkflowTaskException as exc:
            message = _describe(exc)
            task = getattr(exc, "task", None)
            if task is not None:
                task.internal_data["error"] = message
            where = f"{task.task_spec.bpmn_id}: " if task is not None else ""
            raise WorkflowFailed(f"{where}{message}") from exc

    @property
    def errors(self) -> dict[str, str]:
        """Tasks in the ERROR state (the workflow stopped there): BPMN id -> reason."""
        out = {}
        for task in self._wf.get_tasks(state=TaskState.ERROR):
            reason = task.internal_data.get("error") or task.internal_data.get("failure")
            out[str(task.task_spec.bpmn_id or task.task_spec.name)] = str(reason or "error")
        return out

    def run(self, on_task: Callable[[str], None] | None = None) -> None:
        """Step until the workflow completes or waits on a pending operator."""
        while True:
            task_id = self.step()
            if task_id is None:
                return
            if on_task is not None:
                on_task(task_id)
            if self.pending.get(task_id):
                return  # called again only by a later step(), not in a busy loop

    # -- persistence -----------------------------------------------------------------------------

    def dumps(self) -> bytes:
        """The whole state (spec included) as gzip JSON."""
        text = _SERIALIZER.serialize_json(self._wf)
        return gzip.compress(text.encode(), compresslevel=9, mtime=0)

    @classmethod
    def loads(cls, blob: bytes, registry: ServiceRegistry) -> WorkflowRun:
        """Restore a run saved by `dumps`; re-attach the engine, validate against ``registry``."""
        try:
            wf = _SERIALIZER.deserialize_json(gzip.decompress(blob))
        except Exception as exc:
            raise ValueError(f"not a saved workflow state: {type(exc).__name__}: {exc}") from exc
        problems = validate(wf.spec, registry, wf.subprocess_specs)
        if problems:
            raise InvalidWorkflow(problems)
        wf.script_engine = RestrictedScriptEngine(registry)
        return cls(wf, registry)
