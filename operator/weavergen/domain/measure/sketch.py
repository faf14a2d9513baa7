"""Small mergeable sketches: log-bucket latency histograms and k-minimum-values distinct counts.

Both merge by simple union (histograms add, KMV keeps the k smallest hashes), so per-window
summaries combine into any longer window, and their size never grows with span volume.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

BUCKETS_PER_OCTAVE = 4
FIRST_OCTAVE = 10  # 2**10 ns ~ 1 microsecond: the first bucket holds everything faster
NUM_BUCKETS = 136  # up to 2**44 ns ~ 4.9 hours; slower spans land in the last bucket
KMV_SIZE = 64


def bucket_of(durations_ns: np.ndarray) -> np.ndarray:
    """Histogram bucket index of each duration: four buckets per doubling (~19% wide)."""
    log = np.log2(np.maximum(durations_ns, 1).astype(np.float64))
    index = np.floor(log * BUCKETS_PER_OCTAVE).astype(np.int64) - FIRST_OCTAVE * BUCKETS_PER_OCTAVE
    clipped: np.ndarray = np.clip(index, 0, NUM_BUCKETS - 1)
    return clipped


def bucket_upper_ns(index: int | np.ndarray) -> np.ndarray:
    """Upper edge of a bucket in nanoseconds."""
    return np.asarray(2.0 ** ((np.asarray(index) + 1) / BUCKETS_PER_OCTAVE + FIRST_OCTAVE))


def quantile_ns(histogram: np.ndarray, q: float) -> float:
    """The q-quantile of a histogram, interpolated geometrically inside its bucket."""
    total = histogram.sum()
    if total == 0:
        return float("nan")
    cumulative = np.cumsum(histogram)
    rank = q * total
    index = int(np.searchsorted(cumulative, rank, side="left"))
    index = min(index, len(histogram) - 1)
    below = cumulative[index - 1] if index > 0 else 0
    inside = (rank - below) / histogram[index] if histogram[index] else 1.0
    lower = float(bucket_upper_ns(index - 1)) if index > 0 else 0.0
    upper = float(bucket_upper_ns(index))
    if lower <= 0:
        return upper * float(inside)
    return float(lower * (upper / lower) ** inside)


def fraction_above(histogram: np.ndarray, threshold_ns: float) -> float:
    """Share of spans slower than ``threshold_ns`` (the bucket holding it is split evenly)."""
    total = histogram.sum()
    if total == 0:
        return 0.0
    edges = bucket_upper_ns(np.arange(len(histogram)))
    index = int(np.searchsorted(edges, threshold_ns, side="left"))
    if index >= len(histogram):
        return 0.0
    lower = float(edges[index - 1]) if index > 0 else 0.0
    upper = float(edges[index])
    share_of_bucket = (upper - threshold_ns) / (upper - lower) if upper > lower else 0.0
    slow = histogram[index + 1 :].sum() + histogram[index] * share_of_bucket
    return float(slow / total)


def stable_hash64(values: Iterable[str | bytes]) -> np.ndarray:
    """64-bit hashes that are the same in every process (Python's ``hash`` is salted)."""
    out = []
    for value in values:
        raw = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
        out.append(int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big"))
    return np.array(out, dtype=np.uint64)


class DistinctCounter:
    """K-minimum-values sketch: exact below ``KMV_SIZE`` distinct values, ~13% error above."""

    __slots__ = ("hashes",)

    def __init__(self, hashes: np.ndarray | None = None) -> None:
        self.hashes = np.zeros(0, dtype=np.uint64) if hashes is None else hashes

    def add_hashes(self, hashes: np.ndarray) -> None:
        if self.hashes.size >= KMV_SIZE:
            hashes = hashes[hashes < self.hashes[-1]]
        if hashes.size > 4 * KMV_SIZE:
            # The 4k smallest entries hold the k smallest distinct values unless duplicates
            # crowd them out; partitioning is linear where sorting everything is not.
            smallest = np.partition(hashes, 4 * KMV_SIZE)[: 4 * KMV_SIZE]
            if np.unique(smallest).size >= KMV_SIZE:
                hashes = smallest
        if hashes.size:
            self.hashes = np.union1d(self.hashes, hashes)[:KMV_SIZE]

    def merge(self, other: DistinctCounter) -> None:
        self.add_hashes(other.hashes)

    def estimate(self) -> float:
        if self.hashes.size < KMV_SIZE:
            return float(self.hashes.size)
        return float((KMV_SIZE - 1) / (float(self.hashes[-1]) / 2.0**64))

    def to_list(self) -> list[str]:
        return [format(int(h), "x") for h in self.hashes]

    @classmethod
    def from_list(cls, values: Iterable[str]) -> DistinctCounter:
        return cls(np.array(sorted(int(v, 16) for v in values), dtype=np.uint64))
