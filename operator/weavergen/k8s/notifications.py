"""Between the status outbox and the notifier: offer what an object's status owes, record
what the notifier did (``domain.notify`` explains the outbox, ``notify.delivery`` the worker).

Offering is level-based: every reconcile offers the Pending entries this process has not taken
up yet, so a restarted operator picks up what its predecessor left; the charter is read only
when there is something new to offer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from weavergen.api.charter import RegenerationCharterSpec
from weavergen.config import NotificationSettings
from weavergen.domain import notify
from weavergen.domain.errors import InvalidSpec, parsed_spec
from weavergen.domain.times import stamp
from weavergen.k8s.rest import Rest
from weavergen.k8s.status import write_status
from weavergen.notify.delivery import Delivery, Notifier, Outcome, Recorder, delivery_key


def routing(
    spec: RegenerationCharterSpec | None, namespace: str, settings: NotificationSettings
) -> notify.Routing:
    """The charter's routing among the sinks this operator is configured with (a charter that
    names none gets its namespace's default sinks, else the operator's)."""
    return notify.routing(
        spec.notifications if spec else None,
        [name for name, _ in settings.sinks],
        settings.defaults_for(namespace),
    )


def _fresh(
    notifier: Notifier, uid: str, status: Mapping[str, Any], events: frozenset[str] | None = None
) -> list[tuple[str, str, str]]:
    """The Pending entries (sink, event, dueAt) this process has not taken up."""
    return [
        (sink, event, due)
        for sink, event, due in notify.pending(status.get("notifications") or {})
        if (events is None or event in events)
        and not notifier.handles(delivery_key(notify.event_key(uid, event, due), sink))
    ]


def offer_cycle(
    rest: Rest,
    notifier: Notifier,
    *,
    namespace: str,
    name: str,
    meta: Mapping[str, Any],
    spec: Mapping[str, Any],
    status: Mapping[str, Any],
) -> None:
    """Offer the messages the cycle's status owes."""
    fresh = _fresh(notifier, meta["uid"], status)
    if not fresh:
        return
    charter = str((spec.get("charterRef") or {}).get("name"))
    charter_obj = rest.get("RegenerationCharter", namespace, charter) or {}
    facts = notify.CycleFacts(
        namespace=namespace,
        name=name,
        uid=meta["uid"],
        reason=str(spec.get("reason") or "manual"),
        status=status,
        charter=charter,
        charter_spec=_charter_spec(charter_obj.get("spec")),
    )
    for sink, event, due in fresh:
        notification = notify.cycle_notification(facts, event, due)
        notifier.offer(Delivery(notification, sink, "RegenerationCycle", name))


def offer_charter(notifier: Notifier, charter: Mapping[str, Any]) -> None:
    """Offer the messages the charter's status owes (its breaker's openings)."""
    meta, status = charter["metadata"], charter.get("status") or {}
    namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
    fresh = _fresh(notifier, uid, status, frozenset({notify.CIRCUIT_OPENED}))
    parsed = _charter_spec(charter.get("spec")) if fresh else None
    for sink, _event, due in fresh:
        notification = notify.circuit_notification(
            namespace, name, uid=uid, spec=parsed, status=status, due_at=due
        )
        notifier.offer(Delivery(notification, sink, "RegenerationCharter", name))


def _charter_spec(spec: Mapping[str, Any] | None) -> RegenerationCharterSpec | None:
    """The charter's spec for its stakeholders; a message still goes without them."""
    try:
        return parsed_spec(RegenerationCharterSpec, spec or {})
    except InvalidSpec:
        return None


def status_recorder(rest: Rest) -> Recorder:
    """Write a delivery's outcome into its entry of the object's status (gone: nothing)."""

    async def record(delivery: Delivery, outcome: Outcome) -> None:
        now = stamp(datetime.now(UTC).replace(tzinfo=None))
        entry = {
            "result": outcome.result,
            "attempts": outcome.attempts,
            "updatedAt": now,
            "message": outcome.message[:1024],
        }
        patch = {"notifications": {delivery.entry: entry}}
        namespace = delivery.notification.namespace
        try:
            await asyncio.to_thread(
                write_status, rest, delivery.kind, namespace, delivery.name, patch
            )
        except ApiException as err:
            if err.status != 404:
                raise

    return record
