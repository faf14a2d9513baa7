"""The two workflows a cycle runs: the DMEDI cycle itself, and the strategy Implement chose.

The operator (inline or in phase Jobs), `regeneration auto|implement` and the simulator all start
them here, so they run one pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from weavergen.config import operator_config
from weavergen.domain.remedy.develop import workflow_path
from weavergen.workflows.engine import WorkflowRun, load_process
from weavergen.workflows.registry import ServiceRegistry

CYCLE_WORKFLOW = ("dmedi_cycle.bpmn", "dmedi_cycle")


def start_cycle_workflow(registry: ServiceRegistry) -> WorkflowRun:
    """A new DMEDI cycle, its phases bound to ``registry``; the caller steps or runs it."""
    spec, subprocesses = load_process(
        operator_config().bpmn_dir / CYCLE_WORKFLOW[0], CYCLE_WORKFLOW[1]
    )
    return WorkflowRun.start(spec, subprocesses, registry, {})


def run_strategy(
    strategy: str,
    registry: ServiceRegistry,
    data: Mapping[str, Any],
    on_task: Callable[[str], None] | None = None,
) -> WorkflowRun:
    """Run ``strategy``'s workflow to its end with the operators bound to the target.

    The workflow file follows from the strategy's name, never from a result's own field: a
    forged phase result cannot point Implement at another BPMN file.
    """
    workflow, process_id = workflow_path(strategy)
    spec, subprocesses = load_process(operator_config().bpmn_dir / workflow, process_id)
    run = WorkflowRun.start(spec, subprocesses, registry, dict(data))
    run.run(on_task)
    return run
