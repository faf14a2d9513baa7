"""Running a cycle's ``dmedi_cycle.bpmn`` with its state kept in a ConfigMap owned by the cycle.

The workflow state is saved after every step, so an operator that dies between two steps resumes
from the last saved one: a step runs at most once more, and every step is written to be safe to
run twice (snapshots are never overwritten; actions are level-based).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

from kubernetes.client.exceptions import ApiException

from weavergen.api.charter import PHASES
from weavergen.api.common import API_VERSION
from weavergen.api.cycle import FINAL_PHASES, RegenerationCycleSpec
from weavergen.api.keys import (
    APPROVAL_ANNOTATION,
    CHARTER_LABEL,
    CYCLE_LABEL,
)
from weavergen.config import operator_config
from weavergen.domain.decide.cycle_plan import (
    CycleDecision,
    CycleObservation,
    approval_needed,
    awaits_charter_record,
    plan_cycle,
    plan_missing_charter,
)
from weavergen.domain.decide.cycle_requests import (
    Request,
    StopObservation,
    plan_retried,
    plan_stop,
    requests_of,
    stop_request,
)
from weavergen.domain.decide.reconcile import merge_patch
from weavergen.domain.errors import CycleNameTaken, parsed_spec
from weavergen.domain.names import child_name, cycle_name, label_value, retry_name
from weavergen.domain.owners import owned_by
from weavergen.domain.times import parse_time
from weavergen.k8s.cluster_target import charter_owner
from weavergen.k8s.cycle_requests import restore, running_jobs, snapshot_ref, stop_jobs
from weavergen.k8s.events import involved, post_event
from weavergen.k8s.jobs import (
    PhaseJobs,
    cycle_owner,
    cycle_phases,
    result_name,
)
from weavergen.k8s.notifications import routing
from weavergen.k8s.rest import Rest
from weavergen.k8s.status import write_status
from weavergen.phases.cycle import CyclePhases, record_cycle_span, trace_id_of
from weavergen.telemetry.tracing import traceparent
from weavergen.workflows.engine import WorkflowRun
from weavergen.workflows.registry import Operator, Pending, ServiceRegistry
from weavergen.workflows.runs import start_cycle_workflow

STATE_KEY = "state.json.gz"
# Between two reads of a charter that has not recorded its new cycle yet.
RECORD_POLL_SECONDS = 0.05


def cycle_manifest(
    charter: str, namespace: str, uid: str, reason: str, now: datetime
) -> dict[str, Any]:
    """The cycle a charter starts (pure): named after the charter and the second it starts."""
    spec = {"charterRef": {"name": charter}, "reason": reason}
    return _charter_cycle(cycle_name(charter, f"{now:%Y%m%d-%H%M%S}"), namespace, uid, spec)


def retry_manifest(cycle: Mapping[str, Any], charter_uid: str) -> dict[str, Any]:
    """The cycle that retries ``cycle`` (pure): the same request (charter, reason, strategy,
    dry run), named after it so a second retry request finds it, and recording it."""
    name = cycle["metadata"]["name"]
    spec = {**cycle["spec"], "retryOf": name}
    return _charter_cycle(retry_name(name), cycle["metadata"]["namespace"], charter_uid, spec)


def _charter_cycle(
    name: str, namespace: str, charter_uid: str, spec: dict[str, Any]
) -> dict[str, Any]:
    """A cycle owned by its charter (deleted with it) and labelled with the charter's name."""
    charter = spec["charterRef"]["name"]
    return {
        "apiVersion": API_VERSION,
        "kind": "RegenerationCycle",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {CHARTER_LABEL: label_value(charter)},
            "ownerReferences": [charter_owner(charter, charter_uid)],
        },
        "spec": spec,
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
        if owned_by(existing, owner["uid"]) and not _finished(existing):
            return existing["metadata"]["name"], False
    try:
        rest.create("RegenerationCycle", namespace, manifest)
    except ApiException as err:
        if err.status != 409:
            raise
        existing = rest.get("RegenerationCycle", namespace, metadata["name"]) or {}
        if not owned_by(existing, owner["uid"]):
            raise CycleNameTaken(
                f"cycle {namespace}/{metadata['name']} exists and belongs to another owner"
            ) from None
        return metadata["name"], False
    return metadata["name"], True


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


@dataclass(frozen=True)
class ApprovalGate:
    """Implement waits here while a person has to approve the plan Develop left in status."""

    mode: str
    approved: bool
    dry_run: bool

    def reason(self, data: Mapping[str, Any]) -> str | None:
        if self.approved:
            return None
        return approval_needed(self.mode, data.get("solution"), dry_run=self.dry_run)

    def guard(self, implement: Operator, on_hold: Callable[[], None] | None = None) -> Operator:
        """Implement behind the gate; ``on_hold`` is called while it holds."""

        def gated(params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any] | None:
            why = self.reason(data)
            if why is not None:
                if on_hold is not None:
                    on_hold()
                raise Pending(
                    f"plan ready ({(data.get('chosen') or {}).get('strategy')}, {why}): approve "
                    f"with kubectl annotate rcy <name> {APPROVAL_ANNOTATION}=true"
                )
            return implement(params, data)

        return gated


def approval_gate(
    phases: CyclePhases, cycle: RegenerationCycleSpec, meta: Mapping[str, Any]
) -> ApprovalGate:
    approved = (meta.get("annotations") or {}).get(APPROVAL_ANNOTATION) == "true"
    return ApprovalGate(phases.charter.mode, approved, cycle.dry_run)


@dataclass(frozen=True)
class _CycleRefs:
    """Who a cycle's writes concern: the cycle, its charter, and the cycle's trace."""

    namespace: str
    cycle: str
    charter: str
    cycle_involved: dict[str, Any]
    charter_involved: dict[str, Any]
    trace_id: str
    span_identity: dict[str, str]

    @classmethod
    def of(
        cls,
        namespace: str,
        owner: Mapping[str, Any],
        charter: str,
        charter_obj: Mapping[str, Any] | None,
        trace_id: str,
    ) -> _CycleRefs:
        """The references of a cycle (``owner``: its owner reference) and of its charter."""
        cycle = owner["name"]
        spec = (charter_obj or {}).get("spec") or {}
        return cls(
            namespace,
            cycle,
            charter,
            {
                **{k: owner[k] for k in ("apiVersion", "kind", "name", "uid")},
                "namespace": namespace,
            },
            involved(dict(charter_obj)) if charter_obj else {},
            trace_id if charter_obj else "",  # a cycle that never ran records no span
            {
                "weavergen.cycle.name": cycle,
                "weavergen.cycle.namespace": namespace,
                "weavergen.charter.name": charter,
                "weavergen.system.id": str(spec.get("systemId", "")),
            },
        )


class CycleReconciler:
    """One reconcile of one cycle: gather, run the workflow from its saved state, plan, apply."""

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
    ) -> CycleDecision | None:
        """Advance the cycle; returns the decision that ended it once it is over, else None."""
        cycle = parsed_spec(RegenerationCycleSpec, spec)
        charter_obj = self.charter_of(namespace, cycle.charter_ref.name, meta, status)
        owner = cycle_owner(name, meta["uid"])
        trace_id = status.get("traceId") or trace_id_of(meta["uid"])
        if charter_obj is None:
            refs = _CycleRefs.of(namespace, owner, cycle.charter_ref.name, None, "")
            return self.apply(refs, plan_missing_charter(cycle.charter_ref.name, status, _now()))
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
        refs = _CycleRefs.of(namespace, owner, cycle.charter_ref.name, charter_obj, trace_id)
        told = routing(phases.charter, namespace, operator_config().notifications)
        request = stop_request(status, requests_of(meta.get("annotations")))
        if request is not None:
            stopping = StopObservation(
                name=name,
                request=request,
                status=dict(status),
                generation=meta.get("generation"),
                charter_status=charter_obj.get("status") or {},
                routing=told,
            )
            return self.stop(refs, phases, stopping)
        operators = self.phase_operators(refs, owner, phases, cycle, meta)
        observed = CycleObservation(
            name=name,
            status=dict(status),
            generation=meta.get("generation"),
            trace_id=trace_id,
            workflow_state=state_name(name),
            charter=phases.charter,
            charter_status=charter_obj.get("status") or {},
            routing=told,
        )
        return self.advance(
            refs,
            observed,
            CycleRunner(self.rest, namespace, name, owner, phases.registry(operators)),
            approval_gate(phases, cycle, meta),
            jobs=phases.charter.executor == "job",
        )

    def charter_of(
        self, namespace: str, charter: str, meta: Mapping[str, Any], status: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """The cycle's charter, once it has recorded the new cycle it started (see
        `awaits_charter_record`): its patch follows the create by milliseconds, so it is read
        again at once rather than at the timer's next tick seconds later."""
        while True:
            found = self.rest.get("RegenerationCharter", namespace, charter)
            if found is None or not awaits_charter_record(meta, status, found, _now()):
                return found
            time.sleep(RECORD_POLL_SECONDS)

    def phase_operators(
        self,
        refs: _CycleRefs,
        owner: dict[str, Any],
        phases: CyclePhases,
        cycle: RegenerationCycleSpec,
        meta: Mapping[str, Any],
    ) -> dict[str, Any]:
        """The operators that replace inline phases: phase Jobs, and Implement behind the
        approval gate. Implement's Job is started ahead only where no person needs to give it
        its turn; one started ahead of a plan that does need a person (it changes what GitOps
        would revert) is withdrawn while the gate holds."""
        operators: dict[str, Any] = {}
        gate = approval_gate(phases, cycle, meta)
        on_hold = None
        if phases.charter.executor == "job":
            held = {"implement"} if gate.reason({}) is not None else set()
            jobs = PhaseJobs(
                self.rest,
                refs.namespace,
                cycle=refs.cycle,
                owner=owner,
                policy=phases.spec.phase_policy,
                receiver_url=self.receiver_url,
                trace_id=refs.trace_id,
                ahead=frozenset(PHASES[1:]) - held,
            )
            operators = {phase: jobs.operator(phase) for phase in PHASES}
            on_hold = partial(jobs.withdraw, "implement")
        implement = operators.get("implement") or phases.traced("implement")
        operators["implement"] = gate.guard(implement, on_hold)
        return operators

    def advance(
        self,
        refs: _CycleRefs,
        observed: CycleObservation,
        runner: CycleRunner,
        gate: ApprovalGate,
        *,
        jobs: bool,
    ) -> CycleDecision | None:
        """Run the workflow as far as it goes, applying the plan after every step and at the
        point where it stops (a wait, or the end)."""

        def on_step(task: str, data: dict[str, Any]) -> None:
            nonlocal observed
            observed = replace(
                observed, data=data, step=task, snapshot=self.stored_snapshot(refs, data)
            )
            decision = plan_cycle(observed, _now())
            self.apply(refs, decision)
            observed = replace(observed, status=merge_patch(observed.status, decision.status))

        run = runner.run(on_step)
        if not (run.waiting or run.completed):
            return None
        task = next(iter(run.pending), None)
        awaiting = task == "implement" and gate.reason(run.data) is not None
        observed = replace(
            observed,
            data=run.data,
            step=None,
            pending=run.pending,
            awaiting_approval=awaiting,
            job=result_name(refs.cycle, task) if task and jobs and not awaiting else None,
            completed=run.completed,
            snapshot=self.stored_snapshot(refs, run.data),
        )
        decision = self.apply(refs, plan_cycle(observed, _now()))
        return decision if decision.done else None

    def apply(self, refs: _CycleRefs, decision: CycleDecision) -> CycleDecision:
        """Write the decision: the charter first (so a cycle is never over while its charter
        still waits for it), then the cycle, its Events and, once it is over, its root span."""
        if decision.charter_status:
            write_status(
                self.rest,
                "RegenerationCharter",
                refs.namespace,
                refs.charter,
                decision.charter_status,
            )
        for event in decision.charter_events:
            post_event(
                self.rest,
                refs.charter_involved,
                event.reason,
                event.message,
                warning=event.warning,
            )
        if decision.status:
            write_status(
                self.rest, "RegenerationCycle", refs.namespace, refs.cycle, decision.status
            )
        for event in decision.events:
            post_event(
                self.rest,
                refs.cycle_involved,
                event.reason,
                event.message,
                warning=event.warning,
            )
        if decision.done and refs.trace_id:
            started = parse_time(decision.status.get("startedAt"))
            finished = parse_time(decision.status.get("finishedAt")) or _now()
            record_cycle_span(
                refs.trace_id,
                decision.status,
                refs.span_identity,
                start_ns=_nanoseconds(started or finished),
                end_ns=_nanoseconds(finished),
            )
        return decision

    def stored_snapshot(self, refs: _CycleRefs, data: Mapping[str, Any]) -> dict[str, Any] | None:
        """The stored snapshot's reference once Implement has taken one, else None."""
        if not data.get("snapshot"):
            return None
        return snapshot_ref(self.rest, refs.namespace, refs.cycle)

    def stop(
        self, refs: _CycleRefs, phases: CyclePhases, observed: StopObservation
    ) -> CycleDecision | None:
        """One step of an abort or reject (``plan_stop``): stop the Jobs and wait, or restore
        the snapshot through the cycle's own rollback and end; the final decision once over."""
        observed = replace(
            observed,
            running_jobs=running_jobs(self.rest, refs.namespace, refs.cycle),
            snapshot=snapshot_ref(self.rest, refs.namespace, refs.cycle),
        )
        plan = plan_stop(observed, _now())
        self.apply(refs, plan.decision)
        stop_jobs(self.rest, refs.namespace, plan.delete_jobs)
        if plan.restore:
            restored, failure = restore(phases.operators)
            observed = replace(
                observed,
                status=merge_patch(observed.status, plan.decision.status),
                restored=restored,
                restore_failure=failure,
            )
            plan = plan_stop(observed, _now())
            self.apply(refs, plan.decision)
        return plan.decision if plan.decision.done else None

    def retry(
        self, namespace: str, cycle: Mapping[str, Any], request: Request
    ) -> CycleDecision | None:
        """Start the one cycle that retries ``cycle`` and record it on both sides; it waits
        while the charter runs another cycle (one at a time). The decision, once retried."""
        meta, charter = cycle["metadata"], cycle["spec"]["charterRef"]["name"]
        charter_obj = self.rest.get("RegenerationCharter", namespace, charter)
        if charter_obj is None:
            return None  # its cycles go with it (owner references)
        manifest = retry_manifest(cycle, charter_obj["metadata"]["uid"])
        new = manifest["metadata"]["name"]
        started, created = start_cycle(self.rest, manifest)
        if started != new:
            return None  # the charter's unfinished cycle first
        owner = cycle_owner(meta["name"], meta["uid"])
        refs = _CycleRefs.of(namespace, owner, charter, charter_obj, "")  # "": no span
        decision = plan_retried(
            meta["name"],
            new,
            request,
            charter_obj.get("status") or {},
            created=created,
            now=_now(),
        )
        return self.apply(refs, decision)


def _nanoseconds(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp() * 1e9)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
