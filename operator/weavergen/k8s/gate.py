"""The entropy gate's reads and writes: the charter it answers for, and cycle requests."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from weavergen.api.keys import REQUEST_ANNOTATION
from weavergen.domain.decide.gate import GateAnswer, gate_decision
from weavergen.domain.errors import CharterNotFound
from weavergen.domain.times import stamp
from weavergen.k8s.rest import Rest


class Gate:
    """Answers from the charter as the API server has it, cached for ``ttl`` seconds.

    The cache keeps a burst of pipeline calls off the API server; the answer is never older
    than the TTL plus the charter's own measurement cadence.
    """

    def __init__(
        self, rest: Rest, ttl: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rest = rest
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}

    def charter(self, namespace: str, name: str) -> dict[str, Any]:
        key = (namespace, name)
        cached = self._cache.get(key)
        if cached is not None and self.clock() - cached[0] < self.ttl:
            return cached[1]
        found = self.rest.get("RegenerationCharter", namespace, name)
        if found is None:
            self._cache.pop(key, None)
            raise CharterNotFound(f"charter {namespace}/{name} does not exist")
        self._cache[key] = (self.clock(), found)
        return found

    def answer(self, namespace: str, name: str) -> GateAnswer:
        return gate_decision(self.charter(namespace, name))

    def request_cycle(self, namespace: str, name: str, now: Any) -> GateAnswer:
        """Ask the operator for a cycle (it still honours mode and circuit breaker)."""
        self.charter(namespace, name)  # 404 before writing anything
        self.rest.patch(
            "RegenerationCharter",
            namespace,
            name,
            {"metadata": {"annotations": {REQUEST_ANNOTATION: stamp(now)}}},
        )
        self._cache.pop((namespace, name), None)
        return replace(self.answer(namespace, name), cycle_requested=True)
