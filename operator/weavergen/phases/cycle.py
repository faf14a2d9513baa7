"""The DMEDI phases as workflow operators of ``bpmn/dmedi_cycle.bpmn``.

The same code runs a phase inline (in the operator), in a phase Job, or from the CLI: each
phase reads what earlier phases left in the workflow data and returns its own result, as JSON.
Implement runs the chosen strategy's own workflow with the operators bound to the target.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from weavergen.api.charter import PHASES, EntropyLevel, RegenerationCharterSpec
from weavergen.api.cycle import RegenerationCycleSpec
from weavergen.api.phase_results import PHASE_RESULTS
from weavergen.api.profiles import resolve_spec
from weavergen.domain.decide.explore import StrategyRecord, TargetContext, explore
from weavergen.domain.decide.incident import Attempt
from weavergen.domain.errors import PhaseFailed
from weavergen.domain.measure.measure import MeasureSettings
from weavergen.domain.remedy.develop import develop
from weavergen.domain.remedy.port import TargetPort
from weavergen.domain.remedy.strategies import OBSERVE
from weavergen.phases.operators import Operators
from weavergen.telemetry import tracing
from weavergen.workflows.registry import Pending, ServiceRegistry


@dataclass
class CyclePhases:
    """The five phase operators of one cycle, and the rollback the cycle may need."""

    target: TargetPort
    charter: RegenerationCharterSpec
    cycle: RegenerationCycleSpec
    context: TargetContext = field(default_factory=TargetContext)
    history: Sequence[StrategyRecord] = ()
    trace_parent: str | None = None
    attempts: Sequence[Attempt] = ()  # the finished cycles of the charter's open incident

    def __post_init__(self) -> None:
        self.spec = resolve_spec(self.charter)
        settings = MeasureSettings.from_charter(self.spec)
        self.operators = Operators(
            self.target,
            self.spec.success_criteria,
            settings.objectives,
            min_spans=settings.min_spans,
        )

    def registry(self, phase_operators: Mapping[str, Any] | None = None) -> ServiceRegistry:
        """The cycle's operators; ``phase_operators`` (by phase) replace the inline phases."""
        registry = ServiceRegistry()
        for phase in PHASES:
            fn = (phase_operators or {}).get(phase) or self.traced(phase)
            registry.register(f"{phase}_phase", fn)
        registry.register("restore_snapshot", self.operators.restore_snapshot)
        return registry

    def traced(self, phase: str) -> Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]:
        """The phase, recording a ``dmedi_<phase>`` span under the cycle's root once it ends.

        A phase that is only waiting (``Pending``) records nothing: it has not run yet.
        """
        run: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] = getattr(
            self, f"{phase}_phase"
        )

        def traced_phase(params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
            started = time.time_ns()
            attributes = {"weavergen.phase": phase, "weavergen.system.id": self.spec.system_id}
            try:
                result = run(params, data)
            except Pending:
                raise
            except Exception as err:
                self._record(phase, started, attributes, error=str(err) or type(err).__name__)
                raise
            self._record(phase, started, {**attributes, **phase_attributes(result)})
            # What an inline phase hands on is checked as a phase Job's result is.
            PHASE_RESULTS[phase].model_validate(result)
            return result

        return traced_phase

    def _record(
        self,
        phase: str,
        started: int,
        attributes: Mapping[str, tracing.AttributeValue],
        error: str | None = None,
    ) -> None:
        tracing.record_span(
            f"dmedi_{phase}",
            parent=tracing.parent_context(self.trace_parent),
            start_ns=started,
            end_ns=time.time_ns(),
            attributes=attributes,
            error=error,
        )

    def define_phase(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        spec = self.spec
        return {
            "define": {
                "system_id": spec.system_id,
                "system_type": spec.system_type.value,
                "mode": spec.mode,
                "thresholds": spec.thresholds.model_dump(mode="json"),
                "success_criteria": spec.success_criteria.model_dump(mode="json"),
                "reason": self.cycle.reason,
            }
        }

    def measure_phase(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        measurement = self.target.measure()
        if measurement.status != "ok" or measurement.entropy_score is None:
            raise PhaseFailed(f"cannot measure: {measurement.reason}")
        level = measurement.thresholds.level(measurement.entropy_score)
        trigger = EntropyLevel(self.spec.trigger.level)
        # A cycle a person created acts at MEDIUM already; the operator's own wait for the trigger.
        floor = min(trigger, EntropyLevel.MEDIUM)
        return {
            "measurement_before": measurement.as_dict(),
            "entropy_before": measurement.entropy_score,
            "regeneration_needed": level >= floor,
        }

    def explore_phase(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        exploration = explore(
            data["measurement_before"],
            self.context,
            recovery_objective_seconds=self.spec.success_criteria.max_recovery_seconds,
            history=self.history,
            allow=self.spec.strategies.allow,
            deny=self.spec.strategies.deny,
            max_failures=self.spec.circuit_breaker.max_strategy_failures,
            attempts=self.attempts,
            max_failed_fixes=self.spec.circuit_breaker.max_failed_fixes,
        )
        chosen = exploration.best.as_status()
        if self.cycle.strategy:
            wanted = [o for o in exploration.options if o.strategy == self.cycle.strategy]
            if not wanted:
                raise PhaseFailed(
                    f"strategy {self.cycle.strategy!r} is not among the allowed options"
                )
            chosen = wanted[0].as_status()
        return {"exploration": exploration.as_dict(), "chosen": chosen}

    def develop_phase(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        g = self.target
        objects = g.objects()
        solution = develop(
            data["chosen"],
            entropy_before=float(data["entropy_before"]),
            objects=objects,
            golden=g.golden(),
            previous_templates=g.previous_templates(),
            parameters={
                "settle_seconds": self.spec.success_criteria.settle_seconds,
                **escalation_parameters(data),
            },
            now=g.now(),
            reverted=g.reverted(objects),
        )
        return {"solution": solution.as_dict()}

    def implement_phase(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        # Only Implement runs a workflow: the other phases' pods never load SpiffWorkflow.
        from weavergen.workflows.runs import run_strategy  # noqa: PLC0415

        solution = data["solution"]
        if self.cycle.dry_run:
            return {"implementation": {"outcome": "dry_run"}, "implementation_succeeded": True}
        run = run_strategy(
            solution["strategy"],
            self.operators.registry(),
            {
                "entropy_before": data["entropy_before"],
                # The latency a request must beat to count as good, as Measure judged it.
                "latency_threshold_ms": (
                    (data.get("measurement_before") or {}).get("health") or {}
                ).get("latency_threshold_ms"),
                "basis": solution.get("basis") or {},
                **solution["parameters"],
            },
        )
        outcome = str(run.data.get("outcome"))
        return {
            "implementation": {
                "outcome": outcome,
                "calls": list(self.operators.calls),
                "verdict": run.data.get("verdict"),
                "failure": run.data.get("failure"),
                "rollback": run.data.get("rollback"),
                "verification": run.data.get("verification"),
            },
            "snapshot": {
                "sha256": run.data.get("snapshot_sha256"),
                "objects": run.data.get("snapshot_objects"),
            }
            if run.data.get("snapshot_sha256")
            else None,
            "measurement_after": run.data.get("measurement_after"),
            "implementation_succeeded": outcome == "succeeded",
            "implementation_escalated": outcome == "escalated",
        }


def escalation_parameters(data: Mapping[str, Any]) -> dict[str, str]:
    """What an escalation tells people, for the observe-escalate workflow (else nothing)."""
    if (data.get("chosen") or {}).get("strategy") != OBSERVE:
        return {}
    escalation = (data.get("exploration") or {}).get("escalation") or {}
    return {"escalation_reason": str(escalation.get("reason") or "no safe remedy")}


def phase_attributes(result: Mapping[str, Any]) -> dict[str, tracing.AttributeValue]:
    """What a phase span says about its result: entropy and health, the strategy, the outcome."""
    measurement = result.get("measurement_before") or result.get("measurement_after") or {}
    when = "before" if "measurement_before" in result else "after"
    implementation = result.get("implementation") or {}
    return tracing.attributes_of(
        {
            f"weavergen.entropy.{when}": measurement.get("entropy_score"),
            f"weavergen.entropy.level.{when}": measurement.get("entropy_level"),
            f"weavergen.health.{when}": measurement.get("health_score"),
            "weavergen.strategy": (result.get("chosen") or result.get("solution") or {}).get(
                "strategy"
            ),
            "weavergen.implementation.outcome": implementation.get("outcome"),
        }
    )


def trace_id_of(uid: str) -> str:
    """A cycle's W3C trace id: derived from its uid, so every reconcile agrees on it."""
    return hashlib.sha256(uid.encode()).hexdigest()[:32]


def record_cycle_span(
    trace_id: str,
    final: Mapping[str, Any],
    identity: Mapping[str, str],
    *,
    start_ns: int,
    end_ns: int,
    extra: Mapping[str, tracing.AttributeValue] | None = None,
) -> None:
    """The cycle's root span, recorded once it is over, from its final status."""
    before, after = final.get("entropyBefore") or {}, final.get("entropyAfter") or {}
    outcome = str(final.get("phase"))
    rollback = final.get("rollback") or {}
    attributes = tracing.cycle_attributes(
        identity,
        outcome,
        strategy=final.get("chosenStrategy"),
        entropy=(before.get("score"), after.get("score")),
        level=(before.get("level"), after.get("level")),
        health=(before.get("healthScore"), after.get("healthScore")),
    )
    tracing.record_cycle(
        trace_id,
        start_ns=start_ns,
        end_ns=end_ns,
        attributes={**attributes, **(extra or {})},
        error=str(final.get("message")) if outcome == "Failed" else None,
        rollback=tracing.rollback_attributes(
            str(final.get("message", "")), len(rollback.get("restoredObjects") or [])
        )
        if outcome == "RolledBack"
        else None,
    )
