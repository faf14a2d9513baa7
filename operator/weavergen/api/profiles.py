"""Per-system-type defaults, and the resolution of a charter spec against them.

The seed's phase targets are upper bounds: Define 30 s, Measure 60 s, Explore 120 s, Develop 180 s,
Implement 300 s, a whole cycle 10 minutes. Every profile stays within them; types whose rollouts
are quick (caches, gateways) get tighter budgets so a stuck phase is noticed sooner.
"""

from __future__ import annotations

from dataclasses import dataclass

from weavergen.api.charter import (
    CadenceSpec,
    PhasePolicySpec,
    RegenerationCharterSpec,
    SuccessCriteriaSpec,
    SystemType,
    ThresholdsSpec,
)

SEED_PHASE_DEADLINES = {
    "define": 30,
    "measure": 60,
    "explore": 120,
    "develop": 180,
    "implement": 300,
    "cycle": 600,
}


@dataclass(frozen=True)
class SystemProfile:
    """Defaults of one system type. ``complexity`` (0..1) widens computed thresholds."""

    system_type: SystemType
    summary: str
    complexity: float
    thresholds: ThresholdsSpec
    success_criteria: SuccessCriteriaSpec
    cadence: CadenceSpec
    phase_policy: PhasePolicySpec


def _profile(
    system_type: SystemType,
    summary: str,
    *,
    complexity: float,
    thresholds: tuple[float, float, float],
    health: float,
    max_entropy: float,
    recovery: int,
    settle: int,
    measure_every: int,
    deadlines: tuple[int, int, int, int, int, int],
    max_error_rate: float | None = None,
) -> SystemProfile:
    medium, high, critical = thresholds
    define, measure, explore, develop, implement, cycle = deadlines
    return SystemProfile(
        system_type=system_type,
        summary=summary,
        complexity=complexity,
        thresholds=ThresholdsSpec(medium=medium, high=high, critical=critical),
        success_criteria=SuccessCriteriaSpec(
            max_entropy_score=max_entropy,
            min_health_score=health,
            min_entropy_reduction=0.2,
            max_error_rate=max_error_rate,
            max_recovery_seconds=recovery,
            settle_seconds=settle,
            verify_windows=2,
        ),
        cadence=CadenceSpec(measure_interval_seconds=measure_every),
        phase_policy=PhasePolicySpec(
            define_deadline_seconds=define,
            measure_deadline_seconds=measure,
            explore_deadline_seconds=explore,
            develop_deadline_seconds=develop,
            implement_deadline_seconds=implement,
            cycle_deadline_seconds=cycle,
        ),
    )


PROFILES: dict[SystemType, SystemProfile] = {
    p.system_type: p
    for p in (
        _profile(
            SystemType.WEB_SERVICE,
            "Request/response service behind a load balancer.",
            complexity=0.4,
            thresholds=(0.3, 0.6, 0.8),
            health=0.9,
            max_entropy=0.3,
            recovery=240,
            settle=30,
            measure_every=30,
            deadlines=(30, 60, 120, 180, 300, 600),
            max_error_rate=0.02,
        ),
        _profile(
            SystemType.API_GATEWAY,
            "Edge proxy every request passes through: least tolerance, quickest budgets.",
            complexity=0.5,
            thresholds=(0.25, 0.5, 0.75),
            health=0.95,
            max_entropy=0.25,
            recovery=150,
            settle=20,
            measure_every=15,
            deadlines=(20, 45, 90, 120, 180, 450),
            max_error_rate=0.01,
        ),
        _profile(
            SystemType.WORKER,
            "Queue consumer; a short stall is absorbed by the queue.",
            complexity=0.35,
            thresholds=(0.3, 0.6, 0.8),
            health=0.85,
            max_entropy=0.3,
            recovery=270,
            settle=45,
            measure_every=60,
            deadlines=(30, 60, 120, 180, 300, 600),
            max_error_rate=0.05,
        ),
        _profile(
            SystemType.BATCH_JOB,
            "Periodic batch work; judged over longer windows and more tolerant of spikes.",
            complexity=0.3,
            thresholds=(0.35, 0.65, 0.85),
            health=0.8,
            max_entropy=0.35,
            recovery=300,
            settle=60,
            measure_every=120,
            deadlines=(30, 60, 120, 180, 300, 600),
            max_error_rate=0.1,
        ),
        _profile(
            SystemType.STREAM_PROCESSOR,
            "Long-running stream consumer with state; restarts cost rebalancing.",
            complexity=0.6,
            thresholds=(0.3, 0.6, 0.8),
            health=0.9,
            max_entropy=0.3,
            recovery=300,
            settle=60,
            measure_every=30,
            deadlines=(30, 60, 120, 180, 300, 600),
            max_error_rate=0.02,
        ),
        _profile(
            SystemType.DATABASE_PROXY,
            "Connection pooler or proxy in front of a database: errors cascade quickly.",
            complexity=0.5,
            thresholds=(0.25, 0.5, 0.75),
            health=0.95,
            max_entropy=0.25,
            recovery=180,
            settle=30,
            measure_every=15,
            deadlines=(20, 45, 90, 120, 240, 480),
            max_error_rate=0.01,
        ),
        _profile(
            SystemType.ML_INFERENCE,
            "Model server; slow to start (model load), latency-sensitive.",
            complexity=0.7,
            thresholds=(0.3, 0.6, 0.8),
            health=0.9,
            max_entropy=0.3,
            recovery=300,
            settle=90,
            measure_every=30,
            deadlines=(30, 60, 120, 180, 300, 600),
            max_error_rate=0.02,
        ),
        _profile(
            SystemType.AGENT,
            "Autonomous agent loop; noisy by nature, watched for semantic drift and thrash.",
            complexity=0.8,
            thresholds=(0.35, 0.65, 0.85),
            health=0.85,
            max_entropy=0.35,
            recovery=300,
            settle=60,
            measure_every=30,
            deadlines=(30, 60, 120, 180, 300, 600),
            max_error_rate=0.05,
        ),
        _profile(
            SystemType.CACHE,
            "In-memory cache; cheap to restart, so budgets are short.",
            complexity=0.2,
            thresholds=(0.3, 0.55, 0.8),
            health=0.9,
            max_entropy=0.3,
            recovery=120,
            settle=15,
            measure_every=15,
            deadlines=(15, 30, 60, 90, 120, 300),
            max_error_rate=0.02,
        ),
        _profile(
            SystemType.SCHEDULER,
            "Control loop that dispatches work on a timetable; missed ticks matter more than load.",
            complexity=0.45,
            thresholds=(0.3, 0.6, 0.8),
            health=0.9,
            max_entropy=0.3,
            recovery=240,
            settle=30,
            measure_every=60,
            deadlines=(30, 60, 120, 180, 300, 600),
            max_error_rate=0.02,
        ),
    )
}


def profile_for(system_type: SystemType | str) -> SystemProfile:
    """The profile of a system type; raises ``ValueError`` naming the known types."""
    try:
        return PROFILES[SystemType(system_type)]
    except ValueError:
        known = ", ".join(t.value for t in SystemType)
        raise ValueError(f"unknown system type {system_type!r} (known: {known})") from None


class ResolvedCharterSpec(RegenerationCharterSpec):
    """A charter spec with its system type's defaults filled in: nothing left unset to check."""

    thresholds: ThresholdsSpec
    success_criteria: SuccessCriteriaSpec
    cadence: CadenceSpec
    phase_policy: PhasePolicySpec


def resolve_spec(spec: RegenerationCharterSpec) -> ResolvedCharterSpec:
    """The spec with every system-type default filled in explicitly."""
    if isinstance(spec, ResolvedCharterSpec):
        return spec
    profile = profile_for(spec.system_type)
    values = {name: getattr(spec, name) for name in type(spec).model_fields}
    defaults = {
        "thresholds": spec.thresholds or profile.thresholds,
        "success_criteria": spec.success_criteria or profile.success_criteria,
        "cadence": spec.cadence or profile.cadence,
        "phase_policy": spec.phase_policy or profile.phase_policy,
    }
    # Every value is already a validated part of ``spec`` or of a profile: nothing to check.
    return ResolvedCharterSpec.model_construct(
        spec.model_fields_set | set(defaults), **{**values, **defaults}
    )
