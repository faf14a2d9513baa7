"""Owner references: which object owns which (the garbage collector's links, read back)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def owned_by(obj: Mapping[str, Any], uid: str | None) -> bool:
    """Whether ``obj`` names the object with ``uid`` among its owners."""
    references = (obj.get("metadata") or {}).get("ownerReferences") or []
    return uid is not None and any(ref.get("uid") == uid for ref in references)


def owner_of_kind(meta: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    """The first owner reference of ``kind`` in an object's metadata, if any."""
    return next((r for r in meta.get("ownerReferences") or [] if r.get("kind") == kind), None)
