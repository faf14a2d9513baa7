"""The simulation engine: 100 scenarios through the real measure/explore/develop/implement path."""

from __future__ import annotations

import json

import pytest

from weavergen.cli import main
from weavergen.domain.simulator import EntropySimulator
from weavergen.domain.strategies import OBSERVE
from weavergen.domain.twin import Twin
from weavergen.phases.simulate import SimulationEngine


@pytest.fixture(scope="module")
def summary() -> dict:  # type: ignore[type-arg]
    return SimulationEngine(seed=2026, failure_share=0.05).run(100).summary()


def test_one_hundred_scenarios_meet_the_targets(summary: dict) -> None:  # type: ignore[type-arg]
    print("\n" + json.dumps(summary, indent=2))
    assert summary["scenarios"] == 100
    assert summary["success_rate"] >= 0.9
    assert summary["average_health_improvement"] >= 0.6
    assert summary["detection_accuracy"] >= 0.99
    assert summary["brier_score"] <= 0.15
    assert summary["escalation_rate_unfixable"] >= 0.95


def test_injected_failures_roll_back_exactly(summary: dict) -> None:  # type: ignore[type-arg]
    assert summary["rollback_exact_after_injected_failure"] in (None, 1.0)
    engine = SimulationEngine(seed=5)
    result = engine.scenario("config_corruption", seed=11, inject=True)
    assert result.outcome == "rolled_back"
    assert result.restored_exactly is True


def test_a_failing_dependency_is_escalated_and_nothing_changes() -> None:
    engine = SimulationEngine(seed=3)
    twin = Twin.build(EntropySimulator(3), "failing_downstream_dependency", seed=9)
    before = twin.objects()
    result = engine.scenario("failing_downstream_dependency", seed=9)
    assert result.strategy == OBSERVE and result.outcome == "escalated"
    assert twin.objects() == before


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
