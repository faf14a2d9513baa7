"""The one way the operator writes status: through the kind's status model, as a merge patch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from weavergen.api.charter import RegenerationCharterStatus
from weavergen.api.cycle import RegenerationCycleStatus
from weavergen.api.status import status_patch
from weavergen.k8s.rest import Rest

STATUS_MODELS: Mapping[str, type[BaseModel]] = {
    "RegenerationCharter": RegenerationCharterStatus,
    "RegenerationCycle": RegenerationCycleStatus,
}


def write_status(
    rest: Rest, kind: str, namespace: str, name: str, patch: Mapping[str, Any]
) -> None:
    """Merge ``patch`` into the object's status subresource, checked against its model first:
    a field the schema lacks, or a value of another type, fails here with its name."""
    body = {"status": status_patch(STATUS_MODELS[kind], patch)}
    rest.patch(kind, namespace, name, body, "status")
