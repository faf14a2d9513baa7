"""The shipped BPMN: every file loads and validates; each strategy and the cycle run all paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.unit.workflows.fakes import CYCLE, STRATEGIES, Recorder, run, strategy_path
from weavergen.domain.remedy.strategies import CATALOG
from weavergen.domain.remedy.vocabulary import MUTATING_ACTIONS
from weavergen.workflows.engine import OperatorTask, load_process, service_tasks, validate

SNAP = ("snapshot_targets", "verify_snapshot")
VERIFY = ("wait_rollout", "settle", "remeasure", "verify_success_criteria")
ROLLBACK = ["restore_snapshot", "verify_restored"]

# The main path of every strategy, in order, is the catalog's (the rollback path comes on top):
# the BPMN files and the strategy catalog Explore ranks must not drift apart.
EXPECTED: dict[str, tuple[str, ...]] = {name: s.actions for name, s in CATALOG.items()}
MUTATING = sorted(n for n, actions in EXPECTED.items() if set(actions) & MUTATING_ACTIONS)
ALL_BPMN = sorted((REPO / "bpmn").rglob("*.bpmn"))


def test_the_expected_files_are_shipped() -> None:
    assert sorted(p.stem for p in STRATEGIES.glob("*.bpmn")) == sorted(EXPECTED)
    assert CYCLE.is_file()


@pytest.mark.parametrize("path", ALL_BPMN, ids=lambda p: str(p.relative_to(REPO)))
def test_every_bpmn_file_parses_and_validates(path: Path) -> None:
    spec, subprocesses = load_process(path)
    expected_id = "dmedi_cycle" if path == CYCLE else path.stem.replace("-", "_")
    assert spec.name == expected_id
    assert validate(spec, Recorder().registry(), subprocesses) == []
    text = path.read_text()
    assert 'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"' in text


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_strategy_tasks_in_order(name: str) -> None:
    spec, _ = load_process(strategy_path(name))
    main = sorted(
        (t for t in service_tasks(spec) if t.bpmn_id.startswith("step")), key=lambda t: t.bpmn_id
    )
    assert tuple(t.operation_name for t in main) == EXPECTED[name]
    rollback = [t.operation_name for t in service_tasks(spec) if t.bpmn_id.startswith("rollback")]
    assert sorted(rollback) == (sorted(ROLLBACK) if name in MUTATING else [])
    # snapshot first: nothing changes an object before the verified snapshot
    actions = EXPECTED[name]
    changing = [i for i, a in enumerate(actions) if a in MUTATING_ACTIONS]
    if changing:
        assert actions.index("snapshot_targets") < actions.index("verify_snapshot") < changing[0]


@pytest.mark.parametrize("name", ["full-regeneration", "clean-slate-rebuild"])
def test_critical_strategies_have_ten_to_twenty_service_tasks(name: str) -> None:
    spec, _ = load_process(strategy_path(name))
    main = [t for t in service_tasks(spec) if t.bpmn_id.startswith("step")]
    assert 10 <= len(main) <= len(service_tasks(spec)) <= 20
    if name == "clean-slate-rebuild":
        assert len(main) >= 12


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_happy_path_succeeds_in_order(name: str) -> None:
    recorder = Recorder()
    workflow = run(strategy_path(name), recorder)
    assert workflow.completed
    # A strategy that ends by escalating hands the incident to people: that is its own outcome.
    assert workflow.outcome == ("escalated" if name == "observe-escalate" else "succeeded")
    assert tuple(recorder.names) == EXPECTED[name]
    assert "failure" not in workflow.data
    if name in MUTATING:
        assert workflow.data["snapshot"]["name"] == "wg-snap-demo-1"


def _failure_cases() -> list[tuple[str, int]]:
    return [(name, i) for name, actions in sorted(EXPECTED.items()) for i in range(len(actions))]


@pytest.mark.parametrize(("name", "index"), _failure_cases())
def test_a_failing_task_rolls_back_or_fails(name: str, index: int) -> None:
    """After the verified snapshot a failure rolls back; before it, nothing changed: failed."""
    actions = EXPECTED[name]
    recorder = Recorder(fail_at=index)
    workflow = run(strategy_path(name), recorder)
    assert workflow.completed
    failure = workflow.data["failure"]
    assert failure["operator"] == actions[index]
    assert failure["task"] == f"step{index + 1:02d}_{actions[index]}"
    assert f"{actions[index]} exploded" in failure["error"]
    assert recorder.names[: index + 1] == list(actions[: index + 1])
    after_snapshot = "verify_snapshot" in actions and index > actions.index("verify_snapshot")
    if after_snapshot:
        assert workflow.outcome == "rolled_back"
        assert recorder.names[index + 1 :] == ROLLBACK
    else:
        assert workflow.outcome == "failed"
        assert recorder.names == list(actions[: index + 1])


WITH_CRITERIA = sorted(n for n, a in EXPECTED.items() if "verify_success_criteria" in a)


@pytest.mark.parametrize("name", WITH_CRITERIA)
def test_criteria_not_met_rolls_back(name: str) -> None:
    recorder = Recorder(criteria_met=False)
    workflow = run(strategy_path(name), recorder)
    assert workflow.data["criteria_met"] is False
    assert workflow.data["failure"]["error"] == "success criteria not met"
    assert workflow.data["entropy_after"] == 0.21  # the measurement survives the rollback
    if name in MUTATING:
        assert workflow.outcome == "rolled_back"
        assert recorder.names == [*EXPECTED[name], *ROLLBACK]
    else:
        assert workflow.outcome == "failed"
        assert recorder.names == list(EXPECTED[name])


@pytest.mark.parametrize("failing", ROLLBACK)
def test_a_failing_rollback_is_reported(failing: str) -> None:
    recorder = Recorder(criteria_met=False, fail=failing)
    workflow = run(strategy_path("agent-reset"), recorder)
    assert workflow.outcome == "rollback_failed"
    assert workflow.data["failure"]["error"] == "success criteria not met"  # the cause is kept
    assert workflow.data["rollback_failure"]["operator"] == failing


def test_parameters_default_and_follow_the_data() -> None:
    recorder = Recorder()
    run(strategy_path("workflow-optimization"), recorder)
    params = dict(recorder.calls)
    assert params["scale_workloads"] == {"replicas_delta": 1}
    assert params["wait_rollout"] == {"timeout_seconds": 300}
    assert params["settle"] == {"seconds": 60}

    recorder = Recorder()
    data = {"settle_seconds": 5, "rollout_timeout_seconds": 30, "replicas_delta": 2}
    run(strategy_path("workflow-optimization"), recorder, data)
    params = dict(recorder.calls)
    assert params["scale_workloads"] == {"replicas_delta": 2}
    assert params["wait_rollout"] == {"timeout_seconds": 30}
    assert params["settle"] == {"seconds": 5}

    recorder = Recorder()
    run(strategy_path("span-optimization"), recorder, {"sampling_ratio": 0.05})
    assert dict(recorder.calls)["tune_sampling"] == {"ratio": 0.05}


def test_observe_escalate_changes_nothing() -> None:
    recorder = Recorder()
    workflow = run(strategy_path("observe-escalate"), recorder, {"escalation_reason": "db down"})
    assert workflow.outcome == "escalated"
    assert recorder.calls == [("check_dependencies", {}), ("escalate", {"reason": "db down"})]
    spec, _ = load_process(strategy_path("observe-escalate"))
    assert not {t.operation_name for t in service_tasks(spec)} & MUTATING_ACTIONS

    default = Recorder()
    run(strategy_path("observe-escalate"), default)
    assert "no action on the target can fix" in default.calls[1][1]["reason"]


def test_an_operator_gets_a_copy_of_the_data() -> None:
    recorder = Recorder()
    workflow = run(strategy_path("agent-reset"), recorder, {"charter": {"name": "demo"}})
    seen = recorder.data_seen[2]  # rollout_restart
    assert seen["snapshot"] == workflow.data["snapshot"]
    seen["charter"]["name"] = "changed"
    assert workflow.data["charter"] == {"name": "demo"}


# ---------------------------------------------------------------------------------------------
# The DMEDI cycle
# ---------------------------------------------------------------------------------------------

PHASES = ["define_phase", "measure_phase", "explore_phase", "develop_phase", "implement_phase"]


def test_cycle_has_five_phase_tasks_and_a_rollback_task() -> None:
    spec, _ = load_process(CYCLE)
    operators = [t.operation_name for t in spec.task_specs.values() if isinstance(t, OperatorTask)]
    assert sorted(operators) == sorted([*PHASES, "restore_snapshot"])


def test_cycle_not_needed() -> None:
    recorder = Recorder(needed=False)
    workflow = run(CYCLE, recorder)
    assert workflow.outcome == "not_needed"
    assert recorder.names == PHASES[:2]


def test_cycle_succeeds() -> None:
    recorder = Recorder()
    workflow = run(CYCLE, recorder)
    assert workflow.outcome == "succeeded"
    assert recorder.names == PHASES


def test_cycle_rolls_back_when_implement_does_not_succeed() -> None:
    recorder = Recorder(implemented=False)
    workflow = run(CYCLE, recorder)
    assert workflow.outcome == "rolled_back"
    assert recorder.names == [*PHASES, "restore_snapshot"]


def test_cycle_rolls_back_when_implement_raises() -> None:
    recorder = Recorder(fail="implement_phase")
    workflow = run(CYCLE, recorder)
    assert workflow.outcome == "rolled_back"
    assert workflow.data["failure"]["operator"] == "implement_phase"
    assert recorder.names == [*PHASES, "restore_snapshot"]


@pytest.mark.parametrize("phase", PHASES[:4])
def test_cycle_fails_without_rollback_before_implement(phase: str) -> None:
    recorder = Recorder(fail=phase)
    workflow = run(CYCLE, recorder)
    assert workflow.outcome == "failed"
    assert workflow.data["failure"]["operator"] == phase
    assert recorder.names == PHASES[: PHASES.index(phase) + 1]


def test_cycle_reports_a_failed_rollback() -> None:
    recorder = Recorder(implemented=False, fail="restore_snapshot")
    workflow = run(CYCLE, recorder)
    assert workflow.outcome == "rollback_failed"
    assert workflow.data["rollback_failure"]["operator"] == "restore_snapshot"
