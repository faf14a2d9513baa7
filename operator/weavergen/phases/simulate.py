"""The simulation engine: the real measure -> explore -> develop -> implement path, with a
digital twin standing in for the cluster.

Each scenario builds a twin with an underlying cause (or none), measures it with the real
Measure code, explores and develops with the real code, and runs the chosen strategy's BPMN
workflow on SpiffWorkflow with the operators bound to the twin. A share of scenarios has a
failure injected in the middle of the workflow, which must roll the twin back to its snapshot.
Outcomes feed the shared history, as a charter's status does, so success probabilities learn.
When tracing is configured each scenario is also recorded as the operator records a cycle: a
``dmedi_<phase>`` span per phase it ran and a ``dmedi_cycle`` root that also carries the true level.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from weavergen.api.charter import EntropyLevel, RegenerationCharterSpec
from weavergen.api.profiles import profile_for
from weavergen.domain.cycle_status import OUTCOME_PHASE, outcome_message
from weavergen.domain.develop import develop
from weavergen.domain.explore import Exploration, Option, Outcome, TargetContext, explore
from weavergen.domain.incident import Attempt, attempts_of
from weavergen.domain.reconcile import decide, merge_patch, record_outcome
from weavergen.domain.simulator import EntropySimulator, Faults
from weavergen.domain.strategies import CATALOG, CAUSES, OBSERVE, UNFIXABLE_CAUSES
from weavergen.domain.times import stamp
from weavergen.domain.twin import Twin
from weavergen.phases.cycle import escalation_parameters, phase_attributes
from weavergen.phases.operators import Operators
from weavergen.telemetry import tracing
from weavergen.workflows import BPMN_DIR, WorkflowRun, load_process

TRIGGER = EntropyLevel.MEDIUM
LEVELS = list(EntropyLevel)
CYCLE_OUTCOMES = {**OUTCOME_PHASE, "escalated": "Escalated"}


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
        return {
            "scenarios": len(self.results),
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


class _CycleTrace:
    """One scenario's spans, as the operator records a cycle's (no-ops when tracing is off)."""

    def __init__(self, trace_id: str, name: str) -> None:
        self.trace_id = trace_id
        self.name = name
        self.parent = tracing.parent_context(tracing.traceparent(trace_id))
        self.started = time.time_ns()
        self.system_id = ""

    @contextmanager
    def phase(self, phase: str) -> Iterator[dict[str, Any]]:
        """Times the block as ``dmedi_<phase>``; what it puts in the dict is the phase's result."""
        started, error = time.time_ns(), None
        result: dict[str, Any] = {}
        try:
            yield result
        except Exception as err:
            error = str(err) or type(err).__name__
            raise
        finally:
            attributes = {"weavergen.phase": phase, "weavergen.system.id": self.system_id}
            tracing.record_span(
                f"dmedi_{phase}",
                parent=self.parent,
                start_ns=started,
                end_ns=time.time_ns(),
                attributes=attributes if error else {**attributes, **phase_attributes(result)},
                error=error,
            )

    def finish(
        self,
        outcome: str,
        data: Mapping[str, Any],
        *,
        before: Mapping[str, Any],
        after: Mapping[str, Any],
        expected_level: str,
    ) -> None:
        """The root span, with the outcome the operator would report and the true level."""
        phase = CYCLE_OUTCOMES.get(outcome, "Failed")
        message = outcome_message(phase, data)
        identity = {
            "weavergen.cycle.name": self.name,
            "weavergen.cycle.namespace": "sim",
            "weavergen.charter.name": self.system_id,
            "weavergen.system.id": self.system_id,
        }
        attributes = tracing.cycle_attributes(
            identity,
            phase,
            strategy=(data.get("chosen") or {}).get("strategy"),
            entropy=(before.get("entropy_score"), after.get("entropy_score")),
            level=(before.get("entropy_level"), after.get("entropy_level")),
            health=(before.get("health_score"), after.get("health_score")),
        )
        tracing.record_cycle(
            self.trace_id,
            start_ns=self.started,
            end_ns=time.time_ns(),
            attributes={**attributes, "weavergen.simulation.expected_level": expected_level},
            error=message if phase == "Failed" else None,
            rollback=tracing.rollback_attributes(message, int(data.get("snapshot_objects") or 0))
            if phase == "RolledBack"
            else None,
        )


@dataclass(frozen=True)
class Remedy:
    """One cycle's explore, develop and implement against a twin."""

    exploration: Exploration
    option: Option
    run: WorkflowRun
    operators: Operators
    outcome: str  # the workflow's (succeeded, rolled_back, ...) or escalated

    def cycle_data(self, before: Mapping[str, Any]) -> dict[str, Any]:
        """What the operator's cycle data would hold, for ``record_outcome``."""
        return {
            "exploration": self.exploration.as_dict(),
            "chosen": self.option.as_status(),
            "measurement_before": before,
        }


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


# A web-service charter for played incidents: the breaker out of the way (100 cycles an hour),
# so what limits the cycles is the incident rules alone.
INCIDENT_CHARTER = {
    "systemId": "sim",
    "systemType": "web-service",
    "target": {"workloads": [{"name": "sim"}]},
    "telemetry": {"serviceName": "sim", "windowSeconds": 60},
    "trigger": {"mode": "auto", "level": "medium"},
    "circuitBreaker": {"maxCycles": 100},
}


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
    def __init__(self, seed: int = 0, failure_share: float = 0.05) -> None:
        self.seed = seed
        self.played = 0
        self.rng = np.random.default_rng(seed)
        self.simulator = EntropySimulator(seed)
        self.failure_share = failure_share
        self.history: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        self.criteria = profile_for("web-service").success_criteria
        assert self.criteria is not None

    def outcomes(self) -> list[Outcome]:
        return [Outcome(s, sig, won, lost) for (s, sig), (won, lost) in self.history.items()]

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

    def _remedy(
        self,
        twin: Twin,
        before: Mapping[str, Any],
        cycle: _CycleTrace,
        attempts: Sequence[Attempt] = (),
        max_failed_fixes: int | None = None,
    ) -> Remedy:
        context = TargetContext(**twin.context_flags(), workloads=1, replicas=2)
        assert self.criteria is not None
        with cycle.phase("explore") as explored:
            exploration = explore(
                before,
                context,
                recovery_objective_seconds=self.criteria.max_recovery_seconds,
                history=self.outcomes(),
                attempts=attempts,
                max_failed_fixes=max_failed_fixes,
            )
            option = exploration.best
            explored["chosen"] = option.as_status()
        with cycle.phase("develop") as developed:
            solution = develop(
                option.as_status(),
                entropy_before=float(before["entropy_score"]),
                objects=twin.objects(),
                golden=twin.golden(),
                previous_templates=twin.previous_templates(),
                parameters=escalation_parameters(
                    {"chosen": option.as_status(), "exploration": exploration.as_dict()}
                ),
            )
            developed["solution"] = {"strategy": solution.strategy}
        operators = Operators(twin, self.criteria)
        with cycle.phase("implement") as implemented:
            spec, subprocesses = load_process(BPMN_DIR / solution.workflow, solution.process_id)
            run = WorkflowRun.start(
                spec,
                subprocesses,
                operators.registry(),
                {"entropy_before": float(before["entropy_score"]), **solution.parameters},
            )
            run.run()
            outcome = "escalated" if option.strategy == OBSERVE else str(run.data.get("outcome"))
            implemented["implementation"] = {"outcome": outcome}
            implemented["measurement_after"] = run.data.get("measurement_after")
        return Remedy(exploration, option, run, operators, outcome)

    def _learn(self, option: Option, signature: str, outcome: str, cause: str | None) -> None:
        """The outcome joins the shared history, as a charter's status keeps it."""
        success = outcome == "succeeded" or (outcome == "escalated" and cause in UNFIXABLE_CAUSES)
        self.history[(option.strategy, signature)][0 if success else 1] += 1

    def incidents(self, count: int, minutes: float = 4.0) -> list[IncidentResult]:
        """``count`` incidents, the causes in turn, each played for ``minutes``."""
        return [
            self.incident(CAUSES[i % len(CAUSES)], int(self.rng.integers(2**31)), minutes)
            for i in range(count)
        ]

    def incident(
        self, cause: str, seed: int, minutes: float = 4.0, cadence_seconds: float = 3.0
    ) -> IncidentResult:
        """A charter's measurements every ``cadence_seconds`` with the real ``decide`` and
        ``record_outcome``, and a cycle through the real phases whenever it starts one (30 s
        of simulated time each), for ``minutes`` of an incident whose cause never goes away
        unless a cycle removes it."""
        twin = Twin.build(self.simulator, cause, seed)
        spec = RegenerationCharterSpec.model_validate(INCIDENT_CHARTER)
        status: dict[str, Any] = {}
        now = start = datetime(2026, 11, 25)
        cycles: list[tuple[str, str]] = []
        while now < start + timedelta(minutes=minutes):
            before = twin.measure()
            decision = decide(
                spec,
                generation=1,
                status=status,
                measurement=before,
                problem=None,
                now=now,
                inputs=twin.fingerprint(),
            )
            status = merge_patch(status, decision.status)
            if decision.start_cycle:
                name = f"{twin.system.service}-{len(cycles) + 1}"
                trace_id = hashlib.sha256(f"incident:{seed}:{name}".encode()).hexdigest()[:32]
                remedy = self._remedy(
                    twin,
                    before,
                    _CycleTrace(trace_id, name),
                    attempts_of(status.get("incident")),
                    spec.circuit_breaker.max_failed_fixes,
                )
                self._learn(remedy.option, remedy.exploration.signature, remedy.outcome, cause)
                phase = CYCLE_OUTCOMES.get(remedy.outcome, "Failed")
                started, now = now, now + timedelta(seconds=30)
                final = {"phase": phase, "startedAt": stamp(started), "finishedAt": stamp(now)}
                status = merge_patch(
                    status,
                    record_outcome(
                        status, cycle=name, final=final, data=remedy.cycle_data(before), now=now
                    ),
                )
                cycles.append((remedy.option.strategy, phase))
            now += timedelta(seconds=cadence_seconds)
        hidden = not twin.context_flags()["changed_inputs"] and cause == "untracked_input_change"
        return IncidentResult(cause, hidden, tuple(cycles), healed=twin.faults() == Faults())

    def scenario(self, cause: str | None, seed: int, inject: bool = False) -> ScenarioResult:
        index, self.played = self.played, self.played + 1
        trace_id = hashlib.sha256(f"simulation:{self.seed}:{index}".encode()).hexdigest()[:32]
        cycle = _CycleTrace(trace_id, f"simulation-{self.seed}-{index}")
        with cycle.phase("define"):
            twin = Twin.build(self.simulator, cause, seed, fail_action="apply" if inject else None)
            cycle.system_id = twin.system.service
        with cycle.phase("measure") as measured_phase:
            before = measured_phase["measurement_before"] = twin.measure()
        objectives = self.simulator.objectives(twin.system)
        truth = self.simulator.truth(twin.system, twin.faults(), objectives).level.value
        measured = before.get("entropy_level")
        health_before = float(before.get("health_score") or 0.0)

        def result(**outcome: Any) -> ScenarioResult:
            return ScenarioResult(
                cause=cause,
                injected_failure=inject,
                level_truth=truth,
                level_measured=measured,
                health_before=health_before,
                **outcome,
            )

        if measured is None or LEVELS.index(EntropyLevel(measured)) < LEVELS.index(TRIGGER):
            cycle.finish("not_needed", {}, before=before, after={}, expected_level=truth)
            return result(
                strategy=None,
                predicted_success=None,
                outcome="not_needed",
                health_after=health_before,
            )
        remedy = self._remedy(twin, before, cycle)
        option, run, outcome = remedy.option, remedy.run, remedy.outcome
        after = run.data.get("measurement_after") or twin.measure()
        cycle.finish(
            outcome,
            {
                "chosen": {"strategy": option.strategy},
                "implementation": {"verdict": run.data.get("verdict")},
                "failure": run.data.get("failure"),
                "snapshot_objects": run.data.get("snapshot_objects"),
            },
            before=before,
            after=after,
            expected_level=truth,
        )
        self._learn(option, remedy.exploration.signature, outcome, cause)
        restored = None
        if inject:
            snapshot = remedy.operators.snapshot
            assert snapshot is not None or outcome != "rolled_back"
            restored = snapshot is not None and snapshot.matches(twin.objects())
        return result(
            strategy=option.strategy,
            predicted_success=option.success_probability,
            outcome=outcome,
            health_after=float(after.get("health_score") or 0.0),
            restored_exactly=restored,
        )
