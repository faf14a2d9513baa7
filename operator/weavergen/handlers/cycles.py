"""RegenerationCycle: drive ``dmedi_cycle.bpmn`` to its end, recording every phase in status.

The cycle is level-based: a timer looks at every unfinished cycle and resumes its workflow from
the state saved in its ConfigMap, so a restarted operator carries on where it stopped. With
``executor: job`` each phase is a Job (``k8s/jobs.py``) and the workflow waits at its task until
the Job's result is there; with ``executor: inline`` the phases run in the operator process.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import kopf

from weavergen.api.charter import PHASES, RegenerationCharterSpec
from weavergen.api.common import GROUP, VERSION
from weavergen.api.cycle import FINAL_PHASES, RegenerationCycleSpec
from weavergen.api.profiles import resolve_spec
from weavergen.domain.explore import Outcome
from weavergen.domain.reconcile import Conditions, stamp
from weavergen.k8s.cycles import CycleRunner, snapshot_name
from weavergen.k8s.gateway import KubeGateway
from weavergen.k8s.jobs import PhaseJobs
from weavergen.k8s.rest import Rest
from weavergen.phases.cycle import CyclePhases

# The phase task, the condition it sets, and the workflow data key its result is under.
PHASE_OF_TASK = {
    "define": ("Defined", "define"),
    "measure": ("Measured", "measurement_before"),
    "explore": ("Explored", "exploration"),
    "develop": ("Developed", "solution"),
    "implement": ("Implemented", "implementation"),
}
# After a task finishes, the cycle is in the next phase (Implement is last: its outcome decides).
_NEXT_PHASE = {
    "define": "Measuring",
    "measure": "Exploring",
    "explore": "Developing",
    "develop": "Implementing",
}
OUTCOME_PHASE = {
    "succeeded": "Succeeded",
    "not_needed": "NotNeeded",
    "rolled_back": "RolledBack",
    "failed": "Failed",
    "rollback_failed": "Failed",
}


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _entropy(measurement: dict[str, Any] | None) -> dict[str, Any] | None:
    if not measurement or measurement.get("status") != "ok":
        return None
    return {
        "score": measurement["entropy_score"],
        "level": measurement["entropy_level"],
        "healthScore": measurement["health_score"],
    }


def cycle_status(
    data: dict[str, Any], status: dict[str, Any], generation: int | None
) -> dict[str, Any]:
    """The cycle's status from the workflow data so far (pure)."""
    now = _now()
    conditions = Conditions(list(status.get("conditions") or []), generation, now)
    patch: dict[str, Any] = {"observedGeneration": generation}
    for task, (condition, key) in PHASE_OF_TASK.items():
        if key in data:
            conditions.set(condition, True, "PhaseCompleted", f"{task} completed")
    patch["entropyBefore"] = _entropy(data.get("measurement_before"))
    patch["entropyAfter"] = _entropy(data.get("measurement_after"))
    if "exploration" in data:
        patch["options"] = data["exploration"]["options"]
        patch["chosenStrategy"] = data["chosen"]["strategy"]
    outcome = data.get("outcome")
    implementation = data.get("implementation") or {}
    if outcome:
        phase = OUTCOME_PHASE.get(str(outcome), "Failed")
        if implementation.get("outcome") == "escalated":
            phase = "Escalated"
        patch["phase"] = phase
        patch["finishedAt"] = stamp(now)
        message = _message(phase, data)
        patch["message"] = message
        for kind in ("Succeeded", "RolledBack", "Failed"):
            conditions.set(kind, phase == kind, phase, message if phase == kind else "")
    patch["conditions"] = conditions.items
    return {k: v for k, v in patch.items() if v is not None}


def _message(phase: str, data: dict[str, Any]) -> str:
    failure = data.get("failure") or (data.get("implementation") or {}).get("failure")
    verdict = (data.get("implementation") or {}).get("verdict")
    if phase == "Succeeded":
        return f"{data.get('chosen', {}).get('strategy')} succeeded: " + "; ".join(verdict or [])
    if phase == "NotNeeded":
        return "entropy below the level that needs regeneration"
    if phase == "Escalated":
        return "no safe remedy: escalated without changing anything"
    if failure:
        return f"{phase}: {failure.get('task')} failed: {failure.get('error')}"
    return f"{phase}: " + "; ".join(verdict or ["success criteria not met"])


@kopf.timer(GROUP, VERSION, "regenerationcycles", interval=3, initial_delay=0.5)
def reconcile_cycle(
    *,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    name: str,
    namespace: str | None,
    patch: kopf.Patch,
    memo: Any,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    assert namespace is not None  # both kinds are namespaced
    if status.get("phase") in FINAL_PHASES:
        return
    rest: Rest = memo.rest
    cycle = RegenerationCycleSpec.model_validate(dict(spec))
    charter_obj = rest.get("RegenerationCharter", namespace, cycle.charter_ref.name)
    if charter_obj is None:
        patch.status["phase"] = "Failed"
        patch.status["message"] = f"charter {cycle.charter_ref.name} does not exist"
        return
    charter = RegenerationCharterSpec.model_validate(charter_obj["spec"])
    owner = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RegenerationCycle",
        "name": name,
        "uid": meta["uid"],
        "controller": True,
    }
    gateway = KubeGateway(
        rest,
        namespace,
        cycle.charter_ref.name,
        charter,
        receiver_url=memo.receiver_url,
        snapshot_name=snapshot_name(name),
        owner=owner,
    )
    history = [
        Outcome(h["strategy"], h["signature"], h.get("successes", 0), h.get("failures", 0))
        for h in (charter_obj.get("status") or {}).get("strategyHistory", [])
    ]
    phases = CyclePhases(gateway, charter, cycle, gateway.context(), history)
    jobs = None
    if charter.executor == "job":
        policy = resolve_spec(charter).phase_policy
        assert policy is not None
        runner_jobs = PhaseJobs(
            rest, namespace, cycle=name, owner=owner, policy=policy, receiver_url=memo.receiver_url
        )
        jobs = {phase: runner_jobs.operator(phase) for phase in PHASES}
    started = status.get("startedAt") or stamp(_now())
    current = dict(status)

    def on_step(task: str, data: dict[str, Any]) -> None:
        nonlocal current
        update = {
            **cycle_status(data, current, meta.get("generation")),
            "startedAt": started,
            "workflowState": f"{name}-workflow",
        }
        following = _NEXT_PHASE.get(task)
        if following and "phase" not in update:
            update["phase"] = following
        current = {**current, **update}
        rest.patch("RegenerationCycle", namespace, name, {"status": update}, "status")

    run = CycleRunner(rest, namespace, name, owner, phases.registry(jobs)).run(on_step)
    if run.waiting:
        pending = "; ".join(run.pending.values())
        rest.patch("RegenerationCycle", namespace, name, {"status": {"message": pending}}, "status")
    if not run.completed:
        return
    final = {**cycle_status(run.data, current, meta.get("generation")), "startedAt": started}
    for key, value in final.items():
        patch.status[key] = value
    _record_on_charter(
        rest,
        namespace=namespace,
        charter=cycle.charter_ref.name,
        cycle=name,
        final=final,
        data=run.data,
    )
    logger.info("finished cycle=%s phase=%s", name, final.get("phase"))


def _record_on_charter(
    rest: Rest,
    *,
    namespace: str,
    charter: str,
    cycle: str,
    final: dict[str, Any],
    data: dict[str, Any],
) -> None:
    """Free the charter for its next cycle and add the outcome to its strategy history."""
    obj = rest.get("RegenerationCharter", namespace, charter) or {}
    status = obj.get("status") or {}
    history = list(status.get("strategyHistory") or [])
    exploration, chosen = data.get("exploration"), data.get("chosen")
    if exploration and chosen and final.get("phase") in ("Succeeded", "RolledBack", "Escalated"):
        key = (chosen["strategy"], exploration["signature"])
        entry = next((h for h in history if (h["strategy"], h["signature"]) == key), None)
        if entry is None:
            entry = {"strategy": key[0], "signature": key[1], "successes": 0, "failures": 0}
            history.append(entry)
        won = final["phase"] in ("Succeeded", "Escalated")
        entry["successes" if won else "failures"] += 1
        entry["lastOutcome"] = "Succeeded" if won else "RolledBack"
        entry["lastUsedAt"] = final.get("finishedAt")
    rest.patch(
        "RegenerationCharter",
        namespace,
        charter,
        {
            "status": {
                "activeCycle": None,
                "lastCycle": {
                    "name": cycle,
                    "outcome": final.get("phase"),
                    "finishedAt": final.get("finishedAt"),
                },
                "strategyHistory": history,
                "entropy": {"measuredAt": None},
            }
        },
        "status",
    )
