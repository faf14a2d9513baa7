"""CustomResourceDefinitions generated from the pydantic models.

Pydantic emits JSON Schema 2020-12; the API server wants a *structural* OpenAPI v3 schema: every
node typed, no ``$ref``/``anyOf`` for optionals, ``nullable`` instead of ``null`` types, boolean
``exclusiveMinimum``, no ``title``, and no ``additionalProperties`` beside ``properties``. This
module converts one into the other and assembles the CRD objects (status subresource, printer
columns, short names, categories).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from weavergen.api import charter, cycle
from weavergen.api.common import GROUP, VERSION

JsonSchema = dict[str, Any]

_DROPPED_KEYS = {"title", "$defs", "discriminator"}


class SchemaConversionError(ValueError):
    """A model uses a construct a structural schema cannot express."""


def _resolve(node: JsonSchema, defs: dict[str, JsonSchema]) -> JsonSchema:
    ref = node.get("$ref")
    if ref is None:
        return node
    target = defs[ref.rsplit("/", 1)[-1]]
    # A $ref with sibling keys (description, default) keeps the siblings on top of the target.
    return {**target, **{k: v for k, v in node.items() if k != "$ref"}}


def _structural(node: JsonSchema, defs: dict[str, JsonSchema], path: str) -> JsonSchema:
    node = _resolve(node, defs)
    if "anyOf" in node:
        return _optional(node, defs, path)
    out: JsonSchema = {}
    for key, value in node.items():
        if key not in _DROPPED_KEYS:
            out.update(_convert(key, value, node, defs, path))
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    if "type" not in out:
        raise SchemaConversionError(f"{path}: every schema node needs a type")
    if out.get("required") == []:
        del out["required"]
    return out


def _optional(node: JsonSchema, defs: dict[str, JsonSchema], path: str) -> JsonSchema:
    """``Optional[X]`` (anyOf X, null) -> X with ``nullable: true``."""
    options = node["anyOf"]
    non_null = [o for o in options if o.get("type") != "null"]
    if len(non_null) != 1:
        raise SchemaConversionError(f"{path}: unions other than Optional[X] are not structural")
    merged = {**_resolve(non_null[0], defs), **{k: v for k, v in node.items() if k != "anyOf"}}
    out = _structural(merged, defs, path)
    if len(non_null) != len(options):
        out["nullable"] = True
        if "default" in out and out["default"] is None:
            del out["default"]
    return out


def _convert(
    key: str, value: Any, node: JsonSchema, defs: dict[str, JsonSchema], path: str
) -> JsonSchema:
    """One key of a JSON Schema node as the structural OpenAPI keys it becomes."""
    if key == "properties":
        return {
            key: {name: _structural(child, defs, f"{path}.{name}") for name, child in value.items()}
        }
    if key == "items":
        return {key: _structural(value, defs, f"{path}[]")}
    if key == "additionalProperties":
        if isinstance(value, dict):
            return {key: _structural(value, defs, f"{path}{{}}")}
        if value is False and "properties" not in node:
            raise SchemaConversionError(f"{path}: a closed empty object is not structural")
        return {}  # closed objects: the API server prunes unknown fields anyway
    if key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
        return {"minimum" if key == "exclusiveMinimum" else "maximum": value, key: True}
    if key == "const":
        return {"enum": [value]}
    return {key: value}


def openapi_schema(model: type[BaseModel]) -> JsonSchema:
    """The structural OpenAPI v3 schema of a model, with descriptions and CEL rules kept."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _structural(raw, raw.get("$defs", {}), model.__name__)


@dataclass(frozen=True)
class CustomResource:
    """What the CRD of one kind is made of besides its models."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    spec: type[BaseModel]
    status: type[BaseModel]
    printer_columns: tuple[dict[str, Any], ...]
    description: str


CATEGORIES = ["weavergen", "regeneration"]

RESOURCES = (
    CustomResource(
        kind=charter.KIND,
        plural=charter.PLURAL,
        short_names=("rch",),
        spec=charter.RegenerationCharterSpec,
        status=charter.RegenerationCharterStatus,
        description=(
            "RegenerationCharter says which workload the WeaverGen operator keeps healthy, how its "
            "entropy is measured from OpenTelemetry spans, and by which thresholds, success "
            "criteria and budgets regeneration cycles run."
        ),
        printer_columns=(
            {"name": "System", "type": "string", "jsonPath": ".spec.systemType"},
            {"name": "Mode", "type": "string", "jsonPath": ".spec.mode"},
            {"name": "Level", "type": "string", "jsonPath": ".status.entropy.level"},
            {"name": "Entropy", "type": "number", "jsonPath": ".status.entropy.score"},
            {"name": "Health", "type": "number", "jsonPath": ".status.entropy.healthScore"},
            {
                "name": "Ready",
                "type": "string",
                "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
            },
            {
                "name": "Escalated",
                "type": "string",
                "jsonPath": '.status.conditions[?(@.type=="Escalated")].status',
            },
            {"name": "Cycle", "type": "string", "jsonPath": ".status.activeCycle", "priority": 1},
            {
                "name": "Last",
                "type": "string",
                "jsonPath": ".status.lastCycle.outcome",
                "priority": 1,
            },
            {
                "name": "Breaker",
                "type": "string",
                "jsonPath": ".status.circuitBreaker.state",
                "priority": 1,
            },
            {
                "name": "Forecast",
                "type": "string",
                "jsonPath": ".status.forecast.level",
                "description": "The entropy level the trend is predicted to reach next.",
                "priority": 1,
            },
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ),
    ),
    CustomResource(
        kind=cycle.KIND,
        plural=cycle.PLURAL,
        short_names=("rcy",),
        spec=cycle.RegenerationCycleSpec,
        status=cycle.RegenerationCycleStatus,
        description=(
            "RegenerationCycle is one DMEDI run (Define, Measure, Explore, Develop, Implement) "
            "for a RegenerationCharter: each phase's record, the ranked options, the snapshot "
            "taken before any change, and the outcome."
        ),
        printer_columns=(
            {"name": "Charter", "type": "string", "jsonPath": ".spec.charterRef.name"},
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Strategy", "type": "string", "jsonPath": ".status.chosenStrategy"},
            {"name": "Before", "type": "number", "jsonPath": ".status.entropyBefore.score"},
            {"name": "After", "type": "number", "jsonPath": ".status.entropyAfter.score"},
            {
                "name": "Finished",
                "type": "date",
                "jsonPath": ".status.finishedAt",
                "priority": 1,
            },
            {"name": "Reason", "type": "string", "jsonPath": ".spec.reason", "priority": 1},
            {
                "name": "StoppedBy",
                "type": "string",
                "jsonPath": ".status.abort.requestedBy",
                "description": "Who aborted the cycle or rejected its plan.",
                "priority": 1,
            },
            {"name": "RetryOf", "type": "string", "jsonPath": ".spec.retryOf", "priority": 1},
            {
                "name": "RetriedBy",
                "type": "string",
                "jsonPath": ".status.retriedBy",
                "priority": 1,
            },
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ),
    ),
)


def crd_manifest(resource: CustomResource) -> dict[str, Any]:
    """The apiextensions.k8s.io/v1 CustomResourceDefinition of one kind."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{resource.plural}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "weavergen-operator"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": resource.kind,
                "listKind": f"{resource.kind}List",
                "plural": resource.plural,
                "singular": resource.kind.lower(),
                "shortNames": list(resource.short_names),
                "categories": CATEGORIES,
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": list(resource.printer_columns),
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": resource.description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": openapi_schema(resource.spec),
                                "status": openapi_schema(resource.status),
                            },
                        }
                    },
                }
            ],
        },
    }


def crd_file_name(resource: CustomResource) -> str:
    """File name of a CRD under ``crds/``: ``<group>_<plural>.yaml``, as controller-gen does."""
    return f"{GROUP}_{resource.plural}.yaml"
