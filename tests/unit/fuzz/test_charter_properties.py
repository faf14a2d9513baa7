"""Charters generated from the models' own field ranges: the model and the CRD schema agree.

Every invariant is enforced twice, by the pydantic models (CLI, operator) and by the CRD schema
(API server). Within what JSON Schema can check (jsonschema does not evaluate the CEL rules; each
is mirrored by a pydantic validator, see ``tests/invalid_charters.py``):

(a) every charter the model accepts validates against the generated CRD schema, both as written
    and as the model writes it back;
(b) every charter the CRD schema rejects, the model rejects too, naming the same field.

Charters are drawn by walking the JSON Schema pydantic emits for ``RegenerationCharterSpec``
(types, bounds, lengths, patterns, enums, required fields), so a new field or a changed range is
picked up without touching this file; (b) then breaks one to three places of a valid charter.
Runs are bounded by example counts and deterministic, as in ``test_fuzz_otlp.py``
(``WEAVERGEN_FUZZ_SCALE`` multiplies the counts and draws fresh examples).
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.invalid_charters import BASE_SPEC
from tests.unit.test_crds import as_json_schema, openapi_schema
from weavergen.api import EntropyLevel, RegenerationCharter, RegenerationCycle, SystemType
from weavergen.api.charter import PHASES, RegenerationCharterSpec
from weavergen.api.phase_results import PHASE_RESULTS

Json = Any
Path = tuple[str | int, ...]

SCALE = max(1, int(os.environ.get("WEAVERGEN_FUZZ_SCALE", "1")))


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        database=None,
        derandomize=SCALE == 1,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


MODEL_SCHEMA: dict[str, Json] = RegenerationCharterSpec.model_json_schema(by_alias=True)
# As tests/unit/test_crds.validate_against_crd, with the schema converted once rather than per call.
CRD_VALIDATOR = jsonschema.Draft7Validator(
    as_json_schema(openapi_schema("RegenerationCharter")),
    format_checker=jsonschema.FormatChecker(),
)


def charter(spec: Json) -> dict[str, Json]:
    return {
        "apiVersion": "regeneration.weavergen.io/v1alpha1",
        "kind": "RegenerationCharter",
        "metadata": {"name": "fuzzed", "namespace": "default"},
        "spec": spec,
    }


# -- the model's schema ---------------------------------------------------------------------------


def plain(node: dict[str, Json]) -> tuple[dict[str, Json], bool]:
    """A schema node with ``$ref`` resolved and ``Optional`` unwrapped; and whether null is ok."""
    nullable = False
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        assert len(options) == 1, f"only Optional[X] unions are expected: {node}"
        nullable = len(options) < len(node["anyOf"])
        node = {**{k: v for k, v in node.items() if k != "anyOf"}, **options[0]}
    while "$ref" in node:
        target = MODEL_SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[-1]]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node, nullable


def node_at(path: Path) -> tuple[dict[str, Json], bool]:
    """The schema node of the value at ``path`` inside a spec."""
    node, nullable = plain(MODEL_SCHEMA)
    for step in path:
        if isinstance(step, int):
            node, nullable = plain(node["items"])
        elif step in node.get("properties", {}):
            node, nullable = plain(node["properties"][step])
        else:
            node, nullable = plain(node["additionalProperties"])
    return node, nullable


# -- valid values from the schema's ranges --------------------------------------------------------


def _integers(node: dict[str, Json]) -> st.SearchStrategy[int]:
    low, high = node.get("minimum"), node.get("maximum")
    if "exclusiveMinimum" in node:
        low = math.floor(node["exclusiveMinimum"]) + 1
    if "exclusiveMaximum" in node:
        high = math.ceil(node["exclusiveMaximum"]) - 1
    return st.integers(min_value=low, max_value=high)


def _numbers(node: dict[str, Json]) -> st.SearchStrategy[float | int]:
    low = node.get("minimum", node.get("exclusiveMinimum"))
    high = node.get("maximum", node.get("exclusiveMaximum", 1e12))
    floats = st.floats(
        min_value=low,
        max_value=high,
        exclude_min="exclusiveMinimum" in node,
        exclude_max="exclusiveMaximum" in node,
        allow_nan=False,
        allow_infinity=False,
    )
    if low is None:
        return floats
    first = math.floor(low) + 1 if "exclusiveMinimum" in node else math.ceil(low)
    last = math.ceil(high) - 1 if "exclusiveMaximum" in node else math.floor(high)
    return floats | st.integers(first, last) if first <= last else floats  # YAML writes 1 for 1.0


def _strings(node: dict[str, Json]) -> st.SearchStrategy[str]:
    low, high = node.get("minLength", 0), node.get("maxLength", 300)
    if "pattern" in node:
        return st.from_regex(node["pattern"], fullmatch=True).filter(
            lambda s: low <= len(s) <= high
        )
    longest = st.sampled_from(["x", "é", "字"]).map(lambda c: c * high)  # one draw, not `high`
    return st.text(min_size=low, max_size=min(high, 40)) | longest


def _accepts(node: dict[str, Json], values: list[str]) -> bool:
    node = plain(node)[0]
    pattern = node.get("pattern", "")
    return node.get("type") == "string" and all(
        node.get("minLength", 0) <= len(v) <= node.get("maxLength", len(v))
        and re.fullmatch(pattern.strip("^$"), v)
        for v in values
    )


def _arrays(node: dict[str, Json]) -> st.SearchStrategy[list[Json]]:
    items = valid(node["items"])
    unique = node.get("x-kubernetes-list-type") == "set"  # the API server refuses duplicates
    low, high = node.get("minItems", 0), node.get("maxItems", 8)
    some = st.lists(items, min_size=low, max_size=min(high, low + 3), unique=unique)
    full = [f"n{k}" for k in range(high)]  # as many distinct items as allowed
    return some | st.just(full) if _accepts(node["items"], full) else some


def _objects(node: dict[str, Json]) -> st.SearchStrategy[dict[str, Json]]:
    if "properties" not in node:
        values = valid(node.get("additionalProperties", {"type": "string"}))
        return st.dictionaries(
            st.text(min_size=1, max_size=20),
            values,
            min_size=node.get("minProperties", 0),
            max_size=node.get("minProperties", 0) + 3,
        )
    required = set(node.get("required", []))
    properties = {name: valid(child) for name, child in node["properties"].items()}
    return st.fixed_dictionaries(
        {k: v for k, v in properties.items() if k in required},
        optional={k: v for k, v in properties.items() if k not in required},
    )


def valid(schema: dict[str, Json]) -> st.SearchStrategy[Json]:
    """Values within every range, length, pattern and enum of a node (not its CEL rules)."""
    node, nullable = plain(schema)
    if "enum" in node:
        strategy: st.SearchStrategy[Json] = st.sampled_from(node["enum"])
    elif "const" in node:
        strategy = st.just(node["const"])
    else:
        strategy = {
            "integer": _integers,
            "number": _numbers,
            "string": _strings,
            "boolean": lambda _: st.booleans(),
            "array": _arrays,
            "object": _objects,
        }[node["type"]](node)
    return st.none() | strategy if nullable else strategy


def repaired(spec: dict[str, Json]) -> dict[str, Json]:
    """The spec with each cross-field rule (a CEL rule and its pydantic mirror) made to hold."""
    spec = copy.deepcopy(spec)
    thresholds = spec.get("thresholds")
    if thresholds:
        levels = sorted(float(thresholds[k]) for k in ("medium", "high", "critical"))
        if levels[0] < levels[1] < levels[2]:
            thresholds.update(zip(("medium", "high", "critical"), levels, strict=True))
        else:
            del spec["thresholds"]
    criteria = spec.get("successCriteria")
    if criteria:
        settle, recovery = sorted((criteria["settleSeconds"], criteria["maxRecoverySeconds"]))
        if settle == recovery:
            settle, recovery = (settle - 1, recovery) if settle > 1 else (settle, recovery + 1)
        criteria["settleSeconds"], criteria["maxRecoverySeconds"] = settle, recovery
    policy = spec.get("phasePolicy")
    if policy:
        policy["cycleDeadlineSeconds"] = max(
            policy[f"{phase}DeadlineSeconds"] for phase in (*PHASES, "cycle")
        )
    breaker = spec.get("circuitBreaker")
    if breaker:
        cooldown = breaker.get("cooldownSeconds", 300)
        breaker["maxCooldownSeconds"] = max(cooldown, breaker.get("maxCooldownSeconds", 3600))
    strategies = spec.get("strategies")
    if strategies and strategies.get("deny"):
        allowed = set(strategies.get("allow") or ())
        strategies["deny"] = [name for name in strategies["deny"] if name not in allowed]
    for workload in spec["target"]["workloads"]:
        if workload.get("name") is not None:
            workload.pop("selector", None)
        elif workload.get("selector") is None:
            workload["name"] = "workload"
    repair_telemetry(spec["telemetry"])
    return spec


def repair_telemetry(telemetry: dict[str, Json]) -> None:
    """Each source with its settings; queries reading {{window}} and no unknown placeholder."""
    source = telemetry.get("source")
    if source in ("configMap", "prometheus") and telemetry.get(source) is None:
        telemetry["source"] = "otlp"
    if telemetry.get("source") == "prometheus":
        (telemetry.get("baseline") or {}).pop("configMap", None)
        telemetry["windowSeconds"] = max(10, telemetry.get("windowSeconds", 60))
    for name in ("requests", "errors", "latency"):
        query = (telemetry.get("prometheus") or {}).get(name)
        if query is not None:
            braceless = query.replace("{", "").replace("}", "")[:4000]
            telemetry["prometheus"][name] = braceless + "[{{window}}]"


valid_specs = valid(MODEL_SCHEMA).map(repaired)


# -- (a) what the model accepts, the schema accepts -----------------------------------------------


def wire(spec: RegenerationCharterSpec) -> dict[str, Json]:
    return spec.model_dump(by_alias=True, exclude_none=True, mode="json")


@fuzz(400)
@given(spec=valid_specs)
def test_every_charter_the_model_accepts_validates_against_the_crd(spec: dict[str, Json]) -> None:
    model = RegenerationCharterSpec.model_validate(spec)  # valid by construction
    CRD_VALIDATOR.validate(charter(spec))
    CRD_VALIDATOR.validate(charter(wire(model)))
    whole = RegenerationCharter.model_validate(charter(spec))
    CRD_VALIDATOR.validate(whole.model_dump(by_alias=True, exclude_none=True, mode="json"))
    assert RegenerationCharterSpec.model_validate(wire(model)) == model


# -- (b) what the schema rejects, the model rejects, naming the field -----------------------------

# Including values pydantic's lax mode would coerce ("60" -> 60, true -> 1, "true" -> True): the
# models are strict, as the API server is (test_lax_coercions_are_refused_like_the_crd too).
WRONG_TYPES: dict[str, list[Json]] = {
    "integer": ["sixty", "60", 1.5, True, [], {}],
    "number": ["half", "0.5", True, [], {}],
    "string": [5, 1.5, True, [], {}],
    "boolean": ["maybe", "true", 1, 0, 2, 0.5, [], {}],
    "array": ["x", 5, {}],
    "object": ["x", 5, []],
}
UNKNOWN = "unknownField"
BAD_NAMES = ["UPPER", "under_score", "-dash", "dash-", "a..b", "a b", "é", ".dot"]


def _out_of_range(node: dict[str, Json]) -> list[Json]:
    step = 1 if node["type"] == "integer" else 1e-6
    return [
        *([node["minimum"] - step] if "minimum" in node else []),
        *([node["maximum"] + step] if "maximum" in node else []),
        *(node[k] for k in ("exclusiveMinimum", "exclusiveMaximum") if k in node),
    ]


def _bad_strings(node: dict[str, Json]) -> list[Json]:
    bad = [""] if node.get("minLength", 0) > 0 else []
    if "maxLength" in node:
        bad.append("a" * (node["maxLength"] + 1))
    if "pattern" in node:
        bad += [n for n in BAD_NAMES if not re.search(node["pattern"], n)]
    if "enum" in node:
        bad += ["nonsense", str(node["enum"][0]).upper()]
    return bad


def invalid(path: Path, current: Json) -> st.SearchStrategy[Json]:
    """Values the schema of the node at ``path`` refuses (as jsonschema can tell)."""
    node, nullable = node_at(path)
    kind = node["type"]
    options: list[Json] = [*WRONG_TYPES[kind], *([] if nullable else [None])]
    if kind in ("integer", "number"):
        options += _out_of_range(node)
    elif kind == "string":
        options += _bad_strings(node)
    elif kind == "object" and node.get("minProperties", 0) > 0:
        options.append({})
    elif kind == "object" and "properties" not in node:
        options.append({"key": 5})  # a map of strings
    elif kind == "array":
        if node.get("minItems", 0) > 0:
            options.append([])
        if "maxItems" in node:
            too_many = node["maxItems"] + 1
            has_items = isinstance(current, list) and current
            item = st.just(current[0]) if has_items else valid(node["items"])
            return st.sampled_from(options) | item.map(lambda i: [i] * too_many)
    return st.sampled_from(options)


def paths(value: Json, path: Path = ()) -> list[Path]:
    """Every place inside a spec (not the spec itself)."""
    found: list[Path] = [path] if path else []
    if isinstance(value, dict):
        for key, child in value.items():
            if key != UNKNOWN:
                found += paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*path, index))
    return found


def get(value: Json, path: Path) -> Json:
    for step in path:
        value = value[step]
    return value


@st.composite
def broken_specs(draw: st.DrawFn) -> dict[str, Json]:
    """A valid spec with one to three places broken: a value out of its range or of the wrong
    type, a required field removed, or an unknown field added."""
    spec = draw(valid_specs)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        objects = [p for p in [(), *paths(spec)] if isinstance(get(spec, p), dict)]
        how = draw(st.sampled_from(["value", "value", "value", "remove", "unknown"]))
        if how == "value":
            path = draw(st.sampled_from(paths(spec)))
            *parent, leaf = path
            get(spec, tuple(parent))[leaf] = draw(invalid(path, get(spec, path)))
        elif how == "remove":
            where = draw(st.sampled_from(objects))
            required = [k for k in node_at(where)[0].get("required", []) if k in get(spec, where)]
            if required:
                del get(spec, where)[draw(st.sampled_from(required))]
        else:
            where = draw(st.sampled_from(objects))
            if "properties" in node_at(where)[0]:
                get(spec, where)[UNKNOWN] = draw(st.integers(0, 3))
    return spec


def schema_error_paths(obj: dict[str, Json]) -> list[Path]:
    """Where the CRD schema finds errors, under spec; a missing or unknown property is named."""
    found = []
    for error in CRD_VALIDATOR.iter_errors(obj):
        path: Path = tuple(error.absolute_path)
        assert path[:1] == ("spec",), error.message
        path = path[1:]
        if error.validator == "required":
            path += tuple(k for k in error.validator_value if k not in error.instance)[:1]
        elif error.validator == "additionalProperties":
            path += tuple(re.findall(r"'([^']+)' was unexpected", error.message)[:1])
        found.append(path)
    return found


def related(schema_path: Path, model_path: Path) -> bool:
    """One path names the other or a field inside it (cross-field rules name the object)."""
    a, b = tuple(map(str, schema_path)), tuple(map(str, model_path))
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]


@fuzz(600)
@given(spec=broken_specs())
def test_every_charter_the_crd_rejects_the_model_rejects_naming_the_field(
    spec: dict[str, Json],
) -> None:
    schema_paths = schema_error_paths(charter(spec))
    note(f"schema errors at {schema_paths}")
    try:
        RegenerationCharterSpec.model_validate(spec)
    except ValidationError as err:
        model_paths = [tuple(e["loc"]) for e in err.errors()]
    else:
        assert not schema_paths, "the model accepted a charter the CRD schema rejects"
        return
    note(f"model errors at {model_paths}")
    for schema_path in schema_paths:
        assert any(related(schema_path, p) for p in model_paths), (schema_path, model_paths)


def test_the_generators_reach_both_sides() -> None:
    """(a) draws charters the model accepts; (b) draws charters the schema rejects."""
    accepted = rejected = 0

    @fuzz(60)
    @given(spec=valid_specs, broken=broken_specs())
    def count(spec: dict[str, Json], broken: dict[str, Json]) -> None:
        nonlocal accepted, rejected
        RegenerationCharterSpec.model_validate(spec)
        accepted += 1
        rejected += bool(schema_error_paths(charter(broken)))

    count()
    assert accepted >= 60
    assert rejected >= 30, rejected


def test_an_empty_label_selector_is_refused_by_both() -> None:
    """Found by (b): ``minProperties: 1`` was only written into the schema, not validated."""
    spec = copy.deepcopy(BASE_SPEC)
    spec["target"]["workloads"] = [{"selector": {"matchLabels": {}}}]
    assert schema_error_paths(charter(spec)) == [
        ("target", "workloads", 0, "selector", "matchLabels")
    ]
    with pytest.raises(ValidationError) as caught:
        RegenerationCharterSpec.model_validate(spec)
    assert ("target", "workloads", 0, "selector", "matchLabels") in [
        e["loc"] for e in caught.value.errors()
    ]


# -- type coercions -------------------------------------------------------------------------------

LAX_COERCIONS = [
    ("telemetry", "windowSeconds", "60"),
    ("objectives", "availability", "0.5"),
    ("spc", "triggerCycles", "true"),
    ("spc", "triggerCycles", 1),
    ("telemetry", "minSpans", True),
    ("circuitBreaker", "cooldownSeconds", False),
]


@pytest.mark.parametrize(("section", "field", "value"), LAX_COERCIONS)
def test_lax_coercions_are_refused_like_the_crd(section: str, field: str, value: Json) -> None:
    spec = copy.deepcopy(BASE_SPEC)
    spec[section] = {**spec.get(section, {}), field: value}
    assert [e.message for e in CRD_VALIDATOR.iter_errors(charter(spec))]  # refused at admission
    with pytest.raises(ValidationError) as caught:
        RegenerationCharterSpec.model_validate(spec)
    assert [e["loc"] for e in caught.value.errors()] == [(section, field)]


def test_an_integer_for_a_number_is_accepted_like_the_crd() -> None:
    spec = copy.deepcopy(BASE_SPEC)
    spec["objectives"] = {"latencyThresholdMs": 250}
    CRD_VALIDATOR.validate(charter(spec))
    assert RegenerationCharterSpec.model_validate(spec).objectives.latency_threshold_ms == 250.0


STAMP = "2024-05-01T12:00:00Z"


def test_date_times_and_enum_values_are_read_from_their_json_strings() -> None:
    """JSON carries them as strings only, so strictness does not apply to them: a status the
    operator wrote reads back."""
    obj = {
        **charter(BASE_SPEC),
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Measured",
                    "lastTransitionTime": STAMP,
                }
            ],
            "entropy": {"score": 0.2, "level": "low", "healthScore": 1, "measuredAt": STAMP},
            "circuitBreaker": {"recentCycleStarts": [STAMP], "openUntil": STAMP},
            "strategyHistory": [{"strategy": "restart", "signature": "s", "lastUsedAt": STAMP}],
            "lastCycle": {"name": "fuzzed-1", "finishedAt": STAMP},
        },
    }
    CRD_VALIDATOR.validate(obj)
    model = RegenerationCharter.model_validate(obj)
    assert model.spec.system_type is SystemType(BASE_SPEC["systemType"])
    assert model.status is not None and model.status.entropy is not None
    assert model.status.entropy.level is EntropyLevel.LOW
    assert model.status.entropy.measured_at == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert RegenerationCharter.model_validate(json.loads(model.model_dump_json())) == model

    cycle = RegenerationCycle.model_validate(
        {
            "metadata": {"name": "fuzzed-1"},
            "spec": {"charterRef": {"name": "fuzzed"}},
            "status": {
                "phases": [{"name": "measure", "startedAt": STAMP, "finishedAt": STAMP}],
                "entropyBefore": {"score": 0.7, "level": "high", "healthScore": 0.4},
                "rollback": {"reason": "r", "startedAt": STAMP},
                "startedAt": STAMP,
            },
        }
    )
    assert cycle.status is not None and cycle.status.entropy_before is not None
    assert cycle.status.entropy_before.level is EntropyLevel.HIGH
    assert RegenerationCycle.model_validate(json.loads(cycle.model_dump_json())) == cycle


STATUS_COERCIONS = [
    ({"observedGeneration": "2"}, ("observedGeneration",)),
    ({"entropy": {"spanCount": "500"}}, ("entropy", "spanCount")),
    ({"entropy": {"score": "0.5"}}, ("entropy", "score")),
    ({"circuitBreaker": {"consecutiveOpenings": True}}, ("circuitBreaker", "consecutiveOpenings")),
]


@pytest.mark.parametrize(("status", "where"), STATUS_COERCIONS)
def test_the_status_refuses_coercions_too(status: dict[str, Json], where: Path) -> None:
    obj = {**charter(BASE_SPEC), "status": status}
    assert list(CRD_VALIDATOR.iter_errors(obj))
    with pytest.raises(ValidationError) as caught:
        RegenerationCharter.model_validate(obj)
    assert [e["loc"] for e in caught.value.errors()] == [("status", *where)]


def test_phase_results_refuse_coercions_too() -> None:
    """A phase Job's result is decoded JSON as well; "true" is not a boolean there either."""
    result = {"implementation": {"outcome": "succeeded"}, "implementation_succeeded": "true"}
    with pytest.raises(ValidationError) as caught:
        PHASE_RESULTS["implement"].model_validate(result)
    assert [e["loc"] for e in caught.value.errors()] == [("implementation_succeeded",)]
    measurement = {
        "status": "ok",
        "entropy_score": 0,  # an integer for a number still reads
        "entropy_level": "low",
        "health_score": 1,
        "drift_indicators": [],
        "validation_errors": [],
        "span_count": 500,
    }
    PHASE_RESULTS["measure"].model_validate(
        {"measurement_before": measurement, "entropy_before": 0, "regeneration_needed": False}
    )
