"""The receiver's request ledger: the requests since a fix, by their start, over its endpoint."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import ClientSession

from weavergen.domain.measure.otlp import decode_json
from weavergen.domain.measure.sequential import Evidence
from weavergen.telemetry.receiver import build_app
from weavergen.telemetry.receiver import serve as serve_receiver
from weavergen.telemetry.windows import LEDGER_SECONDS, WindowStore

NOW = 1_800_000_000.0  # the receiver's clock when the spans arrive
SERVER, INTERNAL, ERROR = 2, 1, 2


def span(start: float, millis: float, *, kind: int = SERVER, error: bool = False) -> dict[str, Any]:
    begin = int(start * 1e9)
    return {
        "traceId": f"{int(start * 1000) % 2**64:032x}",
        "spanId": "00000000000000aa",
        "name": "GET /" if kind == SERVER else "query",
        "kind": kind,
        "startTimeUnixNano": str(begin),
        "endTimeUnixNano": str(begin + int(millis * 1e6)),
        "status": {"code": ERROR if error else 0},
        # A server span is a request; any other with a parent is work inside one.
        **({} if kind == SERVER else {"parentSpanId": "00000000000000bb"}),
    }


def export(*spans: dict[str, Any], service: str = "shop") -> bytes:
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}
    document = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": list(spans)}]}]}
    return json.dumps(document).encode()


def store_with(*bodies: bytes, clock: float = NOW) -> WindowStore:
    store = WindowStore(clock=lambda: clock)
    for body in bodies:
        store.add(list(decode_json(body)))
    return store


def test_requests_started_before_the_fix_are_no_evidence_even_when_they_arrive_after() -> None:
    fix = NOW - 5
    # One batch, exported after the fix: 3 failed requests served before it, 4 after (one slow).
    body = export(
        *(span(fix - 2 + i * 0.1, 10, error=True) for i in range(3)),
        *(span(fix + 1 + i, 10) for i in range(3)),
        span(fix + 2.5, 900),
    )
    store = store_with(body)
    assert store.evidence("shop", fix, threshold_ms=100) == Evidence(4, 1)
    assert store.evidence("shop", fix - 3, threshold_ms=100) == Evidence(7, 4)
    assert store.evidence("shop", fix, threshold_ms=1000) == Evidence(4, 0)
    assert store.evidence("other", fix, threshold_ms=100) == Evidence()


def test_requests_too_recent_to_have_reported_if_slow_are_left_for_later() -> None:
    fix = NOW - 10
    # Fast requests report first: a slow one begun with them is still running. Counting them
    # up to the moment asked would let the fast ones outnumber the slow ones not yet seen.
    store = store_with(export(*(span(fix + i, 10) for i in range(10))))
    assert store.evidence("shop", fix, threshold_ms=100) == Evidence(10, 0)
    # Whole quarter seconds begun before ``until`` only.
    assert store.evidence("shop", fix, threshold_ms=100, until=fix + 4) == Evidence(4, 0)
    assert store.evidence("shop", fix, threshold_ms=100, until=fix + 4.2) == Evidence(4, 0)
    assert store.evidence("shop", fix, threshold_ms=100, until=fix + 4.25) == Evidence(5, 0)
    assert store.evidence("shop", fix, threshold_ms=100, until=fix) == Evidence()
    # From the first whole quarter second after ``since``.
    store = store_with(export(*(span(fix + s, 10) for s in (0.1, 0.3, 0.6))))
    assert store.evidence("shop", fix, threshold_ms=100) == Evidence(3, 0)
    assert store.evidence("shop", fix + 0.25, threshold_ms=100) == Evidence(2, 0)
    assert store.evidence("shop", fix + 0.26, threshold_ms=100) == Evidence(1, 0)


def test_only_requests_count_once_a_service_has_sent_one() -> None:
    store = store_with(
        export(span(NOW - 1, 10, kind=INTERNAL, error=True)),  # no request seen yet: counts
        export(span(NOW - 1, 10), span(NOW - 1, 10, kind=INTERNAL, error=True)),
    )
    # The first span counted before the service showed requests; the second internal one not.
    assert store.evidence("shop", NOW - 10, threshold_ms=100) == Evidence(2, 1)


def test_starts_the_ledger_cannot_place_count_at_their_arrival() -> None:
    store = store_with(
        export(span(NOW + 3600, 10, error=True), span(NOW - LEDGER_SECONDS - 5, 10, error=True))
    )
    # Clocks far ahead or behind: no request is placed after its arrival, or out of reach.
    assert store.evidence("shop", NOW - 1, threshold_ms=100) == Evidence(2, 2)
    assert store.evidence("shop", NOW + 1, threshold_ms=100) == Evidence()


def test_seconds_out_of_reach_are_forgotten() -> None:
    store = WindowStore(clock=lambda: NOW)
    store.add(list(decode_json(export(span(NOW - 1, 10, error=True)))))
    store.clock = lambda: NOW + LEDGER_SECONDS
    store.add(list(decode_json(export(span(NOW + LEDGER_SECONDS - 1, 10)))))
    assert store.evidence("shop", 0, threshold_ms=100) == Evidence(1, 0)


def test_the_endpoint_answers_evidence_and_refuses_bad_queries_by_name() -> None:
    async def main() -> None:
        store = WindowStore()
        runner, port = await serve_receiver(build_app(store), port=0)
        url = f"http://127.0.0.1:{port}"
        try:
            async with ClientSession() as session:
                body = export(span(NOW - 2, 10), span(NOW - 2, 10, error=True))
                store.clock = lambda: NOW
                headers = {"Content-Type": "application/json"}
                async with session.post(f"{url}/v1/traces", data=body, headers=headers) as resp:
                    assert resp.status == 200, await resp.text()
                query = f"{url}/v1/evidence/shop?since={NOW - 3}&latencyMs=50"
                async with session.get(query) as resp:
                    assert await resp.json() == {"requests": 2, "bad": 1}
                # Begun 2 s ago: in, once a fast one (50 ms) exported within 0.5 s has arrived;
                # not yet when export may take 2 s.
                for delay, requests in ((0.5, 2), (2, 0)):
                    async with session.get(f"{query}&exportDelay={delay}") as resp:
                        assert (await resp.json())["requests"] == requests, delay
                for query, message in (
                    (f"since={NOW}&latencyMs=5&exportDelay=-1", "exportDelay must be seconds"),
                    ("latencyMs=50", "since is required"),
                    (f"since={NOW}", "latencyMs is required"),
                    (f"since={NOW}&latencyMs=0", "latencyMs is required: milliseconds above 0"),
                    ("since=nan&latencyMs=5", "since must be seconds since the epoch"),
                ):
                    async with session.get(f"{url}/v1/evidence/shop?{query}") as resp:
                        assert resp.status == 400 and message in await resp.text(), query
        finally:
            await runner.cleanup()

    asyncio.run(main())


def test_asking_for_the_requests_since_a_fix_cuts_the_slot_being_filled_there() -> None:
    now = [1_800_000_001.0]  # 1 s into a 10 s slot
    store = WindowStore(slot_seconds=10, clock=lambda: now[0])
    broken = [span(now[0] - 0.5, 10, error=True) for _ in range(5)]
    store.add(list(decode_json(export(*broken))))
    fix = now[0] = 1_800_000_003.0
    # Without a cut the window since the fix is the slot being filled: the errors before it.
    assert store.window("shop", 60, since=fix).error_count == 5
    store.evidence("shop", fix, threshold_ms=100)  # what a verifier asks first
    now[0] = 1_800_000_005.0
    store.add(list(decode_json(export(*(span(now[0] - 1, 10) for _ in range(3))))))
    after = store.window("shop", 60, since=fix)
    assert (after.span_count, after.error_count, after.window_s) == (3, 0, 2.0)
    assert store.window("shop", 60).span_count == 8  # the whole slot is still whole
    # Once a slot has begun since the fix, windows since it are that part and the slots after.
    now[0] = 1_800_000_011.0
    store.add(list(decode_json(export(span(now[0] - 0.5, 10)))))
    after = store.window("shop", 60, since=fix)
    assert (after.span_count, after.error_count, after.window_s) == (4, 0, 8.0)
    # A window that no longer reaches the cut slot is a window of its own length again.
    now[0] = 1_800_000_031.0
    store.add(list(decode_json(export(span(now[0] - 0.5, 10)))))
    assert store.window("shop", 5, since=fix).span_count == 1
