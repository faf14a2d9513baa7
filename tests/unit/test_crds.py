"""The generated CRDs: committed copies are current, schemas are structural, samples validate."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import yaml

from tests.helpers import REPO, manifests, sample_objects
from weavergen.api import crdgen
from weavergen.api.profiles import PROFILES
from weavergen.cli import rendered_crds
from weavergen.domain.define import define_charter

CRD_DIRS = [REPO / "crds", REPO / "charts" / "weavergen-operator" / "crds"]
CRDS = {r.kind: crdgen.crd_manifest(r) for r in crdgen.RESOURCES}


@pytest.mark.parametrize("directory", CRD_DIRS, ids=lambda d: str(d.relative_to(REPO)))
def test_committed_crds_equal_the_generated_ones(directory: Any) -> None:
    expected = rendered_crds()
    # Besides the generated CRDs, the chart carries kopf's peering CRDs (config/crd).
    vendored = {"kopf-peering.yaml"} if "charts" in directory.parts else set()
    assert sorted(p.name for p in directory.glob("*.yaml")) == sorted({*expected, *vendored})
    for name, text in expected.items():
        assert (directory / name).read_text() == text, f"{name} is stale: run `make crds`"


def schema_nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from schema_nodes(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from schema_nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from schema_nodes(node["additionalProperties"], f"{path}{{}}")


def openapi_schema(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = CRDS[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize("kind", list(CRDS))
def test_schema_is_structural(kind: str) -> None:
    for path, node in schema_nodes(openapi_schema(kind)):
        assert "type" in node, f"{path} has no type"
        for forbidden in ("$ref", "anyOf", "oneOf", "allOf", "title", "$defs", "uniqueItems"):
            assert forbidden not in node, f"{path} has {forbidden}"
        assert not ("properties" in node and "additionalProperties" in node), path
        if "exclusiveMinimum" in node:
            assert node["exclusiveMinimum"] is True and "minimum" in node, path


@pytest.mark.parametrize("kind", list(CRDS))
def test_every_spec_field_is_described(kind: str) -> None:
    spec = openapi_schema(kind)["properties"]["spec"]
    undescribed = [path for path, node in schema_nodes(spec) if not node.get("description")]
    # Items of plain lists and maps inherit the description of the list or map.
    assert all(p.endswith(("[]", "{}")) for p in undescribed), undescribed


def test_optional_fields_are_nullable_and_cel_rules_are_attached() -> None:
    spec = openapi_schema("RegenerationCharter")["properties"]["spec"]
    assert spec["properties"]["thresholds"]["nullable"] is True
    rules = {
        path: [r["rule"] for r in node.get("x-kubernetes-validations", [])]
        for path, node in schema_nodes(spec)
    }
    assert "self.medium < self.high && self.high < self.critical" in rules[".thresholds"]
    assert any("in self.deny" in r for r in rules[".strategies"])
    assert rules[".systemId"] == ["self == oldSelf"]
    cycle_spec = openapi_schema("RegenerationCycle")["properties"]["spec"]
    assert cycle_spec["x-kubernetes-validations"][0]["rule"] == "self == oldSelf"


def test_names_columns_and_subresources() -> None:
    charter, cycle = CRDS["RegenerationCharter"], CRDS["RegenerationCycle"]
    assert charter["spec"]["names"]["shortNames"] == ["rch"]
    assert cycle["spec"]["names"]["shortNames"] == ["rcy"]
    for crd in (charter, cycle):
        version = crd["spec"]["versions"][0]
        assert version["subresources"] == {"status": {}}
        assert "weavergen" in crd["spec"]["names"]["categories"]
    assert {"Level", "Entropy", "Escalated", "Age"} <= printer_columns(charter)
    assert {"Phase", "Age"} <= printer_columns(cycle)


def printer_columns(crd: dict[str, Any]) -> set[str]:
    return {c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]}


def as_json_schema(node: Any) -> Any:
    """OpenAPI v3 (nullable, boolean exclusive bounds) -> JSON Schema draft 7."""
    if not isinstance(node, dict):
        return node
    out = {k: as_json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes")}
    if "properties" in out:
        out["properties"] = {k: as_json_schema(v) for k, v in node["properties"].items()}
    if out.pop("nullable", False):
        out["type"] = [out["type"], "null"]
    for bound, flag in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if out.pop(flag, False) is True:
            out[flag] = out.pop(bound)
    return out


def validate_against_crd(obj: dict[str, Any]) -> None:
    schema = as_json_schema(openapi_schema(obj["kind"]))
    jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker()).validate(obj)


SAMPLES = sample_objects("RegenerationCharter") + sample_objects("RegenerationCycle")


@pytest.mark.parametrize(("name", "obj"), SAMPLES, ids=[n for n, _ in SAMPLES])
def test_every_sample_validates_against_the_generated_schema(
    name: str, obj: dict[str, Any]
) -> None:
    validate_against_crd(obj)


@pytest.mark.parametrize("system_type", sorted(PROFILES), ids=str)
def test_defined_charters_validate_against_the_generated_schema(system_type: str) -> None:
    charter = define_charter(f"sys-{system_type}", system_type, namespace="default")
    validate_against_crd(charter.model_dump(by_alias=True, exclude_none=True, mode="json"))


def test_schema_validation_catches_a_bad_sample() -> None:
    (_, obj) = SAMPLES[0]
    bad = yaml.safe_load(yaml.safe_dump(obj))
    bad["spec"]["systemType"] = "mainframe"
    with pytest.raises(jsonschema.ValidationError, match="mainframe"):
        validate_against_crd(bad)


def test_crd_files_hold_one_crd_each() -> None:
    for directory in CRD_DIRS:
        for path in directory.glob("regeneration.weavergen.io_*.yaml"):
            assert [m["kind"] for m in manifests(path)] == ["CustomResourceDefinition"]
