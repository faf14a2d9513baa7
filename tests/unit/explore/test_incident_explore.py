"""Explore within an incident: a failed fix is not tried again, each failure is evidence for a
cause no fix here removes, and after the limit only escalating is left, with the history."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from weavergen.domain.decide.explore import FEATURES, TargetContext, cause_posterior, explore
from weavergen.domain.decide.incident import Attempt
from weavergen.domain.remedy.strategies import CATALOG, OBSERVE, UNFIXABLE_CAUSES


def measurement(*types: str, level: str = "high") -> dict[str, Any]:
    return {
        "entropy_level": level,
        "drift_indicators": [{"type": t, "severity": 0.5, "evidence": {}} for t in types],
        "validation_errors": [],
    }


def unfixable(causes: dict[str, float]) -> float:
    return sum(p for c, p in causes.items() if c in UNFIXABLE_CAUSES)


MUTATING = [s.name for s in CATALOG.values() if s.mutating]
SYMPTOMS = [
    frozenset(c)
    for n in (1, 2)
    for c in itertools.combinations(
        ("error_rate_increase", "latency_degradation", "recent_rollout", "config_changed"), n
    )
]


@pytest.mark.parametrize("features", SYMPTOMS, ids=lambda f: "+".join(sorted(f)))
def test_every_failed_fix_raises_the_unfixable_share(features: frozenset[str]) -> None:
    for first, second in itertools.permutations(MUTATING, 2):
        shares = [
            unfixable(cause_posterior(features, failed))
            for failed in ([], [first], [first, second])
        ]
        assert shares[0] < shares[1] < shares[2], (first, second, shares)


def test_a_fix_that_failed_in_the_incident_is_not_tried_again() -> None:
    m = measurement("error_rate_increase", "latency_degradation")
    first = explore(m, TargetContext(recent_rollout=True))
    tried = first.best.strategy
    assert tried != OBSERVE
    again = explore(
        m, TargetContext(recent_rollout=True), attempts=[Attempt("c1", tried, "RolledBack")]
    )
    assert tried not in {o.strategy for o in again.options}
    assert "RolledBack in this incident (c1)" in again.excluded[tried]


def test_after_the_limit_of_failed_fixes_only_escalating_is_left() -> None:
    attempts = [
        Attempt("c1", "semantic-refresh", "RolledBack"),
        Attempt("c2", "validation-rebuild", "Failed"),
    ]
    result = explore(
        measurement("latency_degradation", level="critical"),
        TargetContext(recent_rollout=True),
        attempts=attempts,
        max_failed_fixes=2,
    )
    assert [o.strategy for o in result.options] == [OBSERVE]
    assert "semantic-refresh RolledBack (c1), validation-rebuild Failed (c2)" in result.escalation


def test_a_changed_input_outside_the_targets_is_evidence_and_is_named() -> None:
    changed = ("ConfigMap api-runtime (envFrom of Deployment/api), changed 2026-12-03T11:58:00Z",)
    m = measurement("latency_degradation")
    plain = explore(m, TargetContext(recent_rollout=True))
    seen = explore(m, TargetContext(recent_rollout=True, changed_inputs=changed))
    assert "untracked_input_changed" in seen.features and "untracked_input_changed" in FEATURES
    assert unfixable(seen.causes) > unfixable(plain.causes)
    assert seen.best.strategy == OBSERVE
    assert changed[0] in seen.escalation and seen.suspects == changed
    assert seen.as_dict()["escalation"]["suspects"] == list(changed)
