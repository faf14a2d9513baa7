"""Develop plans, action planners, snapshots and the success judge."""

from __future__ import annotations

import copy

import pytest

from weavergen.api.profiles import profile_for
from weavergen.domain.measure.judge import judge
from weavergen.domain.remedy.actions import RESTARTED_AT, ActionInput, key_of, plan_action
from weavergen.domain.remedy.develop import develop
from weavergen.domain.remedy.snapshot import Snapshot, SnapshotIntegrityError, normalise

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "7", "uid": "u1"},
    "spec": {
        "replicas": 2,
        "template": {"spec": {"containers": [{"name": "app", "image": "app:2"}]}},
    },
    "status": {"readyReplicas": 2},
}
CONFIG = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "web-config", "namespace": "shop"},
    "data": {"timeout_ms": "1"},
}
GOLDEN_CONFIG = {**CONFIG, "data": {"timeout_ms": "800"}}
OBJECTS = {key_of(DEPLOYMENT): DEPLOYMENT, key_of(CONFIG): CONFIG}


def test_partial_regeneration_plan_shows_each_change_as_a_diff() -> None:
    option = {"strategy": "partial-regeneration", "successProbability": 0.8, "reasons": ["r"]}
    solution = develop(
        option,
        entropy_before=0.5,
        objects=OBJECTS,
        golden={key_of(CONFIG): GOLDEN_CONFIG},
        now="2026-11-25T10:00:00Z",
    )
    changes = {s.action: s.changes for s in solution.steps}
    (config_change,) = changes["reset_config_from_baseline"]
    assert (
        '-  timeout_ms: "1"' in config_change["diff"]
        or "-  timeout_ms: '1'" in config_change["diff"]
    )
    (restart,) = changes["rollout_restart"]
    assert RESTARTED_AT in restart["diff"]
    assert changes["snapshot_targets"] == [] and changes["verify_success_criteria"] == []
    assert solution.predicted_entropy == pytest.approx(0.1)
    assert solution.workflow == "strategies/partial-regeneration.bpmn"
    assert OBJECTS[key_of(CONFIG)]["data"] == {"timeout_ms": "1"}  # nothing changed for real


def test_planners_change_only_what_they_must() -> None:
    given = ActionInput(OBJECTS, params={"replicas_delta": 2})
    scaled = plan_action("scale_workloads", given)
    assert (
        list(scaled) == [key_of(DEPLOYMENT)] and scaled[key_of(DEPLOYMENT)]["spec"]["replicas"] == 4
    )
    zero = plan_action("scale_to_zero", ActionInput(OBJECTS))[key_of(DEPLOYMENT)]
    back = plan_action("restore_replicas", ActionInput({key_of(DEPLOYMENT): zero}))
    assert back[key_of(DEPLOYMENT)]["spec"]["replicas"] == 2
    previous = {key_of(DEPLOYMENT): {"spec": {"containers": [{"name": "app", "image": "app:1"}]}}}
    undone = plan_action("rollout_undo", ActionInput(OBJECTS, previous_templates=previous))
    assert undone[key_of(DEPLOYMENT)]["spec"]["template"] == previous[key_of(DEPLOYMENT)]
    assert plan_action("recreate_pods", ActionInput(OBJECTS)) == {}


def test_snapshot_normalises_hashes_and_refuses_tampering() -> None:
    snapshot = Snapshot.take(OBJECTS)
    assert "status" not in snapshot.objects[key_of(DEPLOYMENT)]
    assert "resourceVersion" not in snapshot.objects[key_of(DEPLOYMENT)]["metadata"]
    live = copy.deepcopy(OBJECTS)
    live[key_of(DEPLOYMENT)]["metadata"]["resourceVersion"] = "99"  # server-owned: ignored
    assert snapshot.matches(live)
    live[key_of(CONFIG)]["data"]["timeout_ms"] = "5"
    assert not snapshot.matches(live)
    snapshot.verify()
    snapshot.objects[key_of(CONFIG)]["data"]["timeout_ms"] = "666"
    with pytest.raises(SnapshotIntegrityError, match="refused for restore"):
        snapshot.verify()


def test_secret_values_never_enter_a_snapshot() -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "s"},
        "data": {"password": "aHVudGVyMg=="},
    }
    normalised = normalise(secret)
    assert "data" not in normalised and "aHVudGVyMg==" not in str(normalised)
    assert len(normalised["dataSha256"]) == 64


def test_judge_lists_every_failed_criterion() -> None:
    criteria = profile_for("web-service").success_criteria
    ok = judge({"status": "ok", "entropy_score": 0.05, "health_score": 0.98}, 0.6, criteria)
    assert ok.met
    bad = judge({"status": "ok", "entropy_score": 0.5, "health_score": 0.4}, 0.6, criteria)
    assert not bad.met and len(bad.reasons) == 3
    missing = judge({"status": "insufficient_data", "reason": "few spans"}, 0.6, criteria)
    assert not missing.met and "few spans" in missing.reasons[0]
