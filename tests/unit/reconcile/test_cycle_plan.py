"""The cycle planner: what each point of a cycle's workflow writes, from real workflow data."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from weavergen.api.charter import RegenerationCharterSpec
from weavergen.api.cycle import RegenerationCycleStatus
from weavergen.api.status import InvalidStatus, status_patch
from weavergen.domain.decide.cycle_plan import (
    RECORD_PATIENCE_SECONDS,
    CycleObservation,
    awaits_charter_record,
    plan_cycle,
    plan_missing_charter,
)
from weavergen.domain.decide.reconcile import merge_patch
from weavergen.domain.simulation.simulator import EntropySimulator
from weavergen.domain.simulation.twin import Twin
from weavergen.phases.simulate import SCENARIO_CHARTER, SimulationEngine

NOW = datetime(2026, 12, 3, 12, 0, 0)
SPEC = RegenerationCharterSpec.model_validate(SCENARIO_CHARTER)
SNAPSHOT = {"configMap": "c-snapshot", "sha256": "ab" * 32, "chunks": 1}


def played(cause: str | None, fail_action: str | None = None) -> dict[str, Any]:
    """The data of a real cycle run through the operator's pipeline against a twin."""
    engine = SimulationEngine(seed=3)
    twin = Twin.build(EntropySimulator(3), cause, 11, fail_action=fail_action)
    return engine.play_cycle(twin, SPEC, {}, name="c", trace_id="0" * 31 + "1", now=NOW).data


def observation(**changes: Any) -> CycleObservation:
    base = CycleObservation(
        name="c",
        status={"startedAt": "2026-12-03T11:59:00Z"},
        generation=1,
        trace_id="0" * 31 + "1",
        workflow_state="c-workflow",
        charter=SPEC,
    )
    return replace(base, **changes)


@pytest.fixture(scope="module")
def fixed() -> dict[str, Any]:
    return played("config_corruption")


def test_a_finished_phase_records_itself_and_names_the_next_without_an_outcome(
    fixed: dict[str, Any],
) -> None:
    decision = plan_cycle(observation(data=fixed, step="explore"), NOW)
    status = decision.status
    assert status["phase"] == "Developing"
    assert [p["name"] for p in status["phases"]] == ["explore"]
    assert status["phases"][0]["outcome"] == "Succeeded"
    assert "finishedAt" not in status and "message" not in status
    assert not {c["type"] for c in status["conditions"]} & {"Succeeded", "RolledBack", "Failed"}
    assert [(e.reason, e.warning) for e in decision.events] == [("Explored", False)]
    assert not decision.done and decision.charter_status is None


@pytest.mark.parametrize(
    ("data", "phase"),
    [
        ({"implementation_succeeded": True}, "Implementing"),
        ({"implementation_escalated": True}, "Implementing"),
        ({"implementation_succeeded": False}, "RollingBack"),
    ],
)
def test_after_implement_the_cycle_restores_only_a_fix_that_did_not_hold(
    data: dict[str, Any], phase: str
) -> None:
    assert plan_cycle(observation(data=data, step="implement"), NOW).status["phase"] == phase


def test_a_wait_for_approval_says_so_and_keeps_the_phase_running() -> None:
    decision = plan_cycle(
        observation(
            pending={"implement": "plan ready: approve"},
            awaiting_approval=True,
            job="c-implement",
        ),
        NOW,
    )
    assert decision.status["phase"] == "AwaitingApproval"
    assert decision.status["message"] == "plan ready: approve"
    (record,) = decision.status["phases"]
    assert (record["name"], record["outcome"], record["job"]) == (
        "implement",
        "Running",
        "c-implement",
    )


def test_the_end_writes_the_outcome_once_and_frees_the_charter_once(fixed: dict[str, Any]) -> None:
    observed = observation(data=fixed, completed=True, snapshot=SNAPSHOT)
    decision = plan_cycle(observed, NOW)
    assert decision.done and decision.status["phase"] == "Succeeded"
    assert decision.status["snapshot"]["configMap"] == "c-snapshot"
    assert [(e.reason, e.warning) for e in decision.events] == [("Succeeded", False)]
    charter = decision.charter_status
    assert charter is not None
    assert charter["activeCycle"] is None and charter["lastCycle"]["name"] == "c"
    # Run again (the operator died after writing the charter): same end, nothing counted twice.
    again = plan_cycle(
        replace(
            observed,
            status=merge_patch(observed.status, decision.status),
            charter_status=merge_patch({}, charter),
        ),
        NOW + timedelta(seconds=5),
    )
    assert again.status["finishedAt"] == decision.status["finishedAt"]
    assert again.charter_status is None


def test_a_rolled_back_cycle_warns_and_names_the_snapshot_it_restored() -> None:
    data = played("bad_deploy", fail_action="apply")
    decision = plan_cycle(observation(data=data, completed=True, snapshot=SNAPSHOT), NOW)
    assert decision.status["phase"] == "RolledBack", decision.status["message"]
    assert decision.status["rollback"]["snapshot"] == "c-snapshot"
    assert [(e.reason, e.warning) for e in decision.events] == [("RolledBack", True)]


def test_an_escalation_is_the_workflows_own_outcome() -> None:
    data = played("failing_downstream_dependency")
    assert data["outcome"] == "escalated"
    decision = plan_cycle(observation(data=data, completed=True), NOW)
    assert decision.status["phase"] == "Escalated"
    assert decision.status["message"].startswith("escalated without changing anything")


def test_a_cycle_without_its_charter_fails_once() -> None:
    decision = plan_missing_charter("gone", {}, NOW)
    assert decision.done and decision.status["phase"] == "Failed"
    assert decision.status["message"] == "charter gone does not exist"


@pytest.mark.parametrize("cause", [None, "config_corruption", "memory_leak", "bad_deploy"])
def test_every_status_the_planner_writes_is_valid_for_the_cycle_schema(cause: str | None) -> None:
    data = played(cause)
    observed = observation(data=data, snapshot=SNAPSHOT)
    for step in ("define", "measure", "explore", "develop", "implement"):
        status_patch(RegenerationCycleStatus, plan_cycle(replace(observed, step=step), NOW).status)
    final = plan_cycle(replace(observed, completed=True), NOW).status
    assert status_patch(RegenerationCycleStatus, final)["phase"] == final["phase"]


def test_a_status_patch_outside_the_schema_is_refused_with_its_field() -> None:
    with pytest.raises(InvalidStatus, match=r"RegenerationCycleStatus\.chosen: no such field"):
        status_patch(RegenerationCycleStatus, {"chosen": "agent-reset"})
    with pytest.raises(InvalidStatus, match=r"RollbackRecord\.restoredObjects"):
        status_patch(RegenerationCycleStatus, {"rollback": {"restoredObjects": 3}})
    with pytest.raises(InvalidStatus, match=r"RegenerationCycleStatus\.phase"):
        status_patch(RegenerationCycleStatus, {"phase": "Healed"})


def test_a_status_patch_keeps_removals_and_merges_objects_field_by_field() -> None:
    patched = status_patch(
        RegenerationCycleStatus,
        {"snapshot": None, "rollback": {"verified": True}, "predictedEntropy": 1},
    )
    assert patched == {"snapshot": None, "rollback": {"verified": True}, "predictedEntropy": 1.0}


def test_status_patches_checked_at_once_in_threads_each_keep_their_own_values() -> None:
    """The executor writes many charters' status at once: a field checked for one patch must
    never show up in another's."""

    def patches(worker: int) -> list[dict[str, Any]]:
        return [
            status_patch(
                RegenerationCycleStatus,
                {"predictedEntropy": worker / 10 + i / 1e4, "message": f"w{worker}-{i}"},
            )
            for i in range(300)
        ]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(patches, range(8)))
    for worker, patched in enumerate(results):
        assert patched == [
            {"predictedEntropy": worker / 10 + i / 1e4, "message": f"w{worker}-{i}"}
            for i in range(300)
        ]


def test_a_new_cycle_waits_for_its_charter_to_record_it_and_no_longer_than_its_patience() -> None:
    """The charter creates its cycle, then records it with the incident the cycle measures;
    read in between, the charter's status has no onset and the fault is measured diluted."""
    charter = {"metadata": {"uid": "charter-uid"}, "status": {}}
    meta = {
        "name": "c",
        "creationTimestamp": "2026-12-03T12:00:00Z",
        "ownerReferences": [{"kind": "RegenerationCharter", "uid": "charter-uid"}],
    }
    assert awaits_charter_record(meta, {}, charter, NOW)
    recorded = {**charter, "status": {"activeCycle": "c", "incident": {"lastGoodAt": "x"}}}
    assert not awaits_charter_record(meta, {}, recorded, NOW)
    # Begun already: it reads the charter as it goes.
    assert not awaits_charter_record(meta, {"phase": "Measure"}, charter, NOW)
    # A person's cycle is not the charter's to record.
    assert not awaits_charter_record({**meta, "ownerReferences": []}, {}, charter, NOW)
    # The record lost (the operator died between the two writes): not waited for forever.
    later = NOW + timedelta(seconds=RECORD_PATIENCE_SECONDS)
    assert not awaits_charter_record(meta, {}, charter, later)
