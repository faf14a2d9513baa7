"""Someone else's edits during a cycle are detected and never overwritten (on the digital twin)."""

from __future__ import annotations

import copy

import pytest

from weavergen.api.profiles import profile_for
from weavergen.domain.remedy.snapshot import (
    TargetEdited,
    edits_by_others,
    fingerprints,
    with_writes,
)
from weavergen.domain.simulation.simulator import EntropySimulator
from weavergen.domain.simulation.twin import Twin
from weavergen.phases.operators import Operators, RollbackFailed


def twin_and_operators() -> tuple[Twin, Operators]:
    twin = Twin.build(EntropySimulator(4), "config_corruption", seed=4)
    criteria = profile_for("web-service").success_criteria
    assert criteria is not None
    return twin, Operators(twin, criteria)


def edited_copy(twin: Twin) -> dict[str, dict]:  # type: ignore[type-arg]
    objects = copy.deepcopy(twin.objects())
    key = next(k for k in objects if k.startswith("ConfigMap/"))
    objects[key]["data"] = {**(objects[key].get("data") or {}), "edited": "by a person"}
    return objects


def test_edits_by_others_names_changed_and_deleted_objects_but_not_our_own() -> None:
    twin, _ = twin_and_operators()
    objects = twin.objects()
    expected = fingerprints(objects)
    changed = edited_copy(twin)
    key = next(k for k in changed if k.startswith("ConfigMap/"))
    assert edits_by_others(expected, changed, {}) == [f"{key} was changed"]
    ours = with_writes({}, fingerprints({key: changed[key]}))
    assert edits_by_others(expected, changed, ours) == []
    deployment = next(k for k in objects if k.startswith("Deployment/"))
    gone = {k: v for k, v in objects.items() if k != deployment}
    assert edits_by_others(expected, gone, {}) == [f"{deployment} was deleted"]


def test_a_plan_made_before_someone_edited_the_target_is_not_applied() -> None:
    twin, operators = twin_and_operators()
    basis = fingerprints(twin.objects())
    twin.apply({k: v for k, v in edited_copy(twin).items() if k.startswith("ConfigMap/")})
    with pytest.raises(TargetEdited, match="since the plan was made"):
        operators.snapshot_targets({}, {"basis": basis})
    assert operators.snapshot is None  # stopped before taking anything or changing anything


def test_a_rollback_restores_nothing_when_someone_else_edited_a_target() -> None:
    twin, operators = twin_and_operators()
    operators.snapshot_targets({}, {"basis": fingerprints(twin.objects())})
    # The operator's own change (recorded as written), then a person's edit of the ConfigMap.
    deployment = next(k for k in twin.objects() if k.startswith("Deployment/"))
    ours = copy.deepcopy(twin.objects()[deployment])
    ours["spec"]["template"].setdefault("metadata", {}).setdefault("annotations", {})["x"] = "1"
    twin.record_writes(fingerprints({deployment: ours}))
    twin.apply({deployment: ours})
    person = {k: v for k, v in edited_copy(twin).items() if k.startswith("ConfigMap/")}
    twin.apply(person)
    with pytest.raises(TargetEdited, match="by someone else during the cycle"):
        operators.restore_snapshot({}, {})
    assert twin.objects()[deployment] == ours  # nothing restored: the person's edit stands
    key = next(iter(person))
    assert twin.objects()[key]["data"]["edited"] == "by a person"


def test_a_rollback_of_only_our_own_changes_restores_the_snapshot() -> None:
    twin, operators = twin_and_operators()
    before = twin.objects()
    operators.snapshot_targets({}, {"basis": fingerprints(before)})
    deployment = next(k for k in before if k.startswith("Deployment/"))
    ours = copy.deepcopy(before[deployment])
    ours["spec"]["replicas"] = 9
    twin.record_writes(fingerprints({deployment: ours}))  # as the actions record them
    twin.apply({deployment: ours})
    operators.restore_snapshot({}, {})
    assert fingerprints(twin.objects()) == fingerprints(before)


def test_a_rollback_records_what_it_restored_from_which_snapshot_and_that_it_verified() -> None:
    twin, operators = twin_and_operators()
    before = twin.objects()
    taken = operators.snapshot_targets({}, {"basis": fingerprints(before)})
    deployment = next(k for k in before if k.startswith("Deployment/"))
    ours = copy.deepcopy(before[deployment])
    ours["spec"]["replicas"] = 9
    twin.record_writes(fingerprints({deployment: ours}))
    twin.apply({deployment: ours})
    data: dict[str, object] = dict(taken)
    data.update(operators.restore_snapshot({}, data))
    restored = data["rollback"]
    assert isinstance(restored, dict)
    assert restored["sha256"] == taken["snapshot_sha256"]
    assert restored["restoredObjects"] == sorted(before)
    assert restored["verified"] is True and restored["startedAt"] <= restored["finishedAt"]
    twin.apply({deployment: ours})  # changed again before the check: not verified, it fails
    with pytest.raises(RollbackFailed, match="differ from the snapshot"):
        operators.verify_restored({}, data)
