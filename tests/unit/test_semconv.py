"""The shipped semantic-convention registry, Weaver YAML parsing and the live-check validator."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from hack.build_semconv_registry import AREAS, build, installed_package
from tests.helpers import REPO, shared_path
from weavergen.domain.measure.semconv import (
    AttributeDef,
    Finding,
    ObservedAttribute,
    Registry,
    RegistryError,
    validate,
)

SHIPPED = REPO / "operator" / "weavergen" / "domain" / "measure" / "semconv_registry.yaml"

# Where opentelemetry-semantic-conventions 0.66b2 and the reference model (v1.44.0 + 22 commits)
# disagree because they describe different versions. Keep this list short: regenerate the registry
# after upgrading the package and delete the entries that no longer differ.
KNOWN_DIFFERENCES = {
    "http.request.body.content": "added after the package's release",
    "http.response.body.content": "added after the package's release",
    "messaging.client_id": "deprecated attribute the package does not carry",
    "rpc.status_code": "rpc.response.status_code renamed to it after the package's release",
    "rpc.response.status_code": "renamed to rpc.status_code after the package's release",
    "rpc.connect_rpc.error_code": "its renamed_to follows the rpc.status_code rename",
}


def reference_attributes() -> dict[str, dict[str, Any]]:
    """Every attribute the reference model defines in the areas the project ships."""
    attributes: dict[str, dict[str, Any]] = {}
    for path in sorted(shared_path("semconv", "model").rglob("*.yaml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(document, dict):
            continue
        entries = [e for g in document.get("groups", []) for e in g.get("attributes") or []]
        entries += [{**e, "id": e["key"]} for e in document.get("attributes", []) if "key" in e]
        for entry in entries:
            if "id" in entry and entry["id"].split(".")[0] in AREAS:
                attributes[entry["id"]] = entry
    assert len(attributes) > 150, "the reference model looks truncated"
    return attributes


def reference_facts(entry: dict[str, Any]) -> dict[str, Any]:
    """What the shipped registry must agree on, in the reference's terms."""
    raw_type = entry["type"]
    deprecated = entry.get("deprecated")
    facts: dict[str, Any] = {
        "stable": entry.get("stability") == "stable",
        "deprecated": deprecated is not None,
        "renamed_to": deprecated.get("renamed_to") if isinstance(deprecated, dict) else None,
        "template": isinstance(raw_type, str) and raw_type.startswith("template["),
    }
    if isinstance(raw_type, dict):
        values = [member["value"] for member in raw_type["members"]]
        facts["type"] = "enum[int]" if isinstance(values[0], int) else "enum[string]"
        facts["members"] = sorted(str(value) for value in values)
    else:
        facts["type"] = raw_type[len("template[") : -1] if facts["template"] else raw_type
        facts["members"] = []
    return facts


def shipped_facts(definition: AttributeDef) -> dict[str, Any]:
    return {
        "stable": definition.stability == "stable",
        "deprecated": definition.deprecated,
        "renamed_to": definition.replacement,
        "template": definition.template,
        "type": f"enum[{definition.enum_base}]" if definition.type == "enum" else definition.type,
        "members": sorted(definition.members),
    }


def test_shipped_registry_agrees_with_the_reference_model() -> None:
    registry = Registry.builtin()
    mismatches: dict[str, list[str]] = {}
    for name, entry in sorted(reference_attributes().items()):
        definition = registry.get(name)
        if definition is None or definition.name != name:
            mismatches.setdefault(name, []).append("absent from the shipped registry")
            continue
        expected, actual = reference_facts(entry), shipped_facts(definition)
        for fact, value in expected.items():
            if actual[fact] != value:
                mismatches.setdefault(name, []).append(f"{fact}: {actual[fact]!r} != {value!r}")
    for name, problems in mismatches.items():
        allowed = "allowed" if name in KNOWN_DIFFERENCES else "UNEXPECTED"
        print(f"{allowed} {name}: {'; '.join(problems)}")
    unexpected = {n: p for n, p in mismatches.items() if n not in KNOWN_DIFFERENCES}
    assert not unexpected, unexpected
    stale = sorted(set(KNOWN_DIFFERENCES) - set(mismatches))
    assert not stale, f"no longer different, drop from KNOWN_DIFFERENCES: {stale}"


def test_every_shipped_attribute_is_in_the_reference_model() -> None:
    shipped = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    names = {attribute["id"] for group in shipped["groups"] for attribute in group["attributes"]}
    unknown = names - set(reference_attributes()) - set(KNOWN_DIFFERENCES)
    assert not unknown
    assert len(Registry.builtin()) == len(names)


def test_shipped_registry_is_what_the_script_builds_from_the_installed_package() -> None:
    assert SHIPPED.read_text(encoding="utf-8") == build(*installed_package()), (
        "stale: run .venv/bin/python hack/build_semconv_registry.py"
    )


def test_builtin_registry_is_loaded_once() -> None:
    assert Registry.builtin() is Registry.builtin()


CUSTOM = """
groups:
  - id: registry.shop
    type: attribute_group
    attributes:
      - id: shop.cart.items
        type: int
        stability: stable
      - id: shop.cart.tags
        type: string[]
        stability: development
      - id: shop.payment.method
        stability: stable
        type:
          members:
            - {id: card, value: card, stability: stable}
            - {id: cash, value: cash, stability: development}
      - id: shop.priority
        stability: development
        type:
          members:
            - {id: low, value: 1}
            - {id: high, value: 2}
      - id: shop.header
        type: template[string[]]
        stability: stable
      - id: shop.items
        type: int
        stability: development
        deprecated: {reason: renamed, renamed_to: shop.cart.items}
      - id: shop.legacy
        type: string
        stability: development
        deprecated: No longer recorded.
  - id: shop.spans
    type: span
    attributes:
      - ref: shop.cart.items
        requirement_level: required
"""
DEFINITION_2 = """
file_format: definition/2
attributes:
  - key: shop.cart.weight
    type: double
    stability: stable
attribute_groups:
  - id: shop
    attributes:
      - ref: shop.cart.weight
"""


def test_from_weaver_yaml_reads_every_attribute_shape() -> None:
    registry = Registry.from_weaver_yaml(CUSTOM, source="shop.yaml")
    assert len(registry) == 7
    assert registry.get("shop.cart.items") == AttributeDef(
        "shop.cart.items", "int", stability="stable"
    )
    assert registry.get("shop.cart.tags") == AttributeDef("shop.cart.tags", "string[]")
    assert registry.get("shop.payment.method") == AttributeDef(
        "shop.payment.method", "enum", ("card", "cash"), "string", stability="stable"
    )
    assert registry.get("shop.priority") == AttributeDef("shop.priority", "enum", ("1", "2"), "int")
    assert registry.get("shop.header") == AttributeDef(
        "shop.header", "string[]", stability="stable", template=True
    )
    assert registry.get("shop.items") == AttributeDef(
        "shop.items", "int", deprecated=True, replacement="shop.cart.items"
    )
    assert registry.get("shop.legacy") == AttributeDef("shop.legacy", "string", deprecated=True)
    weight = Registry.from_weaver_yaml(DEFINITION_2).get("shop.cart.weight")
    assert weight == AttributeDef("shop.cart.weight", "double", stability="stable")


def test_extended_registry_prefers_the_other_definitions() -> None:
    base = Registry.from_weaver_yaml(CUSTOM)
    override = Registry([AttributeDef("shop.cart.items", "string"), AttributeDef("shop.x", "int")])
    merged = base.extended(override)
    assert len(merged) == 8
    assert merged.get("shop.cart.items") == AttributeDef("shop.cart.items", "string")
    assert merged.get("shop.x") == AttributeDef("shop.x", "int")
    assert base.get("shop.cart.items") == AttributeDef("shop.cart.items", "int", stability="stable")
    assert merged.get("http.route") is None
    assert Registry.builtin().extended(base).get("http.route") is not None


def attribute_yaml(body: str) -> str:
    return f"groups:\n  - id: g\n    attributes:\n      - {body}\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("groups: [", "bad.yaml: not valid YAML"),
        ("- a\n- b\n", "bad.yaml: expected a mapping with 'groups' or 'attributes'"),
        ("groups: {}", "bad.yaml: 'groups' must be a list"),
        (
            "groups:\n  - id: g\n    attributes:\n      - {type: int}\n",
            "groups[0].attributes[0]: missing 'id'",
        ),
        ("attributes:\n  - {type: int}\n", "bad.yaml: attributes[0]: missing 'key'"),
        (attribute_yaml("{id: a.b}"), "groups[0].attributes[0] (a.b): missing 'type'"),
        (attribute_yaml("{id: a.b, type: integer}"), "(a.b).type: unknown type 'integer'"),
        (attribute_yaml("{id: a.b, type: 'template[map]'}"), "unknown type 'template[map]'"),
        (
            attribute_yaml("{id: a.b, type: {members: []}}"),
            "(a.b).type.members: expected a non-empty",
        ),
        (
            attribute_yaml("{id: a.b, type: {members: [{id: x}]}}"),
            "(a.b).type.members[0]: missing 'value'",
        ),
        (
            attribute_yaml("{id: a.b, type: {members: [{value: x}, {value: 1}]}}"),
            "mixes string and int values",
        ),
        (
            attribute_yaml("{id: a.b, type: int, deprecated: {reason: gone}}"),
            "(a.b).deprecated.reason: 'gone' is not one of",
        ),
        (
            attribute_yaml("{id: a.b, type: int, deprecated: {reason: renamed}}"),
            "(a.b).deprecated: reason 'renamed' needs 'renamed_to'",
        ),
        (
            "groups:\n  - id: g\n    attributes:\n      - {id: a.b, type: int}\n"
            "      - {id: a.b, type: int}\n",
            "groups[0].attributes[1]: attribute 'a.b' is defined twice",
        ),
    ],
)
def test_malformed_registries_raise_errors_naming_the_field(text: str, message: str) -> None:
    with pytest.raises(RegistryError) as raised:
        Registry.from_weaver_yaml(text, source="bad.yaml")
    assert message in str(raised.value)
    assert str(raised.value).startswith("bad.yaml: ")


def test_covers_walks_up_to_a_namespace_the_registry_defines() -> None:
    registry = Registry.builtin()
    assert registry.covers("http.response.status_cod")
    assert registry.covers("http.something.new")
    assert registry.covers("db.query.text.extra")
    assert not registry.covers("app.cart.items")
    assert not registry.covers("http")
    assert registry.covering_namespace("http.response.status_cod") == "http.response"


def test_template_lookup_finds_the_longest_template_prefix() -> None:
    registry = Registry.builtin()
    header = registry.get("http.request.header.content-type")
    assert header is not None
    assert (header.name, header.type, header.template) == ("http.request.header", "string[]", True)
    assert registry.get("http.request.headers") is None
    nested = Registry(
        [AttributeDef("a.b", "string", template=True), AttributeDef("a.b.c", "int", template=True)]
    )
    found = nested.get("a.b.c.d")
    assert found is not None
    assert found.name == "a.b.c"


def observed(count: int, kind: str, **values: int) -> ObservedAttribute:
    return ObservedAttribute(count=count, value_types={kind: count}, values=dict(values))


def test_validate_reports_each_live_check_code() -> None:
    findings = validate(
        {
            "app.cart.items": observed(9, "int"),
            "http.response.status_cod": observed(2, "int"),
            "http.status_code": observed(3, "int", **{"200": 3}),
            "server.port": ObservedAttribute(5, {"int": 4, "string": 1}),
            "http.request.method": observed(6, "string", GET=3, FOO=2, bar=1),
            "http.request.body.size": observed(4, "int"),
            "http.request.header.x-id": observed(1, "array"),
            "url.path": observed(7, "string"),
        },
        Registry.builtin(),
    )
    assert findings == [
        Finding("deprecated", "http.status_code", 3, "renamed to http.response.status_code"),
        Finding(
            "missing_attribute",
            "http.response.status_cod",
            2,
            "not defined in namespace http.response",
        ),
        Finding("not_stable", "http.request.body.size", 4, "stability development"),
        Finding("type_mismatch", "server.port", 1, "expected int, got string"),
        Finding(
            "undefined_enum_variant",
            "http.request.method",
            3,
            "values 'FOO', 'bar' not in [CONNECT, DELETE, GET, HEAD, OPTIONS, PATCH, ...]",
        ),
    ]
    assert findings[0].as_dict() == {
        "code": "deprecated",
        "attribute": "http.status_code",
        "count": 3,
        "detail": "renamed to http.response.status_code",
    }


def test_validate_type_rules() -> None:
    registry = Registry.from_weaver_yaml(CUSTOM)
    weighted = Registry([AttributeDef("shop.cart.weight", "double", stability="stable")])
    assert validate({"shop.cart.weight": observed(2, "int")}, weighted) == []
    assert validate({"shop.cart.weight": observed(2, "bool")}, weighted) == [
        Finding("type_mismatch", "shop.cart.weight", 2, "expected double, got bool")
    ]
    assert validate({"shop.cart.tags": observed(2, "array")}, registry) == [
        Finding("not_stable", "shop.cart.tags", 2, "stability development")
    ]
    assert Finding("type_mismatch", "shop.cart.tags", 2, "expected string[], got string") in (
        validate({"shop.cart.tags": observed(2, "string")}, registry)
    )
    priority = validate({"shop.priority": observed(4, "string", **{"1": 1, "high": 3})}, registry)
    assert Finding("type_mismatch", "shop.priority", 4, "expected int, got string") in priority
    assert Finding("undefined_enum_variant", "shop.priority", 3, "value 'high' not in [1, 2]") in (
        priority
    )
    assert validate({"shop.legacy": observed(1, "string")}, registry) == [
        Finding("deprecated", "shop.legacy", 1, "deprecated without a single replacement")
    ]


def test_error_type_values_are_the_instrumentations_own() -> None:
    """error.type lists only the _OTHER fallback: status codes and exception names are valid."""
    registry = Registry.builtin()
    seen = {"error.type": observed(4, "string", **{"404": 2, "TimeoutError": 1, "_OTHER": 1})}
    assert validate(seen, registry) == []
    assert validate({"error.type": observed(1, "int")}, registry) == [
        Finding("type_mismatch", "error.type", 1, "expected string, got int")
    ]
    [method] = validate({"http.request.method": observed(1, "string", FOO=1)}, registry)
    assert method.code == "undefined_enum_variant"


def test_enum_detail_lists_at_most_three_offending_values() -> None:
    values = {"A": 5, "B": 4, "C": 3, "D": 2}
    [finding] = validate(
        {"shop.payment.method": observed(14, "string", **values)},
        Registry.from_weaver_yaml(CUSTOM),
    )
    assert finding == Finding(
        "undefined_enum_variant",
        "shop.payment.method",
        14,
        "values 'A', 'B', 'C', ... not in [card, cash]",
    )
