"""Phases as Kubernetes Jobs: the operator starts one Job per phase and waits for its result.

A Job runs ``weavergen phase run --phase P --cycle NS/NAME`` from the operator's image; the
phase reads the results earlier phases left in ``<cycle>-<phase>`` ConfigMaps and writes its own
there, owned by the cycle. The operator side is a workflow operator that creates the Job once
(deterministic name, owner reference, labels, deadline and retries from the charter), reports
``Pending`` while it runs, and returns the validated result, or fails with the Job's reason.

A pod takes about a second to start and load the code, longer than most phases run, so the
Jobs of the next phases (``phasePolicy.phasesAhead``) are started while a phase runs, ahead of
their turn, with ``--wait-turn``: each pod waits, watching its Job, until the operator sets the
Job's turn annotation to ``go`` when the workflow reaches the phase, or to ``cancelled`` when
the cycle ends another way (then it exits without a result). A Job that ended before its turn
(its deadline, or cancelled) is replaced when the turn comes after all.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from itertools import chain
from typing import Any, NoReturn

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError
from urllib3.exceptions import HTTPError as TransportError

from weavergen.api.charter import PHASES, PhasePolicySpec, RegenerationCharterSpec
from weavergen.api.common import format_validation_error
from weavergen.api.cycle import FINAL_PHASES, RegenerationCycleSpec
from weavergen.api.keys import CYCLE_LABEL, PHASE_LABEL, TURN_ANNOTATION
from weavergen.api.phase_results import PHASE_RESULTS
from weavergen.config import OperatorConfig, operator_config
from weavergen.domain.decide.incident import attempts_of
from weavergen.domain.decide.reconcile import incident_onset, strategy_records, window_since
from weavergen.domain.errors import CharterNotFound, CycleNotFound, PhaseFailed
from weavergen.domain.names import child_name, label_value
from weavergen.domain.owners import owned_by
from weavergen.domain.times import parse_time
from weavergen.k8s.cluster_target import ClusterTarget, owner_reference
from weavergen.k8s.rest import Rest
from weavergen.phases.cycle import CyclePhases
from weavergen.telemetry import tracing
from weavergen.workflows.registry import Pending

log = logging.getLogger(__name__)
RESULT_KEY = "result.json"
# A Job started ahead of its phase's turn (`TURN_ANNOTATION`): waiting, given it, or cancelled.
TURN_WAITING, TURN_GO, TURN_CANCELLED = "waiting", "go", "cancelled"
WAIT_WATCH_SECONDS = 60  # one watch of a waiting Job; it is watched again until its deadline


def snapshot_name(cycle: str) -> str:
    """Where a cycle keeps the snapshot it takes before changing anything."""
    return child_name(cycle, "snapshot")


def journal_name(cycle: str) -> str:
    """Where a cycle records the object states it writes (its own, not someone else's edits)."""
    return child_name(cycle, "writes")


def result_name(cycle: str, phase: str) -> str:
    """A phase's Job and the ConfigMap of its result (one name: the Job writes it)."""
    return child_name(cycle, phase)


def job_manifest(
    *,
    namespace: str,
    cycle: str,
    owner: dict[str, Any],
    phase: str,
    policy: PhasePolicySpec,
    receiver_url: str | None,
    config: OperatorConfig,
    trace_id: str | None = None,
    ahead_of: Sequence[str] = (),
) -> dict[str, Any]:
    """The Job of one phase (pure: same inputs, same Job); started ahead of the phases
    ``ahead_of`` it waits for its turn, within their deadlines and its own."""
    labels = phase_labels(cycle, phase)
    env = phase_env(phase, receiver_url=receiver_url, trace_id=trace_id)
    waits = sum(policy.deadline_seconds(earlier) for earlier in ahead_of)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": result_name(cycle, phase),
            "namespace": namespace,
            "labels": labels,
            "ownerReferences": [owner],
            **({"annotations": {TURN_ANNOTATION: TURN_WAITING}} if ahead_of else {}),
        },
        "spec": {
            "activeDeadlineSeconds": waits + policy.deadline_seconds(phase),
            "backoffLimit": policy.backoff_limit,
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {"labels": labels},
                "spec": phase_pod_spec(
                    phase_container(namespace, cycle, phase, env, config, waits=bool(ahead_of)),
                    config,
                ),
            },
        },
    }


def phase_labels(cycle: str, phase: str) -> dict[str, str]:
    """The labels of a phase's Job and pods, so they can be found by cycle and phase."""
    return {
        CYCLE_LABEL: label_value(cycle),
        PHASE_LABEL: phase,
        "app.kubernetes.io/name": "weavergen-phase",
    }


def phase_env(
    phase: str, *, receiver_url: str | None, trace_id: str | None
) -> list[dict[str, str]]:
    """A phase's environment: its spans join the cycle's trace and export where the operator's
    do, and it reads span summaries from the operator's receiver when there is one."""
    env = [{"name": "WEAVERGEN_PHASE", "value": phase}]
    if trace_id:
        # W3C trace context: the phase's spans join the cycle's trace (parent: the cycle root).
        env.append({"name": "TRACEPARENT", "value": tracing.traceparent(trace_id)})
    env.extend(otel_environment())
    if receiver_url:
        env.append({"name": "WEAVERGEN_RECEIVER_URL", "value": receiver_url})
    # Develop names the changes Argo CD would revert: it looks where the operator looks.
    env.append({"name": "WEAVERGEN_ARGOCD_NAMESPACE", "value": operator_config().argocd_namespace})
    return env


def phase_container(
    namespace: str,
    cycle: str,
    phase: str,
    env: list[dict[str, str]],
    config: OperatorConfig,
    *,
    waits: bool = False,
) -> dict[str, Any]:
    """The container that runs one phase from the operator's image, locked down: it writes
    only to its own /tmp, and its logs explain a failure that left no termination message."""
    return {
        "name": "phase",
        "image": config.image,
        "imagePullPolicy": config.image_pull_policy,
        "command": [
            "weavergen",
            "phase",
            "run",
            "--phase",
            phase,
            "--cycle",
            f"{namespace}/{cycle}",
            *(["--wait-turn"] if waits else []),
        ],
        "env": env,
        "resources": {part: dict(amounts) for part, amounts in config.phase_resources.items()},
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }


def phase_pod_spec(container: dict[str, Any], config: OperatorConfig) -> dict[str, Any]:
    """A phase's pod: run once (the Job retries), as the phase service account, non-root, with
    an empty /tmp as the one writable place."""
    return {
        "restartPolicy": "Never",
        "serviceAccountName": config.phase_service_account,
        "containers": [container],
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }


def otel_environment(env: Mapping[str, str] = os.environ) -> list[dict[str, str]]:
    """The operator's own ``OTEL_*`` settings, so a phase Job exports where the operator does.

    Headers may hold credentials; they are passed only as the operator has them, in the Job of
    its own cycle, which only the operator and people with the same rights can read.
    """
    return [
        {"name": name, "value": value}
        for name, value in sorted(env.items())
        if name.startswith("OTEL_") and name != "OTEL_SERVICE_NAME"
    ]


def job_failure(job: dict[str, Any]) -> str | None:
    """The reason a Job failed for good, or None while it may still succeed."""
    for condition in (job.get("status") or {}).get("conditions", []):
        if (
            condition.get("type") in ("Failed", "FailureTarget")
            and condition.get("status") == "True"
        ):
            return f"{condition.get('reason')}: {condition.get('message', '')}".strip(": ")
    return None


def job_finished(job: dict[str, Any]) -> bool:
    """Whether the Job controller has decided the Job's end (success or failure)."""
    return any(
        condition.get("type") in ("Complete", "SuccessCriteriaMet", "Failed", "FailureTarget")
        and condition.get("status") == "True"
        for condition in (job.get("status") or {}).get("conditions", [])
    )


# The phases whose pod's end may end a cycle: those whose Job may be started ahead, and so be
# withdrawn as the cycle ends (Explore's, when Measure finds no regeneration needed). A pod
# that wrote its result has ended already for its cycle.
LAST_POD_PHASES = PHASES[1:]


def turn(job: dict[str, Any]) -> str | None:
    """A Job's turn annotation: None for a Job started in its turn."""
    return (job["metadata"].get("annotations") or {}).get(TURN_ANNOTATION)


class PhaseJobs:
    """Workflow operators that run each phase as a Job of the cycle; the Jobs of the phases in
    ``ahead`` are started while the phase before them runs (see the module)."""

    def __init__(
        self,
        rest: Rest,
        namespace: str,
        *,
        cycle: str,
        owner: dict[str, Any],
        policy: PhasePolicySpec,
        receiver_url: str | None = None,
        trace_id: str | None = None,
        ahead: frozenset[str] = frozenset(),
    ) -> None:
        self.trace_id = trace_id
        self.rest = rest
        self.namespace = namespace
        self.cycle = cycle
        self.owner = owner
        self.policy = policy
        self.receiver_url = receiver_url
        self.ahead = ahead

    def operator(self, phase: str) -> Any:
        def run(params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
            name = result_name(self.cycle, phase)
            result = self.rest.get("ConfigMap", self.namespace, name)
            if result is not None:
                return self._finished(phase, result)
            job = self.rest.get("Job", self.namespace, name)
            if job is None:
                self.rest.create("Job", self.namespace, self._manifest(phase))
                self._start_ahead(phase)
                raise Pending(f"started Job {name}")
            if turn(job) in (TURN_WAITING, TURN_CANCELLED):
                self._give_turn(job)
            failure = job_failure(job)
            if failure is None and job_finished(job):
                failure = "completed without writing its result ConfigMap"
            if failure is not None:
                if not self._wind_down():
                    raise Pending(f"Job {name} failed: ending the Jobs started ahead first")
                raise PhaseFailed(f"Job {name} failed: {failure}")
            raise Pending(f"Job {name} is running")

        return run

    def _manifest(self, phase: str, ahead_of: Sequence[str] = ()) -> dict[str, Any]:
        return job_manifest(
            namespace=self.namespace,
            cycle=self.cycle,
            owner=self.owner,
            phase=phase,
            policy=self.policy,
            receiver_url=self.receiver_url,
            config=operator_config(),
            trace_id=self.trace_id,
            ahead_of=ahead_of,
        )

    def _start_ahead(self, phase: str) -> None:
        """Start the Jobs of the next phases that may start ahead, to wait for their turn
        while ``phase`` runs."""
        first = PHASES.index(phase)
        for following in PHASES[first + 1 : first + 1 + self.policy.phases_ahead]:
            if following not in self.ahead:
                return
            before = PHASES[first : PHASES.index(following)]
            try:
                self.rest.create("Job", self.namespace, self._manifest(following, before))
            except ApiException as err:
                # 409: started ahead already (an earlier reconcile). Any other refusal only
                # costs the start-up: the Job is started in its turn then.
                if err.status != 409:
                    log.warning("could not start Job %s ahead: %s", following, err.reason)
                    return

    def _give_turn(self, job: dict[str, Any]) -> NoReturn:
        """The turn of a Job started ahead: go, or replace it if it ended before its turn."""
        name = job["metadata"]["name"]
        if job_finished(job):
            self.rest.delete("Job", self.namespace, name, propagation="Background")
            raise Pending(f"replacing Job {name}: it ended before its turn")
        if turn(job) == TURN_CANCELLED:
            raise Pending(f"Job {name} was cancelled: starting it anew once it has ended")
        phase = job["metadata"]["labels"][PHASE_LABEL]
        # The phase's own deadline runs from its turn: the Job's counts from its start.
        started = parse_time((job.get("status") or {}).get("startTime")) or parse_time(
            job["metadata"]["creationTimestamp"]
        )
        now = datetime.now(UTC).replace(tzinfo=None)
        waited = max(0, math.ceil((now - started).total_seconds())) if started else 0
        self._set_turn(name, TURN_GO, deadline=waited + self.policy.deadline_seconds(phase))
        self._start_ahead(phase)
        raise Pending(f"gave Job {name}, started ahead, its turn")

    def _finished(self, phase: str, result: dict[str, Any]) -> dict[str, Any]:
        """A phase that wrote its result has acted: the next may start while its pod exits.
        The cycle never ends while a pod of its own may still act, though: a result that ends
        it (Implement's, Measure's that needs no regeneration, a malformed one) waits for every
        Job of the cycle to end (their deadlines bound the wait): finished, its pod succeeded,
        or its result written (a phase pod's last act; the kubelet reports the exit a second or
        two later)."""
        waiting = Pending(f"the {phase} result ends the cycle: waiting for its Jobs to end")
        try:
            parsed = parse_result(result, phase)
        except PhaseFailed:
            if not self._wind_down():
                raise waiting from None
            raise
        ends = phase == PHASES[-1] or (phase == "measure" and not parsed["regeneration_needed"])
        if ends and not self._wind_down():
            raise waiting
        return parsed

    def _wind_down(self) -> bool:
        """Withdraw the Jobs started ahead whose turn will not come; whether every Job of
        the cycle has ended (finished, its pod succeeded, or its result written)."""
        selector = {CYCLE_LABEL: label_value(self.cycle)}
        jobs = [j for j in self.rest.list("Job", self.namespace, selector) if not job_finished(j)]
        if jobs:
            written = {
                (result["metadata"].get("labels") or {}).get(PHASE_LABEL)
                for result in self.rest.list("ConfigMap", self.namespace, selector)
            }
            jobs = [j for j in jobs if j["metadata"]["labels"].get(PHASE_LABEL) not in written]
        if not jobs:
            return True
        pods = self.rest.list("Pod", self.namespace, selector)
        return all([job_pods_ended(job, pods) or self._withdrawn(job, pods) for job in jobs])

    def withdraw(self, phase: str) -> None:
        """Withdraw ``phase``'s Job if it waits for a turn that is not coming now (Implement,
        when a person has to approve it first): it is started anew in its turn."""
        job = self.rest.get("Job", self.namespace, result_name(self.cycle, phase))
        if job is not None and not job_finished(job):
            selector = {CYCLE_LABEL: label_value(self.cycle), PHASE_LABEL: phase}
            self._withdrawn(job, self.rest.list("Pod", self.namespace, selector))

    def _withdrawn(self, job: dict[str, Any], pods: list[dict[str, Any]]) -> bool:
        """Withdraw a Job that waits for its turn: deleted while none of its pods runs (it
        cannot have acted), else cancelled, so its pod exits at once. Whether it is gone."""
        if turn(job) not in (TURN_WAITING, TURN_CANCELLED):
            return False
        name = job["metadata"]["name"]
        if "Running" not in pod_phases(job, pods):
            self.rest.delete("Job", self.namespace, name, propagation="Background")
            return True
        if turn(job) == TURN_WAITING:
            self._set_turn(name, TURN_CANCELLED)
        return False

    def _set_turn(self, name: str, value: str, deadline: int | None = None) -> None:
        """Set a Job's turn annotation (and its deadline, when given)."""
        patch: dict[str, Any] = {"metadata": {"annotations": {TURN_ANNOTATION: value}}}
        if deadline is not None:
            patch["spec"] = {"activeDeadlineSeconds": deadline}
        self.rest.patch("Job", self.namespace, name, patch)


def await_turn(rest: Rest, namespace: str, cycle: str, phase: str) -> bool:
    """In the pod of a Job started ahead: wait until the operator gives the phase its turn
    (True); False when it cancels it, the Job is deleted or being deleted, or the cycle has
    ended (it went another way, or the Job was withdrawn). Told to stop meanwhile, the process
    exits at once: it has done nothing. The Job's deadline bounds the wait."""
    name = result_name(cycle, phase)
    previous = signal.signal(signal.SIGTERM, _stop_waiting)
    try:
        while True:
            try:
                read = rest.get("Job", namespace, name)
                ended = (rest.get("RegenerationCycle", namespace, cycle) or {}).get("status")
                if read is None or (ended or {}).get("phase") in FINAL_PHASES:
                    return False
                since = read["metadata"]["resourceVersion"]
                changes = rest.watch("Job", namespace, name, since, WAIT_WATCH_SECONDS)
                for kind, job in chain([("MODIFIED", read)], changes):
                    if kind == "DELETED" or job["metadata"].get("deletionTimestamp"):
                        return False
                    if turn(job) != TURN_WAITING:
                        return turn(job) == TURN_GO
            except ApiException as err:
                if err.status != 410 and not (err.status or 0) >= 500:
                    raise
                time.sleep(0 if err.status == 410 else 1)  # 410: the watch fell behind
            except TransportError as err:  # the API server away a moment: read again
                log.warning("watching Job %s: %s; reading it again", name, err)
                time.sleep(1)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop_waiting(signum: int, frame: object) -> NoReturn:
    raise SystemExit(0)


def job_pods_ended(job: dict[str, Any], pods: list[dict[str, Any]]) -> bool:
    """Whether a Job's pod has succeeded and none of its pods still runs: it will be marked
    complete, but the Job controller does so seconds after the kubelet reports the pod, and a
    cycle need not wait for that bookkeeping. A failed pod is not an end: the Job may retry."""
    phases = pod_phases(job, pods)
    return "Succeeded" in phases and not {"Pending", "Running", "Unknown", None} & set(phases)


def pod_phases(job: dict[str, Any], pods: list[dict[str, Any]]) -> list[str | None]:
    """The phases (Pending, Running, ...) of the Job's pods among ``pods``."""
    uid = job["metadata"].get("uid")
    return [(pod.get("status") or {}).get("phase") for pod in pods if owned_by(pod, uid)]


def parse_result(config_map: dict[str, Any], phase: str) -> dict[str, Any]:
    """A phase result as written by the Job; a malformed one fails the phase with the reason."""
    text = (config_map.get("data") or {}).get(RESULT_KEY)
    try:
        result = json.loads(text or "")
    except ValueError:
        raise PhaseFailed(f"the {phase} result ConfigMap holds no valid JSON") from None
    if not isinstance(result, dict):
        raise PhaseFailed(f"the {phase} result must be a JSON object")
    try:
        PHASE_RESULTS[phase].model_validate(result)
    except ValidationError as err:
        raise PhaseFailed(
            f"the {phase} result is malformed: {format_validation_error(err)}"
        ) from None
    return result


def cycle_owner(name: str, uid: str) -> dict[str, Any]:
    """The owner reference every object of a cycle carries."""
    return owner_reference("RegenerationCycle", name, uid)


def cycle_phases(
    rest: Rest,
    namespace: str,
    *,
    cycle: str,
    uid: str,
    spec: RegenerationCycleSpec,
    charter_obj: dict[str, Any],
    receiver_url: str | None,
    trace_parent: str | None = None,
) -> CyclePhases:
    """The phases of one cycle bound to its charter's target: the same for the operator
    (inline) and for a phase Job."""
    charter = RegenerationCharterSpec.model_validate(charter_obj["spec"])
    target = ClusterTarget(
        rest,
        namespace,
        spec.charter_ref.name,
        charter,
        receiver_url=receiver_url,
        snapshot_name=snapshot_name(cycle),
        journal_name=journal_name(cycle),
        owner=cycle_owner(cycle, uid),
        charter_uid=charter_obj["metadata"]["uid"],
    )
    status = charter_obj.get("status") or {}
    # Measure judges the target as the charter's last cycle left it, and the fault since the
    # incident's onset, as the charter's measurement that started the cycle did.
    target.settling_since = window_since(status)
    target.onset_since = incident_onset(status)
    history = strategy_records(status)
    incident = status.get("incident")
    return CyclePhases(
        target,
        charter,
        spec,
        target.context(last_good=parse_time((incident or {}).get("lastGoodAt"))),
        history,
        trace_parent,
        attempts=attempts_of(incident),
    )


def run_phase(rest: Rest, namespace: str, cycle: str, phase: str) -> dict[str, Any]:
    """The Job side: run one phase with the earlier phases' results, write the result."""
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r} (known: {', '.join(PHASES)})")
    cycle_obj = rest.get("RegenerationCycle", namespace, cycle)
    if cycle_obj is None:
        raise CycleNotFound(f"cycle {namespace}/{cycle} does not exist")
    spec = RegenerationCycleSpec.model_validate(cycle_obj["spec"])
    charter_obj = rest.get("RegenerationCharter", namespace, spec.charter_ref.name)
    if charter_obj is None:
        raise CharterNotFound(f"charter {namespace}/{spec.charter_ref.name} does not exist")
    owner = cycle_owner(cycle, cycle_obj["metadata"]["uid"])
    written = rest.get("ConfigMap", namespace, result_name(cycle, phase))
    if written is not None:
        # A retried pod whose predecessor wrote the result and died before exiting: the phase
        # has run; running it again would act twice.
        return parse_result(written, phase)
    phases = cycle_phases(
        rest,
        namespace,
        cycle=cycle,
        uid=cycle_obj["metadata"]["uid"],
        spec=spec,
        charter_obj=charter_obj,
        receiver_url=operator_config().receiver_url,
        trace_parent=operator_config().traceparent,
    )
    data: dict[str, Any] = {}
    for earlier in PHASES[: PHASES.index(phase)]:
        found = rest.get("ConfigMap", namespace, result_name(cycle, earlier))
        if found is not None:
            data.update(parse_result(found, earlier))
    result = phases.traced(phase)({}, data)
    # The result may end the cycle at once: its span is sent first, so the cycle's trace is
    # whole when it ends (a second at most: an exporter away must not hold the cycle up).
    tracing.flush(timeout_millis=1_000)
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": result_name(cycle, phase),
            "namespace": namespace,
            "labels": {CYCLE_LABEL: label_value(cycle), PHASE_LABEL: phase},
            "ownerReferences": [owner],
        },
        "data": {RESULT_KEY: json.dumps(result)},
    }
    try:
        rest.create("ConfigMap", namespace, body)
    except ApiException as err:
        if err.status != 409:
            raise
        # Written meanwhile (a slow API server answered a retried pod's twin): the first wins.
        return parse_result(
            rest.get("ConfigMap", namespace, result_name(cycle, phase)) or {}, phase
        )
    return result
