"""Custom strategies: generated BPMN validates and runs like the shipped workflows."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from tests.unit.workflows.fakes import Recorder
from weavergen.workflows.engine import WorkflowRun, load_process_text, service_tasks, validate
from weavergen.workflows.generator import CustomStrategy, Step, generate_bpmn


def strategy(name: str, *steps: str | tuple[str, dict[str, Any]]) -> CustomStrategy:
    return CustomStrategy.model_validate(
        {
            "name": name,
            "steps": [
                {"action": s} if isinstance(s, str) else {"action": s[0], "params": s[1]}
                for s in steps
            ],
        }
    )


def run(custom: CustomStrategy, recorder: Recorder, data: dict[str, Any] | None = None) -> Any:
    spec, subprocesses = load_process_text(generate_bpmn(custom))
    workflow = WorkflowRun.start(spec, subprocesses, recorder.registry(), data or {})
    workflow.run()
    return workflow


def test_a_custom_strategy_generates_bpmn_that_validates_and_runs() -> None:
    custom = strategy(
        "restart-and-scale",
        "check_dependencies",
        "rollout_restart",
        ("scale_workloads", {"replicas_delta": 2}),
        ("settle", {"seconds": 15}),
    )
    xml = generate_bpmn(custom)
    spec, subprocesses = load_process_text(xml)
    assert spec.name == "restart_and_scale"
    assert validate(spec, Recorder().registry(), subprocesses) == []

    recorder = Recorder()
    workflow = run(custom, recorder)
    assert workflow.outcome == "succeeded"
    assert recorder.calls == [
        ("check_dependencies", {}),
        ("snapshot_targets", {}),
        ("verify_snapshot", {}),
        ("rollout_restart", {}),
        ("scale_workloads", {"replicas_delta": 2}),
        ("settle", {"seconds": 15}),
        ("wait_rollout", {"timeout_seconds": 300}),
        ("remeasure", {}),
        ("verify_success_criteria", {}),
    ]


def test_a_generated_workflow_rolls_back_like_the_shipped_ones() -> None:
    custom = strategy("restart", "rollout_restart")
    recorder = Recorder(fail="wait_rollout")
    workflow = run(custom, recorder)
    assert workflow.outcome == "rolled_back"
    assert workflow.data["failure"]["operator"] == "wait_rollout"
    assert recorder.names[-2:] == ["restore_snapshot", "verify_restored"]

    recorder = Recorder(criteria_met=False)
    assert run(custom, recorder).outcome == "rolled_back"


def test_a_strategy_that_changes_nothing_has_no_rollback_path() -> None:
    custom = strategy("look-around", "check_dependencies", ("escalate", {"reason": "look"}))
    spec, _ = load_process_text(generate_bpmn(custom))
    assert [t.operation_name for t in service_tasks(spec)] == ["check_dependencies", "escalate"]
    recorder = Recorder(fail="escalate")
    workflow = run(custom, recorder)
    assert workflow.outcome == "failed"
    assert recorder.names == ["check_dependencies", "escalate"]


def test_an_action_outside_the_vocabulary_is_rejected_naming_the_step() -> None:
    with pytest.raises(ValidationError) as err:
        strategy("evil", "check_dependencies", "os_system")
    (error,) = err.value.errors()
    assert error["loc"] == ("steps", 1, "action")
    assert "unknown action 'os_system'" in error["msg"]
    assert "steps.1.action" in str(err.value)


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"action": "restore_snapshot"}, "rollback path"),
        ({"action": "define_phase"}, "unknown action 'define_phase'"),
        ({"action": "settle", "params": {"secs": 5}}, "takes seconds; unexpected: secs"),
        ({"action": "settle", "params": {"seconds": "5"}}, "must be int, got '5'"),
        ({"action": "settle", "params": {"seconds": 1.5}}, "must be int"),
        ({"action": "tune_sampling", "params": {"ratio": float("nan")}}, "not finite"),
        ({"action": "escalate", "params": {"reason": ["a"]}}, "valid string"),
        ({"action": "escalate", "params": {"reason": None}}, "valid string"),
        ({"action": "rollout_restart", "code": "x"}, "Extra inputs"),
    ],
)
def test_bad_steps_are_rejected(step: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CustomStrategy.model_validate({"name": "bad", "steps": [step]})


def test_snapshot_must_come_before_the_first_change() -> None:
    with pytest.raises(ValidationError, match=r"steps\[1\] snapshot_targets must come before"):
        strategy("late-snapshot", "rollout_restart", "snapshot_targets")


def test_the_snapshot_is_taken_once_and_verified_after() -> None:
    with pytest.raises(ValidationError, match="only once"):
        strategy("twice", "snapshot_targets", "rollout_restart", "snapshot_targets")
    with pytest.raises(ValidationError, match=r"steps\[0\] verify_snapshot must follow"):
        strategy("backwards", "verify_snapshot", "snapshot_targets", "rollout_restart")
    recorder = Recorder(fail="snapshot_targets")
    custom = strategy("own-snapshot", "check_dependencies", "snapshot_targets", "rollout_undo")
    assert run(custom, recorder).outcome == "failed"  # nothing changed yet: no rollback
    assert recorder.names == ["check_dependencies", "snapshot_targets"]


def test_names_and_sizes_are_bounded() -> None:
    with pytest.raises(ValidationError, match="name"):
        strategy("Not_A_Name", "remeasure")
    with pytest.raises(ValidationError, match="steps"):
        CustomStrategy.model_validate({"name": "empty", "steps": []})


def test_parameter_strings_stay_data() -> None:
    """A string parameter is written as a Python literal: whatever it says, it is not run."""
    reason = "x'); __import__('os').system('touch /tmp/pwned'); ('"
    custom = strategy("quoted", ("escalate", {"reason": reason}), ("tune_sampling", {"ratio": 1}))
    recorder = Recorder()
    workflow = run(custom, recorder)
    assert workflow.outcome == "succeeded"
    assert ("escalate", {"reason": reason}) in recorder.calls
    assert ("tune_sampling", {"ratio": 1}) in recorder.calls


def test_steps_are_immutable_values() -> None:
    step = Step(action="settle", params={"seconds": 3})
    with pytest.raises(ValidationError):
        step.action = "rollout_undo"
