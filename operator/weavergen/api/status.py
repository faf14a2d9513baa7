"""Status written through the models: a merge patch checked against the status model first.

The status models generate the CRD schemas; every status write goes through `status_patch`, so
a writer cannot put there what the schema does not describe (a field it lacks, a value of
another type) without a test failing here instead of the API server pruning it in silence.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from functools import cache
from typing import Annotated, Any, Union, cast, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo


class InvalidStatus(ValueError):
    """A status patch that the status model does not allow; names the field and the problem."""


def status_patch(model: type[BaseModel], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``patch`` (an RFC 7386 merge patch of a ``model`` status) validated and in wire form.

    Keys are the fields' wire names; ``None`` removes a field, a mapping for an object field
    merges into it (so it is checked field by field, as a patch of its own), anything else
    replaces the field and must be a complete value of its type.
    """
    fields = _fields(model)
    patched: dict[str, Any] = {}
    for key, value in patch.items():
        if key not in fields:
            raise InvalidStatus(f"{model.__name__}.{key}: no such field")
        if value is None:
            patched[key] = None
            continue
        name, info = fields[key]
        nested = _object_model(info)
        if nested is not None and isinstance(value, Mapping):
            patched[key] = status_patch(nested, value)
            continue
        try:
            # The model's own check of one field: its type, constraints and strictness.
            checked = cast(
                BaseModel,
                model.__pydantic_validator__.validate_assignment(
                    _blank(model).model_copy(), name, value
                ),
            )
        except ValidationError as err:
            problems = "; ".join(e["msg"] for e in err.errors())
            raise InvalidStatus(f"{model.__name__}.{key}: {problems}") from None
        patched[key] = checked.model_dump(
            mode="json", by_alias=True, include={name}, exclude_none=True
        )[key]
    return patched


@cache
def _fields(model: type[BaseModel]) -> dict[str, tuple[str, FieldInfo]]:
    """The model's fields by wire name: (attribute name, field)."""
    return {info.alias or name: (name, info) for name, info in model.model_fields.items()}


@cache
def _blank(model: type[BaseModel]) -> BaseModel:
    """An instance of ``model`` with its defaults, made once: ``model_construct`` inspects every
    default factory's signature, which costs more than the rest of a status write together."""
    return model.model_construct()


def _object_model(info: FieldInfo) -> type[BaseModel] | None:
    """The model of an object field (``Model`` or ``Model | None``), else None."""
    annotation = info.annotation
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        annotation = members[0] if len(members) == 1 else None
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None
