"""Window store: received spans, summarised per service into fixed time slots.

Spans are binned by arrival time (a sender's clock may be skewed; arrival time is the operator's
own), into slots of ``slot_seconds``. A charter's window merges the slots covering at least its
length: the slot being filled and as many before it as make up the rest. A window cut at a slot
boundary would be a fraction of a second long just after one, and a rate over it, noise.

A slot's summary of one service is tens of KiB (histograms, sampled attributes), so a service
keeps only as many slots as the longest window asked of it (``default_slots`` until one is
asked, at most ``max_slots``): 200 services kept for an hour's windows would hold 2.6 GiB, kept
for a minute, 44 MiB. A longer window asked for the first time covers
what was kept, as after a restart.

A window says how long it watched the service (``window_s``): from the oldest slot it merges,
or from when the store began to keep every slot of the service, whichever is later. A service
that stopped sending shows as a window much longer than its spans: silence, not a short window.

A window asked ``since`` a moment (a fix took effect) leaves out the slots begun before it, so
what went before the fix is not judged as its result: a window of 15 s over 10 s slots reaches
up to 25 s back. When no slot has begun since, the store cuts the slot being filled at that
moment once asked for the requests since it (a verifier asks at once, `RequestLedger`): what
arrives in that slot from then on is also kept apart, and the window since the moment is that
part and the slots after it, so a verification need not wait for the next slot, and a window
just after the next slot began is not a fraction of a second long. Without a cut (never asked,
or asked before a restart) the slot being filled is the window, spans from before the moment
included. A ``since`` older than the window changes nothing. A charter cuts the slot too, where it
last measured its service healthy (`WindowStore.cut`): a fault after that is measured from there,
not with the slot's healthy spans from before it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from weavergen.domain.measure.otlp import SpanChunk
from weavergen.domain.measure.sequential import Evidence, evidence_of
from weavergen.domain.measure.sketch import NUM_BUCKETS, bucket_of
from weavergen.domain.measure.summary import MAX_SERVICES, ServiceSummary

# Cuts kept per service: its verifiers' and its charters' (one each at a time).
MAX_CUTS = 8


@dataclass
class ReceiverCounters:
    requests: int = 0
    rejected_requests: int = 0
    spans_accepted: int = 0
    spans_dropped: int = 0


class WindowStore:
    """Thread-safe per-service slot summaries of received spans."""

    def __init__(
        self,
        slot_seconds: float = 10.0,
        max_slots: int = 361,  # the longest charter window, 3600 s, and the slot being filled
        default_slots: int = 6,  # the default charter window, 60 s
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.slot_seconds = slot_seconds
        self.max_slots = max_slots
        self.default_slots = min(default_slots, max_slots)
        self.clock = clock
        self.counters = ReceiverCounters()
        self._slots: dict[str, dict[int, ServiceSummary]] = {}
        self._kept: dict[str, int] = {}  # slots to keep per service, from the windows asked
        self.started = clock()
        # Since when every slot of a service is kept (later than ``started`` for a service
        # whose window grew: older slots were dropped before it was asked for more).
        self._complete_since: dict[str, float] = {}
        # Per service, by the moment each was cut at: a verifier's (where its fix began) and a
        # charter's (its last healthy measurement) are kept side by side.
        self._cuts: dict[str, dict[float, _Cut]] = {}
        self.ledger = RequestLedger()
        self._lock = threading.Lock()

    def _slot(self, now: float) -> int:
        return int(now // self.slot_seconds)

    def _slots_for(self, seconds: float, now: float) -> int:
        """Slots covering the last ``seconds``, the one being filled included."""
        filled = now - self._slot(now) * self.slot_seconds
        before = max(0, math.ceil((seconds - filled) / self.slot_seconds))
        return min(self.max_slots, 1 + before)

    def add(self, chunks: list[SpanChunk]) -> tuple[int, int]:
        """Summarise chunks into the current slot; returns (accepted, dropped) span counts."""
        arrived = self.clock()
        slot = self._slot(arrived)
        accepted = dropped = 0
        with self._lock:
            for chunk in chunks:
                slots = self._slots.get(chunk.service)
                if slots is None:
                    if len(self._slots) >= MAX_SERVICES:
                        dropped += len(chunk)
                        continue
                    slots = self._slots[chunk.service] = {}
                summary = slots.get(slot)
                if summary is None:
                    summary = slots[slot] = ServiceSummary(chunk.service)
                    kept = self._kept.get(chunk.service, self.default_slots)
                    for old in sorted(slots)[:-kept]:
                        del slots[old]
                    cuts = self._cuts.get(chunk.service, {})
                    for at in [at for at, cut in cuts.items() if cut.slot <= slot - kept]:
                        del cuts[at]
                summary.add_chunk(chunk)
                self._add_after_cut(chunk, slot)
                self.ledger.add(chunk, arrived)
                accepted += len(chunk)
            self.counters.spans_accepted += accepted
            self.counters.spans_dropped += dropped
        return accepted, dropped

    def window(
        self,
        service: str,
        seconds: float,
        since: float | None = None,
        *,
        slot_of: float | None = None,
    ) -> ServiceSummary:
        """The merged summary of a service's slots over the last ``seconds``, of those begun at
        or after ``since`` (an epoch time) when it is given, and of the slot cut at ``since``
        what arrived after it; with ``slot_of`` (an epoch time, not with ``since``), of the
        slot that moment falls in and those after it."""
        now = self.clock()
        newest = self._slot(now)
        covering = self._slots_for(seconds, now)
        by_length = oldest = newest - covering + 1
        if since is not None:
            oldest = max(oldest, min(newest, math.ceil(since / self.slot_seconds)))
        elif slot_of is not None:
            oldest = max(oldest, min(newest, self._slot(slot_of)))
        merged = ServiceSummary(service)
        with self._lock:
            kept = self._kept.get(service, self.default_slots)
            if covering > kept and (service in self._kept or len(self._kept) < MAX_SERVICES):
                first_kept = (newest - kept + 1) * self.slot_seconds
                self._complete_since[service] = max(
                    self._complete_since.get(service, self.started), first_kept
                )
                self._kept[service] = covering
            elif service not in self._kept and len(self._kept) < MAX_SERVICES:
                self._kept[service] = kept
            cut = None if since is None else self._cuts.get(service, {}).get(since)
            start: float | None = None
            if since is not None and cut is not None and cut.slot >= by_length:
                merged.merge(cut.summary)
                oldest, start = cut.slot + 1, since
            for slot, summary in self._slots.get(service, {}).items():
                if oldest <= slot <= newest:
                    merged.merge(summary)
            if start is None:
                start = max(
                    oldest * self.slot_seconds, self._complete_since.get(service, self.started)
                )
        merged.window_s = max(0.0, now - start)
        return merged

    def evidence(
        self,
        service: str,
        since: float,
        threshold_ms: float,
        *,
        cut: bool = True,
        until: float | None = None,
    ) -> Evidence:
        """The requests of ``service`` started since ``since`` (and before ``until``): see
        `RequestLedger`. With ``cut`` (a verifier's ask) the slot being filled is cut at
        ``since`` (see the module's docstring)."""
        with self._lock:
            if cut:
                self._cut(service, since, self.clock())
            return self.ledger.evidence(service, since, threshold_ms, until)

    def cut(self, service: str, at: float, *, replacing: float | None = None) -> None:
        """Keep apart what arrives from now on in the slot being filled, as the spans since
        ``at`` (a charter's healthy measurement: a fault after it is then measured without the
        slot's earlier spans), in place of the cut at ``replacing``."""
        with self._lock:
            if replacing is not None and replacing != at:
                self._cuts.get(service, {}).pop(replacing, None)
            self._cut(service, at, self.clock())

    def has_cut(self, service: str, at: float) -> bool:
        """Whether what arrived since ``at`` is kept apart (a window since it is exact)."""
        with self._lock:
            return at in self._cuts.get(service, {})

    def _cut(self, service: str, since: float, now: float) -> None:
        """Cut the slot being filled at ``since``, unless it is cut there already or began
        since (then no cut is needed). A service keeps its ``MAX_CUTS`` newest."""
        slot = self._slot(now)
        if since <= slot * self.slot_seconds or since > now:
            return
        cuts = self._cuts.get(service)
        if cuts is None:
            if len(self._cuts) >= MAX_SERVICES:
                return
            cuts = self._cuts[service] = {}
        cut = cuts.get(since)
        if cut is not None and cut.slot == slot:
            return
        cuts[since] = _Cut(since, slot, ServiceSummary(service))
        for at in sorted(cuts)[:-MAX_CUTS]:
            del cuts[at]

    def _add_after_cut(self, chunk: SpanChunk, slot: int) -> None:
        for cut in self._cuts.get(chunk.service, {}).values():
            if cut.slot == slot:
                cut.summary.add_chunk(chunk)

    def services(self) -> list[str]:
        with self._lock:
            return sorted(self._slots)


# Seconds of requests the ledger keeps: the longest a sequential verification reads back.
LEDGER_SECONDS = 180
# The ledger's resolution: requests are counted by the quarter second of their start.
LEDGER_BIN_SECONDS = 0.25
LEDGER_BIN_NS = int(LEDGER_BIN_SECONDS * 1e9)
LEDGER_BINS = int(LEDGER_SECONDS / LEDGER_BIN_SECONDS)


class RequestLedger:
    """Per service and ``LEDGER_BIN_SECONDS`` of a request's start: requests, failed ones,
    and the latency histogram of the others. What a sequential verification reads since a fix
    began: a bin is counted whole or not at all, so a quarter second wastes less evidence at
    either end of a verification than a whole second (the demo's settle: 0.75 s on average).

    Requests are entry spans once a service has sent one, else every span (a service whose
    every span is a child of another's). They are binned by their start (the sender's clock,
    never later than their arrival): a batch exported after a fix still holds requests served
    before it, and those are no evidence of the fix. A start further back than the ledger
    reaches (a sender's clock far behind) counts at the arrival: the ledger may then take a
    request from before a fix for one after it, which can fail a good fix, never pass a bad
    one, as the fault was there before. A bin with requests costs one histogram (0.5 KiB), and
    a service keeps ``LEDGER_SECONDS`` of bins (720: at most 360 KiB).
    """

    def __init__(self) -> None:
        self._bins: dict[str, dict[int, _Bin]] = {}
        self._by_entries: set[str] = set()

    def add(self, chunk: SpanChunk, arrived: float) -> None:
        if chunk.entries.any():
            self._by_entries.add(chunk.service)
        requests = (
            chunk.entries.astype(bool)
            if chunk.service in self._by_entries
            else np.ones(len(chunk), dtype=bool)
        )
        if not requests.any():
            return
        now = math.floor(arrived / LEDGER_BIN_SECONDS)
        bins = np.full(len(chunk), now, dtype=np.int64)
        if chunk.starts_ns is not None:
            starts = chunk.starts_ns // LEDGER_BIN_NS
            placed = starts > now - LEDGER_BINS
            bins[placed] = np.minimum(starts[placed], now)
        bins, errors = bins[requests], chunk.errors[requests].astype(bool)
        buckets = bucket_of(chunk.durations_ns[requests])
        ledger = self._bins.setdefault(chunk.service, {})
        for index in np.unique(bins).tolist():
            at = bins == index
            entry = ledger.get(index)
            if entry is None:
                entry = ledger[index] = _Bin()
            entry.requests += int(at.sum())
            entry.errors += int((at & errors).sum())
            entry.ok_latencies += np.bincount(buckets[at & ~errors], minlength=NUM_BUCKETS).astype(
                np.int32
            )
        for index in [i for i in ledger if i <= now - LEDGER_BINS]:
            del ledger[index]

    def evidence(
        self, service: str, since: float, threshold_ms: float, until: float | None = None
    ) -> Evidence:
        """Requests of ``service`` started in the whole bins from ``since`` to ``until``
        (epoch times; no end without ``until``)."""
        requests = errors = 0
        ok_latencies = np.zeros(NUM_BUCKETS, dtype=np.int64)
        first = math.ceil(since / LEDGER_BIN_SECONDS)
        last = math.inf if until is None else math.floor(until / LEDGER_BIN_SECONDS) - 1
        for index, entry in self._bins.get(service, {}).items():
            if first <= index <= last:
                requests += entry.requests
                errors += entry.errors
                ok_latencies += entry.ok_latencies
        return evidence_of(requests, errors, ok_latencies, threshold_ms)


@dataclass
class _Cut:
    """What arrived in slot ``slot`` from ``at`` on."""

    at: float
    slot: int
    summary: ServiceSummary


@dataclass
class _Bin:
    requests: int = 0
    errors: int = 0
    ok_latencies: np.ndarray = field(default_factory=lambda: np.zeros(NUM_BUCKETS, np.int32))
