"""The notifier against a real HTTP server started in the test: delivery, retries with backoff,
timeouts, refusals, deduplication and the per-charter rate limit, each seen in the metrics."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import REGISTRY

from weavergen.config import NotificationSettings
from weavergen.domain import notify
from weavergen.notify.delivery import Delivery, Notifier, Outcome

_SINKS = itertools.count()


@dataclass
class Receiver:
    """A sink's HTTP server: answers each request with the next status of ``answers`` (then
    200), after ``delay`` seconds; keeps what it was sent."""

    answers: list[int] = field(default_factory=list)
    delay: float = 0.0
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.received.append((request.headers["Content-Type"], body))
        await asyncio.sleep(self.delay)
        status = self.answers.pop(0) if self.answers else 200
        headers = {"Retry-After": "0"} if status == 429 else {}
        return web.Response(status=status, text="no such channel", headers=headers)


@dataclass
class Run:
    notifier: Notifier
    receiver: Receiver
    sink: str
    outcomes: list[tuple[str, Outcome]]

    def counted(self, result: str) -> float:
        labels = {"sink": self.sink, "result": result}
        return REGISTRY.get_sample_value("weavergen_notifications_total", labels) or 0.0

    async def until(self, check: Callable[[], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not check():
                await asyncio.sleep(0.02)


@asynccontextmanager
async def running(
    tmp_path: Path, receiver: Receiver, sink_type: str = "webhook", **limits: Any
) -> AsyncIterator[Run]:
    """A real server, the sink's URL file pointing at it, and a started notifier."""
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    sink = f"sink-{next(_SINKS)}"  # counters are process-wide: each test its own sink
    (tmp_path / sink).write_text(f"http://127.0.0.1:{port}/hook\n")
    settings = NotificationSettings(
        directory=tmp_path,
        sinks=((sink, sink_type),),
        **{"timeout_seconds": 2.0, "max_attempts": 4, **limits},
    )
    outcomes: list[tuple[str, Outcome]] = []

    async def record(delivery: Delivery, outcome: Outcome) -> None:
        outcomes.append((delivery.notification.key, outcome))

    notifier = Notifier(settings, record, backoff_seconds=0.05, max_backoff_seconds=0.2)
    await notifier.start()
    try:
        yield Run(notifier, receiver, sink, outcomes)
    finally:
        await notifier.stop()
        await runner.cleanup()


def delivery(
    run: Run, event: str = "Succeeded", cycle: str = "c1", charter: str = "web"
) -> Delivery:
    message = notify.Notification(
        key=f"uid-{cycle}/{event}",
        event=event,
        namespace="shop",
        charter=charter,
        cycle=cycle,
        summary=f"cycle {cycle} of charter {charter}: {event}",
        occurred_at="2026-12-03T12:00:00Z",
        stakeholders=({"name": "sre-oncall", "role": "sre"},),
    )
    return Delivery(message, run.sink, "RegenerationCycle", cycle)


def test_a_message_is_delivered_once_and_recorded(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path, Receiver()) as run:
            run.notifier.offer(delivery(run))
            await run.until(lambda: run.outcomes)
            ((content_type, body),) = run.receiver.received
            assert content_type == "application/json"
            assert body["key"] == "uid-c1/Succeeded" and body["charter"] == "web"
            assert body["stakeholders"] == [{"name": "sre-oncall", "role": "sre"}]
            assert run.outcomes == [("uid-c1/Succeeded", Outcome("Delivered", 1, "HTTP 200"))]
            assert run.counted("delivered") == 1 and run.counted("retried") == 0

    asyncio.run(scenario())


def test_a_server_error_is_retried_with_backoff_until_it_is_taken(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path, Receiver(answers=[500, 503])) as run:
            run.notifier.offer(delivery(run))
            await run.until(lambda: run.outcomes)
            assert len(run.receiver.received) == 3
            assert run.outcomes[0][1] == Outcome("Delivered", 3, "HTTP 200")
            assert run.counted("retried") == 2 and run.counted("delivered") == 1
            assert run.counted("failed") == 0

    asyncio.run(scenario())


def test_too_many_requests_is_retried(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path, Receiver(answers=[429])) as run:
            run.notifier.offer(delivery(run))
            await run.until(lambda: run.outcomes)
            assert run.outcomes[0][1].result == "Delivered" and run.counted("retried") == 1

    asyncio.run(scenario())


def test_a_sink_that_does_not_answer_in_time_fails_after_the_last_attempt(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        receiver = Receiver(delay=1.0)
        async with running(tmp_path, receiver, timeout_seconds=0.2, max_attempts=2) as run:
            run.notifier.offer(delivery(run))
            await run.until(lambda: run.outcomes)
            ((_, outcome),) = run.outcomes
            assert outcome.result == "Failed" and outcome.attempts == 2
            assert outcome.message == "no answer within 0.2s"
            assert run.counted("retried") == 1 and run.counted("failed") == 1
            assert run.counted("delivered") == 0

    asyncio.run(scenario())


def test_a_client_error_is_a_refusal_and_not_retried(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path, Receiver(answers=[404])) as run:
            run.notifier.offer(delivery(run))
            await run.until(lambda: run.outcomes)
            await asyncio.sleep(0.3)  # time for retries, had there been any
            assert len(run.receiver.received) == 1
            ((_, outcome),) = run.outcomes
            assert (outcome.result, outcome.attempts) == ("Failed", 1)
            assert outcome.message == "HTTP 404: no such channel"
            assert run.counted("failed") == 1 and run.counted("retried") == 0

    asyncio.run(scenario())


def test_a_message_offered_again_is_sent_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path, Receiver(delay=0.2)) as run:
            offered = delivery(run)
            run.notifier.offer(offered)
            run.notifier.offer(offered)  # in flight: not queued again, not counted
            await run.until(lambda: run.outcomes)
            assert run.notifier.handles(offered.key)
            run.notifier.offer(offered)  # delivered, status not yet marked: a duplicate
            await run.until(lambda: run.counted("duplicate") == 1)
            await asyncio.sleep(0.3)
            assert len(run.receiver.received) == 1 and len(run.outcomes) == 1

    asyncio.run(scenario())


def test_offers_from_handler_threads_reach_the_worker(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path, Receiver()) as run:
            threads = [
                threading.Thread(target=run.notifier.offer, args=(delivery(run, cycle=f"c{i}"),))
                for i in range(4)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            await run.until(lambda: len(run.outcomes) == 4)
            assert sorted(body["cycle"] for _, body in run.receiver.received) == [
                "c0",
                "c1",
                "c2",
                "c3",
            ]

    asyncio.run(scenario())


def test_messages_over_the_rate_limit_are_counted_and_told_in_one_summary(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with running(tmp_path, Receiver(), burst=1, per_minute=60.0) as run:
            for cycle in ("c1", "c2", "c3"):
                run.notifier.offer(delivery(run, cycle=cycle))
            other = delivery(run, cycle="d1", charter="db")  # another charter: its own bucket
            run.notifier.offer(other)
            await run.until(lambda: run.counted("dropped_rate_limited") == 2)
            await run.until(lambda: len(run.outcomes) == 4)
            results = {key: outcome.result for key, outcome in run.outcomes}
            assert results == {
                "uid-c1/Succeeded": "Delivered",
                "uid-d1/Succeeded": "Delivered",
                "uid-c2/Succeeded": "Summarised",
                "uid-c3/Succeeded": "Summarised",
            }
            summaries = [b for _, b in run.receiver.received if b["event"] == notify.HELD_BACK]
            (summary,) = summaries
            assert summary["charter"] == "web" and summary["details"]["count"] == 2
            assert summary["details"]["keys"] == ["uid-c2/Succeeded", "uid-c3/Succeeded"]
            assert len(run.receiver.received) == 3  # c1, d1 and the summary

    asyncio.run(scenario())


def test_each_sink_type_gets_its_own_format(tmp_path: Path) -> None:
    async def scenario(kind: str) -> tuple[str, dict[str, Any]]:
        async with running(tmp_path, Receiver(), sink_type=kind) as run:
            run.notifier.offer(delivery(run))
            await run.until(lambda: run.outcomes)
            return run.receiver.received[0]

    content_type, event = asyncio.run(scenario("cloudevents"))
    assert content_type == "application/cloudevents+json"
    assert event["specversion"] == "1.0" and event["id"] == "uid-c1/Succeeded"
    content_type, message = asyncio.run(scenario("slack"))
    assert content_type == "application/json"
    assert message["text"] == "cycle c1 of charter web: Succeeded" and message["blocks"]


def test_a_sink_without_its_url_file_fails_at_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path, Receiver()) as run:
            (tmp_path / run.sink).unlink()
            run.notifier.offer(delivery(run))
            await run.until(lambda: run.outcomes)
            ((_, outcome),) = run.outcomes
            assert outcome.result == "Failed" and outcome.attempts == 1
            assert outcome.message.startswith(f"cannot read the sink's URL file {tmp_path}")
            assert run.receiver.received == [] and run.counted("failed") == 1

    asyncio.run(scenario())


def test_an_entry_for_a_sink_no_longer_configured_fails_with_its_name(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path, Receiver()) as run:
            gone = Delivery(delivery(run).notification, "gone", "RegenerationCycle", "c1")
            run.notifier.offer(gone)
            await run.until(lambda: run.outcomes)
            assert run.outcomes[0][1] == Outcome(
                "Failed", 0, "no sink 'gone' is configured in the operator"
            )

    asyncio.run(scenario())


def test_an_outcome_that_cannot_be_recorded_is_sent_again_later(tmp_path: Path) -> None:
    """At least once: a mark that failed leaves the entry Pending, and its key is forgotten."""

    async def scenario() -> None:
        async with running(tmp_path, Receiver()) as run:
            calls: list[str] = []

            async def unreachable(delivery: Delivery, outcome: Outcome) -> None:
                calls.append(outcome.result)
                raise OSError("API server unreachable")

            run.notifier.record = unreachable
            offered = delivery(run)
            run.notifier.offer(offered)
            await run.until(lambda: calls == ["Delivered"])
            assert not run.notifier.handles(offered.key)
            run.notifier.offer(offered)
            await run.until(lambda: len(calls) == 2)
            assert len(run.receiver.received) == 2 and run.counted("duplicate") == 0

    asyncio.run(scenario())
