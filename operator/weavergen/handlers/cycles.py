"""RegenerationCycle: drive ``dmedi_cycle.bpmn`` to its end (see ``k8s/cycles.py``).

A timer looks at every unfinished cycle and resumes its workflow from the state saved in its
ConfigMap, so a restarted operator carries on where it stopped (level-based, not edge-based).
A phase that writes its result advances its cycle at once (``phase_result_written``), and so
does a phase Job that finishes (``phase_job_finished``) and the pod of a phase whose result may
end the cycle (``phase_pod_succeeded``); the timer stays as the safety net. One
lock per cycle keeps them from reconciling the same cycle together. The watches select their
objects on the server (``handlers/settings.py``): the operator never streams every Job, pod or
ConfigMap of the cluster.
It also reads a person's abort, reject and retry annotations (``domain/decide/cycle_requests``):
a stop is a step of the unfinished cycle's reconcile, a retry is started from the finished one.
Sharded, a replica looks only at the cycles of its own charters (``handlers/shards.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import kopf

from weavergen.api.common import GROUP, VERSION
from weavergen.api.cycle import FINAL_PHASES
from weavergen.api.keys import CYCLE_LABEL, PHASE_LABEL
from weavergen.domain.decide.cycle_requests import ignored_requests, requests_of, retry_request
from weavergen.domain.owners import owner_of_kind
from weavergen.handlers import shards
from weavergen.handlers.errors import reported
from weavergen.k8s.cycles import CycleReconciler
from weavergen.k8s.jobs import LAST_POD_PHASES
from weavergen.k8s.notifications import offer_cycle
from weavergen.telemetry import metrics

_, OWNED = shards.filters()
# The Job controller's finalizer on a pod it has not counted yet: once it is gone the Job
# records the pod, and the Job's own event advances the cycle.
JOB_TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


@contextmanager
def exclusive(namespace: str, name: str, *, wait: float) -> Iterator[bool]:
    """Hold the cycle's lock (waiting at most ``wait`` seconds); yields whether it is held. A
    reconcile that does not get it skips: the one holding it sees the same state."""
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault((namespace, name), threading.Lock())
    held = lock.acquire(timeout=wait) if wait > 0 else lock.acquire(blocking=False)
    try:
        yield held
    finally:
        if held:
            lock.release()


# No initial delay: a new cycle's first reconcile starts its phase Jobs, and its detection is
# already behind it.
@kopf.timer(GROUP, VERSION, "regenerationcycles", interval=3, when=OWNED)
@reported()
def reconcile_cycle(
    *,
    body: kopf.Body,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    name: str,
    namespace: str | None,
    memo: Any,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    assert namespace is not None  # both kinds are namespaced
    shards.release_orphans(meta, patch)
    requests = requests_of(meta.get("annotations"))
    for request, event in ignored_requests(status, requests):
        # Said once: the annotation goes, so the next reconcile does not say it again.
        kopf.info(body, reason=event.reason, message=event.message)
        patch.metadata.annotations[request.annotation] = None
    reconciler = CycleReconciler(memo.rest, memo.receiver_url)
    # What the status owes (written by an earlier reconcile), also once the cycle is over.
    offer_cycle(
        memo.rest,
        memo.notifier,
        namespace=namespace,
        name=name,
        meta=meta,
        spec=spec,
        status=status,
    )
    if status.get("phase") in FINAL_PHASES:
        retry = retry_request(status, requests)
        if retry is not None and reconciler.retry(namespace, body, retry) is not None:
            logger.info("retried cycle=%s by=%s", name, retry.requested_by)
        return
    with exclusive(namespace, name, wait=0) as held:
        if held:
            advance(
                reconciler,
                namespace=namespace,
                name=name,
                meta=meta,
                spec=spec,
                status=status,
                logger=logger,
            )


def advance(
    reconciler: CycleReconciler,
    *,
    namespace: str,
    name: str,
    meta: Any,
    spec: Any,
    status: Any,
    logger: Any,
) -> None:
    ended = reconciler.reconcile(namespace, name, meta, spec, status)
    if ended is not None:
        metrics.record_cycle(namespace, spec["charterRef"]["name"], ended.status)
        logger.info("finished cycle=%s phase=%s", name, ended.status.get("phase"))


def _job_finished(status: kopf.Status, **_: Any) -> bool:
    return bool(status.get("succeeded") or status.get("failed"))


@kopf.on.event("batch", "v1", "jobs", labels={CYCLE_LABEL: kopf.PRESENT}, when=_job_finished)
@reported()
def phase_job_finished(
    *, meta: kopf.Meta, namespace: str | None, memo: Any, logger: kopf.Logger, **kwargs: Any
) -> None:
    """A phase Job is done: advance its cycle now rather than at the next timer tick."""
    advance_owner(meta, namespace, memo, logger, kwargs)


def _result_written(type: str | None, **_: Any) -> bool:
    """Only as it is written: results listed when the operator starts are the timer's."""
    return type == "ADDED"


@kopf.on.event("", "v1", "configmaps", labels={PHASE_LABEL: kopf.PRESENT}, when=_result_written)
@reported()
def phase_result_written(
    *, meta: kopf.Meta, namespace: str | None, memo: Any, logger: kopf.Logger, **kwargs: Any
) -> None:
    """A phase wrote its result: the next phase can start, or the cycle end, while its pod
    exits (the Job is marked complete seconds later, once the kubelet and the Job controller
    have seen it)."""
    advance_owner(meta, namespace, memo, logger, kwargs)


def _ending_phase_succeeded(
    type: str | None, status: kopf.Status, meta: kopf.Meta, labels: kopf.Labels, **_: Any
) -> bool:
    """The pod of a phase whose end may end the cycle succeeded: as the kubelet reports it
    (not listed at start-up, not as the Job controller removes its finalizer or it is deleted)."""
    return (
        type == "MODIFIED"
        and status.get("phase") == "Succeeded"
        and labels.get(PHASE_LABEL) in LAST_POD_PHASES
        and not meta.get("deletionTimestamp")
        and any(f == JOB_TRACKING_FINALIZER for f in meta.get("finalizers") or [])
    )


@kopf.on.event("", "v1", "pods", labels={CYCLE_LABEL: kopf.PRESENT}, when=_ending_phase_succeeded)
@reported()
def phase_pod_succeeded(
    *, meta: kopf.Meta, namespace: str | None, memo: Any, logger: kopf.Logger, **kwargs: Any
) -> None:
    """A cycle whose last result waits for its Jobs to end can end as the kubelet reports the
    pod succeeded, seconds before the Job controller marks the Job complete."""
    job = owner_of_kind(meta, "Job")
    if job is None or namespace is None:
        return
    found = memo.rest.get("Job", namespace, job["name"])
    if found is not None:
        advance_owner(found["metadata"], namespace, memo, logger, kwargs)


def advance_owner(
    meta: kopf.Meta, namespace: str | None, memo: Any, logger: kopf.Logger, kwargs: Any
) -> None:
    """Advance the cycle owning ``meta``'s object, under the cycle's lock."""
    owner = owner_of_kind(meta, "RegenerationCycle")
    if owner is None or namespace is None:
        return
    with exclusive(namespace, owner["name"], wait=5.0) as held:
        if not held:
            return
        # Read under the lock: the timer may have advanced it meanwhile.
        cycle = memo.rest.get("RegenerationCycle", namespace, owner["name"])
        if cycle is None or (cycle.get("status") or {}).get("phase") in FINAL_PHASES:
            return
        if not shards.handles_cycle(cycle, namespace, kwargs):
            return
        reconciler = CycleReconciler(memo.rest, memo.receiver_url)
        advance(
            reconciler,
            namespace=namespace,
            name=owner["name"],
            meta=cycle["metadata"],
            spec=cycle["spec"],
            status=cycle.get("status") or {},
            logger=logger,
        )
