"""The simulation engine: 100 scenarios through the real measure/explore/develop/implement path."""

from __future__ import annotations

import json
from typing import Any

import pytest

from weavergen.cli import main
from weavergen.domain.remedy.strategies import OBSERVE
from weavergen.domain.simulation.twin import Twin
from weavergen.phases import simulate
from weavergen.phases.simulate import SimulationEngine, SimulationReport


@pytest.fixture(scope="module")
def report() -> SimulationReport:
    return SimulationEngine(seed=2026, failure_share=0.05).run(100)


@pytest.fixture(scope="module")
def summary(report: SimulationReport) -> dict:  # type: ignore[type-arg]
    return report.summary()


@pytest.fixture
def twins(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Twin, dict[str, Any]]]:
    """Each twin a scenario builds, with its objects as they were built (fault included)."""
    built: list[tuple[Twin, dict[str, Any]]] = []

    class RecordedTwin(Twin):
        @classmethod
        def build(cls, *args: Any, **kwargs: Any) -> Twin:
            twin = super().build(*args, **kwargs)
            built.append((twin, twin.objects()))
            return twin

    monkeypatch.setattr(simulate, "Twin", RecordedTwin)
    return built


def test_one_hundred_scenarios_meet_the_targets(summary: dict) -> None:  # type: ignore[type-arg]
    print("\n" + json.dumps(summary, indent=2))
    assert summary["scenarios"] == 100
    assert summary["success_rate"] >= 0.9
    assert summary["average_health_improvement"] >= 0.6
    assert summary["detection_accuracy"] >= 0.99
    assert summary["brier_score"] <= 0.15
    assert summary["escalation_rate_unfixable"] >= 0.95


def test_injected_failures_roll_back_exactly(
    report: SimulationReport,
    summary: dict,  # type: ignore[type-arg]
    twins: list[tuple[Twin, dict[str, Any]]],
) -> None:
    injected = [r for r in report.results if r.injected_failure and r.fixable]
    assert injected, "the run injected no failure into a fixable scenario: nothing was checked"
    assert all(r.outcome == "rolled_back" and r.restored_exactly for r in injected), injected
    assert summary["rollback_exact_after_injected_failure"] == 1.0
    result = SimulationEngine(seed=5).scenario("config_corruption", seed=11, inject=True)
    assert result.outcome == "rolled_back"
    assert result.restored_exactly is True
    # The twin the scenario acted on holds what it was built with: the fault, nothing of the
    # failed change.
    ((twin, built),) = twins
    assert twin.last_snapshot is not None
    assert twin.objects() == built


def test_a_failing_dependency_is_escalated_and_nothing_changes(
    twins: list[tuple[Twin, dict[str, Any]]],
) -> None:
    result = SimulationEngine(seed=3).scenario("failing_downstream_dependency", seed=9)
    assert result.strategy == OBSERVE and result.outcome == "escalated"
    ((twin, built),) = twins  # the twin the scenario measured and acted on
    assert twin.cause == "failing_downstream_dependency"
    assert len(twin.escalations) == 1
    assert twin.objects() == built
    assert twin.last_snapshot is None and twin.recorded_writes() == {}


def test_simulate_cli_prints_the_figures(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["regeneration", "simulate", "--scenarios", "7", "--seed", "1", "--output", "json"])
    out, err = capsys.readouterr()
    figures = json.loads(out)
    assert code == 0
    for key in (
        "success_rate",
        "average_health_improvement",
        "detection_accuracy",
        "brier_score",
        "scenarios",
        "per_cause",
    ):
        assert key in figures
    assert err.count("[") == 7  # one progress line per scenario
