"""Semantic-convention registry and the live-check validator that measures attribute drift.

The registry is Weaver's YAML model reduced to what validation needs: name, type, enum members,
stability, deprecation and whether the name is a template (``http.request.header.<key>``). The
validator speaks Weaver's live-check vocabulary so its findings line up with Weaver's reports.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

SCALAR_TYPES = ("string", "int", "double", "boolean")
PRIMITIVE_TYPES = frozenset({*SCALAR_TYPES, *(f"{t}[]" for t in SCALAR_TYPES), "any"})
DEPRECATION_REASONS = frozenset({"renamed", "obsoleted", "uncategorized"})
BUILTIN_REGISTRY = "semconv_registry.yaml"

_TEMPLATE_TYPE = re.compile(r"template\[(?P<inner>.+)\]")
# OTLP AnyValue kinds each declared scalar type accepts: an int is a fine double.
_ACCEPTED_KINDS = {
    "string": frozenset({"string"}),
    "int": frozenset({"int"}),
    "double": frozenset({"double", "int"}),
    "boolean": frozenset({"bool"}),
}
_SHOWN_MEMBERS = 6
_SHOWN_VALUES = 3
# The member for "a value this convention does not name". An enum listing nothing else
# (``error.type``) leaves its values to the instrumentation: an HTTP status code, an exception's
# class name. Every value of it is documented usage, not an undefined variant.
_FALLBACK_MEMBER = "_OTHER"


@dataclass(frozen=True)
class AttributeDef:
    """One attribute as the registry defines it.

    ``type`` is a primitive type name or ``"enum"`` (then ``members`` holds the allowed values as
    strings and ``enum_base`` says whether they are strings or ints).
    """

    name: str
    type: str
    members: tuple[str, ...] = ()
    enum_base: str | None = None
    stability: str = "development"
    deprecated: bool = False
    replacement: str | None = None
    template: bool = False


class RegistryError(ValueError):
    """A registry document that cannot be read; the message names the source and the field."""


class Registry:
    """An immutable set of attribute definitions with namespace and template lookups."""

    def __init__(self, attributes: Iterable[AttributeDef] = ()) -> None:
        self._attributes = {attribute.name: attribute for attribute in attributes}
        self._templates = frozenset(a.name for a in self._attributes.values() if a.template)
        self._namespaces = frozenset(
            name.rpartition(".")[0] for name in self._attributes if "." in name
        )

    @classmethod
    def builtin(cls) -> Registry:
        """The registry shipped with the package (built by hack/build_semconv_registry.py)."""
        return _builtin_registry()

    @classmethod
    def from_weaver_yaml(cls, text: str, source: str = "<registry>") -> Registry:
        """Parse Weaver registry YAML: ``groups[].attributes[]`` or definition/2 ``attributes[]``.

        ``ref:`` entries only reuse attributes defined elsewhere, so they are skipped.
        """
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise RegistryError(f"{source}: not valid YAML: {exc}") from exc
        if not isinstance(document, dict) or not ({"groups", "attributes"} & document.keys()):
            raise RegistryError(f"{source}: expected a mapping with 'groups' or 'attributes'")
        entries: list[tuple[str, str, Any]] = []
        for g, group in enumerate(_list(document, "groups", source)):
            where = f"{source}: groups[{g}]"
            if not isinstance(group, dict):
                raise RegistryError(f"{where}: expected a mapping")
            for a, entry in enumerate(_list(group, "attributes", where)):
                entries.append((f"{where}.attributes[{a}]", "id", entry))
        for a, entry in enumerate(_list(document, "attributes", source)):
            entries.append((f"{source}: attributes[{a}]", "key", entry))
        attributes: dict[str, AttributeDef] = {}
        for where, name_field, entry in entries:
            if isinstance(entry, dict) and "ref" in entry:
                continue
            attribute = _parse_attribute(entry, where, name_field)
            if attribute.name in attributes:
                raise RegistryError(f"{where}: attribute {attribute.name!r} is defined twice")
            attributes[attribute.name] = attribute
        return cls(attributes.values())

    def extended(self, other: Registry) -> Registry:
        """This registry plus ``other``; ``other``'s definition wins for a shared name."""
        return Registry({**self._attributes, **other._attributes}.values())

    def get(self, name: str) -> AttributeDef | None:
        """The exact definition, else the longest template that ``name`` is an instance of."""
        exact = self._attributes.get(name)
        if exact is not None:
            return exact
        prefix = name
        while "." in prefix:
            prefix = prefix.rpartition(".")[0]
            if prefix in self._templates:
                return self._attributes[prefix]
        return None

    def covers(self, name: str) -> bool:
        """Whether ``name`` lies in a namespace the registry defines attributes in."""
        return self.covering_namespace(name) is not None

    def covering_namespace(self, name: str) -> str | None:
        """The nearest enclosing namespace of ``name`` that holds registry attributes."""
        namespace = name
        while "." in namespace:
            namespace = namespace.rpartition(".")[0]
            if namespace in self._namespaces:
                return namespace
        return None

    def __len__(self) -> int:
        return len(self._attributes)


@functools.cache
def _builtin_registry() -> Registry:
    text = resources.files(__package__).joinpath(BUILTIN_REGISTRY).read_text("utf-8")
    return Registry.from_weaver_yaml(text, source=BUILTIN_REGISTRY)


def _list(mapping: dict[Any, Any], key: str, where: str) -> list[Any]:
    value = mapping.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise RegistryError(f"{where}: '{key}' must be a list")
    return value


def _parse_attribute(entry: Any, where: str, name_field: str) -> AttributeDef:
    if not isinstance(entry, dict):
        raise RegistryError(f"{where}: expected a mapping")
    name = entry.get(name_field)
    if not isinstance(name, str) or not name:
        raise RegistryError(f"{where}: missing '{name_field}'")
    where = f"{where} ({name})"
    if "type" not in entry:
        raise RegistryError(f"{where}: missing 'type'")
    stability = entry.get("stability", "development")
    if not isinstance(stability, str):
        raise RegistryError(f"{where}.stability: expected a string, got {stability!r}")
    deprecated, replacement = _parse_deprecated(entry.get("deprecated"), f"{where}.deprecated")
    raw_type = entry["type"]
    if isinstance(raw_type, dict):
        members, enum_base = _parse_members(raw_type.get("members"), f"{where}.type.members")
        return AttributeDef(
            name,
            "enum",
            members=members,
            enum_base=enum_base,
            stability=stability,
            deprecated=deprecated,
            replacement=replacement,
        )
    type_name, template = _parse_type_name(raw_type, f"{where}.type")
    return AttributeDef(
        name,
        type_name,
        stability=stability,
        deprecated=deprecated,
        replacement=replacement,
        template=template,
    )


def _parse_type_name(raw: Any, where: str) -> tuple[str, bool]:
    """``"int"`` -> ("int", False); ``"template[string[]]"`` -> ("string[]", True)."""
    if isinstance(raw, str):
        if raw in PRIMITIVE_TYPES:
            return raw, False
        match = _TEMPLATE_TYPE.fullmatch(raw)
        if match and match["inner"] in PRIMITIVE_TYPES:
            return match["inner"], True
    raise RegistryError(
        f"{where}: unknown type {raw!r} (expected one of {sorted(PRIMITIVE_TYPES)}, "
        "template[<type>] or a mapping with 'members')"
    )


def _parse_members(raw: Any, where: str) -> tuple[tuple[str, ...], str]:
    """Enum values as strings, and whether the enum is over strings or ints."""
    if not isinstance(raw, list) or not raw:
        raise RegistryError(f"{where}: expected a non-empty list of enum members")
    values: list[str | int] = []
    for index, member in enumerate(raw):
        value = member.get("value") if isinstance(member, dict) else None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise RegistryError(f"{where}[{index}]: missing 'value' (a string or an int)")
        values.append(value)
    kinds = {type(value) for value in values}
    if len(kinds) > 1:
        raise RegistryError(f"{where}: mixes string and int values")
    return tuple(str(value) for value in values), "int" if kinds == {int} else "string"


def _parse_deprecated(raw: Any, where: str) -> tuple[bool, str | None]:
    """(deprecated, replacement); only a ``renamed`` deprecation has a replacement."""
    if raw is None:
        return False, None
    if isinstance(raw, str):
        return True, None
    if not isinstance(raw, dict):
        raise RegistryError(f"{where}: expected a string or a mapping with 'reason'")
    reason = raw.get("reason")
    if reason not in DEPRECATION_REASONS:
        raise RegistryError(
            f"{where}.reason: {reason!r} is not one of {sorted(DEPRECATION_REASONS)}"
        )
    if reason != "renamed":
        return True, None
    renamed_to = raw.get("renamed_to")
    if not isinstance(renamed_to, str) or not renamed_to:
        raise RegistryError(f"{where}: reason 'renamed' needs 'renamed_to'")
    return True, renamed_to


@dataclass
class ObservedAttribute:
    """What the spans carried under one attribute key.

    ``value_types`` counts OTLP AnyValue kinds (string, int, double, bool, array, kvlist, bytes);
    ``values`` counts the string forms of scalar values, capped by the producer (may be empty).
    """

    count: int
    value_types: dict[str, int] = field(default_factory=dict)
    values: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    """One live-check finding; ``count`` is the number of spans it affects."""

    code: str
    attribute: str
    count: int
    detail: str

    def as_dict(self) -> dict[str, str | int]:
        return {
            "code": self.code,
            "attribute": self.attribute,
            "count": self.count,
            "detail": self.detail,
        }


def validate(observed: Mapping[str, ObservedAttribute], registry: Registry) -> list[Finding]:
    """Check observed attributes against ``registry`` with Weaver live-check codes.

    Keys outside the namespaces the registry covers belong to the application and pass.
    """
    findings: list[Finding] = []
    for name, seen in observed.items():
        definition = registry.get(name)
        if definition is None:
            namespace = registry.covering_namespace(name)
            if namespace is not None:
                detail = f"not defined in namespace {namespace}"
                findings.append(Finding("missing_attribute", name, seen.count, detail))
            continue
        findings.extend(_check_definition(name, seen, definition))
    return sorted(findings, key=lambda finding: (finding.code, finding.attribute))


def _check_definition(
    name: str, seen: ObservedAttribute, definition: AttributeDef
) -> list[Finding]:
    findings: list[Finding] = []
    if definition.deprecated:
        detail = (
            f"renamed to {definition.replacement}"
            if definition.replacement
            else "deprecated without a single replacement"
        )
        findings.append(Finding("deprecated", name, seen.count, detail))
    elif definition.stability != "stable":
        findings.append(
            Finding("not_stable", name, seen.count, f"stability {definition.stability}")
        )
    expected = definition.enum_base if definition.type == "enum" else definition.type
    if expected is not None and expected != "any":
        accepted = frozenset({"array"}) if expected.endswith("[]") else _ACCEPTED_KINDS[expected]
        wrong_kinds = sorted(kind for kind in seen.value_types if kind not in accepted)
        if wrong_kinds:
            count = sum(seen.value_types[kind] for kind in wrong_kinds)
            detail = f"expected {expected}, got {', '.join(wrong_kinds)}"
            findings.append(Finding("type_mismatch", name, count, detail))
    if definition.type == "enum" and definition.members != (_FALLBACK_MEMBER,):
        allowed = set(definition.members)
        undefined = sorted(
            (value for value in seen.values if value not in allowed),
            key=lambda value: (-seen.values[value], value),
        )
        if undefined:
            count = sum(seen.values[value] for value in undefined)
            findings.append(
                Finding("undefined_enum_variant", name, count, _enum_detail(undefined, definition))
            )
    return findings


def _enum_detail(undefined: list[str], definition: AttributeDef) -> str:
    shown = ", ".join(repr(value) for value in undefined[:_SHOWN_VALUES])
    more = ", ..." if len(undefined) > _SHOWN_VALUES else ""
    members = ", ".join(definition.members[:_SHOWN_MEMBERS])
    if len(definition.members) > _SHOWN_MEMBERS:
        members += ", ..."
    noun = "value" if len(undefined) == 1 else "values"
    return f"{noun} {shown}{more} not in [{members}]"
