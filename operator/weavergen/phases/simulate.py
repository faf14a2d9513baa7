"""The simulation engine: the operator's own DMEDI pipeline, with a digital twin standing in for
the cluster.

Each scenario builds a twin with an underlying cause (or none) and runs one cycle exactly as the
operator runs one inline: `CyclePhases` through ``bpmn/dmedi_cycle.bpmn``, the chosen strategy's
workflow on SpiffWorkflow with the operators bound to the twin, the cycle's status from
`cycle_status` and its outcome recorded on a charter status with `record_outcome`. A share of
scenarios has a failure injected in the middle of the strategy, which must roll the twin back to
its snapshot. The scenarios share one charter's strategy history, so success probabilities learn.
When tracing is configured every cycle records the operator's spans (a ``dmedi_<phase>`` span per
phase it ran under a ``dmedi_cycle`` root that also carries the true level).
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from weavergen.api.charter import RegenerationCharterSpec
from weavergen.api.cycle import RegenerationCycleSpec
from weavergen.domain.decide.cycle_status import cycle_status
from weavergen.domain.decide.explore import TargetContext
from weavergen.domain.decide.incident import attempts_of
from weavergen.domain.decide.reconcile import decide, merge_patch, record_outcome, strategy_records
from weavergen.domain.remedy.strategies import CATALOG, CAUSES, OBSERVE, UNFIXABLE_CAUSES
from weavergen.domain.simulation.simulator import EntropySimulator, Faults
from weavergen.domain.simulation.twin import Twin
from weavergen.domain.times import stamp
from weavergen.phases.cycle import CyclePhases, record_cycle_span
from weavergen.phases.operators import Operators
from weavergen.telemetry import tracing
from weavergen.workflows.runs import start_cycle_workflow

# The charter the scenarios run under: a web service, acting from MEDIUM.
SCENARIO_CHARTER = {
    "systemId": "sim",
    "systemType": "web-service",
    "target": {"workloads": [{"name": "sim"}]},
    "telemetry": {"serviceName": "sim", "windowSeconds": 60},
    "trigger": {"mode": "auto", "level": "medium"},
}
# Played incidents: the breaker out of the way (100 cycles an hour), so what limits the cycles
# is the incident rules alone.
INCIDENT_CHARTER = {**SCENARIO_CHARTER, "circuitBreaker": {"maxCycles": 100}}
CYCLE_SECONDS = 30  # the simulated time one cycle takes


@dataclass(frozen=True)
class ScenarioResult:
    cause: str | None
    injected_failure: bool
    level_truth: str
    level_measured: str | None
    strategy: str | None
    predicted_success: float | None
    outcome: str
    health_before: float
    health_after: float
    restored_exactly: bool | None = None
    healed: bool = False  # the twin has no fault left when the cycle ends
    verification: Mapping[str, Any] | None = None  # how the settle ended (see `sequential`)

    @property
    def fixable(self) -> bool:
        return self.cause is not None and self.cause not in UNFIXABLE_CAUSES


@dataclass
class SimulationReport:
    results: list[ScenarioResult] = field(default_factory=list)

    def _fixable(self, injected: bool) -> list[ScenarioResult]:
        return [r for r in self.results if r.fixable and r.injected_failure == injected]

    def summary(self) -> dict[str, Any]:
        clean = self._fixable(injected=False)
        succeeded = [r for r in clean if r.outcome == "succeeded"]
        recovered = [
            (r.health_after - r.health_before) / (1 - r.health_before)
            for r in clean
            if r.health_before < 1
        ]
        unfixable = [r for r in self.results if r.cause in UNFIXABLE_CAUSES]
        injected = self._fixable(injected=True)
        predictions = [
            (r.predicted_success, r.outcome in ("succeeded", "escalated"))
            for r in self.results
            if r.predicted_success is not None
        ]
        per_cause: dict[str, Counter[str]] = defaultdict(Counter)
        for r in self.results:
            per_cause[r.cause or "none"][r.outcome] += 1
        passed = [r for r in self.results if r.outcome == "succeeded" and r.cause is not None]
        settled = [float(r.verification["seconds"]) for r in self.results if r.verification]
        return {
            "scenarios": len(self.results),
            # Cycles verified as succeeded although the twin still has a fault.
            "false_pass_rate": _share(sum(not r.healed for r in passed), len(passed)),
            "average_settle_seconds": round(float(np.mean(settled)), 2) if settled else None,
            "success_rate": _share(len(succeeded), len(clean)),
            "average_health_improvement": round(float(np.mean(recovered)), 4)
            if recovered
            else None,
            "average_health_gain": round(
                float(np.mean([r.health_after - r.health_before for r in clean])), 4
            )
            if clean
            else None,
            "detection_accuracy": _share(
                sum(r.level_measured == r.level_truth for r in self.results), len(self.results)
            ),
            "brier_score": round(float(np.mean([(p - float(ok)) ** 2 for p, ok in predictions])), 4)
            if predictions
            else None,
            "escalation_rate_unfixable": _share(
                sum(r.strategy == OBSERVE for r in unfixable), len(unfixable)
            ),
            "rollback_exact_after_injected_failure": _share(
                sum(bool(r.restored_exactly) for r in injected), len(injected)
            ),
            "per_cause": {cause: dict(outcomes) for cause, outcomes in sorted(per_cause.items())},
        }


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass(frozen=True)
class PlayedCycle:
    """One cycle run against a twin: the workflow's data, the final status, the operators."""

    data: dict[str, Any]
    final: dict[str, Any]
    operators: Operators

    @property
    def strategy(self) -> str | None:
        return (self.data.get("chosen") or {}).get("strategy")


@dataclass(frozen=True)
class IncidentResult:
    """One incident played on a twin: each cycle's strategy and how the cycle ended."""

    cause: str | None
    hidden: bool  # its cause left no trace the operator could see (an unreadable input)
    cycles: tuple[tuple[str, str], ...]
    healed: bool

    @property
    def mutating_cycles(self) -> int:
        return sum(CATALOG[strategy].mutating for strategy, _ in self.cycles)

    @property
    def escalations(self) -> int:
        return sum(phase == "Escalated" for _, phase in self.cycles)


def incident_summary(results: list[IncidentResult]) -> dict[str, Any]:
    """Figures of played incidents: cycles that changed something per unfixable incident
    (goal <= 2), escalations per incident whose evidence never changed (goal 1), and cycles
    to heal a fixable one."""
    unfixable = [r for r in results if r.cause in UNFIXABLE_CAUSES]
    fixable = [r for r in results if r.cause is not None and r.cause not in UNFIXABLE_CAUSES]
    healed = [r for r in fixable if r.healed]
    return {
        "incidents": len(results),
        "mutating_cycles_per_unfixable_incident": {
            "mean": round(float(np.mean([r.mutating_cycles for r in unfixable])), 3)
            if unfixable
            else None,
            "max": max((r.mutating_cycles for r in unfixable), default=None),
        },
        "escalations_per_unchanged_incident": {
            "mean": round(float(np.mean([r.escalations for r in unfixable])), 3)
            if unfixable
            else None,
            "min": min((r.escalations for r in unfixable), default=None),
            "max": max((r.escalations for r in unfixable), default=None),
        },
        "fixable_healed": _share(len(healed), len(fixable)),
        "cycles_to_heal": round(float(np.mean([len(r.cycles) for r in healed])), 3)
        if healed
        else None,
    }


class SimulationEngine:
    def __init__(
        self, seed: int = 0, failure_share: float = 0.05, *, sequential: bool = True
    ) -> None:
        self.seed = seed
        self.sequential = sequential  # False: every settle waits its whole time (to compare)
        self.played = 0
        self.rng = np.random.default_rng(seed)
        self.simulator = EntropySimulator(seed)
        self.failure_share = failure_share
        self.spec = RegenerationCharterSpec.model_validate(SCENARIO_CHARTER)
        # The scenarios' charter status: its strategy history is what success probabilities
        # learn from, as a charter's does.
        self.status: dict[str, Any] = {}

    def run(
        self, scenarios: int, progress: Callable[[int, ScenarioResult], None] | None = None
    ) -> SimulationReport:
        report = SimulationReport()
        causes: list[str | None] = [*CAUSES, None]
        for i in range(scenarios):
            cause = causes[i % len(causes)]
            inject = cause is not None and self.rng.random() < self.failure_share
            result = self.scenario(cause, seed=int(self.rng.integers(2**31)), inject=inject)
            report.results.append(result)
            if progress:
                progress(i + 1, result)
        return report

    def play_cycle(
        self,
        twin: Twin,
        spec: RegenerationCharterSpec,
        status: Mapping[str, Any],
        *,
        name: str,
        trace_id: str,
        now: datetime,
        expected_level: str | None = None,
    ) -> PlayedCycle:
        """One cycle of the charter ``spec`` (with ``status``) on the twin, as the operator runs
        one inline, from ``now`` for `CYCLE_SECONDS` of simulated time."""
        phases = CyclePhases(
            twin,
            spec,
            RegenerationCycleSpec.model_validate(
                {"charterRef": {"name": spec.system_id}, "reason": "simulation"}
            ),
            TargetContext(**twin.context_flags(), workloads=1, replicas=2),
            strategy_records(status),
            tracing.traceparent(trace_id),
            attempts=attempts_of(status.get("incident")),
        )
        twin.tells_evidence = self.sequential
        started = time.time_ns()
        run = start_cycle_workflow(phases.registry())
        run.run()
        final = cycle_status(
            run.data,
            {"startedAt": stamp(now)},
            1,
            now + timedelta(seconds=CYCLE_SECONDS),
            finished=True,
        )
        record_cycle_span(
            trace_id,
            final,
            {
                "weavergen.cycle.name": name,
                "weavergen.cycle.namespace": "sim",
                "weavergen.charter.name": spec.system_id,
                "weavergen.system.id": twin.system.service,
            },
            start_ns=started,
            end_ns=time.time_ns(),
            extra={"weavergen.simulation.expected_level": expected_level}
            if expected_level
            else None,
        )
        return PlayedCycle(run.data, final, phases.operators)

    def incidents(self, count: int, minutes: float = 4.0) -> list[IncidentResult]:
        """``count`` incidents, the causes in turn, each played for ``minutes``."""
        return [
            self.incident(CAUSES[i % len(CAUSES)], int(self.rng.integers(2**31)), minutes)
            for i in range(count)
        ]

    def incident(
        self, cause: str, seed: int, minutes: float = 4.0, cadence_seconds: float = 3.0
    ) -> IncidentResult:
        """A charter's measurements every ``cadence_seconds`` with the real ``decide``, and a
        cycle through the operator's pipeline whenever it starts one, for ``minutes`` of an
        incident whose cause never goes away unless a cycle removes it."""
        twin = Twin.build(self.simulator, cause, seed)
        spec = RegenerationCharterSpec.model_validate(INCIDENT_CHARTER)
        status: dict[str, Any] = {}
        now = start = datetime(2026, 11, 25)
        cycles: list[tuple[str, str]] = []
        while now < start + timedelta(minutes=minutes):
            decision = decide(
                spec,
                generation=1,
                status=status,
                measurement=twin.measure().as_dict(),
                problem=None,
                now=now,
                inputs=twin.fingerprint(),
            )
            status = merge_patch(status, decision.status)
            if decision.start_cycle:
                name = f"{twin.system.service}-{len(cycles) + 1}"
                trace_id = hashlib.sha256(f"incident:{seed}:{name}".encode()).hexdigest()[:32]
                played = self.play_cycle(twin, spec, status, name=name, trace_id=trace_id, now=now)
                now += timedelta(seconds=CYCLE_SECONDS)
                status = merge_patch(
                    status,
                    record_outcome(
                        status, cycle=name, final=played.final, data=played.data, now=now
                    ),
                )
                cycles.append((played.strategy or "", str(played.final.get("phase"))))
            now += timedelta(seconds=cadence_seconds)
        hidden = not twin.context_flags()["changed_inputs"] and cause == "untracked_input_change"
        return IncidentResult(cause, hidden, tuple(cycles), healed=twin.faults() == Faults())

    def scenario(self, cause: str | None, seed: int, inject: bool = False) -> ScenarioResult:
        index, self.played = self.played, self.played + 1
        name = f"simulation-{self.seed}-{index}"
        trace_id = hashlib.sha256(f"simulation:{self.seed}:{index}".encode()).hexdigest()[:32]
        twin = Twin.build(self.simulator, cause, seed, fail_action="apply" if inject else None)
        objectives = self.simulator.objectives(twin.system)
        truth = self.simulator.truth(twin.system, twin.faults(), objectives).level.value
        now = datetime(2026, 11, 25) + timedelta(minutes=index)
        played = self.play_cycle(
            twin,
            self.spec,
            self.status,
            name=name,
            trace_id=trace_id,
            now=now,
            expected_level=truth,
        )
        # What the charter learns from: its strategy history, as `record_outcome` keeps it.
        self.status["strategyHistory"] = record_outcome(
            self.status, cycle=name, final=played.final, data=played.data, now=now
        )["strategyHistory"]
        return self._result(cause, inject, truth, twin, played)

    @staticmethod
    def _result(
        cause: str | None, inject: bool, truth: str, twin: Twin, played: PlayedCycle
    ) -> ScenarioResult:
        """What the scenario shows: what was measured and chosen, and how the twin ended."""
        data, outcome = played.data, str(played.data.get("outcome"))
        before = data.get("measurement_before") or {}
        health_before = float(before.get("health_score") or 0.0)
        after = (
            before
            if outcome == "not_needed"
            else data.get("measurement_after") or twin.measure().as_dict()
        )
        snapshot = played.operators.snapshot
        chosen = data.get("chosen") or {}
        return ScenarioResult(
            cause=cause,
            injected_failure=inject,
            level_truth=truth,
            level_measured=before.get("entropy_level"),
            strategy=chosen.get("strategy"),
            predicted_success=chosen.get("successProbability"),
            outcome=outcome,
            health_before=health_before,
            health_after=float(after.get("health_score") or 0.0),
            restored_exactly=(snapshot is not None and snapshot.matches(twin.objects()))
            if inject
            else None,
            healed=twin.faults() == Faults(),
            verification=(data.get("implementation") or {}).get("verification"),
        )
