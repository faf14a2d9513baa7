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
what went before the fix is not judged as its result. When no slot has begun since (a settle
shorter than a slot), the slot being filled is the window, and it may hold spans from before.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from weavergen.domain.measure.otlp import SpanChunk
from weavergen.domain.measure.summary import MAX_SERVICES, ServiceSummary


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
        slot = self._slot(self.clock())
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
                summary.add_chunk(chunk)
                accepted += len(chunk)
            self.counters.spans_accepted += accepted
            self.counters.spans_dropped += dropped
        return accepted, dropped

    def window(self, service: str, seconds: float, since: float | None = None) -> ServiceSummary:
        """The merged summary of a service's slots over the last ``seconds``, of those begun at
        or after ``since`` (an epoch time) when it is given."""
        now = self.clock()
        newest = self._slot(now)
        covering = self._slots_for(seconds, now)
        oldest = newest - covering + 1
        if since is not None:
            oldest = max(oldest, min(newest, math.ceil(since / self.slot_seconds)))
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
            for slot, summary in self._slots.get(service, {}).items():
                if oldest <= slot <= newest:
                    merged.merge(summary)
            since = max(oldest * self.slot_seconds, self._complete_since.get(service, self.started))
        merged.window_s = max(0.0, now - since)
        return merged

    def services(self) -> list[str]:
        with self._lock:
            return sorted(self._slots)
