"""Incidents played on twins for four minutes, with the charter's real decisions between
cycles: what an on-call engineer expects of each (issue 18), for every cause."""

from __future__ import annotations

import pytest

from weavergen.domain.remedy.strategies import CAUSES, UNFIXABLE_CAUSES
from weavergen.phases.simulate import IncidentResult, SimulationEngine, incident_summary

SEEDS = range(3)


@pytest.fixture(scope="module")
def played() -> dict[tuple[str, int], IncidentResult]:
    engine = SimulationEngine(seed=18)
    return {(cause, seed): engine.incident(cause, seed) for cause in CAUSES for seed in SEEDS}


@pytest.mark.parametrize("cause", sorted(UNFIXABLE_CAUSES))
def test_an_unfixable_incident_changes_at_most_two_things_and_escalates_once(
    played: dict[tuple[str, int], IncidentResult], cause: str
) -> None:
    for seed in SEEDS:
        result = played[(cause, seed)]
        assert result.mutating_cycles <= 2, result
        assert result.escalations == 1, result
        assert result.cycles[-1] == ("observe-escalate", "Escalated"), result
        failed = [s for s, phase in result.cycles if phase in ("RolledBack", "Failed")]
        assert len(failed) == len(set(failed)), f"a failed fix was tried again: {result}"


def test_a_hidden_change_outside_the_targets_is_learnt_from_failed_fixes(
    played: dict[tuple[str, int], IncidentResult],
) -> None:
    hidden = [r for (c, _), r in played.items() if c == "untracked_input_change" and r.hidden]
    assert hidden, "no twin hid its change: the case was not played"
    assert all(1 <= r.mutating_cycles <= 2 and r.escalations == 1 for r in hidden), hidden


@pytest.mark.parametrize("cause", [c for c in CAUSES if c not in UNFIXABLE_CAUSES])
def test_a_fixable_incident_is_healed_without_escalating(
    played: dict[tuple[str, int], IncidentResult], cause: str
) -> None:
    for seed in SEEDS:
        result = played[(cause, seed)]
        assert result.healed and result.escalations == 0, result
        assert result.cycles[-1][1] == "Succeeded", result


def test_the_summary_reports_the_goals(played: dict[tuple[str, int], IncidentResult]) -> None:
    summary = incident_summary(list(played.values()))
    assert summary["incidents"] == len(CAUSES) * len(SEEDS)
    assert summary["mutating_cycles_per_unfixable_incident"]["max"] <= 2
    assert summary["escalations_per_unchanged_incident"] == {"mean": 1.0, "min": 1, "max": 1}
    assert summary["fixable_healed"] == 1.0
