"""A bounded load generator for the demo shop, on loopback.

Sends GET requests to the shop's routes at a fixed rate (open loop: a slow answer does not slow
the sender down, as real users do not wait for each other), with a cap on requests in flight,
and prints one JSON line per interval and a summary at the end: sent, ok, failed (5xx,
connection errors and timeouts), unanswered (only the latter: the service was not there), and
latency percentiles.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import numpy as np

MAX_RPS = 1000
MAX_IN_FLIGHT = 256
ROUTES = ("/checkout", "/cart")


@dataclass
class Tally:
    sent: int = 0
    ok: int = 0
    failed: int = 0  # answered 5xx, or not answered at all
    unanswered: int = 0  # connection refused or reset, or timed out: the service was not there
    # Why: "connect" (refused or unreachable), "disconnect" (reset or closed before an answer),
    # "timeout"; the three point at different causes (nothing listening, a server stopping,
    # packets going nowhere).
    unanswered_by: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    def line(self, elapsed: float) -> dict[str, Any]:
        p50, p99 = (
            np.percentile(np.array(self.latencies) * 1000, [50, 99])
            if self.latencies
            else (0.0, 0.0)
        )
        return {
            "t": round(elapsed, 1),
            "sent": self.sent,
            "ok": self.ok,
            "failed": self.failed,
            "unanswered": self.unanswered,
            "unanswered_by": dict(self.unanswered_by),
            "ok_share": round(self.ok / self.sent, 4) if self.sent else None,
            "p50_ms": round(float(p50), 2),
            "p99_ms": round(float(p99), 2),
        }


async def generate(
    url: str, *, rps: float, duration: float, report_every: float, timeout: float
) -> Tally:
    if not 0 < rps <= MAX_RPS:
        raise ValueError(f"--rps must be in (0, {MAX_RPS}], got {rps}")
    total, interval = Tally(), Tally()
    in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
    started = time.monotonic()
    stop = asyncio.Event()  # SIGINT/SIGTERM end the run with a summary, not a traceback
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)

    async def one(session: aiohttp.ClientSession, n: int) -> None:
        async with in_flight:
            begun = time.perf_counter()
            unanswered = None
            try:
                async with session.get(url.rstrip("/") + ROUTES[n % len(ROUTES)]) as response:
                    await response.read()
                    good = response.status < 500
            except (aiohttp.ClientError, TimeoutError) as err:
                good, unanswered = False, _unanswered_because(err)
            for tally in (total, interval):
                tally.ok += good
                tally.failed += not good
                if unanswered:
                    tally.unanswered += 1
                    tally.unanswered_by[unanswered] += 1
                tally.latencies.append(time.perf_counter() - begun)

    client_timeout = aiohttp.ClientTimeout(total=timeout)
    # A new connection per request, as from many independent users (no keep-alive to a pod
    # that is being replaced).
    connector = aiohttp.TCPConnector(force_close=True, limit=MAX_IN_FLIGHT)
    async with aiohttp.ClientSession(timeout=client_timeout, connector=connector) as session:
        tasks: set[asyncio.Task[None]] = set()
        n, next_report = 0, started + report_every
        while not stop.is_set() and (duration <= 0 or time.monotonic() - started < duration):
            due = started + n / rps
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            for tally in (total, interval):
                tally.sent += 1
            task = asyncio.create_task(one(session, n))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
            if time.monotonic() >= next_report:
                print(json.dumps(interval.line(time.monotonic() - started)), flush=True)
                interval = Tally()
                next_report += report_every
        await asyncio.gather(*tasks)
    return total


def _unanswered_because(err: BaseException) -> str:
    if isinstance(err, aiohttp.ClientConnectorError):
        return "connect"
    if isinstance(err, TimeoutError):
        return "timeout"
    return "disconnect"


def run(*, url: str, rps: float, duration: float, report_every: float, timeout: float) -> int:
    started = time.monotonic()
    total = asyncio.run(
        generate(url, rps=rps, duration=duration, report_every=report_every, timeout=timeout)
    )
    summary = {"summary": True, **total.line(time.monotonic() - started)}
    print(json.dumps(summary), flush=True)
    print(
        f"{total.sent} requests, {total.ok} ok ({summary['ok_share']}), {total.failed} failed",
        file=sys.stderr,
    )
    return 0
