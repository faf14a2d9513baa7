"""The demo's charter and cycle through an incident, with the status the operator writes.

Each measurement goes through ``decide`` as the charter handler does, and its status patch is
merged as the API server merges it; the cycle is recorded on the charter as the cycle handler
records it when it ends. The measurements are the ones ``make demo`` narrates.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from weavergen.api.charter import RegenerationCharterSpec
from weavergen.demo.manifests import APP, charter
from weavergen.domain.decide.control import chart_cycle
from weavergen.domain.decide.reconcile import decide, merge_patch
from weavergen.domain.times import stamp

NAMESPACE = "shop"
CYCLE = f"{APP}-20261203-063506"
START = datetime(2026, 12, 3, 6, 35, 0)
CADENCE = timedelta(seconds=3)  # the demo charter's measureIntervalSeconds
SPEC = RegenerationCharterSpec.model_validate(charter(NAMESPACE)["spec"])

Reading = tuple[str, float, float]  # level, entropy, health
HEALTHY: Reading = ("low", 0.0, 1.0)
SPIKE: Reading = ("high", 0.61, 0.0)  # the first measurement after the fault: starts the cycle
DURING: list[Reading] = [
    *[("high", 0.67, 0.0)] * 4,
    ("medium", 0.571, 0.1),
    ("medium", 0.434, 0.29),
    ("medium", 0.388, 0.4),
    ("medium", 0.368, 0.45),
    HEALTHY,
    HEALTHY,
]


@dataclass
class Incident:
    """The charter's status so far, and when each measurement and the cycle happened."""

    status: dict[str, Any] = field(default_factory=dict)
    measured: list[datetime] = field(default_factory=list)
    started: datetime | None = None
    finished: datetime | None = None
    clock: Iterator[datetime] = field(
        default_factory=lambda: (START + n * CADENCE for n in range(10_000))
    )

    def measure(self, reading: Reading) -> str | None:
        """One measurement through the charter's decision; the reason a cycle starts, if one."""
        now = next(self.clock)
        level, entropy, health = reading
        decision = decide(
            SPEC,
            generation=1,
            status=self.status,
            measurement={
                "status": "ok",
                "entropy_level": level,
                "entropy_score": entropy,
                "health_score": health,
                "drift_indicators": [],
                "validation_errors": [],
                "span_count": 800,
            },
            problem=None,
            now=now,
        )
        patch = dict(decision.status)
        if decision.start_cycle:
            patch["activeCycle"] = CYCLE
            self.started = now + timedelta(seconds=1)  # the cycle handler picks it up
        self.status = merge_patch(self.status, patch)
        self.measured.append(now)
        return decision.start_cycle

    def finish_cycle(self) -> None:
        """What the cycle handler writes on the charter when the cycle ends."""
        assert self.started is not None
        self.finished = self.measured[-1] + timedelta(seconds=2)
        charted = chart_cycle(
            SPEC,
            self.status.get("controlCharts"),
            duration_seconds=(self.finished - self.started).total_seconds(),
            at=stamp(self.finished),
        )
        last = {
            "name": CYCLE,
            "outcome": "Succeeded",
            "startedAt": stamp(self.started),
            "finishedAt": stamp(self.finished),
        }
        self.status = merge_patch(
            self.status,
            {
                "activeCycle": None,
                "lastCycle": last,
                "entropy": {"measuredAt": None},
                "controlCharts": charted.charts,
            },
        )

    def objects(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The charter and its cycle as ``kubectl get rch,rcy -o json`` has them."""
        assert self.started is not None
        demo = charter(NAMESPACE)
        cycle_status: dict[str, Any] = {
            "phase": "Succeeded" if self.finished else "Implementing",
            "startedAt": stamp(self.started),
            "entropyBefore": {"score": SPIKE[1], "level": SPIKE[0], "healthScore": SPIKE[2]},
        }
        if self.finished:
            cycle_status["finishedAt"] = stamp(self.finished)
        cycle = {
            "apiVersion": demo["apiVersion"],
            "kind": "RegenerationCycle",
            "metadata": {"name": CYCLE, "namespace": NAMESPACE},
            "spec": {"charterRef": {"name": APP}, "reason": f"entropy high ({SPIKE[1]})"},
            "status": cycle_status,
        }
        return {**demo, "status": self.status}, [cycle]


def incident(points_after: int, *, finish: bool = True) -> Incident:
    """Healthy, the fault's spike (which starts the cycle), the cycle, then ``points_after``
    healthy measurements after it ends (or, without ``finish``, while it still runs)."""
    run = Incident()
    assert run.measure(HEALTHY) is None
    assert run.measure(HEALTHY) is None
    assert run.measure(SPIKE) is not None
    for reading in DURING:
        assert run.measure(reading) is None  # the cycle is active: no second one starts
    if finish:
        run.finish_cycle()
    for _ in range(points_after):
        run.measure(HEALTHY)
    return run
