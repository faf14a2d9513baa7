"""RegenerationCycle: drive ``dmedi_cycle.bpmn`` to its end (see ``k8s/cycles.py``).

A timer looks at every unfinished cycle and resumes its workflow from the state saved in its
ConfigMap, so a restarted operator carries on where it stopped (level-based, not edge-based).
It also reads a person's abort, reject and retry annotations (``domain/decide/cycle_requests``):
a stop is a step of the unfinished cycle's reconcile, a retry is started from the finished one.
Sharded, a replica looks only at the cycles of its own charters (``handlers/shards.py``).
"""

from __future__ import annotations

from typing import Any

import kopf

from weavergen.api.common import GROUP, VERSION
from weavergen.api.cycle import FINAL_PHASES
from weavergen.domain.decide.cycle_requests import ignored_requests, requests_of, retry_request
from weavergen.handlers import shards
from weavergen.handlers.errors import reported
from weavergen.k8s.cycles import CycleReconciler
from weavergen.k8s.notifications import offer_cycle
from weavergen.telemetry import metrics

_, OWNED = shards.filters()


@kopf.timer(GROUP, VERSION, "regenerationcycles", interval=3, initial_delay=0.5, when=OWNED)
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
    ended = reconciler.reconcile(namespace, name, meta, spec, status)
    if ended is not None:
        metrics.record_cycle(namespace, spec["charterRef"]["name"], ended.status)
        logger.info("finished cycle=%s phase=%s", name, ended.status.get("phase"))
