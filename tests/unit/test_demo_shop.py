"""The demo shop stops as a pod being replaced should: it fails its readiness check at once and
serves on while requests still come (kube-proxy may send them for seconds)."""

from __future__ import annotations

import asyncio
import random
import time

from aiohttp.test_utils import TestClient, TestServer
from opentelemetry.sdk.trace import TracerProvider

from weavergen.demo.app import ConfigWatcher, Traffic, build_app


def _shop(traffic: Traffic) -> TestServer:
    watcher = ConfigWatcher("shop", "demo-shop-config", "1.0.0", "demo-payments")
    tracer = TracerProvider().get_tracer("test")
    return TestServer(build_app(watcher, tracer, random.Random(1), traffic))


def test_a_stopping_shop_fails_readiness_and_serves_until_requests_stop_coming() -> None:
    async def scenario() -> tuple[int, int, float, list[int]]:
        traffic = Traffic()
        async with TestClient(_shop(traffic)) as client:
            ready = (await client.get("/healthz")).status
            started = time.monotonic()
            draining = asyncio.create_task(traffic.drained(quiet=0.3, longest=10))
            answered = []
            for _ in range(8):  # 1.2 s of requests, each within the quiet period of the last
                answered.append((await client.get("/cart")).status)
                await asyncio.sleep(0.15)
            assert not draining.done()
            stopping = (await client.get("/healthz")).status
            await draining
            return ready, stopping, time.monotonic() - started, answered

    ready, stopping, drained_after, answered = asyncio.run(scenario())
    assert (ready, stopping) == (200, 503)
    assert answered == [200] * 8
    assert drained_after >= 1.2 + 0.3 - 0.15


def test_a_stopping_shop_that_keeps_being_sent_requests_stops_after_the_longest_drain() -> None:
    async def scenario() -> float:
        traffic = Traffic()
        started = time.monotonic()
        draining = asyncio.create_task(traffic.drained(quiet=0.3, longest=0.6))
        while not draining.done():
            traffic.seen()
            await asyncio.sleep(0.05)
        return time.monotonic() - started

    assert 0.6 <= asyncio.run(scenario()) < 5
