"""Explore: causes, success probabilities, ranking properties, reasons."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from weavergen.api.charter import EntropyLevel
from weavergen.domain.decide.explore import (
    MIN_VIABLE_SUCCESS,
    StrategyRecord,
    TargetContext,
    cause_posterior,
    explore,
    score,
    success_probability,
)
from weavergen.domain.remedy.strategies import CATALOG, OBSERVE, candidates_for, strategy


def measurement(*types: str, level: str = "high", dependency: bool = False) -> dict[str, Any]:
    return {
        "entropy_level": level,
        "drift_indicators": [
            {"type": t, "severity": 0.5, "evidence": {"on_dependency_calls": dependency}}
            for t in types
        ],
        "validation_errors": [],
    }


def test_catalog_has_three_to_five_strategies_per_level_and_observe() -> None:
    per_level: dict[str, int] = {}
    for s in CATALOG.values():
        if s.name != OBSERVE:
            per_level[s.level.value] = per_level.get(s.level.value, 0) + 1
    assert set(per_level) == {"low", "medium", "high", "critical"}
    assert all(3 <= n <= 5 for n in per_level.values()), per_level
    assert OBSERVE in CATALOG and not CATALOG[OBSERVE].mutating


@pytest.mark.parametrize(
    ("features", "cause"),
    [
        ({"error_rate_increase", "config_changed"}, "config_corruption"),
        ({"error_rate_increase", "recent_rollout"}, "bad_deploy"),
        ({"semantic_drift", "validation", "recent_rollout"}, "semantic_drift_upgrade"),
        ({"latency_degradation", "restarts"}, "memory_leak"),
        ({"retry_storm", "latency_degradation", "dependency"}, "retry_storm_slow_dependency"),
        ({"error_rate_increase", "dependency"}, "failing_downstream_dependency"),
        ({"crash_loop", "pods_not_ready", "throughput_drop", "recent_rollout"}, "bad_deploy"),
        (
            {"crash_loop", "pods_not_ready", "throughput_drop", "config_changed"},
            "config_corruption",
        ),
        ({"oom_killed", "restarts", "latency_degradation"}, "memory_leak"),
        ({"rollout_stalled", "pods_not_ready"}, "bad_deploy"),
    ],
)
def test_cause_model_names_the_likely_cause(features: set[str], cause: str) -> None:
    posterior = cause_posterior(frozenset(features))
    assert max(posterior, key=posterior.__getitem__) == cause
    assert sum(posterior.values()) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("context", "types", "dependency", "best"),
    [
        (
            TargetContext(config_changed=True),
            ("error_rate_increase",),
            False,
            "partial-regeneration",
        ),
        (TargetContext(recent_rollout=True), ("error_rate_increase",), False, "emergency-rollback"),
        (TargetContext(restarts=True), ("latency_degradation",), False, "agent-reset"),
        (TargetContext(), ("error_rate_increase",), True, OBSERVE),
    ],
)
def test_best_option_fits_the_evidence(
    context: TargetContext, types: tuple[str, ...], dependency: bool, best: str
) -> None:
    result = explore(
        measurement(*types, level="critical", dependency=dependency),
        context,
        recovery_objective_seconds=240,
    )
    assert result.best.strategy == best
    assert all(o.reasons and o.reasons[-1].startswith(f"ranked {o.rank}") for o in result.options)


def test_score_is_monotone_in_each_criterion() -> None:
    base = {"success": 0.6, "recovery": 120.0, "objective": 300.0, "risk": 0.3, "res": 0.3}
    for delta in (0.05, 0.2):
        assert score(**{**base, "success": 0.6 + delta}) > score(**base)
        assert score(**{**base, "recovery": 120 + 100 * delta}) < score(**base)
        assert score(**{**base, "risk": 0.3 + delta}) < score(**base)
        assert score(**{**base, "res": 0.3 + delta}) < score(**base)
    assert score(**{**base, "recovery": 10_000}) == score(**{**base, "recovery": 300})  # bounded


def test_adding_an_option_never_reorders_the_others() -> None:
    m = measurement("error_rate_increase", "latency_degradation", level="critical")
    context = TargetContext(config_changed=True)
    names = [s.name for s in candidates_for(EntropyLevel.CRITICAL) if s.name != OBSERVE]
    for subset in itertools.combinations(names, 4):
        for extra in names:
            if extra in subset:
                continue
            small = explore(m, context, allow=subset).options
            large = explore(m, context, allow=(*subset, extra)).options
            order = [o.strategy for o in large if o.strategy != extra]
            assert order == [o.strategy for o in small]


def test_history_updates_the_success_probability() -> None:
    s = strategy("agent-reset")
    causes = cause_posterior(frozenset({"latency_degradation", "restarts"}))
    fresh = success_probability(s, causes, "sig")
    after_failures = success_probability(
        s, causes, "sig", [StrategyRecord("agent-reset", "sig", 0, 6)]
    )
    after_wins = success_probability(s, causes, "sig", [StrategyRecord("agent-reset", "sig", 6, 0)])
    other_signature = success_probability(
        s, causes, "sig", [StrategyRecord("agent-reset", "x", 0, 9)]
    )
    assert after_failures.probability < fresh.probability < after_wins.probability
    assert other_signature.probability == fresh.probability


def test_unviable_options_rank_after_viable_ones() -> None:
    result = explore(
        measurement("error_rate_increase", level="critical"), TargetContext(config_changed=True)
    )
    viable = [
        o.success_probability >= MIN_VIABLE_SUCCESS or o.strategy == OBSERVE for o in result.options
    ]
    assert viable == sorted(viable, reverse=True)
    assert any("not viable" in r for o in result.options for r in o.reasons)


def test_allow_deny_and_exclusions_are_respected() -> None:
    m = measurement("error_rate_increase", level="critical")
    result = explore(
        m,
        TargetContext(recent_rollout=True),
        deny=["emergency-rollback"],
        exclude={"semantic-refresh": "failed twice for this signature"},
    )
    names = [o.strategy for o in result.options]
    assert "emergency-rollback" not in names and "semantic-refresh" not in names
    assert result.excluded["semantic-refresh"] == "failed twice for this signature"
    assert OBSERVE in names


def test_ties_break_deterministically() -> None:
    m = measurement("error_rate_increase", level="critical")
    first = [o.strategy for o in explore(m, TargetContext()).options]
    assert first == [o.strategy for o in explore(m, TargetContext()).options]


def test_low_entropy_never_reaches_for_a_big_hammer() -> None:
    names = {
        o.strategy
        for o in explore(measurement("span_mix_shift", level="low"), TargetContext()).options
    }
    assert "clean-slate-rebuild" not in names and "emergency-rollback" not in names


def test_workload_evidence_is_read_from_indicators_and_its_absence_changes_nothing() -> None:
    """Kubernetes state counts when present only: a fault with no crash loop keeps the
    posterior it had, and a crash loop on a fresh target is blamed on the release or config,
    never on a dependency, so the options that fix those rank first."""
    plain = frozenset({"error_rate_increase", "config_changed"})
    assert cause_posterior(plain) == cause_posterior(plain | {"warning_events"})
    crash = explore(
        measurement("crash_loop", "pods_not_ready", "throughput_drop"), TargetContext(restarts=True)
    )
    assert {"crash_loop", "pods_not_ready"} <= crash.features
    likely = sorted(crash.causes, key=crash.causes.__getitem__, reverse=True)[:2]
    assert set(likely) == {"bad_deploy", "config_corruption"}
    assert crash.best.strategy != OBSERVE
