"""Running a cycle's ``dmedi_cycle.bpmn`` with its state kept in a ConfigMap owned by the cycle.

The workflow state is saved after every step, so an operator that dies between two steps resumes
from the last saved one: a step runs at most once more, and every step is written to be safe to
run twice (snapshots are never overwritten; actions are level-based).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from weavergen.api.charter import PHASES, RegenerationCharterSpec
from weavergen.api.common import API_VERSION, CHARTER_LABEL
from weavergen.api.cycle import FINAL_PHASES, RegenerationCycleSpec
from weavergen.api.profiles import resolve_spec
from weavergen.domain.control import chart_cycle
from weavergen.domain.cycle_status import PHASE_TASKS, RUNNING_PHASE, cycle_status, phase_records
from weavergen.domain.names import child_name, cycle_name, label_value
from weavergen.domain.reconcile import record_outcome
from weavergen.domain.times import parse_time, stamp
from weavergen.k8s.events import involved, post_event
from weavergen.k8s.gateway import charter_owner
from weavergen.k8s.jobs import (
    CYCLE_LABEL,
    PhaseJobs,
    cycle_owner,
    cycle_phases,
    result_name,
    snapshot_name,
)
from weavergen.k8s.rest import Rest
from weavergen.k8s.snapshots import CHUNKS_ANNOTATION, SHA_ANNOTATION
from weavergen.phases.cycle import record_cycle_span, trace_id_of
from weavergen.telemetry import metrics
from weavergen.telemetry.tracing import traceparent
from weavergen.workflows import Pending, ServiceRegistry, WorkflowRun, start_cycle_workflow

STATE_KEY = "state.json.gz"


def cycle_manifest(
    charter: str, namespace: str, uid: str, reason: str, now: datetime
) -> dict[str, Any]:
    """The cycle a charter starts (pure): named after the charter and the second it starts."""
    return {
        "apiVersion": API_VERSION,
        "kind": "RegenerationCycle",
        "metadata": {
            "name": cycle_name(charter, f"{now:%Y%m%d-%H%M%S}"),
            "namespace": namespace,
            "labels": {CHARTER_LABEL: label_value(charter)},
            "ownerReferences": [charter_owner(charter, uid)],
        },
        "spec": {"charterRef": {"name": charter}, "reason": reason},
    }


def start_cycle(rest: Rest, manifest: dict[str, Any]) -> tuple[str, bool]:
    """Create the cycle unless the charter already has an unfinished one; (name, created).

    The charter records its active cycle in a status patch after the create: if that patch is
    lost (the operator died in between), the next start finds the cycle it made instead of
    starting a second one. A name taken by another owner's cycle is an error, not adopted.
    """
    metadata = manifest["metadata"]
    namespace, owner = metadata["namespace"], metadata["ownerReferences"][0]
    for existing in rest.list("RegenerationCycle", namespace, metadata["labels"]):
        if _owned_by(existing, owner["uid"]) and not _finished(existing):
            return existing["metadata"]["name"], False
    try:
        rest.create("RegenerationCycle", namespace, manifest)
    except ApiException as err:
        if err.status != 409:
            raise
        existing = rest.get("RegenerationCycle", namespace, metadata["name"]) or {}
        if not _owned_by(existing, owner["uid"]):
            raise CycleNameTaken(
                f"cycle {namespace}/{metadata['name']} exists and belongs to another owner"
            ) from None
        return metadata["name"], False
    return metadata["name"], True


class CycleNameTaken(RuntimeError):
    """The name a charter's new cycle would take is used by something that is not its own."""


def _owned_by(obj: Mapping[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in obj.get("metadata", {}).get("ownerReferences", []))


def _finished(cycle: Mapping[str, Any]) -> bool:
    return (cycle.get("status") or {}).get("phase") in FINAL_PHASES


def state_name(cycle: str) -> str:
    return child_name(cycle, "workflow")


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
        return start_cycle_workflow(registry)

    def _save(self, run: WorkflowRun) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": state_name(self.cycle),
                "namespace": self.namespace,
                "ownerReferences": [self.owner],
                "labels": {CYCLE_LABEL: label_value(self.cycle)},
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


APPROVAL_ANNOTATION = "regeneration.weavergen.io/approve"


def awaiting_approval(params: dict[str, Any], data: dict[str, Any]) -> None:
    """Implement in propose mode, until a person approves the plan Develop left in status."""
    raise Pending(
        f"plan ready ({(data.get('chosen') or {}).get('strategy')}): approve with "
        f"kubectl annotate rcy <name> {APPROVAL_ANNOTATION}=true"
    )


class CycleReconciler:
    """One reconcile of one cycle: gather, run the workflow from its saved state, record."""

    def __init__(self, rest: Rest, receiver_url: str | None = None) -> None:
        self.rest = rest
        self.receiver_url = receiver_url

    def reconcile(
        self,
        namespace: str,
        name: str,
        meta: Mapping[str, Any],
        spec: Mapping[str, Any],
        status: Mapping[str, Any],
    ) -> dict[str, Any] | None:
        """Advance the cycle; returns its final status once it has finished, else None."""
        cycle = RegenerationCycleSpec.model_validate(dict(spec))
        charter_obj = self.rest.get("RegenerationCharter", namespace, cycle.charter_ref.name)
        if charter_obj is None:
            return {
                "phase": "Failed",
                "message": f"charter {cycle.charter_ref.name} does not exist",
            }
        owner = cycle_owner(name, meta["uid"])
        trace_id = status.get("traceId") or trace_id_of(meta["uid"])
        involved = {
            **{k: owner[k] for k in ("apiVersion", "kind", "name", "uid")},
            "namespace": namespace,
        }
        phases = cycle_phases(
            self.rest,
            namespace,
            cycle=name,
            uid=meta["uid"],
            spec=cycle,
            charter_obj=charter_obj,
            receiver_url=self.receiver_url,
            trace_parent=traceparent(trace_id),
        )
        charter = phases.charter
        jobs = None
        if charter.executor == "job":
            policy = resolve_spec(charter).phase_policy
            assert policy is not None
            phase_jobs = PhaseJobs(
                self.rest,
                namespace,
                cycle=name,
                owner=owner,
                policy=policy,
                receiver_url=self.receiver_url,
                trace_id=trace_id,
            )
            jobs = {phase: phase_jobs.operator(phase) for phase in PHASES}
        current: dict[str, Any] = {
            "traceId": trace_id,
            "startedAt": status.get("startedAt") or stamp(_now()),
            "workflowState": state_name(name),
            **dict(status),
        }

        def on_step(task: str, data: dict[str, Any]) -> None:
            now = _now()
            update = self.with_snapshot(
                namespace, name, data, cycle_status(data, current, meta.get("generation"), now)
            )
            if task in PHASE_TASKS:
                update["phases"] = phase_records(
                    current.get("phases") or [],
                    task,
                    finished=True,
                    now=now,
                    cycle_started=current["startedAt"],
                )
                post_event(self.rest, involved, f"{PHASE_TASKS[task][0]}", f"phase {task} finished")
                following = NEXT_PHASE.get(task)
                if following and "phase" not in update:
                    update["phase"] = RUNNING_PHASE[following]
                elif task == "implement" and "phase" not in update:
                    # The fix failed or did not hold: the cycle restores its snapshot next.
                    update["phase"] = (
                        "Implementing"
                        if data.get("implementation_succeeded")
                        or data.get("implementation_escalated")
                        else "RollingBack"
                    )
            current.update(update)
            self.patch_status(
                namespace,
                name,
                {
                    **update,
                    "startedAt": current["startedAt"],
                    "workflowState": state_name(name),
                    "traceId": trace_id,
                },
            )

        operators = dict(jobs or {})
        approved = (meta.get("annotations") or {}).get(APPROVAL_ANNOTATION) == "true"
        if charter.mode == "propose" and not approved and not cycle.dry_run:
            operators["implement"] = awaiting_approval
        run = CycleRunner(self.rest, namespace, name, owner, phases.registry(operators)).run(
            on_step
        )
        if run.waiting:
            task = next(iter(run.pending))
            job = result_name(name, task) if jobs else None
            waiting_for_people = operators.get(task) is awaiting_approval
            self.patch_status(
                namespace,
                name,
                {
                    "phase": "AwaitingApproval"
                    if waiting_for_people
                    else RUNNING_PHASE.get(task, "Pending"),
                    "message": "; ".join(run.pending.values()),
                    "phases": phase_records(
                        current.get("phases") or [],
                        task,
                        finished=False,
                        now=_now(),
                        cycle_started=current["startedAt"],
                        job=job,
                    ),
                },
            )
            return None
        if not run.completed:
            return None
        final = self.with_snapshot(
            namespace,
            name,
            run.data,
            {
                **cycle_status(run.data, current, meta.get("generation"), _now()),
                "startedAt": current["startedAt"],
                "traceId": trace_id,
                "phases": current.get("phases") or [],
            },
        )
        post_event(
            self.rest,
            involved,
            str(final.get("phase")),
            str(final.get("message", "")),
            warning=final.get("phase") in ("RolledBack", "Failed"),
        )
        self.record_on_charter(namespace, cycle.charter_ref.name, name, final, run.data)
        started = parse_time(final.get("startedAt"))
        finished = parse_time(final.get("finishedAt")) or _now()
        record_cycle_span(
            trace_id,
            final,
            {
                "weavergen.cycle.name": name,
                "weavergen.cycle.namespace": namespace,
                "weavergen.charter.name": cycle.charter_ref.name,
                "weavergen.system.id": charter.system_id,
            },
            start_ns=_nanoseconds(started or finished),
            end_ns=_nanoseconds(finished),
        )
        return final

    def with_snapshot(
        self, namespace: str, name: str, data: Mapping[str, Any], status: dict[str, Any]
    ) -> dict[str, Any]:
        """A status with the cycle's snapshot reference, and the snapshot a rollback restored
        from: every write of a final status says the same (the first one may be read)."""
        status.update(self.snapshot_ref(namespace, name, data))
        if "rollback" in status:
            status["rollback"] = {**status["rollback"], "snapshot": snapshot_name(name)}
        return status

    def snapshot_ref(self, namespace: str, name: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """``{"snapshot": ...}`` once Implement has taken one, else nothing."""
        stored = self.rest.get("ConfigMap", namespace, snapshot_name(name))
        if stored is None or not data.get("snapshot"):
            return {}
        annotations = stored["metadata"].get("annotations") or {}
        return {
            "snapshot": {
                "configMap": snapshot_name(name),
                "sha256": annotations.get(SHA_ANNOTATION, ""),
                "objects": data["snapshot"].get("objects") or 0,
                "chunks": int(annotations.get(CHUNKS_ANNOTATION, "1")),
            }
        }

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.rest.patch("RegenerationCycle", namespace, name, {"status": status}, "status")

    def record_on_charter(
        self,
        namespace: str,
        charter: str,
        cycle: str,
        final: dict[str, Any],
        data: Mapping[str, Any],
    ) -> None:
        """Free the charter for its next cycle; the outcome joins its history and incident."""
        obj = self.rest.get("RegenerationCharter", namespace, charter) or {}
        recorded = record_outcome(
            obj.get("status") or {}, cycle=cycle, final=final, data=data, now=_now()
        )
        charts: dict[str, Any] = {}
        duration = metrics.cycle_seconds(final)
        if duration is not None and obj.get("spec"):
            charted = chart_cycle(
                RegenerationCharterSpec.model_validate(obj["spec"]),
                (obj.get("status") or {}).get("controlCharts"),
                duration_seconds=duration,
                at=str(final.get("finishedAt")),
            )
            charts = charted.charts
            for _, signal in charted.signals:
                post_event(
                    self.rest,
                    involved(obj),
                    f"ControlChart{signal.rule}",
                    signal.message,
                    warning=True,
                )
        self.rest.patch(
            "RegenerationCharter",
            namespace,
            charter,
            {"status": {**recorded, **({"controlCharts": charts} if charts else {})}},
            "status",
        )


def _nanoseconds(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp() * 1e9)


NEXT_PHASE = {
    "define": "measure",
    "measure": "explore",
    "explore": "develop",
    "develop": "implement",
}


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
