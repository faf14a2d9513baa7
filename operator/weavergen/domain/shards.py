"""Charters sharded across operator replicas: which replica measures which charter.

An OpenTelemetry Collector's loadbalancing exporter with ``routing_key: service`` sends every
span of one service to one endpoint of its list, the one a consistent-hash ring names. The
replica behind that endpoint must be the one that measures the service's charter: any other
would see silence. So ownership is that ring, ported from the exporter (v0.158.0,
``consistent_hashing.go`` and the routing key of ``trace_exporter.go``) decision for decision;
``tests/unit/test_shards.py`` holds a table of the exporter's own answers
(``hack/ring-reference.sh``).

Two details of the exporter that the port keeps:

- The ring hashes the endpoint strings exactly as the resolver lists them; the default port
  (4317) is added only when connecting. ``shard-0`` and ``shard-0:4317`` reach one receiver
  but sit at different places in the ring, so the operator must be given the very strings
  the Collector's ``static`` resolver has.
- The key hashed for a service is ``service.name=<name>|``, not the bare name.

The ring depends only on the set of endpoints, not on their order (its candidates are sorted).
"""

from __future__ import annotations

import bisect
import re
import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from weavergen.api.common import GROUP

MAX_POSITIONS: Final = 131071  # positions on the ring
WEIGHT: Final = 200  # positions per endpoint
PROBE_LIMIT: Final = 10  # free positions looked for past a taken one

# The operator's kopf finalizer: one per shard, so that a shard never removes another's (a
# replica removes its finalizer from every object it does not handle).
FINALIZER: Final = f"{GROUP}/finalizer"
_SHARD_FINALIZER = re.compile(re.escape(f"{GROUP}/finalizer-shard-") + r"(\d+)")


def service_routing_key(service: str) -> bytes:
    """The bytes the exporter hashes for spans whose resource has ``service.name=service``."""
    return f"service.name={service}|".encode()


def _candidates(endpoint: str) -> list[tuple[int, int, str]]:
    """(position, hash, endpoint) of each of the endpoint's ``WEIGHT`` points."""
    prefix = zlib.crc32(endpoint.encode())
    out = []
    for i in range(WEIGHT):
        hashed = zlib.crc32(struct.pack("<I", i), prefix)
        out.append((hashed % MAX_POSITIONS, hashed, endpoint))
    return out


class HashRing:
    """The exporter's ``hashRing``: endpoints at ``WEIGHT`` positions each, looked up clockwise."""

    def __init__(self, endpoints: Iterable[str]) -> None:
        # Sorted by (position, hash, endpoint): Python orders str by code point, which is the
        # order of their UTF-8 bytes, as Go orders strings.
        candidates = sorted(c for endpoint in endpoints for c in _candidates(endpoint))
        taken: set[int] = set()
        items: list[tuple[int, str]] = []
        for position, _, endpoint in candidates:
            actual, probed = position, 0
            while actual in taken and probed < PROBE_LIMIT:
                actual = (actual + 1) % MAX_POSITIONS
                probed += 1
            if probed >= PROBE_LIMIT:
                continue  # as the exporter: skipped, even when the last probe found a free spot
            taken.add(actual)
            items.append((actual, endpoint))
        items.sort()
        self.positions = [position for position, _ in items]
        self.endpoints = [endpoint for _, endpoint in items]

    def endpoint_for(self, key: bytes) -> str:
        """The endpoint at the key's position or the next one clockwise; '' on an empty ring."""
        if not self.positions:
            return ""
        index = bisect.bisect_left(self.positions, zlib.crc32(key) % MAX_POSITIONS)
        return self.endpoints[index % len(self.endpoints)]


@dataclass(frozen=True)
class Shards:
    """The shard endpoints (as the Collector lists them, in ordinal order) and this replica's."""

    endpoints: tuple[str, ...]
    me: str
    ring: HashRing = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.me not in self.endpoints:
            raise ValueError(f"{self.me!r} is not one of the shard endpoints {self.endpoints}")
        object.__setattr__(self, "ring", HashRing(self.endpoints))

    @property
    def ordinal(self) -> int:
        return self.endpoints.index(self.me)

    @property
    def finalizer(self) -> str:
        return shard_finalizer(self.ordinal)

    def owner(self, service: str) -> str:
        """The endpoint the Collector sends ``service``'s spans to."""
        return self.ring.endpoint_for(service_routing_key(service))

    def owns(self, service: str) -> bool:
        return self.owner(service) == self.me


def shard_finalizer(ordinal: int) -> str:
    return f"{GROUP}/finalizer-shard-{ordinal}"


def orphaned_finalizers(finalizers: Sequence[str], shards: Shards | None) -> list[str]:
    """The operator's finalizers on an object this replica handles that no running replica
    will remove: the unsharded operator's, or a shard's beyond the current shard count (after
    the replicas were scaled down); with ``shards`` None (unsharded), every shard's."""
    orphans = []
    for name in finalizers:
        shard = _SHARD_FINALIZER.fullmatch(name)
        if shards is None:
            orphaned = shard is not None
        elif shard is None:
            orphaned = name == FINALIZER
        else:
            orphaned = int(shard.group(1)) >= len(shards.endpoints)
        if orphaned:
            orphans.append(name)
    return orphans
