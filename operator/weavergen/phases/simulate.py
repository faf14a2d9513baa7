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
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from weavergen.api.charter import EntropyLevel
from weavergen.api.profiles import profile_for
from weavergen.domain.cycle_status import OUTCOME_PHASE, outcome_message
from weavergen.domain.develop import develop
from weavergen.domain.explore import Outcome, TargetContext, explore
from weavergen.domain.simulator import EntropySimulator
from weavergen.domain.strategies import CAUSES, OBSERVE, UNFIXABLE_CAUSES
from weavergen.domain.twin import Twin
from weavergen.phases.operators import Operators
from weavergen.telemetry import tracing
from weavergen.workflows import WorkflowRun, load_process

BPMN_DIR = Path(os.environ.get("WEAVERGEN_BPMN_DIR", Path(__file__).resolve().parents[3] / "bpmn"))
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
        from weavergen.phases.cycle import phase_attributes  # noqa: PLC0415 - cycle imports us

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
        context = TargetContext(**twin.context_flags(), workloads=1, replicas=2)
        assert self.criteria is not None
        with cycle.phase("explore") as explored:
            exploration = explore(
                before,
                context,
                recovery_objective_seconds=self.criteria.max_recovery_seconds,
                history=self.outcomes(),
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
        success = outcome == "succeeded" or (outcome == "escalated" and cause in UNFIXABLE_CAUSES)
        record = self.history[(option.strategy, exploration.signature)]
        record[0 if success else 1] += 1
        restored = None
        if inject:
            assert operators.snapshot is not None or outcome != "rolled_back"
            restored = operators.snapshot is not None and operators.snapshot.matches(twin.objects())
        return result(
            strategy=option.strategy,
            predicted_success=option.success_probability,
            outcome=outcome,
            health_after=float(after.get("health_score") or 0.0),
            restored_exactly=restored,
        )
