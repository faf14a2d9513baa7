"""A run saved after any service task and resumed in another process ends exactly the same.

The parent runs each scenario once without interruption, then again stopping after every service
task and saving the state with ``dumps``. One child Python process (a new interpreter: nothing is
shared but the bytes) loads every saved state with ``loads``, resumes it with fresh fake operators
and reports the calls it made and the final data.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.helpers import REPO
from tests.unit.workflows.fakes import CYCLE, Recorder, start, strategy_path
from weavergen.workflows.engine import WorkflowRun

CHILD = """
import base64, json, sys
from tests.unit.workflows.fakes import Recorder
from weavergen.workflows.engine import WorkflowRun

results = []
for job in json.load(sys.stdin):
    recorder = Recorder(**job["recorder"])
    run = WorkflowRun.loads(base64.b64decode(job["blob"]), recorder.registry())
    while not run.completed and run.step() is not None:
        pass
    results.append({"calls": recorder.calls, "data": run.data, "completed": run.completed})
json.dump(results, sys.stdout)
"""

SCENARIOS: dict[str, tuple[Path, dict[str, Any], dict[str, Any]]] = {
    "agent-reset succeeds": (strategy_path("agent-reset"), {}, {"settle_seconds": 3}),
    "clean-slate-rebuild rolls back": (strategy_path("clean-slate-rebuild"), {"fail_at": 8}, {}),
    "semantic-refresh misses its criteria": (
        strategy_path("semantic-refresh"), {"criteria_met": False}, {},
    ),
    "observe-escalate": (strategy_path("observe-escalate"), {}, {"escalation_reason": "dns"}),
    "cycle succeeds": (CYCLE, {}, {"cycle": "demo-1"}),
    "cycle waits for a job": (CYCLE, {"pending": "explore_phase", "pending_times": 2}, {}),
    "cycle rolls back": (CYCLE, {"implemented": False}, {}),
}  # fmt: skip


def _to_end(workflow: WorkflowRun) -> None:
    while not workflow.completed and workflow.step() is not None:
        pass


def test_resume_after_every_task_in_a_new_process() -> None:
    jobs: list[dict[str, Any]] = []
    expected: list[tuple[str, list[list[Any]], dict[str, Any]]] = []
    for label, (path, options, data) in SCENARIOS.items():
        full = Recorder(**options)
        uninterrupted = start(path, full, data)
        _to_end(uninterrupted)
        assert uninterrupted.completed, label
        steps = 0
        while True:
            steps += 1
            before = Recorder(**options)
            workflow = start(path, before, data)
            for _ in range(steps):
                assert workflow.step() is not None
            if workflow.completed:
                break
            done = len(before.calls)
            assert before.calls == full.calls[:done]
            resumed_options = {**options, "first_call": done, "pending_times": before.pending_times}
            jobs.append(
                {"recorder": resumed_options, "blob": base64.b64encode(workflow.dumps()).decode()}
            )
            remaining = [[name, params] for name, params in full.calls[done:]]
            expected.append((f"{label}, resumed after step {steps}", remaining, uninterrupted.data))
    assert len(jobs) >= 40

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "operator"), str(REPO)])}
    child = subprocess.run(
        [sys.executable, "-c", CHILD],
        input=json.dumps(jobs),
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    results = json.loads(child.stdout)
    assert len(results) == len(jobs)
    for result, (where, remaining, data) in zip(results, expected, strict=True):
        assert result["completed"], where
        assert result["calls"] == remaining, where
        assert result["data"] == data, where


def test_a_pending_operator_is_called_again_after_loads() -> None:
    recorder = Recorder(pending="verify_snapshot", pending_times=1)
    workflow = start(strategy_path("agent-reset"), recorder)
    workflow.step()
    assert workflow.step() == "step02_verify_snapshot"
    assert workflow.waiting
    resumed = WorkflowRun.loads(workflow.dumps(), recorder.registry())
    assert resumed.pending == {"step02_verify_snapshot": "verify_snapshot: job still running"}
    _to_end(resumed)
    assert resumed.outcome == "succeeded"
    assert recorder.names.count("verify_snapshot") == 1
