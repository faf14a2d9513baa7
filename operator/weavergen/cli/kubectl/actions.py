"""approve, reject, abort and retry: which cycle phases each makes sense in, and the patch that
asks for it (pure; the operator acts on the annotations)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from weavergen.api.cycle import FINAL_PHASES, RegenerationCycle, RegenerationCycleStatus
from weavergen.api.keys import (
    ABORT_ANNOTATION,
    APPROVAL_ANNOTATION,
    REJECT_ANNOTATION,
    REQUESTED_BY_ANNOTATION,
    RETRY_ANNOTATION,
)

BEFORE_PLAN = frozenset({"Pending", "Defining", "Measuring", "Exploring", "Developing"})


@dataclass(frozen=True)
class Action:
    """One thing a person asks of a cycle, and the phases where it means something."""

    verb: str  # approve
    done: str  # approved
    annotation: str
    phases: frozenset[str]
    takes_reason: bool = False


ACTIONS = {
    a.verb: a
    for a in (
        Action("approve", "approved", APPROVAL_ANNOTATION, frozenset({"AwaitingApproval"})),
        Action("reject", "rejected", REJECT_ANNOTATION, frozenset({"AwaitingApproval"}), True),
        Action(
            "abort",
            "asked to abort",
            ABORT_ANNOTATION,
            BEFORE_PLAN | {"AwaitingApproval", "Implementing"},
            True,
        ),
        Action(
            "retry", "retried", RETRY_ANNOTATION, frozenset({"Failed", "RolledBack", "Aborted"})
        ),
    )
}
# An answer to a plan excludes the other answer.
EXCLUSIVE = {"approve": "reject", "reject": "approve"}


def _phase_sentence(action: Action, phase: str) -> str:
    """Why ``action`` means nothing in ``phase``, for a person to act on."""
    if action.verb == "retry":
        return "only a Failed, RolledBack or Aborted cycle can be retried"
    if phase in FINAL_PHASES:
        return f"it has finished; there is nothing to {action.verb}"
    if phase == "RollingBack":
        return "it is rolling back already; let it restore the snapshot"
    if phase == "Implementing":
        return "its plan is being carried out already (abort stops it)"
    if phase in BEFORE_PLAN:
        return (
            f"it has no plan to {action.verb} yet; wait for AwaitingApproval "
            "(kubectl weavergen watch) and read the plan with kubectl weavergen why"
        )
    return f"{action.verb} means nothing in this phase"


def refusal(action: Action, cycle: RegenerationCycle) -> str | None:
    """Why the action cannot be asked of this cycle now, or None when it can."""
    status = cycle.status or RegenerationCycleStatus()
    name, phase = cycle.metadata.name, status.phase
    annotations = cycle.metadata.annotations or {}
    other = EXCLUSIVE.get(action.verb)
    if other and ACTIONS[other].annotation in annotations:
        return f"cycle {name} was {ACTIONS[other].done} already: {action.verb} cannot undo it"
    if action.verb == "retry" and status.retried_by:
        return f"cycle {name} was retried already, by cycle {status.retried_by}"
    if phase not in action.phases:
        return f"cannot {action.verb} cycle {name}: it is {phase}: {_phase_sentence(action, phase)}"
    return None


def already(action: Action, cycle: RegenerationCycle) -> bool:
    """The annotation is there already: asking again changes nothing."""
    return action.annotation in (cycle.metadata.annotations or {})


def annotation_patch(
    action: Action, *, reason: str | None, user: str | None, resource_version: str | None
) -> dict[str, Any]:
    """A merge patch setting the action's annotation and who asked. With the resourceVersion
    the API server refuses it (409) if the cycle changed since it was judged."""
    value = reason if action.takes_reason and reason else "true"
    annotations = {action.annotation: value}
    if user:
        annotations[REQUESTED_BY_ANNOTATION] = user
    metadata: dict[str, Any] = {"annotations": annotations}
    if resource_version:
        metadata["resourceVersion"] = resource_version
    return {"metadata": metadata}
