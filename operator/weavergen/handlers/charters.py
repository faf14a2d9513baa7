"""RegenerationCharter: measure on the charter's cadence, keep status current, start cycles."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf

from weavergen.api.charter import RegenerationCharterSpec
from weavergen.api.common import GROUP, VERSION
from weavergen.api.keys import REQUEST_ANNOTATION
from weavergen.config import operator_config
from weavergen.domain import reasons
from weavergen.domain.decide.reconcile import (
    CharterDecision,
    Due,
    RequestsSince,
    decide,
    healthy_onset,
    measurement_due,
    window_since,
)
from weavergen.domain.errors import InvalidCharter, MeasurementUnavailable, parsed_spec
from weavergen.domain.measure.measure import Measurement, known_good
from weavergen.domain.measure.sequential import Evidence
from weavergen.handlers import shards
from weavergen.handlers.errors import reported
from weavergen.k8s.cluster_target import ClusterTarget
from weavergen.k8s.cycles import cycle_manifest, start_cycle
from weavergen.k8s.notifications import offer_charter, routing
from weavergen.k8s.rest import Rest
from weavergen.k8s.status import write_status
from weavergen.telemetry import metrics
from weavergen.telemetry.windows import WindowStore

TIMER_SECONDS = operator_config().timer_seconds
log = logging.getLogger(__name__)


OWNED, _ = shards.filters()


@kopf.timer(
    GROUP,
    VERSION,
    "regenerationcharters",
    interval=TIMER_SECONDS,
    initial_delay=1,
    sharp=True,
    when=OWNED,
)
@reported()
def reconcile_charter(
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
    """Measure when due, decide (pure), start a cycle if the decision says so, write status."""
    assert namespace is not None  # both kinds are namespaced
    shards.claim_charter(body, status, patch, memo.rest, logger)
    offer_charter(memo.notifier, body)
    charter = parsed_spec(RegenerationCharterSpec, spec, InvalidCharter)
    now = datetime.now(UTC).replace(tzinfo=None)
    requested = (meta.get("annotations") or {}).get(REQUEST_ANNOTATION)
    due = measurement_due(charter, status, now, requested, requests_since(memo, charter))
    if due is None:
        return
    rest: Rest = memo.rest
    target = _target(memo, body, charter, due)
    if target is None:
        return
    measurement, problem, inputs = _observe(target, status)
    decision = decide(
        charter,
        generation=meta.get("generation"),
        status=status,
        measurement=measurement.as_dict() if measurement else None,
        problem=problem,
        now=now,
        requested=requested,
        inputs=inputs,
        routing=routing(charter, namespace, operator_config().notifications),
    )
    if known_good(measurement) and not target.has_golden():
        target.store_golden()
        logger.info("captured the known-good snapshot charter=%s", name)
    update = dict(decision.status)
    if decision.start_cycle:
        update["activeCycle"] = _start_cycle(rest, body, decision.start_cycle, now, logger)
    write_status(rest, "RegenerationCharter", namespace, name, update)
    _cut_at_onset(memo, charter, before=status, after=update)
    _announce(body, decision)
    _record(namespace, name, update, decision)


def _start_cycle(
    rest: Rest, body: kopf.Body, reason: str, now: datetime, logger: kopf.Logger
) -> str:
    """Create the charter's cycle for ``reason``, or adopt the one a run before created."""
    meta = body.metadata
    name, namespace = meta.name or "", meta.namespace or ""
    cycle, created = start_cycle(rest, cycle_manifest(name, namespace, meta.uid, reason, now))
    if created:
        # In the operator's log too: the moment a fault was acted on, for time to heal.
        log.info("started cycle=%s charter=%s: %s", cycle, name, reason)
        kopf.info(body, reason=reasons.CYCLE_STARTED, message=f"started {cycle}: {reason}")
    else:
        logger.info("adopted the unfinished cycle=%s charter=%s", cycle, name)
    return cycle


def _target(
    memo: Any, body: kopf.Body, charter: RegenerationCharterSpec, due: Due
) -> ClusterTarget | None:
    """The charter's target, its window bounded as its status and ``due`` say; None while the
    requests that brought the measurement forward have too few spans to judge them alone (a
    later tick measures them, or the cadence the whole window)."""
    meta = body.metadata
    target = ClusterTarget(
        memo.rest,
        meta.namespace or "",
        meta.name or "",
        charter,
        receiver_url=memo.receiver_url,
        charter_uid=meta.uid,
    )
    target.settling_since, target.onset_since = window_since(body.status), due.onset
    windows: WindowStore = memo.windows
    target.onset_cut = due.onset is not None and windows.has_cut(
        charter.telemetry.service_name, due.onset
    )
    return None if target.onset_too_thin() else target


def requests_since(memo: Any, charter: RegenerationCharterSpec) -> RequestsSince | None:
    """The requests this process's receiver got for the charter's service (a read of memory,
    asked only when the cadence is not due)."""
    if charter.telemetry.source == "configMap":
        return None
    windows: WindowStore = memo.windows

    def read(since: float, threshold_ms: float) -> Evidence:
        return windows.evidence(charter.telemetry.service_name, since, threshold_ms, cut=False)

    return read


def _cut_at_onset(
    memo: Any,
    charter: RegenerationCharterSpec,
    *,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
) -> None:
    """A measurement that found the target healthy is where a fault after it will be measured
    from: the receiver keeps what arrives from then on apart (see `WindowStore.cut`), so the
    measurement a fault brings forward judges the fault, not the healthy spans of the slot
    before it as well (it used to take two or three measurements to reach the trigger)."""
    if charter.telemetry.source != "otlp":
        return
    onset = healthy_onset(charter, {**before, **after})
    if onset is not None:
        windows: WindowStore = memo.windows
        windows.cut(charter.telemetry.service_name, onset, replacing=healthy_onset(charter, before))


def _observe(
    target: ClusterTarget, status: kopf.Status
) -> tuple[Measurement | None, MeasurementUnavailable | None, str | None]:
    """The measurement (or why there is none) and, while an incident is open, the fingerprint
    of the targets' inputs (an escalation holds until they are edited)."""
    try:
        measurement = target.measure()
        inputs = target.inputs_fingerprint() if status.get("incident") else None
    except MeasurementUnavailable as err:
        return None, err, None
    return measurement, None, inputs


def _record(namespace: str, name: str, update: dict[str, Any], decision: CharterDecision) -> None:
    """The charter's metrics from the status just written and the decision's signals."""
    metrics.record_charter(namespace, name, update)
    metrics.record_forecast(namespace, name, update.get("forecast"))
    for metric, signal in decision.signals:
        metrics.record_signal(namespace, name, metric, signal)


def _announce(body: kopf.Body, decision: CharterDecision) -> None:
    """The decision's Events: control-chart signals as warnings, the rest as information."""
    for _metric, signal in decision.signals:
        kopf.warn(body, reason=reasons.control_chart_signal(signal.rule), message=signal.message)
    for reason, message in decision.events:
        kopf.info(body, reason=reason, message=message)


@kopf.on.delete(GROUP, VERSION, "regenerationcharters", optional=True, when=OWNED)
def forget_charter(*, name: str, namespace: str | None, **_: Any) -> None:
    """Drop a deleted charter's metric series (optional: it never blocks the deletion)."""
    metrics.forget_charter(namespace or "", name)
