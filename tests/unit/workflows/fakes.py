"""Fake operators that record their calls: for the workflow tests and their child processes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.helpers import REPO
from weavergen.domain.remedy.vocabulary import VOCABULARY
from weavergen.workflows.engine import WorkflowRun, load_process
from weavergen.workflows.registry import Pending, ServiceRegistry

BPMN = REPO / "bpmn"
STRATEGIES = BPMN / "strategies"
CYCLE = BPMN / "dmedi_cycle.bpmn"

SNAPSHOT = {"name": "wg-snap-demo-1", "sha256": "0" * 64}


class Recorder:
    """Registers every operator of the vocabulary; each call is recorded, some can fail.

    ``fail``: operator name that raises; ``fail_at``: index of the call that raises;
    ``criteria_met``: what verify_success_criteria reports; ``needed`` / ``implemented``: what
    the measure and implement phases report; ``pending``: operator name that raises `Pending`
    the first ``pending_times`` times it is called; ``first_call``: the index of this recorder's
    first call (a recorder that resumes a saved run goes on counting where the first one stopped).
    """

    def __init__(
        self,
        *,
        fail: str | None = None,
        fail_at: int | None = None,
        criteria_met: bool = True,
        needed: bool = True,
        implemented: bool = True,
        pending: str | None = None,
        pending_times: int = 0,
        first_call: int = 0,
    ) -> None:
        self.fail = fail
        self.fail_at = fail_at
        self.criteria_met = criteria_met
        self.needed = needed
        self.implemented = implemented
        self.pending = pending
        self.pending_times = pending_times
        self.first_call = first_call
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.data_seen: list[dict[str, Any]] = []

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def registry(self) -> ServiceRegistry:
        registry = ServiceRegistry()
        for name in VOCABULARY:
            registry.register(name, self._operator(name))
        return registry

    def _operator(self, name: str) -> Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]:
        def operator(params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
            if name == self.pending and self.pending_times > 0:
                self.pending_times -= 1
                raise Pending(f"{name}: job still running")
            index = self.first_call + len(self.calls)
            self.calls.append((name, dict(params)))
            self.data_seen.append(data)
            if name == self.fail or index == self.fail_at:
                raise RuntimeError(f"{name} exploded (call {index})")
            return self._result(name, index)

        return operator

    def _result(self, name: str, index: int) -> dict[str, Any]:
        result: dict[str, Any] = {f"{name}_at": index}
        if name == "snapshot_targets":
            result["snapshot"] = SNAPSHOT
        elif name == "verify_success_criteria":
            result["criteria_met"] = self.criteria_met
        elif name == "remeasure":
            result["entropy_after"] = 0.21
        elif name == "measure_phase":
            result["regeneration_needed"] = self.needed
        elif name == "implement_phase":
            result["implementation_succeeded"] = self.implemented
        return result


def strategy_path(name: str) -> Path:
    return STRATEGIES / f"{name}.bpmn"


def start(path: Path, recorder: Recorder, data: dict[str, Any] | None = None) -> WorkflowRun:
    spec, subprocesses = load_process(path)
    return WorkflowRun.start(spec, subprocesses, recorder.registry(), data or {})


def run(path: Path, recorder: Recorder, data: dict[str, Any] | None = None) -> WorkflowRun:
    workflow = start(path, recorder, data)
    workflow.run()
    return workflow
