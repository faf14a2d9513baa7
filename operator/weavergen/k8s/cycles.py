"""Running a cycle's ``dmedi_cycle.bpmn`` with its state kept in a ConfigMap owned by the cycle.

The workflow state is saved after every step, so an operator that dies between two steps resumes
from the last saved one: a step runs at most once more, and every step is written to be safe to
run twice (snapshots are never overwritten; actions are level-based).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from weavergen.k8s.rest import Rest
from weavergen.phases.simulate import BPMN_DIR
from weavergen.workflows import ServiceRegistry, WorkflowRun, load_process

STATE_KEY = "state.json.gz"


def state_name(cycle: str) -> str:
    return f"{cycle}-workflow"


def snapshot_name(cycle: str) -> str:
    return f"{cycle}-snapshot"


class CycleRunner:
    def __init__(
        self,
        rest: Rest,
        namespace: str,
        cycle: str,
        owner: dict[str, Any],
        registry: ServiceRegistry,
    ) -> None:
        self.rest = rest
        self.namespace = namespace
        self.cycle = cycle
        self.owner = owner
        self.registry = registry

    def _load(self) -> WorkflowRun:
        registry = self.registry
        saved = self.rest.get("ConfigMap", self.namespace, state_name(self.cycle))
        blob = (saved or {}).get("binaryData", {}).get(STATE_KEY)
        if blob:
            return WorkflowRun.loads(base64.b64decode(blob), registry)
        spec, subprocesses = load_process(BPMN_DIR / "dmedi_cycle.bpmn", "dmedi_cycle")
        return WorkflowRun.start(spec, subprocesses, registry, {})

    def _save(self, run: WorkflowRun) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": state_name(self.cycle),
                "namespace": self.namespace,
                "ownerReferences": [self.owner],
                "labels": {"regeneration.weavergen.io/cycle": self.cycle},
            },
            "binaryData": {STATE_KEY: base64.b64encode(run.dumps()).decode()},
        }
        if self.rest.get("ConfigMap", self.namespace, state_name(self.cycle)) is None:
            self.rest.create("ConfigMap", self.namespace, body)
        else:
            self.rest.replace("ConfigMap", self.namespace, state_name(self.cycle), body)

    def run(self, on_step: Callable[[str, dict[str, Any]], None]) -> WorkflowRun:
        """Step to the end (or until a phase is pending), saving after every step."""
        run = self._load()
        while not run.completed:
            task = run.step()
            self._save(run)
            if task is None or task in run.pending:
                break  # done, or a phase Job is still running: the next reconcile resumes
            on_step(task, run.data)
        return run
