"""Building blocks shared by the CRD wire models: camelCase base models, conditions, references.

The models in this package are the single source of the CRD schemas (see ``crdgen``), so every
field carries a description (``kubectl explain`` shows it) and every cross-field invariant is
stated twice on purpose: once as a pydantic validator (the CLI and the operator) and once as a CEL
rule (the API server, at admission). ``tests/unit/test_api_models.py`` checks the pairs agree.

The models validate strictly, as the API server does: a body decoded from JSON holding "60" for an
integer, "0.5" for a number, "true" or 1 for a boolean, or true for an integer is refused rather
than coerced. A number may still be given as an integer (1 for 1.0). The exception is what JSON
can only carry as a string, date-times and enum values: those fields are marked
``FROM_JSON_STRING`` and parse the string (strict validation of Python objects would want the
``datetime`` or enum member itself).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints, ValidationError
from pydantic.alias_generators import to_camel

GROUP: Final = "regeneration.weavergen.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = "regeneration.weavergen.io/v1alpha1"
# The label on what belongs to a charter (its cycles, its captured baseline).

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

DnsLabel = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)]
"""A Kubernetes DNS-1123 label: lowercase letters, digits and '-', at most 63 characters."""

ObjectName = Annotated[
    str, StringConstraints(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)
]
"""A Kubernetes object name (DNS-1123 subdomain)."""

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]

FROM_JSON_STRING: Final = Strict(False)
"""Marks a type JSON carries as a string (a date-time, an enum value) as parsed from it."""

Timestamp = Annotated[datetime, FROM_JSON_STRING]
"""A date-time, RFC 3339 text on the wire."""


def format_validation_error(error: ValidationError, prefix: str = "") -> str:
    """One line per pydantic error, each naming the field path: ``a.b[0].c: problem``."""
    parts = []
    for item in error.errors():
        path = prefix
        for loc in item["loc"]:
            path += f"[{loc}]" if isinstance(loc, int) else (f".{loc}" if path else str(loc))
        parts.append(f"{path or '(root)'}: {item['msg']}")
    return "; ".join(parts)


def cel(rule: str, message: str, field_path: str | None = None) -> dict[str, str]:
    """One ``x-kubernetes-validations`` entry; ``field_path`` points the error at a child field."""
    entry = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry


def cel_rules(*rules: dict[str, str]) -> dict[str, Any]:
    """``json_schema_extra`` for a model whose schema node carries CEL validation rules."""
    return {"x-kubernetes-validations": list(rules)}


class WireModel(BaseModel):
    """Base of every spec model: camelCase on the wire, unknown fields rejected with their path,
    values of the wrong JSON type refused rather than coerced."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_assignment=True,
        strict=True,
        defer_build=True,
    )


class StatusModel(WireModel):
    """Base of status models: written by the operator, tolerant of fields from newer versions."""

    model_config = ConfigDict(extra="ignore")


class ConfigMapKeyRef(WireModel):
    """A key of a ConfigMap in the charter's namespace."""

    name: ObjectName = Field(description="Name of the ConfigMap, in the charter's namespace.")
    key: Annotated[str, StringConstraints(min_length=1, max_length=253)] = Field(
        description="Key inside the ConfigMap's data."
    )


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(StatusModel):
    """A Kubernetes API condition (metav1.Condition)."""

    type: str = Field(description="Type of condition in CamelCase, for example Ready.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(description="Machine-readable CamelCase reason for the last transition.")
    message: str = Field(default="", description="Human-readable details about the transition.")
    last_transition_time: Timestamp = Field(
        description="When the condition last changed status (kept while the status is unchanged)."
    )
    observed_generation: int | None = Field(
        default=None, description="The .metadata.generation the condition was set for."
    )


def defaulted(model: type[BaseModel], description: str) -> Any:
    """A sub-object that may be omitted: its defaults are written into the schema as a whole.

    The API server checks a schema default against the CEL rules as written, without applying
    the nested defaults, so ``default: {}`` is not enough.
    """
    default = model().model_dump(by_alias=True, mode="json", exclude_none=True)
    return Field(
        default_factory=model, description=description, json_schema_extra={"default": default}
    )


def condition_list_field(description: str) -> Any:
    """A conditions list keyed by ``type``, as Kubernetes list-map semantics expect."""
    return Field(
        default_factory=list,
        description=description,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )


class ObjectMeta(BaseModel):
    """The subset of metav1.ObjectMeta the operator and the CLI read; the rest passes through."""

    model_config = ConfigDict(
        extra="allow", populate_by_name=True, alias_generator=to_camel, strict=True
    )

    name: ObjectName
    namespace: DnsLabel | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    generation: int | None = None
    uid: str | None = None
