"""Operators by name, for the workflows' service tasks to call: apart from the engine, so that
a phase that runs no workflow registers its operators without loading SpiffWorkflow."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from weavergen.domain.remedy.vocabulary import VOCABULARY

Operator = Callable[[dict[str, Any], dict[str, Any]], "dict[str, Any] | None"]
"""``fn(params, data) -> dict | None``: what it returns is merged into the workflow data."""

BPMN_TYPES: Mapping[str, type] = {"int": int, "float": float, "str": str, "bool": bool}
"""The parameter types a service task may declare, by their BPMN names."""


class UnknownOperator(ValueError):
    """A service task names an operator that is not registered."""


class Pending(Exception):
    """Raised by an operator that has started its work but not finished it (call again later)."""


@dataclass(frozen=True)
class RegisteredOperator:
    name: str
    fn: Operator
    params: Mapping[str, type]


class ServiceRegistry:
    """Operators by name, with the parameters (name -> Python type) each one requires."""

    def __init__(self) -> None:
        self._ops: dict[str, RegisteredOperator] = {}

    def register(self, name: str, fn: Operator, params: Mapping[str, type] | None = None) -> None:
        """Register ``fn`` as operator ``name``.

        ``params`` defaults to the vocabulary's declaration for a known name (and to none for any
        other name). Registering a name again replaces the operator.
        """
        if not name.isidentifier():
            raise ValueError(f"operator name {name!r} is not an identifier")
        if not callable(fn):
            raise TypeError(f"operator {name!r} is not callable")
        declared = dict(VOCABULARY.get(name, {}) if params is None else params)
        for pname, ptype in declared.items():
            if ptype not in BPMN_TYPES.values():
                raise TypeError(
                    f"operator {name!r} parameter {pname!r}: type {ptype!r} is not one of "
                    f"{', '.join(BPMN_TYPES)}"
                )
        self._ops[name] = RegisteredOperator(name, fn, MappingProxyType(declared))

    def names(self) -> list[str]:
        return sorted(self._ops)

    def get(self, name: str) -> RegisteredOperator:
        try:
            return self._ops[name]
        except KeyError:
            raise UnknownOperator(
                f"unknown operator {name!r} (registered: {', '.join(self.names()) or 'none'})"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._ops
