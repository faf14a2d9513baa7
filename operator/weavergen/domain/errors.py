"""The errors the operator knows how to report, at the boundary between the domain and I/O.

Each says how it is reported (``reason``: the condition or Event reason) and whether the same
work may succeed later (``retry_seconds``; None: not until something changes). The kopf handlers
map them to kopf's errors in one place (``handlers/errors.py``); everything else is a bug or an
API failure, and kopf retries it with its own backoff.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ValidationError

from weavergen.api.common import format_validation_error

Model = TypeVar("Model", bound=BaseModel)


class RegenerationError(Exception):
    """Base of the errors above: a message for people, a reason for machines."""

    reason: ClassVar[str] = "Error"
    retry_seconds: ClassVar[float | None] = 30.0


class InvalidSpec(RegenerationError, ValueError):
    """An object's spec does not validate; nothing helps until someone edits it."""

    reason = "InvalidSpec"
    retry_seconds = None


class InvalidCharter(InvalidSpec):
    """A charter's spec does not validate."""


class MeasurementUnavailable(RegenerationError, LookupError):
    """The telemetry to measure from cannot be read (missing, undecodable, unreachable):
    evidence that the service is not observed, never a pass."""

    reason = "MeasurementFailed"
    retry_seconds = 10.0


class PrometheusUnavailable(MeasurementUnavailable):
    """The Prometheus a charter reads did not answer (unreachable, timed out, 5xx)."""

    reason = "PrometheusUnavailable"


class PrometheusQueryFailed(MeasurementUnavailable):
    """The Prometheus a charter reads answered with an error (a query that does not parse,
    refused credentials) or with something that is not RED counts per service."""

    reason = "PrometheusQueryFailed"


class BaselinePending(MeasurementUnavailable):
    """No baseline to measure against yet: the charter is new, or its service is quiet."""

    reason = "BaselinePending"


class PhaseFailed(RegenerationError):
    """A phase could not do its work; the message says why, for the cycle's status."""

    reason = "PhaseFailed"
    retry_seconds = None


class CycleNameTaken(RegenerationError):
    """The name a charter's new cycle would take is used by something that is not its own."""

    reason = "CycleNameTaken"
    retry_seconds = None


class NotFound(RegenerationError, LookupError):
    """An object the work needs does not exist (any more)."""

    reason = "NotFound"
    retry_seconds = None


class CharterNotFound(NotFound):
    """The charter a cycle or a request names does not exist."""

    reason = "CharterNotFound"


class CycleNotFound(NotFound):
    """The cycle a phase Job runs for does not exist."""

    reason = "CycleNotFound"


def parsed_spec(
    model: type[Model], spec: Mapping[str, Any], invalid: type[InvalidSpec] = InvalidSpec
) -> Model:
    """The object's spec as its model, or ``invalid`` naming every field at fault."""
    try:
        return model.model_validate(dict(spec))
    except ValidationError as err:
        raise invalid(format_validation_error(err, "spec")) from None
