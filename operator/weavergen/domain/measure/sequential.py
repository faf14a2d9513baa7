"""Verification as a sequential test: stop as soon as the requests since a fix say enough.

A fixed settle waits the same time for a fix that plainly works, one that plainly does not and
one that is hard to tell. Wald's sequential probability ratio test (SPRT) reads the requests
served since the fix one by one and stops as soon as their likelihood ratio crosses a bound.

A request is *bad* when it failed or was slower than the latency threshold. The hypotheses:

- healthy: the bad share is at most ``allowed``, what the objectives allow (the error budget of
  the availability objective plus that of the latency objective);
- unhealthy: the bad share is at least ``burn`` times that (the budget burning ``burn`` times
  too fast, the rate at which fast-burn alerts page).

Wald's bounds give a test whose chance to pass an unhealthy service is at most ``false_pass``
(1%) and to fail a healthy one at most ``false_fail`` (5%): a wrong pass leaves a broken
service in place, a wrong fail only rolls back a good fix. Between the two hypotheses the test
may run to its end (``settleSeconds``), where the fixed-window judgement decides as before.

Silence is never a pass: no request adds no evidence, so a silent service runs to the end.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np

from weavergen.domain.measure.health import Objectives, request_latencies
from weavergen.domain.measure.sketch import fraction_above
from weavergen.domain.measure.summary import ServiceSummary

FALSE_PASS = 0.01
FALSE_FAIL = 0.05
BURN = 5.0
MAX_BAD_SHARE = 0.5  # an unhealthy hypothesis past this would call a coin flip healthy


@dataclass(frozen=True)
class Evidence:
    """Requests served since a moment, and how many of them were bad (failed or slow)."""

    requests: int = 0
    bad: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.bad <= self.requests:
            raise ValueError(f"bad requests {self.bad} must be within 0..{self.requests}")

    def as_dict(self) -> dict[str, int]:
        return {"requests": self.requests, "bad": self.bad}


def evidence_of(
    requests: int, errors: int, ok_latencies: np.ndarray, threshold_ms: float
) -> Evidence:
    """Evidence from counts: requests, failed ones, and the latency histogram of the others
    (so a request both failed and slow counts once)."""
    return Evidence(requests, min(requests, errors + _slow(ok_latencies, threshold_ms)))


def _slow(latencies: np.ndarray, threshold_ms: float) -> int:
    """How many requests of a latency histogram were slower than ``threshold_ms``."""
    count = int(latencies.sum())
    return round(fraction_above(latencies, threshold_ms * 1e6) * count) if count else 0


class Decision(enum.StrEnum):
    PASS = "Pass"  # healthy, with at most FALSE_PASS chance of being wrong
    FAIL = "Fail"  # unhealthy, with at most FALSE_FAIL chance of being wrong
    CONTINUE = "Continue"  # not enough evidence yet


@dataclass(frozen=True)
class SequentialTest:
    """Wald's SPRT of a bad share ``allowed`` (healthy) against ``unhealthy``."""

    allowed: float
    unhealthy: float
    false_pass: float = FALSE_PASS
    false_fail: float = FALSE_FAIL

    def __post_init__(self) -> None:
        if not 0 < self.allowed < self.unhealthy < 1:
            raise ValueError(
                f"need 0 < allowed ({self.allowed}) < unhealthy ({self.unhealthy}) < 1"
            )

    @classmethod
    def for_objectives(
        cls, objectives: Objectives, burn: float = BURN, *, slow_is_bad: bool = True
    ) -> SequentialTest:
        """Healthy: within the objectives' error budget, and their latency budget when slow
        requests count as bad; unhealthy: ``burn`` times over."""
        allowed = (1 - objectives.availability) + (
            (1 - objectives.latency_target) if slow_is_bad else 0.0
        )
        allowed = min(allowed, MAX_BAD_SHARE / burn)
        return cls(allowed, min(MAX_BAD_SHARE, burn * allowed))

    @property
    def bad_weight(self) -> float:
        """The log-likelihood ratio (unhealthy over healthy) one bad request adds."""
        return math.log(self.unhealthy / self.allowed)

    @property
    def good_weight(self) -> float:
        """The log-likelihood ratio one good request adds (negative)."""
        return math.log((1 - self.unhealthy) / (1 - self.allowed))

    def log_ratio(self, evidence: Evidence) -> float:
        good = evidence.requests - evidence.bad
        return evidence.bad * self.bad_weight + good * self.good_weight

    def decide(self, evidence: Evidence) -> Decision:
        ratio = self.log_ratio(evidence)
        if ratio >= math.log((1 - self.false_pass) / self.false_fail):
            return Decision.FAIL
        if ratio <= math.log(self.false_pass / (1 - self.false_fail)):
            return Decision.PASS
        return Decision.CONTINUE

    @property
    def fewest_to_pass(self) -> int:
        """Requests, none bad, the test needs before it can pass."""
        return math.ceil(math.log(self.false_pass / (1 - self.false_fail)) / self.good_weight)

    def describe(self, evidence: Evidence) -> str:
        return (
            f"{evidence.bad} of {evidence.requests} requests bad (failed or slow) since the fix: "
            f"{self.decide(evidence).value.lower()} (healthy at most {self.allowed:.1%} bad, "
            f"unhealthy from {self.unhealthy:.1%}; wrong pass <= {self.false_pass:.0%}, wrong "
            f"fail <= {self.false_fail:.0%})"
        )


def summary_evidence(summary: ServiceSummary, threshold_ms: float) -> Evidence:
    """Evidence from a window's summary (the simulation twin's), which keeps no latency of
    the failed requests apart: a request both failed and slow counts twice there, capped at
    the requests, which errs towards failing."""
    by_entries = summary.entry_count > 0
    requests = summary.entry_count if by_entries else summary.span_count
    errors = sum(
        round(op.errors * op.entries / op.count) if by_entries else op.errors
        for op in summary.operations.values()
        if op.count
    )
    slow = _slow(request_latencies(summary, by_entries), threshold_ms)
    return Evidence(requests, min(requests, errors + slow))
