"""The notifier: a background worker per sink in the operator's event loop, off every handler's
path. Handlers offer deliveries (from their threads) and go on; the worker sends them.

- At least once: a delivery is offered while its status entry is Pending, and marked only after
  the sink answered; a restart between the answer and the mark sends it again.
- Deduplicated: each delivery has a key (the message's key and the sink). Keys in flight are
  not queued twice; delivered keys are remembered (a bounded LRU) so the reconcile that runs
  before the status mark lands does not send again (counted ``duplicate``).
- Retried with exponential backoff on timeouts, connection errors, 408, 429 and 5xx, up to
  ``max_attempts``; any other answer but 2xx is a refusal and fails at once.
- Rate-limited per charter and sink (a token bucket): a message over the limit is held back
  (``dropped_rate_limited``) and told in one summary once a token is free, never lost unsaid.
- One worker per sink, in order: a sink that is down delays its own messages only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp

from weavergen.config import NotificationSettings
from weavergen.domain.notify import Notification, entry_name, held_back, render
from weavergen.domain.times import stamp
from weavergen.telemetry.metrics import record_notification

LOG = logging.getLogger(__name__)
RETRIED_STATUSES = frozenset({408, 425, 429})
TICK_SECONDS = 1.0  # how often a sink's worker looks at the messages it holds back


@dataclass(frozen=True)
class Delivery:
    """One message for one sink, and whose status entry records its outcome."""

    notification: Notification
    sink: str
    kind: str  # RegenerationCycle or RegenerationCharter
    name: str  # that object, in the notification's namespace

    @property
    def key(self) -> str:
        return delivery_key(self.notification.key, self.sink)

    @property
    def entry(self) -> str:
        return entry_name(self.sink, self.notification.event)


def delivery_key(notification_key: str, sink: str) -> str:
    return f"{notification_key}@{sink}"


@dataclass(frozen=True)
class Outcome:
    """How a delivery ended: Delivered, Summarised or Failed, after how many attempts."""

    result: str
    attempts: int
    message: str


Recorder = Callable[[Delivery, Outcome], Awaitable[None]]


class TokenBucket:
    """``burst`` messages at once, refilled at ``per_second``."""

    def __init__(self, per_second: float, burst: int, now: float) -> None:
        self.per_second, self.burst = per_second, burst
        self.tokens, self.at = float(burst), now

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.per_second)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Notifier:
    """Sends offered deliveries in the background; ``record`` writes each outcome to status."""

    def __init__(
        self,
        settings: NotificationSettings,
        record: Recorder,
        *,
        backoff_seconds: float = 1.0,
        max_backoff_seconds: float = 300.0,
        remembered: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.record = record
        self.backoff_seconds, self.max_backoff_seconds = backoff_seconds, max_backoff_seconds
        self.remembered = remembered
        self.clock = clock
        self._in_flight: set[str] = set()
        self._done: OrderedDict[str, None] = OrderedDict()
        self._queues: dict[str, asyncio.Queue[Delivery]] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._buckets: dict[tuple[str, str, str], TokenBucket] = {}
        self._held: defaultdict[tuple[str, str, str], list[Delivery]] = defaultdict(list)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_seconds)
        self._session = aiohttp.ClientSession(timeout=timeout)

    async def stop(self) -> None:
        """Stop the workers; what they had not delivered is still Pending in status."""
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        if self._session is not None:
            await self._session.close()

    def handles(self, key: str) -> bool:
        """Whether this process has taken the delivery up (queued, sending, or sent)."""
        return key in self._in_flight or key in self._done

    def offer(self, delivery: Delivery) -> None:
        """Queue a delivery; safe from any thread, never waits."""
        assert self._loop is not None, "Notifier.start() first"
        self._loop.call_soon_threadsafe(self._accept, delivery)

    def _accept(self, delivery: Delivery) -> None:
        key = delivery.key
        if key in self._done:
            record_notification(delivery.sink, "duplicate")
            return
        if key in self._in_flight:
            return
        self._in_flight.add(key)
        queue = self._queues.get(delivery.sink)
        if queue is None:
            queue = self._queues[delivery.sink] = asyncio.Queue()
            self._workers.append(asyncio.create_task(self._work(delivery.sink, queue)))
        queue.put_nowait(delivery)

    async def _work(self, sink: str, queue: asyncio.Queue[Delivery]) -> None:
        while True:
            try:
                delivery = await asyncio.wait_for(queue.get(), TICK_SECONDS)
            except TimeoutError:
                await self._tell_held(sink)
                continue
            try:
                await self._handle(delivery)
            except Exception:  # a worker that dies would leave its sink silent
                LOG.exception("failed to deliver key=%s sink=%s", delivery.key, sink)
                self._in_flight.discard(delivery.key)
            await self._tell_held(sink)

    def _bucket(self, delivery: Delivery) -> tuple[tuple[str, str, str], TokenBucket]:
        n = delivery.notification
        key = (n.namespace, n.charter, delivery.sink)
        bucket = self._buckets.get(key)
        if bucket is None:
            per_second = self.settings.per_minute / 60
            bucket = self._buckets[key] = TokenBucket(per_second, self.settings.burst, self.clock())
        return key, bucket

    async def _handle(self, delivery: Delivery) -> None:
        key, bucket = self._bucket(delivery)
        if self._held.get(key) or not bucket.take(self.clock()):
            self._held[key].append(delivery)
            record_notification(delivery.sink, "dropped_rate_limited")
            return
        outcome = await self._send(delivery.sink, delivery.notification)
        await self._finish([delivery], outcome)

    async def _tell_held(self, sink: str) -> None:
        """One summary of a charter's held-back messages, once its bucket has a token."""
        for key in [k for k, held in self._held.items() if k[2] == sink and held]:
            if not self._buckets[key].take(self.clock()):
                continue
            held = self._held.pop(key)
            summary = held_back([d.notification for d in held], stamp(_now()))
            outcome = await self._send(sink, summary)
            told = "Summarised" if outcome.result == "Delivered" else "Failed"
            await self._finish(held, Outcome(told, outcome.attempts, outcome.message))

    async def _finish(self, deliveries: list[Delivery], outcome: Outcome) -> None:
        for delivery in deliveries:
            self._in_flight.discard(delivery.key)
            self._done[delivery.key] = None
            while len(self._done) > self.remembered:
                self._done.popitem(last=False)
            try:
                await self.record(delivery, outcome)
            except Exception:
                # Not marked: the entry stays Pending and is sent again (at least once).
                LOG.exception("failed to record key=%s result=%s", delivery.key, outcome.result)
                self._done.pop(delivery.key, None)

    async def _send(self, sink: str, notification: Notification) -> Outcome:
        """Attempts until the sink takes it, refuses it, or ``max_attempts`` are spent."""
        kind = self.settings.sink_type(sink)
        if kind is None:
            record_notification(sink, "failed")
            return Outcome("Failed", 0, f"no sink {sink!r} is configured in the operator")
        content_type, body = render(notification, kind)
        attempt = 0
        while True:
            attempt += 1
            delivered, retry_after, message = await self._post(sink, content_type, body)
            if delivered:
                record_notification(sink, "delivered")
                LOG.info("delivered key=%s sink=%s attempts=%d", notification.key, sink, attempt)
                return Outcome("Delivered", attempt, message)
            if retry_after is None or attempt >= self.settings.max_attempts:
                record_notification(sink, "failed")
                LOG.warning("failed to deliver key=%s sink=%s: %s", notification.key, sink, message)
                return Outcome("Failed", attempt, message)
            record_notification(sink, "retried")
            backoff = self.backoff_seconds * 2 ** (attempt - 1)
            await asyncio.sleep(min(max(backoff, retry_after), self.max_backoff_seconds))

    async def _post(
        self, sink: str, content_type: str, body: dict[str, object]
    ) -> tuple[bool, float | None, str]:
        """(delivered, seconds to wait before retrying or None for a refusal, what happened)."""
        path = self.settings.directory / sink
        try:
            url = path.read_text().strip()
        except OSError as err:
            return False, None, f"cannot read the sink's URL file {path}: {err.strerror}"
        assert self._session is not None, "Notifier.start() first"
        try:
            async with self._session.post(
                url, data=json.dumps(body).encode(), headers={"Content-Type": content_type}
            ) as response:
                answer = f"HTTP {response.status}"
                if 200 <= response.status < 300:
                    return True, None, answer
                if response.status in RETRIED_STATUSES or response.status >= 500:
                    return False, _retry_after(response.headers.get("Retry-After")), answer
                return False, None, f"{answer}: {(await response.text())[:200]}"
        except TimeoutError:
            return False, 0.0, f"no answer within {self.settings.timeout_seconds}s"
        except aiohttp.ClientError as err:
            return False, 0.0, f"{type(err).__name__}: {err}"


def _retry_after(value: str | None) -> float:
    """A Retry-After in seconds (the HTTP-date form counts as none)."""
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
