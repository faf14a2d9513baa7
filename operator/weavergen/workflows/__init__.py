"""BPMN workflows: the DMEDI cycle and the remediation strategies, run with SpiffWorkflow.

`engine` loads, validates, runs and serialises workflows whose service tasks call registered
operators; `generator` writes strategy workflows from a list of vocabulary actions.
"""

from weavergen.domain.remedy.vocabulary import (
    ACTIONS,
    MUTATING_ACTIONS,
    PHASE_OPERATORS,
    ROLLBACK_ACTIONS,
    VOCABULARY,
)
from weavergen.workflows.engine import (
    FAILURE_ERROR_CODE,
    OUTCOMES,
    SAFE_BUILTINS,
    InvalidWorkflow,
    Operator,
    OperatorTask,
    Pending,
    RegisteredOperator,
    RestrictedScriptEngine,
    ServiceRegistry,
    UnknownOperator,
    UnsafeExpression,
    WorkflowFailed,
    WorkflowOutcome,
    WorkflowRun,
    compile_restricted,
    load_process,
    load_process_text,
    service_tasks,
    validate,
)
from weavergen.workflows.generator import (
    DEFAULT_PARAMS,
    STEP_ACTIONS,
    CustomStrategy,
    Step,
    generate_bpmn,
    normalise_steps,
    render_bpmn,
)
from weavergen.workflows.runs import run_strategy, start_cycle_workflow

__all__ = [
    "ACTIONS",
    "DEFAULT_PARAMS",
    "FAILURE_ERROR_CODE",
    "MUTATING_ACTIONS",
    "OUTCOMES",
    "PHASE_OPERATORS",
    "ROLLBACK_ACTIONS",
    "SAFE_BUILTINS",
    "STEP_ACTIONS",
    "VOCABULARY",
    "CustomStrategy",
    "InvalidWorkflow",
    "Operator",
    "OperatorTask",
    "Pending",
    "RegisteredOperator",
    "RestrictedScriptEngine",
    "ServiceRegistry",
    "Step",
    "UnknownOperator",
    "UnsafeExpression",
    "WorkflowFailed",
    "WorkflowOutcome",
    "WorkflowRun",
    "compile_restricted",
    "generate_bpmn",
    "load_process",
    "load_process_text",
    "normalise_steps",
    "render_bpmn",
    "run_strategy",
    "service_tasks",
    "start_cycle_workflow",
    "validate",
]
