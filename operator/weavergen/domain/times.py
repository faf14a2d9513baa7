"""Times as the operator's status fields carry them: UTC, to the second, RFC 3339 text."""

from __future__ import annotations

from datetime import datetime

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def stamp(now: datetime) -> str:
    return now.strftime(TIME_FORMAT)


def parse_time(text: str | None) -> datetime | None:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=None) if text else None
