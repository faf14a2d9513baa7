"""The DMEDI phases as workflow operators of ``bpmn/dmedi_cycle.bpmn``.

The same code runs a phase inline (in the operator), in a phase Job, or from the CLI: each
phase reads what earlier phases left in the workflow data and returns its own result, as JSON.
Implement runs the chosen strategy's own workflow with the operators bound to the target.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from weavergen.api.charter import PHASES, EntropyLevel, RegenerationCharterSpec
from weavergen.api.cycle import RegenerationCycleSpec
from weavergen.api.profiles import resolve_spec
from weavergen.domain.develop import develop
from weavergen.domain.explore import Outcome, TargetContext, explore
from weavergen.domain.gateway import TargetGateway
from weavergen.phases.operators import Operators
from weavergen.phases.simulate import BPMN_DIR
from weavergen.workflows import ServiceRegistry, WorkflowRun, load_process

LEVELS = list(EntropyLevel)


class PhaseFailed(RuntimeError):
    """A phase could not do its work; the message says why, for the cycle's status."""


@dataclass
class CyclePhases:
    """The five phase operators of one cycle, and the rollback the cycle may need."""

    gateway: TargetGateway
    charter: RegenerationCharterSpec
    cycle: RegenerationCycleSpec
    context: TargetContext = field(default_factory=TargetContext)
    history: Sequence[Outcome] = ()

    def __post_init__(self) -> None:
        self.spec = resolve_spec(self.charter)
        assert self.spec.success_criteria is not None
        self.operators = Operators(self.gateway, self.spec.success_criteria)

    def registry(self, phase_operators: Mapping[str, Any] | None = None) -> ServiceRegistry:
        """The cycle's operators; ``phase_operators`` (by phase) replace the inline phases."""
        registry = ServiceRegistry()
        for phase in PHASES:
            fn = (phase_operators or {}).get(phase) or getattr(self, f"{phase}_phase")
            registry.register(f"{phase}_phase", fn)
        registry.register("restore_snapshot", self.operators.restore_snapshot)
        return registry

    def define_phase(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        spec = self.spec
        assert spec.thresholds is not None and spec.success_criteria is not None
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
        measurement = self.gateway.measure()
        if measurement.get("status") != "ok":
            raise PhaseFailed(f"cannot measure: {measurement.get('reason')}")
        level = EntropyLevel(measurement["entropy_level"])
        trigger = EntropyLevel(self.spec.trigger.level)
        # A cycle a person created acts at MEDIUM already; the operator's own wait for the trigger.
        floor = min(trigger, EntropyLevel.MEDIUM, key=LEVELS.index)
        return {
            "measurement_before": measurement,
            "entropy_before": measurement["entropy_score"],
            "regeneration_needed": LEVELS.index(level) >= LEVELS.index(floor),
        }

    def explore_phase(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        assert self.spec.success_criteria is not None
        exploration = explore(
            data["measurement_before"],
            self.context,
            recovery_objective_seconds=self.spec.success_criteria.max_recovery_seconds,
            history=self.history,
            allow=self.spec.strategies.allow,
            deny=self.spec.strategies.deny,
            max_failures=self.spec.circuit_breaker.max_strategy_failures,
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
        g = self.gateway
        assert self.spec.success_criteria is not None
        solution = develop(
            data["chosen"],
            entropy_before=float(data["entropy_before"]),
            objects=g.objects(),
            golden=g.golden(),
            previous_templates=g.previous_templates(),
            parameters={"settle_seconds": self.spec.success_criteria.settle_seconds},
            now=g.now(),
        )
        return {"solution": solution.as_dict()}

    def implement_phase(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        solution = data["solution"]
        if self.cycle.dry_run:
            return {"implementation": {"outcome": "dry_run"}, "implementation_succeeded": True}
        spec, subprocesses = load_process(BPMN_DIR / solution["workflow"], solution["process_id"])
        run = WorkflowRun.start(
            spec,
            subprocesses,
            self.operators.registry(),
            {"entropy_before": data["entropy_before"], **solution["parameters"]},
        )
        run.run()
        outcome = str(run.data.get("outcome"))
        if solution["strategy"] == "observe-escalate":
            outcome = "escalated"
        return {
            "implementation": {
                "outcome": outcome,
                "calls": list(self.operators.calls),
                "verdict": run.data.get("verdict"),
                "failure": run.data.get("failure"),
            },
            "snapshot": {
                "sha256": run.data.get("snapshot_sha256"),
                "objects": run.data.get("snapshot_objects"),
            }
            if run.data.get("snapshot_sha256")
            else None,
            "measurement_after": run.data.get("measurement_after"),
            "implementation_succeeded": outcome in ("succeeded", "escalated"),
        }
