"""Charters sharded across replicas: the filters that keep this replica to its own share.

Each replica (a StatefulSet pod) handles the charters whose ``spec.telemetry.serviceName`` the
Collector's ring routes to its endpoint (``domain.shards``), and the cycles of those charters.
The filters are kopf ``when=`` callbacks, evaluated on every event of every object: a ring
lookup (a CRC and a bisection) for a charter, a lookup in the charter index for a cycle. kopf
starts and stops each object's timer as its filter turns, so ownership is level-based: a
charter whose service changes, or that another ring (another replica count) gives to this
replica, is picked up on its next event or at start-up.

Each shard has a finalizer of its own: kopf removes its finalizer from the objects that no
handler of its own matches, so with one shared name the replicas would take it off each other's
objects forever. The owner removes the finalizers nobody else will (``orphaned_finalizers``).

Unsharded (no ``WEAVERGEN_SHARD_ENDPOINTS``), nothing here is registered: no filter, no index,
and the finalizer of before; the operator only clears what a sharded install left behind (the
shards' finalizers, ``status.shard``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import kopf

from weavergen.api.common import GROUP, VERSION
from weavergen.config import operator_config
from weavergen.domain import reasons
from weavergen.domain.shards import FINALIZER, Shards, orphaned_finalizers
from weavergen.k8s.rest import Rest
from weavergen.k8s.status import write_status

_CONFIG = operator_config()
SHARDS = (
    Shards(_CONFIG.shard_endpoints, _CONFIG.shard_endpoint)
    if _CONFIG.shard_endpoint is not None
    else None
)


def finalizer() -> str:
    """This replica's kopf finalizer."""
    return SHARDS.finalizer if SHARDS else FINALIZER


def service_of(spec: Mapping[str, Any]) -> str:
    return str((spec.get("telemetry") or {}).get("serviceName") or "")


def charter_services(
    namespace: str | None, name: str | None, spec: kopf.Spec, **_: Any
) -> dict[tuple[str | None, str | None], str]:
    """kopf index: the service of each charter, for the cycles' filter."""
    return {(namespace, name): service_of(spec)}


def owns_charter(spec: kopf.Spec, **_: Any) -> bool:
    assert SHARDS is not None
    return SHARDS.owns(service_of(spec))


def owns_cycle(
    spec: Mapping[str, Any], namespace: str | None, charter_services: kopf.Index[Any, str], **_: Any
) -> bool:
    """A cycle follows its charter. A cycle whose charter is not (yet) known goes by the
    charter's name: one replica still handles it (and fails it if the charter never comes)."""
    assert SHARDS is not None
    charter = (spec.get("charterRef") or {}).get("name")
    services = charter_services.get((namespace, charter))
    service = next(iter(services), None) if services is not None else None
    if service is None:
        key = f"{namespace}/{charter}".encode()
        return SHARDS.ring.endpoint_for(key) == SHARDS.me
    return SHARDS.owns(service)


def handles_cycle(cycle: Mapping[str, Any], namespace: str, kwargs: Mapping[str, Any]) -> bool:
    """Whether this replica reconciles ``cycle`` (a handler of another kind's events asks:
    ``kwargs`` are that handler's, which carry the charters' index when sharded)."""
    if not SHARDS:
        return True
    return owns_cycle(
        spec=cycle.get("spec") or {},
        namespace=namespace,
        charter_services=kwargs["charter_services"],
    )


def filters() -> tuple[Any, Any]:
    """The ``when=`` filters of the charter and cycle handlers: None unsharded."""
    return (owns_charter, owns_cycle) if SHARDS else (None, None)


def release_orphans(meta: kopf.Meta, patch: kopf.Patch) -> None:
    """Remove, with the handler's patch, the operator's finalizers no other replica will."""
    orphans = orphaned_finalizers(meta.get("finalizers") or [], SHARDS)
    if orphans:
        patch.fns.append(functools.partial(_without, names=frozenset(orphans)))


def _without(body: dict[str, Any], names: frozenset[str]) -> None:
    metadata = body.get("metadata") or {}
    kept = [f for f in metadata.get("finalizers") or [] if f not in names]
    if kept:
        metadata["finalizers"] = kept
    else:
        metadata.pop("finalizers", None)


def claim_charter(
    body: kopf.Body, status: kopf.Status, patch: kopf.Patch, rest: Rest, logger: kopf.Logger
) -> None:
    """Release orphaned finalizers; record in status which shard measures the charter when
    that changed, and say so."""
    release_orphans(body.meta, patch)
    now = SHARDS.me if SHARDS else None
    before = status.get("shard")
    if before == now:
        return
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    write_status(rest, "RegenerationCharter", namespace, name, {"shard": now})
    if now is None:
        return
    logger.info("took over charter=%s shard=%s previous=%s", name, now, before or "none")
    kopf.info(
        body,
        reason=reasons.SHARD_CHANGED,
        message=f"measured by shard {now} (before: {before or 'none'})",
    )


def describe() -> str:
    """This replica's share, for the start-up log."""
    if SHARDS is None:
        return "all"
    return f"shard {SHARDS.ordinal} of {len(SHARDS.endpoints)} ({SHARDS.me})"


if SHARDS is not None:
    kopf.index(GROUP, VERSION, "regenerationcharters")(charter_services)
