"""The domain's errors as kopf's, in one place: what is retried, after how long, and why."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import kopf
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as TransportError

from weavergen.domain.errors import RegenerationError

# A handler that failed on the API server (away a moment: restarted, overloaded, a connection
# reset) runs again this soon, not after kopf's default back-off for an error (60 s): a
# charter would go unmeasured, a cycle's timer unrun, for a minute after a blip.
API_RETRY_SECONDS = 2.0
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


def kopf_error(err: RegenerationError) -> kopf.TemporaryError | kopf.PermanentError:
    """Retried after the error's own delay, or not until the object changes."""
    message = f"{err.reason}: {err}"
    if err.retry_seconds is None:
        return kopf.PermanentError(message)
    return kopf.TemporaryError(message, delay=err.retry_seconds)


@contextmanager
def reported() -> Iterator[None]:
    """A handler (as a decorator) or a block with the domain's errors raised as kopf's, and
    the API server's failures to answer as retries in seconds."""
    try:
        yield
    except RegenerationError as err:
        raise kopf_error(err) from err
    except (ApiException, TransportError) as err:
        if isinstance(err, ApiException) and err.status not in TRANSIENT_STATUSES and err.status:
            raise  # an answer (forbidden, not found, invalid): retrying soon would not change it
        raise kopf.TemporaryError(
            f"the API server did not answer: {err}", delay=API_RETRY_SECONDS
        ) from err
