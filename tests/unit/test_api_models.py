"""The wire models: round trips, defaults per system type, and each invariant's error."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from tests.helpers import sample_objects
from tests.invalid_charters import BASE_SPEC, INVALID_SPECS, InvalidCase
from weavergen.api import RegenerationCharter, RegenerationCycle, SystemType
from weavergen.api.charter import PHASES, RegenerationCharterSpec
from weavergen.api.profiles import PROFILES, SEED_PHASE_DEADLINES, profile_for, resolve_spec

CHARTERS = sample_objects("RegenerationCharter")
CYCLES = sample_objects("RegenerationCycle")


def wire(model: RegenerationCharter | RegenerationCycle) -> dict[str, Any]:
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")


def test_there_are_samples_for_five_system_types() -> None:
    assert len({obj["spec"]["systemType"] for _, obj in CHARTERS}) >= 5
    assert CYCLES


@pytest.mark.parametrize(("name", "obj"), CHARTERS, ids=[n for n, _ in CHARTERS])
def test_charter_round_trip_yaml_model_yaml(name: str, obj: dict[str, Any]) -> None:
    model = RegenerationCharter.model_validate(obj)
    again = RegenerationCharter.model_validate(yaml.safe_load(yaml.safe_dump(wire(model))))
    assert again == model
    # Everything the user wrote survives, under its camelCase name.
    assert _is_subset(obj["spec"], wire(model)["spec"])


@pytest.mark.parametrize(("name", "obj"), CYCLES, ids=[n for n, _ in CYCLES])
def test_cycle_round_trip(name: str, obj: dict[str, Any]) -> None:
    model = RegenerationCycle.model_validate(obj)
    assert RegenerationCycle.model_validate(wire(model)) == model
    assert _is_subset(obj["spec"], wire(model)["spec"])


def _is_subset(small: Any, big: Any) -> bool:
    if isinstance(small, dict):
        return all(k in big and _is_subset(v, big[k]) for k, v in small.items())
    return bool(small == big)


def test_there_are_at_least_ten_system_types_each_with_a_profile() -> None:
    assert len(SystemType) >= 10
    assert set(PROFILES) == set(SystemType)


@pytest.mark.parametrize("system_type", list(SystemType), ids=str)
def test_profiles_stay_within_the_seed_phase_targets(system_type: SystemType) -> None:
    policy = profile_for(system_type).phase_policy
    for phase in PHASES:
        assert policy.deadline_seconds(phase) <= SEED_PHASE_DEADLINES[phase]
    assert policy.cycle_deadline_seconds <= SEED_PHASE_DEADLINES["cycle"]


def test_profiles_differ_between_system_types() -> None:
    fingerprints = {
        repr((p.thresholds, p.success_criteria, p.cadence, p.phase_policy))
        for p in PROFILES.values()
    }
    assert len(fingerprints) == len(PROFILES)


def test_unknown_system_type_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown system type 'mainframe' \(known: web-service"):
        profile_for("mainframe")


def test_resolve_spec_fills_defaults_and_keeps_explicit_values() -> None:
    (_, clickstream) = next((n, o) for n, o in CHARTERS if o["metadata"]["name"] == "clickstream")
    spec = RegenerationCharterSpec.model_validate(clickstream["spec"])
    resolved = resolve_spec(spec)
    assert resolved.success_criteria == spec.success_criteria  # explicit: kept
    assert resolved.cadence == profile_for("stream-processor").cadence  # unset: profile's
    minimal = RegenerationCharterSpec.model_validate(
        {
            "systemId": "c",
            "systemType": "cache",
            "target": {"workloads": [{"name": "c"}]},
            "telemetry": {"serviceName": "c"},
        }
    )
    assert minimal.thresholds is None
    assert resolve_spec(minimal).thresholds == profile_for("cache").thresholds


@pytest.mark.parametrize("case", INVALID_SPECS, ids=[c.id for c in INVALID_SPECS])
def test_invalid_spec_is_rejected_naming_the_field(case: InvalidCase) -> None:
    with pytest.raises(ValidationError) as caught:
        RegenerationCharterSpec.model_validate(case.spec)
    errors = caught.value.errors()
    locations = [".".join(str(p) for p in e["loc"]) for e in errors]
    # Cross-field rules are reported on the object that holds both fields.
    assert any(loc and case.model_location.startswith(loc) for loc in locations), locations
    assert any(case.model_words in e["msg"] for e in errors), [e["msg"] for e in errors]


def test_base_spec_is_valid() -> None:
    RegenerationCharterSpec.model_validate(BASE_SPEC)


def test_status_tolerates_fields_from_newer_operators() -> None:
    charter = RegenerationCharter.model_validate(
        {
            "apiVersion": "regeneration.weavergen.io/v1alpha1",
            "kind": "RegenerationCharter",
            "metadata": {"name": "checkout"},
            "spec": BASE_SPEC,
            "status": {"observedGeneration": 2, "somethingNew": {"a": 1}},
        }
    )
    assert charter.status is not None
    assert charter.status.observed_generation == 2


def test_entropy_levels_order_by_severity_not_by_their_strings() -> None:
    from weavergen.api.charter import EntropyLevel  # noqa: PLC0415

    low, medium, high, critical = EntropyLevel
    assert low < medium < high < critical  # as strings: critical < high < low < medium
    assert max(EntropyLevel) is critical and min(high, medium) is medium
    assert sorted([critical, low, high, medium]) == [low, medium, high, critical]
    assert EntropyLevel("high") >= high and not EntropyLevel("high") > high
