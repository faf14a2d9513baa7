"""The Prometheus HTTP API, asked as few times as thousands of charters allow.

Charters measured from Prometheus share their queries: a default query answers for every
service at once (``sum by (service_name)``), so a query is keyed by (Prometheus URL, query text,
evaluation time) and its answer, indexed by service once, serves every charter that asks within
the same time slot (``SLOT_SECONDS``). The evaluation time is the slot's start
(``red.evaluation_time``), so charters measured a few seconds apart ask the same question; one
thread asks it, the others wait for that answer (or its error) instead of asking again. 2,000
charters every 10 s then cost three queries per slot, not 600 a second.

Failures are measurements that are unavailable, never a pass: no answer (refused connection,
timeout, a 5xx) is ``PrometheusUnavailable``; an error answer (a query that does not parse,
refused credentials, a result that is not an instant vector of counts) is
``PrometheusQueryFailed``. Each names the URL and the error, and is shared like an answer until
the slot ends.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from weavergen.api.charter import PrometheusSpec
from weavergen.config import PrometheusAuth
from weavergen.domain.errors import PrometheusQueryFailed, PrometheusUnavailable
from weavergen.domain.measure.red import (
    RedQueries,
    RedWindow,
    evaluation_time,
    index_buckets,
    index_counts,
    red_window,
    render,
)
from weavergen.telemetry import metrics

SLOT_SECONDS = 5.0
TIMEOUT_SECONDS = 10.0
Kind = Literal["counts", "buckets"]
T = TypeVar("T")


@dataclass
class _Answer(Generic[T]):
    """One key's value (or error), once the thread computing it has it."""

    created: float
    done: threading.Event = field(default_factory=threading.Event)
    value: T | None = None
    error: Exception | None = None


class SharedAnswers(Generic[T]):
    """Each key's value computed once while it is fresh (``keep_seconds``), whoever asks: the
    first asker computes it, the others wait for its value or its error."""

    def __init__(
        self,
        keep_seconds: float,
        *,
        wait_seconds: float = TIMEOUT_SECONDS * 2,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keep_seconds = keep_seconds
        self.wait_seconds = wait_seconds
        self.clock = clock
        self._answers: dict[Hashable, _Answer[T]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``'s value for ``key``; an error it raised is shared
        like a value (thousands of charters must not each wait for a Prometheus that is down)."""
        with self._lock:
            answer = self._answers.get(key)
            mine = answer is None
            if answer is None:
                answer = self._answers[key] = _Answer(self.clock())
                self._forget_old()
        if mine:
            try:
                answer.value = compute()
            except Exception as err:  # shared with the waiters, whatever it is
                answer.error = err
            finally:
                answer.done.set()
        elif not answer.done.wait(self.wait_seconds):
            raise PrometheusUnavailable(f"still waiting for the answer to {key}")
        if answer.error is not None:
            raise answer.error
        return answer.value  # type: ignore[return-value]  # set: done without an error

    def _forget_old(self) -> None:
        """Drop answers past ``keep_seconds`` (callers hold the lock)."""
        horizon = self.clock() - self.keep_seconds
        for key in [k for k, a in self._answers.items() if a.created < horizon and a.done.is_set()]:
            del self._answers[key]

    def __len__(self) -> int:
        return len(self._answers)


class Prometheus:
    """Queries to the Prometheus servers charters name, each answer shared within its slot."""

    def __init__(
        self,
        auth: PrometheusAuth | None = None,
        *,
        slot_seconds: float = SLOT_SECONDS,
        timeout: float = TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.auth = auth
        self.slot_seconds = slot_seconds
        self.timeout = timeout
        self.clock = clock
        self.asked = 0  # queries sent, for tests and benchmarks
        # Two slots: the current one, and the one a slow charter may still be reading.
        self.answers: SharedAnswers[Mapping[str | None, Any]] = SharedAnswers(
            2 * slot_seconds, wait_seconds=2 * timeout, clock=clock
        )

    def now(self) -> float:
        """The evaluation time of a window ending now: the current slot's start."""
        return evaluation_time(self.clock(), self.slot_seconds)

    def red(self, spec: PrometheusSpec, service: str, seconds: float, end: float) -> RedWindow:
        """A service's RED counts over the ``seconds`` before ``end``."""
        queries = RedQueries.of(spec)
        asked: tuple[tuple[str, str, Kind], ...] = (
            (queries.requests, "requests", "counts"),
            (queries.errors, "errors", "counts"),
            (queries.latency, "latency", "buckets"),
        )
        answers = [
            self.indexed(spec, render(template, seconds, service), end, what=what, kind=kind)
            for template, what, kind in asked
        ]
        return red_window(service, answers, queries, seconds)

    def indexed(
        self, spec: PrometheusSpec, query: str, at: float, *, what: str, kind: Kind
    ) -> Mapping[str | None, Any]:
        """A query's answer indexed by service: asked once per slot, whoever asks."""

        def ask() -> Mapping[str | None, Any]:
            data = self.query(spec.url, query, at, what)
            index = index_counts if kind == "counts" else index_buckets
            try:
                return index(data, spec.service_label, f"the {what} query")
            except ValueError as err:
                raise PrometheusQueryFailed(f"Prometheus at {spec.url}: {err}") from None

        return self.answers.get((spec.url, query, f"{at:.3f}", spec.service_label, kind), ask)

    def query(self, url: str, query: str, at: float, what: str) -> Mapping[str, Any]:
        """The ``data`` of an instant query's successful answer (no sharing), counted."""
        self.asked += 1
        started, outcome = time.monotonic(), "failed"
        try:
            data = self._ask(url, query, at, what)
            outcome = "ok"
            return data
        except PrometheusUnavailable:
            outcome = "unavailable"
            raise
        finally:
            metrics.record_prometheus_query(outcome, time.monotonic() - started)

    def _ask(self, url: str, query: str, at: float, what: str) -> Mapping[str, Any]:
        body = urllib.parse.urlencode(
            {"query": query, "time": f"{at:.3f}", "timeout": f"{max(1, int(self.timeout * 0.8))}s"}
        ).encode()
        request = urllib.request.Request(
            f"{url.rstrip('/')}/api/v1/query",
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded", **self.headers(url)},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as err:
            raise _refused(url, what, query, err) from None
        except (OSError, ValueError) as err:
            raise PrometheusUnavailable(
                f"Prometheus at {url} did not answer the {what} query: {err}"
            ) from None
        if answer.get("status") != "success":
            raise PrometheusQueryFailed(
                f"Prometheus at {url} refused the {what} query: {_error_of(answer)} "
                f"(query: {query})"
            )
        data: Mapping[str, Any] = answer.get("data") or {}
        return data

    def headers(self, url: str) -> dict[str, str]:
        """The credentials for ``url``: only for the Prometheus they are for."""
        auth = self.auth
        if auth is None or not auth.covers(url):
            return {}
        try:
            if auth.bearer_token_file is not None:
                return {"Authorization": f"Bearer {auth.bearer_token_file.read_text().strip()}"}
            assert auth.username_file is not None and auth.password_file is not None
            pair = f"{auth.username_file.read_text().strip()}:{auth.password_file.read_text()}"
        except OSError as err:
            raise PrometheusQueryFailed(
                f"Prometheus at {url}: cannot read the operator's credentials: {err}"
            ) from None
        return {"Authorization": "Basic " + base64.b64encode(pair.rstrip("\n").encode()).decode()}


def _error_of(answer: Mapping[str, Any]) -> str:
    return f"{answer.get('errorType', 'error')}: {answer.get('error', answer)}"


def _refused(
    url: str, what: str, query: str, err: urllib.error.HTTPError
) -> PrometheusQueryFailed | PrometheusUnavailable:
    """An HTTP error answer: Prometheus's own error when it sent one (a 4xx is the query's or
    the credentials' fault, a 5xx the server's)."""
    try:
        detail = _error_of(json.loads(err.read()))
    except (OSError, ValueError):
        detail = f"HTTP {err.code} {err.reason}"
    if err.code in (401, 403):
        detail += " (check the operator's prometheus.auth)"
    if err.code >= 500:
        return PrometheusUnavailable(f"Prometheus at {url} failed the {what} query: {detail}")
    return PrometheusQueryFailed(
        f"Prometheus at {url} refused the {what} query: {detail} (query: {query})"
    )
