"""Build domain/measure/semconv_registry.yaml from opentelemetry-semantic-conventions.

The installed package carries attribute names, stability (the stable module versus the
incubating one), deprecations with their replacements and enum values. It does not carry
attribute types, so this script states them (``EXACT_TYPES``, ``SUFFIX_TYPES``, the template
types). The modules are read with ``ast`` so that nothing depends on import side effects.

Run: ``.venv/bin/python hack/build_semconv_registry.py [--output PATH]``.
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import importlib.util
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PACKAGE = "opentelemetry-semantic-conventions"
REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO / "operator" / "weavergen" / "domain" / "measure" / "semconv_registry.yaml"

# Module stems (``<area>_attributes.py``); each becomes the group ``registry.<area>``.
AREAS = (
    "client",
    "db",
    "error",
    "exception",
    "http",
    "messaging",
    "net",
    "network",
    "otel",
    "peer",
    "rpc",
    "server",
    "service",
    "url",
    "user_agent",
)

# Attribute types the project states: the package has none. Everything not matched is a string.
EXACT_TYPES = {
    "db.cassandra.idempotence": "boolean",
    "db.cosmosdb.regions_contacted": "string[]",
    "db.cosmosdb.request_charge": "double",
    "db.cosmosdb.status_code": "int",
    "db.cosmosdb.sub_status_code": "int",
    "db.redis.database_index": "int",
    "db.response.returned_rows": "int",
    "exception.escaped": "boolean",
    "http.response.status_code": "int",
    "http.status_code": "int",
    "messaging.destination.anonymous": "boolean",
    "messaging.destination.temporary": "boolean",
    "messaging.destination_publish.anonymous": "boolean",
    "messaging.eventhubs.message.enqueued_time": "int",
    "messaging.gcp_pubsub.message.ack_deadline": "int",
    "messaging.gcp_pubsub.message.delivery_attempt": "int",
    "messaging.kafka.destination.partition": "int",
    "messaging.kafka.message.offset": "int",
    "messaging.kafka.message.tombstone": "boolean",
    "messaging.kafka.offset": "int",
    "messaging.rabbitmq.message.delivery_tag": "int",
    "messaging.rocketmq.message.delay_time_level": "int",
    "messaging.rocketmq.message.delivery_timestamp": "int",
    "messaging.rocketmq.message.keys": "string[]",
    "messaging.servicebus.message.enqueued_time": "int",
    "rpc.jsonrpc.error_code": "int",
    "rpc.message.id": "int",
}
# Name endings that fix the type of every attribute carrying them (ports, sizes, counters).
SUFFIX_TYPES = (
    (".port", "int"),
    (".size", "int"),
    ("_size", "int"),
    ("_count", "int"),
    ("_content_length", "int"),
    ("_content_length_uncompressed", "int"),
)
# Templates hold header-like multi-valued data as string[]; the others hold one string.
TEMPLATE_ARRAY_SUFFIXES = (".header", ".metadata")

_DEPRECATED = "Deprecated: "
_STABLE_ALIAS = "Deprecated in favor of stable"
_RENAMED = re.compile(r"Replaced by `([a-z0-9_.\-]+)`\.")


@dataclass
class Constant:
    """One ``NAME: Final = "attr.name"`` with the docstring after it."""

    python_name: str
    name: str
    doc: str

    @property
    def template(self) -> bool:
        """``HTTP_REQUEST_HEADER_TEMPLATE`` is a template, ``URL_TEMPLATE`` (url.template) not."""
        return self.python_name == self.name.upper().replace(".", "_") + "_TEMPLATE"


@dataclass
class Module:
    """The constants and enum members of one ``*_attributes.py`` module."""

    constants: list[Constant] = field(default_factory=list)
    enums: dict[str, list[tuple[str, str | int]]] = field(default_factory=dict)


def read_module(path: Path) -> Module:
    """Collect constants (with docstrings) and ``XxxValues(Enum)`` members from a module."""
    module = Module()
    if not path.exists():
        return module
    body = ast.parse(path.read_text(encoding="utf-8")).body
    for node, following in zip(body, [*body[1:], None], strict=True):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            doc = ""
            if (
                isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                doc = following.value.value.strip()
            module.constants.append(Constant(node.target.id, node.value.value, doc))
        elif isinstance(node, ast.ClassDef) and node.name.endswith("Values"):
            module.enums[node.name] = [
                (item.targets[0].id, item.value.value)
                for item in node.body
                if isinstance(item, ast.Assign)
                and isinstance(item.targets[0], ast.Name)
                and isinstance(item.value, ast.Constant)
                and isinstance(item.value.value, str | int)
            ]
    return module


def enum_class_name(constant: Constant) -> str:
    """``HTTP_REQUEST_METHOD`` -> ``HttpRequestMethodValues``, the package's naming rule."""
    return "".join(part.capitalize() for part in constant.python_name.split("_")) + "Values"


def attribute_type(constant: Constant) -> str:
    """The project's statement of a non-enum attribute's type."""
    name = constant.name
    if constant.template:
        inner = "string[]" if name.endswith(TEMPLATE_ARRAY_SUFFIXES) else "string"
        return f"template[{inner}]"
    if name in EXACT_TYPES:
        return EXACT_TYPES[name]
    for suffix, type_name in SUFFIX_TYPES:
        if name.endswith(suffix):
            return type_name
    return "string"


def deprecation(doc: str, attribute_names: set[str]) -> dict[str, str] | None:
    """Weaver's ``deprecated`` block for a docstring that starts with ``Deprecated: ``.

    Only "Replaced by `x`." naming an attribute the package defines is a rename: the same words
    pointing at a template instance (a header), or any other wording, are a note.
    """
    if not doc.startswith(_DEPRECATED):
        return None
    note = " ".join(doc[len(_DEPRECATED) :].split())
    renamed = _RENAMED.fullmatch(note)
    if renamed and renamed.group(1) in attribute_names:
        return {"reason": "renamed", "renamed_to": renamed.group(1)}
    return {"reason": "uncategorized", "note": note}


class Inline(dict[str, Any]):
    """A mapping written on one line: keeps long enum member lists readable."""


def _represent_inline(dumper: yaml.SafeDumper, data: Inline) -> yaml.MappingNode:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True)


yaml.SafeDumper.add_representer(Inline, _represent_inline)


def enum_members(
    stable: list[tuple[str, str | int]], incubating: list[tuple[str, str | int]]
) -> list[Inline]:
    """Stable members first, then the ones only the incubating module knows (development)."""
    stable_values = {value for _, value in stable}
    members = [Inline(id=key.lower(), value=value, stability="stable") for key, value in stable]
    members += [
        Inline(id=key.lower(), value=value, stability="development")
        for key, value in incubating
        if value not in stable_values
    ]
    return members


@dataclass
class Area:
    """One area's stable and incubating modules, plus every attribute name in the package."""

    stable: Module
    incubating: Module
    attribute_names: set[str]

    def attributes(self) -> list[dict[str, Any]]:
        """The area's attributes; a name in the stable module is stable whatever else says."""
        stable_names = {constant.name for constant in self.stable.constants}
        entries = [self.describe(constant, "stable") for constant in self.stable.constants]
        for constant in self.incubating.constants:
            if constant.doc.startswith(_STABLE_ALIAS) and constant.name not in stable_names:
                raise SystemExit(f"{constant.name}: names a stable attribute that is absent")
            if constant.name not in stable_names:
                entries.append(self.describe(constant, "development"))
        self.check_enums_used()
        return sorted(entries, key=lambda entry: str(entry["id"]))

    def describe(self, constant: Constant, stability: str) -> dict[str, Any]:
        """One Weaver attribute entry."""
        enum_name = enum_class_name(constant)
        type_: Any = attribute_type(constant)
        if enum_name in self.stable.enums or enum_name in self.incubating.enums:
            stable_members = self.stable.enums.get(enum_name, [])
            type_ = {"members": enum_members(stable_members, self.incubating.enums[enum_name])}
        entry: dict[str, Any] = {"id": constant.name, "type": type_, "stability": stability}
        deprecated = deprecation(constant.doc, self.attribute_names)
        if deprecated:
            entry["deprecated"] = deprecated
        return entry

    def check_enums_used(self) -> None:
        """Fail loudly when a package version names an enum class differently."""
        for module in (self.stable, self.incubating):
            orphans = set(module.enums) - {enum_class_name(c) for c in module.constants}
            if orphans:
                raise SystemExit(f"enum classes without an attribute: {sorted(orphans)}")


def build(package_dir: Path, version: str) -> str:
    """The registry YAML text for the installed package at ``package_dir``."""
    stable_dir = package_dir / "attributes"
    incubating_dir = package_dir / "_incubating" / "attributes"
    attribute_names = {
        constant.name
        for path in [*stable_dir.glob("*_attributes.py"), *incubating_dir.glob("*_attributes.py")]
        for constant in read_module(path).constants
    }
    groups = []
    for name in AREAS:
        area = Area(
            read_module(stable_dir / f"{name}_attributes.py"),
            read_module(incubating_dir / f"{name}_attributes.py"),
            attribute_names,
        )
        attributes = area.attributes()
        if not attributes:
            raise SystemExit(f"{PACKAGE} {version} has no attributes for area {name!r}")
        groups.append(
            {"id": f"registry.{name}", "type": "attribute_group", "attributes": attributes}
        )
    header = (
        f"# Generated by hack/build_semconv_registry.py from {PACKAGE} {version}.\n"
        "# Do not edit by hand: change the script (it states the attribute types) and rerun it.\n"
    )
    body = yaml.safe_dump(
        {"groups": groups},
        sort_keys=False,
        allow_unicode=True,
        width=1000,
        default_flow_style=False,
    )
    return header + body


def installed_package() -> tuple[Path, str]:
    """Where ``opentelemetry.semconv`` is installed, and the distribution's version."""
    spec = importlib.util.find_spec("opentelemetry.semconv")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{PACKAGE} is not installed")
    return Path(next(iter(spec.submodule_search_locations))), importlib.metadata.version(PACKAGE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    args.output.write_text(build(*installed_package()), encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
