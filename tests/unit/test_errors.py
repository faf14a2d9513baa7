"""The domain's errors, and their one mapping to kopf's."""

from __future__ import annotations

import kopf
import pytest
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import ProtocolError

from weavergen.api.charter import RegenerationCharterSpec
from weavergen.domain import errors
from weavergen.domain.errors import (
    BaselinePending,
    InvalidCharter,
    MeasurementUnavailable,
    RegenerationError,
    parsed_spec,
)
from weavergen.handlers.errors import API_RETRY_SECONDS, kopf_error, reported

EVERY_ERROR = [
    cls
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, RegenerationError)
]


@pytest.mark.parametrize("cls", EVERY_ERROR, ids=lambda cls: cls.__name__)
def test_every_error_maps_to_a_retry_with_its_delay_or_to_a_permanent_error(
    cls: type[RegenerationError],
) -> None:
    mapped = kopf_error(cls("it broke"))
    assert str(mapped) == f"{cls.reason}: it broke"
    if cls.retry_seconds is None:
        assert isinstance(mapped, kopf.PermanentError)
    else:
        assert isinstance(mapped, kopf.TemporaryError) and mapped.delay == cls.retry_seconds


def test_missing_telemetry_is_retried_soon_and_reported_by_its_own_reason() -> None:
    assert BaselinePending.retry_seconds == MeasurementUnavailable.retry_seconds == 10.0
    assert (MeasurementUnavailable.reason, BaselinePending.reason) == (
        "MeasurementFailed",
        "BaselinePending",
    )
    assert issubclass(BaselinePending, MeasurementUnavailable)


def test_a_handler_raises_kopfs_error_and_lets_anything_else_through() -> None:
    @reported()
    def handler(error: Exception) -> None:
        raise error

    with pytest.raises(kopf.PermanentError, match=r"InvalidSpec: spec\.systemId"):
        handler(InvalidCharter("spec.systemId: required"))
    with pytest.raises(KeyError):
        handler(KeyError("a bug stays a bug"))


def test_an_invalid_spec_names_every_field_at_fault() -> None:
    with pytest.raises(InvalidCharter) as caught:
        parsed_spec(
            RegenerationCharterSpec,
            {"systemId": "Not_A_Label", "systemType": "web-service", "target": {}},
            InvalidCharter,
        )
    message = str(caught.value)
    assert "spec.systemId:" in message and "spec.telemetry:" in message


@pytest.mark.parametrize(
    "error",
    [
        ProtocolError("Connection aborted.", ConnectionResetError(104, "reset")),
        ApiException(status=503, reason="Service Unavailable"),
        ApiException(status=429, reason="Too Many Requests"),
        ApiException(status=0, reason="no status: the connection failed"),
    ],
    ids=["connection-reset", "503", "429", "no-status"],
)
def test_a_handler_that_failed_on_the_api_server_runs_again_in_seconds(error: Exception) -> None:
    """Not after kopf's 60 s back-off for an error: a charter unmeasured for a minute."""

    @reported()
    def handler() -> None:
        raise error

    with pytest.raises(kopf.TemporaryError) as raised:
        handler()
    assert raised.value.delay == API_RETRY_SECONDS < 10
    assert raised.value.__cause__ is error


@pytest.mark.parametrize("status", [403, 404, 409, 422])
def test_an_answer_of_the_api_server_is_not_retried_soon(status: int) -> None:
    @reported()
    def handler() -> None:
        raise ApiException(status=status, reason="an answer")

    with pytest.raises(ApiException):
        handler()
