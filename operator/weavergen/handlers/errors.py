"""The domain's errors as kopf's, in one place: what is retried, after how long, and why."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import kopf

from weavergen.domain.errors import RegenerationError


def kopf_error(err: RegenerationError) -> kopf.TemporaryError | kopf.PermanentError:
    """Retried after the error's own delay, or not until the object changes."""
    message = f"{err.reason}: {err}"
    if err.retry_seconds is None:
        return kopf.PermanentError(message)
    return kopf.TemporaryError(message, delay=err.retry_seconds)


@contextmanager
def reported() -> Iterator[None]:
    """A handler (as a decorator) or a block with the domain's errors raised as kopf's."""
    try:
        yield
    except RegenerationError as err:
        raise kopf_error(err) from err
