"""The entropy gate: may a pipeline deploy to this system now? (pure)

It answers from the charter's latest measurement and never waits for a new one, so a deploy
pipeline gets its answer at once: ``regenerating`` while a cycle runs, ``blocked`` at HIGH or
CRITICAL entropy, else ``allowed``. A system not measured yet is allowed, with that reason: a new
service with no traffic must be deployable, and the answer says the gate had nothing to go on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

Decision = Literal["allowed", "blocked", "regenerating"]
BLOCKING_LEVELS = ("high", "critical")


@dataclass(frozen=True)
class GateAnswer:
    charter: str
    decision: Decision
    reason: str
    level: str | None = None
    score: float | None = None
    health: float | None = None
    measured_at: str | None = None
    active_cycle: str | None = None
    cycle_requested: bool = False

    @property
    def allowed(self) -> bool:
        return self.decision == "allowed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "charter": self.charter,
            "decision": self.decision,
            "reason": self.reason,
            "level": self.level,
            "score": self.score,
            "health": self.health,
            "measuredAt": self.measured_at,
            "activeCycle": self.active_cycle,
            "cycleRequested": self.cycle_requested,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateAnswer:
        """The answer as the gate endpoint sends it (for the CLI), unknown keys ignored."""
        wire = {
            "measuredAt": "measured_at",
            "activeCycle": "active_cycle",
            "cycleRequested": "cycle_requested",
        }
        fields = set(asdict(cls("", "allowed", "")))
        values = {wire.get(k, k): v for k, v in data.items() if wire.get(k, k) in fields}
        return cls(**values)


def gate_decision(charter: Mapping[str, Any]) -> GateAnswer:
    """The gate's answer for a RegenerationCharter object as the API server stores it."""
    meta = charter.get("metadata") or {}
    key = f"{meta.get('namespace')}/{meta.get('name')}"
    status = charter.get("status") or {}
    entropy = status.get("entropy") or {}
    level, score = entropy.get("level"), entropy.get("score")
    base = GateAnswer(
        charter=key,
        decision="allowed",
        reason="",
        level=level,
        score=score,
        health=entropy.get("healthScore"),
        measured_at=entropy.get("measuredAt"),
        active_cycle=status.get("activeCycle"),
    )
    if status.get("activeCycle"):
        reason = f"cycle {status['activeCycle']} is regenerating the system"
        return replace(base, decision="regenerating", reason=reason)
    if level is None:
        return replace(base, reason="not measured yet: nothing to gate on")
    if level in BLOCKING_LEVELS:
        breaker = status.get("circuitBreaker") or {}
        why = f"entropy {level} ({score}) measured at {entropy.get('measuredAt')}"
        if breaker.get("state") == "Open":
            why += f"; the circuit breaker is open until {breaker.get('openUntil')}"
        return replace(base, decision="blocked", reason=why)
    return replace(base, reason=f"entropy {level} ({score})")
