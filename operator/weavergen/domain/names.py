"""Names the operator derives for what it creates: deterministic and within Kubernetes' limits.

A cycle's name is also a label value and the prefix of its Jobs' names, which the Job controller
copies into the ``job-name`` label of their pods: all of them must fit the 63 characters of a
label value. A name that would not fit keeps a readable prefix and ends with a hash of the whole
name, as Argo Rollouts names its analysis Jobs, so long names stay distinct and stable.
"""

from __future__ import annotations

import hashlib

MAX_LABEL_VALUE = 63
HASH_CHARS = 8


def bounded(base: str, suffix: str = "", limit: int = MAX_LABEL_VALUE) -> str:
    """``base-suffix`` when it fits in ``limit``, else ``<base prefix>-<hash>-suffix``.

    The hash covers the whole unshortened name; the prefix never ends in ``-`` or ``.`` so the
    result is still a DNS label when the inputs are.
    """
    whole = f"{base}-{suffix}" if suffix else base
    if len(whole) <= limit:
        return whole
    digest = hashlib.sha256(whole.encode()).hexdigest()[:HASH_CHARS]
    tail = f"-{digest}-{suffix}" if suffix else f"-{digest}"
    if len(tail) >= limit:
        raise ValueError(f"suffix {suffix!r} leaves no room for a name within {limit} characters")
    prefix = base[: limit - len(tail)].rstrip("-.")
    return f"{prefix}{tail}" if prefix else tail.lstrip("-")


def label_value(name: str) -> str:
    """A name as a label value: itself when it fits, else shortened with its hash."""
    return bounded(name)


def cycle_name(charter: str, started: str) -> str:
    """A cycle of ``charter`` started at ``started`` (``YYYYmmdd-HHMMSS``)."""
    return bounded(charter, started)


def retry_name(cycle: str) -> str:
    """The one cycle that retries ``cycle``: a second retry request finds it, never a twin."""
    return bounded(cycle, "retry")


def child_name(owner: str, role: str) -> str:
    """An object that belongs to ``owner``: a phase Job or result, snapshot, journal, state."""
    return bounded(owner, role)
