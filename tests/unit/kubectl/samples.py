"""A charter and its cycles as the operator's status models describe them, for the plugin's
renderers (and the README's watch screen, rendered from them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from weavergen.api.charter import (
    ChartPoint,
    CircuitBreakerStatus,
    ControlCharts,
    ControlChartStatus,
    CycleRef,
    EffectiveThresholds,
    EntropyIndicator,
    EntropyStatus,
    RegenerationCharter,
    RegenerationCharterSpec,
    RegenerationCharterStatus,
)
from weavergen.api.common import ObjectMeta
from weavergen.api.cycle import (
    EntropySnapshot,
    PhaseStatus,
    PlannedChange,
    RankedOption,
    RegenerationCycle,
    RegenerationCycleSpec,
    RegenerationCycleStatus,
    RollbackRecord,
)

NOW = datetime(2026, 11, 25, 11, 0, 0, tzinfo=UTC)
CONFIG_DIFF = (
    "--- ConfigMap/shop/checkout-config (live)\n"
    "+++ ConfigMap/shop/checkout-config (planned)\n"
    "@@ -1,2 +1,2 @@\n"
    " data:\n"
    "-  timeout_ms: '1'\n"
    "+  timeout_ms: '800'"
)


WAITING = (
    "plan ready (partial-regeneration): approve with kubectl annotate rcy <name> "
    "regeneration.weavergen.io/approve=true"
)


def at(minutes: float) -> datetime:
    return NOW + timedelta(minutes=minutes)


def meta(name: str, created: datetime, **annotations: str) -> ObjectMeta:
    return ObjectMeta.model_validate(
        {
            "name": name,
            "namespace": "shop",
            "creationTimestamp": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "resourceVersion": "4711",
            **({"annotations": annotations} if annotations else {}),
        }
    )


def charter(*, breaker: str = "Closed", active: str | None = None) -> RegenerationCharter:
    spec = RegenerationCharterSpec.model_validate(
        {
            "systemId": "checkout",
            "systemType": "web-service",
            "mode": "propose",
            "target": {"workloads": [{"name": "checkout"}], "configMaps": ["checkout-config"]},
            "telemetry": {"serviceName": "checkout"},
            "trigger": {"mode": "auto", "level": "medium"},
        }
    )
    values = [0.21, 0.22, 0.2, 0.23, 0.22, 0.24, 0.31, 0.42, 0.55, 0.63, 0.68, 0.71]
    status = RegenerationCharterStatus(
        entropy=EntropyStatus(
            score=0.71,
            level="high",
            health_score=0.52,
            indicators=[
                EntropyIndicator(
                    type="error_rate_increase",
                    severity=0.8,
                    summary="30.0% errors against 1.0% in the baseline",
                ),
                EntropyIndicator(
                    type="latency_degradation",
                    severity=0.45,
                    summary="p99 latency 910 ms against 420 ms in the baseline",
                ),
            ],
            span_count=1200,
            measured_at=at(-0.25),
        ),
        effective_thresholds=EffectiveThresholds(
            medium=0.3, high=0.6, critical=0.8, source="systemType"
        ),
        control_charts=ControlCharts(
            entropy=ControlChartStatus(
                phase="monitoring",
                upper_control_limit=0.29,
                history=[ChartPoint(at=str(i), value=v) for i, v in enumerate(values)],
                last_signal="WE1: 0.71 is beyond the upper control limit 0.29",
            )
        ),
        circuit_breaker=CircuitBreakerStatus(
            state=breaker, open_until=at(12) if breaker == "Open" else None
        ),
        active_cycle=active,
        last_cycle=CycleRef(name="checkout-1a2b3c", outcome="Succeeded", finished_at=at(-90)),
    )
    return RegenerationCharter(
        metadata=meta("checkout", at(-3 * 24 * 60)), spec=spec, status=status
    )


def options() -> list[RankedOption]:
    return [
        RankedOption(
            rank=1,
            strategy="partial-regeneration",
            score=0.82,
            success_probability=0.9,
            recovery_time_seconds=45,
            risk=0.2,
            resource_cost=0.1,
            reasons=[
                "config drift found: checkout-config differs from the known-good snapshot",
                "succeeded 3 of 3 times for this signature",
            ],
        ),
        RankedOption(
            rank=2,
            strategy="restart-rollout",
            score=0.61,
            success_probability=0.55,
            recovery_time_seconds=60,
            risk=0.25,
            resource_cost=0.2,
            reasons=["restarts do not undo a config change"],
        ),
    ]


def phases(upto: int, running: bool) -> list[PhaseStatus]:
    """The first ``upto`` phases done (a minute each), the next one running if ``running``."""
    names = ("define", "measure", "explore", "develop", "implement")
    records = []
    for index, name in enumerate(names[: upto + running]):
        done = index < upto
        records.append(
            PhaseStatus(
                name=name,
                job=f"checkout-7f3c9-{name}",
                attempts=1,
                started_at=at(-5 + index),
                finished_at=at(-4 + index) if done else None,
                duration_seconds=60.0 if done else None,
                outcome="Succeeded" if done else "Running",
            )
        )
    return records


def cycle(phase: str = "Implementing", **annotations: str) -> RegenerationCycle:
    final = phase in ("Succeeded", "RolledBack", "Failed")
    status = RegenerationCycleStatus(
        phase=phase,
        phases=phases(5 if final else 4, running=not final),
        entropy_before=EntropySnapshot(score=0.71, level="high", health_score=0.52),
        entropy_after=EntropySnapshot(score=0.12, level="low", health_score=0.97)
        if phase == "Succeeded"
        else None,
        options=options(),
        chosen_strategy="partial-regeneration",
        plan=[
            PlannedChange(
                action="reset_config_from_baseline",
                object="ConfigMap/shop/checkout-config",
                diff=CONFIG_DIFF,
            ),
            PlannedChange(action="restart_rollout", object="Deployment/shop/checkout", diff=""),
        ],
        predicted_entropy=0.15,
        rollback=RollbackRecord(
            reason="partial-regeneration did not meet the success criteria: error rate 12%",
            snapshot="checkout-7f3c9-snapshot",
            sha256="9f2c" * 16,
            restored_objects=["ConfigMap/shop/checkout-config", "Deployment/shop/checkout"],
            verified=True,
        )
        if phase == "RolledBack"
        else None,
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        started_at=at(-5),
        finished_at=at(0) if final else None,
        message=WAITING if phase == "AwaitingApproval" else "",
    )
    if phase == "AwaitingApproval":
        status.phases[-1].job = None  # Implement waits in the operator, not in a Job
    spec = RegenerationCycleSpec.model_validate(
        {"charterRef": {"name": "checkout"}, "reason": "entropy high (0.71)"}
    )
    return RegenerationCycle(
        metadata=meta("checkout-7f3c9", at(-5), **annotations), spec=spec, status=status
    )


def wire(obj: RegenerationCharter | RegenerationCycle) -> dict[str, Any]:
    """The object as the API server returns it (camelCase JSON)."""
    dumped: dict[str, Any] = obj.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped
