"""The OTLP/HTTP receiver on a real socket: accepted payloads, refusals with reasons, windows."""

from __future__ import annotations

import asyncio
import gzip
import json
import math
import urllib.error
from collections.abc import Awaitable, Callable
from datetime import datetime
from types import SimpleNamespace
from typing import Any, cast

import kopf
import pytest
from aiohttp import ClientSession

from weavergen.api.charter import RegenerationCharterSpec
from weavergen.config import operator_config
from weavergen.domain.decide.reconcile import Due, decide
from weavergen.domain.errors import MeasurementUnavailable
from weavergen.domain.measure.summary import ServiceSummary
from weavergen.domain.simulation.simulator import (
    EntropySimulator,
    Faults,
    to_otlp_json,
    to_otlp_protobuf,
)
from weavergen.handlers.charters import _cut_at_onset, _target
from weavergen.k8s.cluster_target import ClusterTarget
from weavergen.k8s.rest import Rest
from weavergen.telemetry.receiver import ReceiverConfig, build_app
from weavergen.telemetry.receiver import serve as serve_receiver
from weavergen.telemetry.windows import WindowStore

Check = Callable[[ClientSession, str, WindowStore], Awaitable[None]]


def serve(
    check: Check, config: ReceiverConfig | None = None, store: WindowStore | None = None
) -> WindowStore:
    store = store or WindowStore(slot_seconds=5)

    async def main() -> None:
        runner, port = await serve_receiver(build_app(store, config or ReceiverConfig()), port=0)
        try:
            async with ClientSession() as session:
                await check(session, f"http://127.0.0.1:{port}", store)
        finally:
            await runner.cleanup()

    asyncio.run(main())
    return store


def payloads() -> tuple[bytes, bytes, int]:
    sim = EntropySimulator(9)
    chunks = list(sim.chunks(sim.system("shop"), Faults(), 1, window_s=5))
    spans = sum(len(c) for c in chunks)
    return to_otlp_protobuf(chunks), json.dumps(to_otlp_json(chunks)).encode(), spans


PB, JS, SPANS = payloads()


def test_protobuf_json_and_gzip_are_accepted_and_summarised() -> None:
    async def check(session: ClientSession, url: str, store: WindowStore) -> None:
        for body, headers in (
            (PB, {"Content-Type": "application/x-protobuf"}),
            (JS, {"Content-Type": "application/json"}),
            (
                gzip.compress(PB),
                {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
            ),
        ):
            async with session.post(f"{url}/v1/traces", data=body, headers=headers) as resp:
                assert resp.status == 200, await resp.text()
        async with session.get(f"{url}/v1/summaries/shop?seconds=60") as resp:
            summary = ServiceSummary.from_dict(await resp.json())
        assert summary.span_count == 3 * SPANS
        async with session.get(f"{url}/v1/summaries/shop?seconds=60&since=0") as resp:
            assert ServiceSummary.from_dict(await resp.json()).span_count == 3 * SPANS
        async with session.get(f"{url}/v1/summaries/shop?since=yesterday") as resp:
            assert resp.status == 400 and "since must be a number" in await resp.text()

    store = serve(check)
    assert store.counters.spans_accepted == 3 * SPANS
    assert store.counters.rejected_requests == 0


def test_bad_requests_are_refused_with_a_reason() -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))  # 64 MiB of zeros in ~64 KiB
    cases: list[tuple[bytes, dict[str, str], int, str]] = [
        (PB, {"Content-Type": "text/plain"}, 415, "unsupported content type"),
        (PB, {"Content-Type": "application/x-protobuf", "Content-Encoding": "br"}, 415, "gzip"),
        (PB[:1000], {"Content-Type": "application/x-protobuf"}, 400, "invalid OTLP/protobuf"),
        (b'{"resourceSpans": 3}', {"Content-Type": "application/json"}, 400, "expected a list"),
        (b"x" * (2 * 1024 * 1024), {"Content-Type": "application/json"}, 413, "over the limit"),
        (
            bomb,
            {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
            413,
            "decompressed body is over the limit",
        ),
        (
            b"\x1f\x8bnot gzip",
            {"Content-Type": "application/json", "Content-Encoding": "gzip"},
            400,
            "invalid gzip",
        ),
    ]

    async def check(session: ClientSession, url: str, store: WindowStore) -> None:
        for body, headers, status, reason in cases:
            async with session.post(f"{url}/v1/traces", data=body, headers=headers) as resp:
                answer: dict[str, Any] = await resp.json()
                assert (resp.status, reason in answer["message"]) == (status, True), answer

    store = serve(
        check, ReceiverConfig(max_body_bytes=1024 * 1024, max_decompressed_bytes=4 * 1024 * 1024)
    )
    assert store.counters.rejected_requests == len(cases)
    assert store.counters.spans_accepted == 0


def test_a_bearer_token_can_be_required() -> None:
    async def check(session: ClientSession, url: str, store: WindowStore) -> None:
        headers = {"Content-Type": "application/x-protobuf"}
        async with session.post(f"{url}/v1/traces", data=PB, headers=headers) as resp:
            assert resp.status == 401
        headers["Authorization"] = "Bearer s3cret"
        async with session.post(f"{url}/v1/traces", data=PB, headers=headers) as resp:
            assert resp.status == 200

    serve(check, ReceiverConfig(token="s3cret"))


def test_windows_keep_only_recent_slots() -> None:
    now = [1000.0]
    store = WindowStore(slot_seconds=10, max_slots=3, clock=lambda: now[0])
    sim = EntropySimulator(1)
    chunks = list(sim.chunks(sim.system("a"), Faults(), 1, window_s=1))
    spans = sum(len(c) for c in chunks)
    for _ in range(5):
        store.add(chunks)
        now[0] += 10
    now[0] -= 10
    assert store.window("a", 30).span_count == 3 * spans
    assert store.window("a", 10).span_count == 2 * spans  # the new slot and the one before
    assert store.window("a", 3600).span_count == 3 * spans  # older slots were dropped


def test_a_window_covers_at_least_its_length_wherever_the_clock_is_in_a_slot() -> None:
    """Just past a slot boundary the window reaches into the slot before: a rate over a
    fraction of a second would make a throughput drop out of nothing."""
    sim = EntropySimulator(1)
    chunks = list(sim.chunks(sim.system("a"), Faults(), 1, window_s=1))
    spans = sum(len(c) for c in chunks)
    now = [0.0]
    for into_slot in (0.0, 0.2, 5.0, 9.9):
        now[0] = 1000.0
        store = WindowStore(slot_seconds=10, clock=lambda: now[0])
        while now[0] <= 1030 + into_slot:  # one batch a second
            store.add(chunks)
            now[0] += 1
        now[0] = 1030.0 + into_slot
        window = store.window("a", 10)
        assert window.window_s is not None and 10 <= window.window_s < 20
        rate = window.span_count / window.window_s
        assert spans * 0.9 <= rate <= spans * 1.15, (into_slot, rate / spans)


def test_a_window_since_a_fix_leaves_out_the_slots_begun_before_it() -> None:
    """Verifying a fix must not judge the spans of the fault it fixed: with a settle of 20 s
    and 10 s slots, the window holds only the slot begun after the fix and the one filling."""
    now = [1000.0]
    store = WindowStore(slot_seconds=10, clock=lambda: now[0])
    sim = EntropySimulator(1)
    broken = list(sim.chunks(sim.system("a"), Faults(error_rate=0.5), 1, window_s=1))
    healthy = list(sim.chunks(sim.system("a"), Faults(), 1, window_s=1))
    fixed_at = 1033.0
    while now[0] < fixed_at + 20:
        store.add(broken if now[0] < fixed_at else healthy)
        now[0] += 1
    after_fix = store.window("a", 15, since=fixed_at)
    assert after_fix.error_count == 0 and after_fix.span_count > 0
    assert after_fix.window_s is not None and 10 <= after_fix.window_s <= 20
    assert store.window("a", 15).error_count > 0  # the rolling window reaches before the fix
    only_filling = store.window("a", 15, since=now[0] - 1)  # no slot has begun since
    assert only_filling.span_count > 0 and only_filling.window_s is not None
    assert only_filling.window_s <= 10


def test_after_a_verified_fix_no_window_reaches_the_fault_nor_shrinks_to_a_sliver() -> None:
    """The charter's measurements after a cycle ask since the fix for as long as its window
    reaches back: a 15 s window over 10 s slots covers up to 25 s. Each holds no span of the
    fault and at least the seconds since the fix, or the window's length, of spans."""
    now = [1000.0]
    store = WindowStore(slot_seconds=10, clock=lambda: now[0])
    sim = EntropySimulator(1)
    broken = list(sim.chunks(sim.system("a"), Faults(error_rate=0.5), 1, window_s=1))
    healthy = list(sim.chunks(sim.system("a"), Faults(), 1, window_s=1))
    per_second = sum(len(c) for c in healthy)
    fixed_at = 1033.5
    while now[0] < fixed_at:
        store.add(broken)
        now[0] += 1
    store.evidence("a", fixed_at, threshold_ms=100)  # the verifier's first ask cuts the slot
    while now[0] < fixed_at + 40:
        store.add(healthy)
        window = store.window("a", 15, since=fixed_at)
        assert window.error_count == 0, now[0] - fixed_at
        assert window.window_s is not None
        assert window.window_s >= min(15.0, now[0] - fixed_at) - 1e-9, now[0] - fixed_at
        assert window.span_count >= per_second * min(15, math.floor(now[0] - fixed_at))
        now[0] += 1
    assert store.window("a", 15, since=fixed_at).span_count == store.window("a", 15).span_count


def test_a_service_keeps_the_slots_of_the_longest_window_asked_of_it() -> None:
    now = [1000.0]
    store = WindowStore(slot_seconds=10, default_slots=6, clock=lambda: now[0])
    sim = EntropySimulator(1)
    chunks = list(sim.chunks(sim.system("a"), Faults(), 1, window_s=1))
    spans = sum(len(c) for c in chunks)

    def fill(slots: int) -> None:
        for _ in range(slots):
            store.add(chunks)
            now[0] += 10
        now[0] -= 10

    fill(20)
    assert store.window("a", 3600).span_count == 6 * spans  # none asked yet: the default
    assert store.window("a", 10).span_count == 2 * spans
    fill(20)
    # Kept since the hour was asked, after the six kept before.
    assert store.window("a", 3600).span_count == 26 * spans
    fill(400)
    # An hour and the slot being filled, not the 900 s of old.
    assert store.window("a", 3600).span_count == 361 * spans


class _Measured(ClusterTarget):
    """A target whose baseline and workloads are given (no cluster): which window is judged."""

    given_baseline: ServiceSummary

    def baseline(self) -> ServiceSummary:
        return self.given_baseline

    def workload_health(self) -> None:
        return None


def _spans_of(faults: Faults) -> list[Any]:
    sim = EntropySimulator(1)
    return list(sim.chunks(sim.system("shop"), faults, 1, window_s=1))


HEALTHY, FAILING = _spans_of(Faults()), _spans_of(Faults(error_rate=0.5))
PER_SECOND, FAILING_PER_SECOND = (sum(len(c) for c in s) for s in (HEALTHY, FAILING))
MILD = _spans_of(Faults(error_rate=0.1))  # judged by degrees, where 0.5 is as bad as can be
MILD_PER_SECOND = sum(len(c) for c in MILD)


def _measured(
    failing: Callable[[float], bool],
    onset: float,
    min_spans: int,
    *,
    cut: bool = False,
    fault: list[Any] = FAILING,
) -> dict[str, Any]:
    """Spans from 1000 to 1035 (``failing`` says which seconds fail), measured at 1035 with and
    without ``onset``, and whether the charter measures now or waits for spans; with ``cut``,
    the charter cut the slot at the onset (its healthy measurement) as it happened."""
    now = [1000.0]
    store = WindowStore(slot_seconds=10, clock=lambda: now[0])
    baseline = WindowStore(slot_seconds=10, clock=lambda: now[0])
    while now[0] < 1035:
        if cut and now[0] == onset:
            store.cut("shop", onset)
        store.add(fault if failing(now[0]) else HEALTHY)
        baseline.add(HEALTHY)
        now[0] += 1
    spec = RegenerationCharterSpec.model_validate(
        {
            "systemId": "shop",
            "systemType": "web-service",
            "target": {"workloads": [{"name": "shop"}]},
            "telemetry": {"serviceName": "shop", "windowSeconds": 15, "minSpans": min_spans},
        }
    )
    found: dict[str, Any] = {}

    async def check(session: ClientSession, url: str, received: WindowStore) -> None:
        for name, since in (("whole", None), ("onset", onset)):
            target = _Measured(cast(Rest, None), "shop", "shop", spec, receiver_url=url)
            target.given_baseline, target.onset_since = baseline.window("shop", 30), since
            found[name] = await asyncio.to_thread(target.measure)
        found["onset window"] = await asyncio.to_thread(target.onset_window)
        memo = SimpleNamespace(rest=None, receiver_url=url, windows=received)
        body = kopf.Body({"metadata": {"name": "shop", "namespace": "shop", "uid": "u"}})
        found["waits"] = await asyncio.to_thread(_target, memo, body, spec, Due(onset)) is None

    serve(check, store=store)
    return found


def test_a_fault_is_measured_from_the_last_healthy_measurement_when_its_spans_make_one() -> None:
    """A measurement brought forward by failing requests (`measurement_due`'s onset) judges
    the spans since the last healthy measurement too, and the worse counts: the fault is not
    diluted by the healthy window before it."""
    found = _measured(lambda second: second > 1030.5, onset=1030.5, min_spans=PER_SECOND)
    # The slot the onset falls in on: one healthy second and four failing (half their spans).
    assert found["onset window"].span_count == PER_SECOND + 4 * FAILING_PER_SECOND
    assert not found["waits"]
    whole, onset = found["whole"], found["onset"]
    # 1020 to now, two slots: the same failing seconds among eleven healthy ones.
    assert whole.span_count == 11 * PER_SECOND + 4 * FAILING_PER_SECOND
    assert onset.span_count == found["onset window"].span_count
    assert onset.entropy_score > whole.entropy_score
    assert onset.health_score < whole.health_score


def test_a_fault_after_a_healthy_measurement_is_measured_without_the_slot_before_it() -> None:
    """Where the charter last measured healthy it cut the receiver's slot: the measurement the
    fault brings forward judges what came since, not the slot's healthy seconds before too."""

    def failing(second: float) -> bool:
        return second > 1031

    plain = _measured(failing, onset=1031.0, min_spans=PER_SECOND, fault=MILD)
    cut = _measured(failing, onset=1031.0, min_spans=PER_SECOND, cut=True, fault=MILD)
    # The slot began at 1030: a healthy second before the onset, one at it, three failing.
    assert plain["onset window"].span_count == 2 * PER_SECOND + 3 * MILD_PER_SECOND
    assert cut["onset window"].span_count == PER_SECOND + 3 * MILD_PER_SECOND
    assert cut["onset"].health_score < plain["onset"].health_score
    assert cut["onset"].entropy_score >= plain["onset"].entropy_score
    assert cut["whole"].span_count == plain["whole"].span_count  # the whole window is whole


def test_a_fault_just_after_a_healthy_measurement_is_waited_for_not_measured_diluted() -> None:
    """Cut at the onset, too few spans since it are waited for (a tick later they are the
    fault's own); without the cut the slot the onset fell in makes them up at once."""

    def failing(second: float) -> bool:
        return second > 1031

    many = PER_SECOND * 9 // 2  # more than came since the onset, fewer than its slot holds
    assert _measured(failing, onset=1031.0, min_spans=many, cut=True)["waits"]
    assert not _measured(failing, onset=1031.0, min_spans=many)["waits"]


def test_a_charter_cut_and_a_verifier_cut_of_one_service_are_kept_side_by_side() -> None:
    """A charter's newest cut replaces its previous one, never a verifier's."""
    now = [1000.0]
    store = WindowStore(slot_seconds=10, clock=lambda: now[0])
    store.add(HEALTHY)
    now[0] = 1001.0
    store.evidence("shop", 1001.0, threshold_ms=100)  # a verifier's fix began at 1001
    store.cut("shop", 1001.0 + 0.5)  # never the verifier's moment exactly
    now[0] = 1002.0
    store.add(FAILING)
    store.cut("shop", 1002.0, replacing=1001.5)
    now[0] = 1003.0
    store.add(HEALTHY)
    assert store.window("shop", 15, since=1001.0).span_count == FAILING_PER_SECOND + PER_SECOND
    assert store.window("shop", 15, since=1002.0).span_count == PER_SECOND
    # The replaced cut is gone: a window since it is the slot being filled, all of it.
    assert store.window("shop", 15, since=1001.5).span_count == 2 * PER_SECOND + FAILING_PER_SECOND


def test_a_charter_cuts_where_it_measured_healthy_and_keeps_the_cut_through_the_fault() -> None:
    """Each healthy measurement moves the charter's cut to its own time (as its status has it,
    to the second); one at the trigger leaves the last healthy one's: the onset of the fault."""
    now = [1_800_000_003.0]
    store = WindowStore(slot_seconds=10, clock=lambda: now[0])
    memo = SimpleNamespace(windows=store)
    spec = RegenerationCharterSpec.model_validate(
        {
            "systemId": "shop",
            "systemType": "web-service",
            "target": {"workloads": [{"name": "shop"}]},
            "telemetry": {"serviceName": "shop"},
            "trigger": {"level": "medium"},
        }
    )

    def measured(second: int, level: str) -> dict[str, Any]:
        return {"entropy": {"measuredAt": f"2027-01-15T08:00:0{second}Z", "level": level}}

    def at(moment: float, then: Callable[[], None]) -> None:
        now[0] = 1_800_000_000 + moment
        then()

    first, second = measured(3, "low"), measured(6, "low")  # 1_800_000_003 and ..._006
    at(3.0, lambda: store.add(HEALTHY))
    at(3.4, lambda: _cut_at_onset(memo, spec, before={}, after=first))
    at(4.0, lambda: store.add(HEALTHY))
    at(6.2, lambda: _cut_at_onset(memo, spec, before=first, after=second))
    medium = measured(7, "medium")
    at(7.1, lambda: _cut_at_onset(memo, spec, before=second, after=medium))
    at(7.5, lambda: store.add(FAILING))
    assert store.window("shop", 15, since=1_800_000_006.0).span_count == FAILING_PER_SECOND
    # The first one's cut was replaced: the window since it is the whole slot being filled.
    whole_slot = 2 * PER_SECOND + FAILING_PER_SECOND
    assert store.window("shop", 15, since=1_800_000_003.0).span_count == whole_slot


def test_an_unreachable_receiver_on_a_brought_forward_measurement_is_reported_not_raised() -> None:
    """With an onset and the receiver away, the charter does not wait (nor fail its handler)
    on the spans since the onset: it measures, and the measurement says it is unavailable."""
    spec = RegenerationCharterSpec.model_validate(
        {
            "systemId": "shop",
            "systemType": "web-service",
            "target": {"workloads": [{"name": "shop"}]},
            "telemetry": {"serviceName": "shop", "windowSeconds": 15, "minSpans": 10},
        }
    )
    memo = SimpleNamespace(  # nothing listens
        rest=None, receiver_url="http://127.0.0.1:9", windows=WindowStore()
    )
    body = kopf.Body({"metadata": {"name": "shop", "namespace": "shop", "uid": "u"}})
    target = _target(memo, body, spec, Due(1030.5))
    assert target is not None and target.onset_since == 1030.5
    with pytest.raises(MeasurementUnavailable):
        target.measure()


def test_seconds_since_an_onset_never_hide_what_the_whole_window_shows() -> None:
    """Failing before the last healthy measurement and not since: the whole window counts."""
    found = _measured(lambda second: 1021 <= second < 1029, onset=1030.5, min_spans=PER_SECOND)
    assert found["onset"].span_count == found["whole"].span_count > PER_SECOND * 5
    assert found["onset"].entropy_score == found["whole"].entropy_score > 0


def test_a_charter_waits_for_the_spans_since_an_onset_rather_than_measure_it_diluted() -> None:
    """Too few spans since the onset to measure (``minSpans``): the charter waits for them (a
    later tick), rather than measure the fault diluted, read it healthy, and move the onset
    into the fault."""
    found = _measured(lambda second: second > 1030.5, onset=1030.5, min_spans=PER_SECOND * 6)
    assert found["waits"]
    assert found["onset"].span_count == found["whole"].span_count  # the whole window only


def test_an_onset_just_before_a_slot_began_is_measured_from_the_slot_it_fell_in() -> None:
    """A slot that began just after the onset holds too few spans to measure yet: the window
    then starts at the slot the onset fell in (what came just before the onset with it, no
    older slot), rather than wait for the new slot to fill or measure the whole window."""
    now = [1000.0]
    store = WindowStore(slot_seconds=10, clock=lambda: now[0])
    sim = EntropySimulator(1)
    healthy = list(sim.chunks(sim.system("shop"), Faults(), 1, window_s=1))
    broken = list(sim.chunks(sim.system("shop"), Faults(error_rate=0.5), 1, window_s=1))
    per_second, failing_per_second = (sum(len(c) for c in s) for s in (healthy, broken))
    last_healthy = 1038.5
    while now[0] < 1042:
        store.add(healthy if now[0] < last_healthy else broken)
        now[0] += 1
    # 1039 in the onset's slot, 1040 and 1041 in the slot begun since.
    assert store.window("shop", 15, since=last_healthy).span_count == 2 * failing_per_second
    from_its_slot = store.window("shop", 15, slot_of=last_healthy)
    assert from_its_slot.span_count == 9 * per_second + 3 * failing_per_second
    assert store.window("shop", 15).span_count > from_its_slot.span_count  # 1030 is older

    spec = RegenerationCharterSpec.model_validate(
        {
            "systemId": "shop",
            "systemType": "web-service",
            "target": {"workloads": [{"name": "shop"}]},
            "telemetry": {"serviceName": "shop", "minSpans": 3 * per_second},
        }
    )
    found: dict[str, ServiceSummary | None] = {}

    async def check(session: ClientSession, url: str, _: WindowStore) -> None:
        async with session.get(f"{url}/v1/summaries/shop?since=1&slotOf=1") as both:
            assert both.status == 400 and "not both" in await both.text()
        for settling in (None, 1000.0):
            target = ClusterTarget(cast(Rest, None), "shop", "shop", spec, receiver_url=url)
            target.onset_since, target.settling_since = last_healthy, settling
            found[str(settling)] = await asyncio.to_thread(target.onset_window)

    serve(check, store=store)
    assert found["None"] is not None
    assert found["None"].span_count == from_its_slot.span_count
    # After a change the onset's slot may reach before it: the slots begun since, waited for.
    assert found["1000.0"] is not None
    assert found["1000.0"].span_count == 2 * failing_per_second


def test_the_gateway_reads_a_token_guarded_receiver_with_the_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The operator measures through its own receiver: behind a token, it presents the token."""
    spec = RegenerationCharterSpec.model_validate(
        {
            "systemId": "shop",
            "systemType": "web-service",
            "target": {"workloads": [{"name": "shop"}]},
            "telemetry": {"serviceName": "shop", "windowSeconds": 60},
        }
    )

    async def check(session: ClientSession, url: str, store: WindowStore) -> None:
        headers = {"Content-Type": "application/x-protobuf", "Authorization": "Bearer s3cret"}
        async with session.post(f"{url}/v1/traces", data=PB, headers=headers) as resp:
            assert resp.status == 200
        target = ClusterTarget(cast(Rest, None), "shop", "shop", spec, receiver_url=url)
        for token, readable in ((None, False), ("s3cret", True)):
            if token:
                monkeypatch.setenv("WEAVERGEN_RECEIVER_TOKEN", token)
            operator_config.cache_clear()
            if readable:
                window = await asyncio.to_thread(target.current)
                assert window.span_count == SPANS
            else:
                with pytest.raises(urllib.error.HTTPError, match="401"):
                    await asyncio.to_thread(target.current)

    monkeypatch.delenv("WEAVERGEN_RECEIVER_TOKEN", raising=False)
    try:
        serve(check, ReceiverConfig(token="s3cret"))
    finally:
        operator_config.cache_clear()


def test_an_unreachable_receiver_is_an_unavailable_measurement_and_the_charter_says_so() -> None:
    """Fail closed: no telemetry is never a pass. The charter is not Ready, with the reason."""
    spec = RegenerationCharterSpec.model_validate(
        {
            "systemId": "shop",
            "systemType": "web-service",
            "target": {"workloads": [{"name": "shop"}]},
            "telemetry": {"serviceName": "shop", "windowSeconds": 60},
        }
    )
    target = ClusterTarget(
        cast(Rest, None), "shop", "shop", spec, receiver_url="http://127.0.0.1:9"
    )
    with pytest.raises(MeasurementUnavailable) as gone:
        target.measure()
    decision = decide(
        spec,
        generation=1,
        status={},
        measurement=None,
        problem=gone.value,
        now=datetime(2026, 12, 3),
    )
    ready = next(c for c in decision.status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "MeasurementFailed")
    assert decision.start_cycle is None and "entropy" not in decision.status
