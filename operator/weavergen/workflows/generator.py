"""Generate strategy workflows (BPMN 2.0) from an ordered list of vocabulary actions.

Conventions every generated (and shipped) strategy workflow follows:

- A strategy whose steps change objects snapshots first: ``snapshot_targets`` and
  ``verify_snapshot`` are inserted before the first changing step when the steps do not have them.
- Every service task carries an interrupting error boundary event. A failure up to and including
  ``verify_snapshot`` (nothing changed yet) ends with ``outcome = "failed"``; a failure after it
  runs the rollback path ``restore_snapshot`` -> ``verify_restored`` and ends with
  ``outcome = "rolled_back"``; a failure on the rollback path ends with
  ``outcome = "rollback_failed"``. The failure is kept in ``data["failure"]``
  (``{"task", "operator", "error"}``; ``data["rollback_failure"]`` for the rollback path).
- An exclusive gateway follows every ``verify_success_criteria``: ``criteria_met == True`` goes on,
  anything else records ``failure`` and takes the same rollback path (``failed`` when the workflow
  changed nothing). A changing strategy without ``verify_success_criteria`` gets
  ``wait_rollout, settle, remeasure, verify_success_criteria`` appended.
- A normal finish sets ``outcome = "succeeded"``; a strategy whose last step is ``escalate``
  (it changed nothing and hands the incident to people) finishes with ``outcome = "escalated"``.

Parameters a step does not give default to expressions over the workflow data with literal
fallbacks (`DEFAULT_PARAMS`), e.g. ``data.get('settle_seconds', 60)``. A `CustomStrategy` only
takes JSON scalars, written into the BPMN as Python literals with ``repr``: a strategy never
carries code.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from weavergen.domain.remedy.vocabulary import ACTIONS, MUTATING_ACTIONS, ROLLBACK_ACTIONS
from weavergen.workflows.engine import _is_instance

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
TARGET_NS = "https://weavergen.io/bpmn"

_VERIFY_TAIL = ("wait_rollout", "settle", "remeasure", "verify_success_criteria")
_SNAPSHOT = ("snapshot_targets", "verify_snapshot")
MAX_STEPS = 40
_XML_CHAR = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
CRITERIA_NOT_MET = "success criteria not met"

DEFAULT_PARAMS: dict[str, dict[str, str]] = {
    "scale_workloads": {"replicas_delta": "data.get('replicas_delta', 1)"},
    "tune_sampling": {"ratio": "data.get('sampling_ratio', 0.1)"},
    "wait_rollout": {"timeout_seconds": "data.get('rollout_timeout_seconds', 300)"},
    "settle": {"seconds": "data.get('settle_seconds', 60)"},
    "escalate": {
        "reason": "data.get('escalation_reason', "
        "'entropy persists and no action on the target can fix its cause')"
    },
}
"""Parameter expressions used when a step does not set the parameter."""

STEP_ACTIONS: tuple[str, ...] = tuple(a for a in ACTIONS if a not in ROLLBACK_ACTIONS)
"""Actions a strategy step may name (the rollback path is added by the generator)."""

JsonScalar = StrictBool | StrictInt | StrictFloat | StrictStr


class Step(BaseModel):
    """One step of a custom strategy: a vocabulary action and literal parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: str = Field(description="An action of the vocabulary (STEP_ACTIONS).")
    params: dict[str, JsonScalar] = Field(
        default_factory=dict, description="Literal parameter values (JSON scalars)."
    )

    @field_validator("action")
    @classmethod
    def _known_action(cls, action: str) -> str:
        if action in ROLLBACK_ACTIONS:
            raise ValueError(
                f"action {action!r} belongs to the rollback path, which is added automatically"
            )
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; allowed: {', '.join(STEP_ACTIONS)}")
        return action

    @model_validator(mode="after")
    def _params_fit(self) -> Step:
        declared = ACTIONS[self.action]
        unexpected = sorted(set(self.params) - set(declared))
        if unexpected:
            takes = ", ".join(declared) or "no parameters"
            raise ValueError(
                f"action {self.action!r} takes {takes}; unexpected: {', '.join(unexpected)}"
            )
        for name, value in self.params.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"parameter {name!r} of {self.action!r} is not finite")
            if not _is_instance(value, declared[name]):
                raise ValueError(
                    f"parameter {name!r} of {self.action!r} must be {declared[name].__name__}, "
                    f"got {value!r}"
                )
        return self


StrategyId = Annotated[
    str, Field(min_length=1, max_length=63, pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
]


class CustomStrategy(BaseModel):
    """A strategy written as data: a name and an ordered list of vocabulary steps."""

    model_config = ConfigDict(extra="forbid")

    name: StrategyId = Field(description="Strategy name; the process id is it with '-' -> '_'.")
    description: str = Field(default="", max_length=1000)
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)

    @field_validator("description")
    @classmethod
    def _xml_text(cls, description: str) -> str:
        # It becomes the process's <documentation>: characters XML 1.0 cannot hold would make
        # the generated workflow unparsable, so they are refused here, naming them.
        bad = sorted({f"U+{ord(c):04X}" for c in description if not _XML_CHAR.fullmatch(c)})
        if bad:
            raise ValueError(f"characters XML cannot hold: {', '.join(bad)}")
        return description

    @model_validator(mode="after")
    def _snapshot_before_changes(self) -> CustomStrategy:
        actions = [s.action for s in self.steps]
        if actions.count("snapshot_targets") > 1:
            raise ValueError("snapshot_targets may appear only once")
        if "verify_snapshot" in actions and (
            "snapshot_targets" not in actions
            or actions.index("verify_snapshot") < actions.index("snapshot_targets")
        ):
            raise ValueError(
                f"steps[{actions.index('verify_snapshot')}] verify_snapshot must follow "
                "snapshot_targets"
            )
        changing = [i for i, a in enumerate(actions) if a in MUTATING_ACTIONS]
        if "snapshot_targets" in actions and changing:
            snap = actions.index("snapshot_targets")
            if snap > changing[0]:
                raise ValueError(
                    f"steps[{snap}] snapshot_targets must come before steps[{changing[0]}] "
                    f"{actions[changing[0]]}, the first step that changes objects"
                )
        return self

    @property
    def process_id(self) -> str:
        return self.name.replace("-", "_")


def normalise_steps(steps: Sequence[Step]) -> list[Step]:
    """Apply the conventions: snapshot before the first change, verification after the last."""
    out = list(steps)
    actions = [s.action for s in out]
    changing = [i for i, a in enumerate(actions) if a in MUTATING_ACTIONS]
    if changing and "snapshot_targets" not in actions:
        first = changing[0]
        out[first:first] = [Step(action=a) for a in _SNAPSHOT]
    actions = [s.action for s in out]
    if "snapshot_targets" in actions:
        snap = actions.index("snapshot_targets")
        if snap + 1 >= len(out) or out[snap + 1].action != "verify_snapshot":
            out.insert(snap + 1, Step(action="verify_snapshot"))
    actions = [s.action for s in out]
    if changing and "verify_success_criteria" not in actions:
        last = max(i for i, a in enumerate(actions) if a in MUTATING_ACTIONS)
        after = actions[last + 1 :]
        out.extend(Step(action=a) for a in _VERIFY_TAIL if a not in after)
    return out


# --------------------------------------------------------------------------------------------
# BPMN rendering
# --------------------------------------------------------------------------------------------


def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


@dataclass
class _Builder:
    process: ET.Element
    flows: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, tag: str, id_: str, name: str | None = None, **attrs: str) -> ET.Element:
        el = ET.SubElement(self.process, _q(BPMN_NS, tag), {"id": id_, **attrs})
        if name:
            el.set("name", name)
        return el

    def flow(self, source: str, target: str, condition: str | None = None) -> str:
        flow_id = f"flow_{len(self.flows) + 1:02d}_{source}_to_{target}"
        self.flows.append((flow_id, source, target))
        el = ET.SubElement(
            self.process,
            _q(BPMN_NS, "sequenceFlow"),
            {"id": flow_id, "sourceRef": source, "targetRef": target},
        )
        if condition is not None:
            cond = ET.SubElement(el, _q(BPMN_NS, "conditionExpression"))
            cond.text = condition
        return flow_id

    def service_task(self, id_: str, name: str, operator: str, params: dict[str, str]) -> None:
        task = self.add("serviceTask", id_, name)
        ext = ET.SubElement(task, _q(BPMN_NS, "extensionElements"))
        op = ET.SubElement(ext, _q(SPIFF_NS, "serviceTaskOperator"), {"id": operator})
        plist = ET.SubElement(op, _q(SPIFF_NS, "parameters"))
        declared = ACTIONS.get(operator, {})
        for pname, expr in params.items():
            ptype = declared[pname].__name__ if pname in declared else "str"
            ET.SubElement(
                plist, _q(SPIFF_NS, "parameter"), {"id": pname, "type": ptype, "value": expr}
            )

    def on_error(self, task_id: str, error_ref: str, target: str) -> None:
        event_id = f"{task_id}_failed"
        ev = self.add(
            "boundaryEvent", event_id, "failed", attachedToRef=task_id, cancelActivity="true"
        )
        ET.SubElement(ev, _q(BPMN_NS, "errorEventDefinition"), {"errorRef": error_ref})
        self.flow(event_id, target)

    def script(self, id_: str, name: str, code: str) -> None:
        task = self.add("scriptTask", id_, name, scriptFormat="python")
        ET.SubElement(task, _q(BPMN_NS, "script")).text = code

    def end(self, id_: str, name: str) -> None:
        self.add("endEvent", id_, name)


def _error(root: ET.Element, id_: str, name: str, variable: str) -> None:
    # No errorCode: the boundary events that reference it catch any error.
    err = ET.SubElement(root, _q(BPMN_NS, "error"), {"id": id_, "name": name})
    ext = ET.SubElement(err, _q(BPMN_NS, "extensionElements"))
    ET.SubElement(ext, _q(SPIFF_NS, "variableName")).text = variable


def _params(step: Step) -> dict[str, str]:
    exprs = dict(DEFAULT_PARAMS.get(step.action, {}))
    for name, value in step.params.items():
        exprs[name] = repr(value)
    return {name: exprs[name] for name in ACTIONS[step.action]}


def _title(action: str) -> str:
    return action.replace("_", " ")


def render_bpmn(process_id: str, name: str, steps: Sequence[Step], documentation: str = "") -> str:
    """BPMN XML for already normalised steps (see `normalise_steps`)."""
    ET.register_namespace("bpmn", BPMN_NS)
    ET.register_namespace("spiffworkflow", SPIFF_NS)
    root = ET.Element(
        _q(BPMN_NS, "definitions"),
        {"id": f"definitions_{process_id}", "targetNamespace": TARGET_NS},
    )
    actions = [s.action for s in steps]
    protected_after: int | None = None  # index of the last step before the rollback scope
    if "snapshot_targets" in actions:
        protected_after = actions.index("snapshot_targets")
        if actions[protected_after + 1 : protected_after + 2] == ["verify_snapshot"]:
            protected_after += 1
    _error(root, "error_task_failed", "task failed", "failure")
    if protected_after is not None:
        _error(root, "error_rollback_failed", "rollback failed", "rollback_failure")

    process = ET.SubElement(
        root, _q(BPMN_NS, "process"), {"id": process_id, "name": name, "isExecutable": "true"}
    )
    if documentation:
        ET.SubElement(process, _q(BPMN_NS, "documentation")).text = documentation
    b = _Builder(process)
    b.add("startEvent", "start", "start")
    previous: str = "start"
    condition: str | None = None
    rollback_entry = "rollback_restore_snapshot"
    for i, step in enumerate(steps, start=1):
        task_id = f"step{i:02d}_{step.action}"
        b.service_task(task_id, _title(step.action), step.action, _params(step))
        b.flow(previous, task_id, condition)
        protected = protected_after is not None and i - 1 > protected_after
        failure_target = rollback_entry if protected else "mark_failed"
        b.on_error(task_id, "error_task_failed", failure_target)
        previous, condition = task_id, None
        if step.action == "verify_success_criteria":
            gateway_id = f"step{i:02d}_criteria_met"
            record = f"step{i:02d}_criteria_not_met"
            gateway = b.add("exclusiveGateway", gateway_id, "success criteria met?")
            b.flow(task_id, gateway_id)
            failure = {"task": task_id, "operator": step.action, "error": CRITERIA_NOT_MET}
            b.script(record, "record: criteria not met", f"failure = {failure!r}")
            gateway.set("default", b.flow(gateway_id, record))
            b.flow(record, failure_target)
            previous, condition = gateway_id, "criteria_met == True"

    _outcome_paths(b, previous, condition, escalates=actions[-1:] == ["escalate"])
    if protected_after is not None:
        _rollback_path(b, rollback_entry)
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _outcome_paths(b: _Builder, last: str, condition: str | None, *, escalates: bool) -> None:
    """The normal finish after ``last`` (``escalated`` for a strategy that ends by handing
    the incident to people, else ``succeeded``), and the ``failed`` end before any change."""
    finish = "escalated" if escalates else "succeeded"
    b.script(f"mark_{finish}", f"outcome: {finish}", f"outcome = {finish!r}")
    b.flow(last, f"mark_{finish}", condition)
    b.end(f"end_{finish}", finish)
    b.flow(f"mark_{finish}", f"end_{finish}")
    b.script("mark_failed", "outcome: failed", "outcome = 'failed'")
    b.end("end_failed", "failed")
    b.flow("mark_failed", "end_failed")


def _rollback_path(b: _Builder, entry: str) -> None:
    """restore_snapshot -> verify_restored -> rolled_back; either failing -> rollback_failed."""
    b.service_task(entry, "restore snapshot", "restore_snapshot", {})
    b.on_error(entry, "error_rollback_failed", "mark_rollback_failed")
    b.service_task("rollback_verify_restored", "verify restored", "verify_restored", {})
    b.flow(entry, "rollback_verify_restored")
    b.on_error("rollback_verify_restored", "error_rollback_failed", "mark_rollback_failed")
    b.script("mark_rolled_back", "outcome: rolled back", "outcome = 'rolled_back'")
    b.flow("rollback_verify_restored", "mark_rolled_back")
    b.end("end_rolled_back", "rolled back")
    b.flow("mark_rolled_back", "end_rolled_back")
    b.script("mark_rollback_failed", "outcome: rollback failed", "outcome = 'rollback_failed'")
    b.end("end_rollback_failed", "rollback failed")
    b.flow("mark_rollback_failed", "end_rollback_failed")


def generate_bpmn(strategy: CustomStrategy) -> str:
    """BPMN 2.0 XML for a custom strategy, following the conventions of the shipped workflows."""
    steps = normalise_steps(strategy.steps)
    if len(steps) > MAX_STEPS:
        raise ValueError(f"strategy {strategy.name!r} has more than {MAX_STEPS} steps")
    return render_bpmn(strategy.process_id, strategy.name, steps, strategy.description)


def strategy_steps(actions: Sequence[str | tuple[str, dict[str, Any]]]) -> list[Step]:
    """Steps from action names, or ``(action, params)`` pairs."""
    out = []
    for item in actions:
        if isinstance(item, str):
            out.append(Step(action=item))
        else:
            out.append(Step(action=item[0], params=item[1]))
    return out
