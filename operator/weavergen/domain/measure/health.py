"""Health score in [0, 1], relative to service-level objectives.

    burn_health(b) = 1                                  if b <= 1
                   = max(0, 1 - ln(b) / ln(14.4))      otherwise

    errors:     b_e = error_rate / (1 - availability)
    latency:    b_l = share_of_requests_slower_than_threshold / (1 - latency_target)
                (threshold: the charter's latencyThresholdMs, else the baseline requests' p99)
    throughput: h_t = clip((rate / baseline_rate - 0.2) / 0.6, 0, 1)   (1 at 80% or more)

    health = min(0.5 h_e + 0.3 h_l + 0.2 h_t,  2 * min(h_e, h_l, h_t))

A burn rate is how fast the error budget is being spent: 1 spends it exactly over the objective's
period, 14.4 is the classic fast-burn paging threshold (a 30-day budget gone in ~2 days), where
health reaches 0. The weighted mean is capped by twice the worst component, so one exhausted
objective dominates — a service failing 35% of its requests against a 99% objective has health 0,
however good its latency — while health stays linear in each component, so sampling noise in a
nearly exhausted objective moves health by little (a product of powers would amplify it).

The latency objective is about requests, as users see them: entry spans (server and consumer
spans, local roots), like throughput, whenever the baseline has any. Counting every span would
dilute a slow request with the client and database spans it made, which did not slow down: a
WSGI app with requests and DB-API instrumentation sends three spans a request, so a fault
making every request slow could burn at most a third of the budget it burns. Without a charter
threshold, a request is slow when it is slower than the baseline's 99th percentile of requests:
the healthy baseline spends its budget exactly (burn 1, health 1), and a service whose requests
got slower spends it as fast as an error fault failing the same share of requests. A margin
above the p99 (1.5x was the earlier default) let a service twice as slow in every request stay
LOW: an exponential latency's p99 is 4.6x its mean, so 1.5x that is 6.9 means, which a doubled
mean crosses on about 3% of requests (burn 3), while the same 3% of failing requests is an
error rate no one calls healthy either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from weavergen.domain.measure.sketch import fraction_above, quantile_ns
from weavergen.domain.measure.summary import ServiceSummary

FAST_BURN = 14.4
LATENCY_MARGIN = 1.0  # x the baseline requests' p99 when the charter sets no threshold
LATENCY_QUANTILE = 0.99
STALL_CAP = 2.0  # x the baseline requests' p95: the most a default threshold may be
WEIGHTS = {"errors": 0.5, "latency": 0.3, "throughput": 0.2}


@dataclass(frozen=True)
class Objectives:
    """What health is measured against (from the charter's spec.objectives)."""

    availability: float = 0.99
    latency_threshold_ms: float | None = None
    latency_target: float = 0.99


DEFAULT_OBJECTIVES = Objectives()


@dataclass(frozen=True)
class Health:
    score: float
    errors: float
    latency: float
    throughput: float
    error_burn: float
    latency_burn: float
    throughput_ratio: float
    latency_threshold_ms: float

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in self.__dict__.items()}


def burn_health(burn: float) -> float:
    if burn <= 1.0:
        return 1.0
    return max(0.0, 1.0 - math.log(burn) / math.log(FAST_BURN))


def throughput_health(ratio: float) -> float:
    return min(1.0, max(0.0, (ratio - 0.2) / 0.6))


def combine(errors: float, latency: float, throughput: float) -> float:
    parts = {"errors": errors, "latency": latency, "throughput": throughput}
    weighted = sum(parts[k] * w for k, w in WEIGHTS.items())
    return min(weighted, 2 * min(parts.values()))


def request_latencies(summary: ServiceSummary, by_entries: bool) -> np.ndarray:
    """The latency histogram the latency objective judges: requests' (entry spans') when
    ``by_entries``, else every span's (a service whose every span is a child of another's)."""
    return summary.request_histogram() if by_entries else summary.histogram()


def latency_threshold_ms(objectives: Objectives, baseline: ServiceSummary) -> float:
    if objectives.latency_threshold_ms is not None:
        return objectives.latency_threshold_ms
    latencies = request_latencies(baseline, baseline.entry_count > 0)
    p99 = quantile_ns(latencies, LATENCY_QUANTILE)
    # A stall in the baseline (a GC pause, a cold cache) fills its top percent: the p99 then
    # says more about the stall than about the service, so it is capped at twice the p95.
    return LATENCY_MARGIN * min(p99, STALL_CAP * quantile_ns(latencies, 0.95)) / 1e6


# Exporters batch spans (every 5 s by default) and the receiver bins them into 10 s slots: a
# window's length is trusted to judge a rate only from this long.
EXPORT_LAG_S = 10.0


@dataclass(frozen=True)
class Requests:
    """Requests in the current window and in the baseline, and the seconds each covers.

    Requests are entry spans (server and consumer spans, local roots) when the baseline has
    any, else all spans (a service whose every span is a child of another's). Client spans are
    calls the service makes: a retry storm multiplies them while requests fall.

    Counts are of the spans that reached the operator; ``current_p`` and ``baseline_p`` are the
    share of the requests each stands for that did (1 when no sampler thins them). A rate is
    estimated from the requests a window stands for (count / p), while a test of two rates is
    run on the counts themselves, each over its seconds times p: what a Poisson count of the
    sample expects. A smaller sample gives a weaker test, not a confident one on invented counts.
    """

    current: int
    baseline: int
    current_s: float
    baseline_s: float
    current_p: float = 1.0
    baseline_p: float = 1.0

    @classmethod
    def of(cls, current: ServiceSummary, baseline: ServiceSummary) -> Requests:
        by_entries = baseline.entry_count > 0
        baseline_p = _sampled_share(baseline, by_entries) or 1.0
        return cls(
            current=current.entry_count if by_entries else current.span_count,
            baseline=baseline.entry_count if by_entries else baseline.span_count,
            current_s=observed_seconds(current, baseline.duration_s),
            baseline_s=observed_seconds(baseline, 0.0) or baseline.duration_s,
            # A window without a request says no probability: it came the way the others do.
            current_p=_sampled_share(current, by_entries) or current.sampling_ratio() or baseline_p,
            baseline_p=baseline_p,
        )

    @property
    def current_rate(self) -> float:
        """Estimated requests per second in the window (the sample scaled up)."""
        return self.current / self.current_p / self.current_s if self.current_s > 0 else 0.0

    @property
    def baseline_rate(self) -> float:
        """Estimated requests per second in the baseline."""
        return self.baseline / self.baseline_p / self.baseline_s if self.baseline_s > 0 else 0.0

    @property
    def current_exposure(self) -> float:
        """The window's seconds as its sample sees them: a Poisson count's exposure."""
        return self.current_s * self.current_p

    @property
    def baseline_exposure(self) -> float:
        return self.baseline_s * self.baseline_p

    @property
    def ratio(self) -> float:
        """Current request rate over the baseline's; 1 when either cannot be told."""
        if self.baseline <= 0 or self.baseline_s <= 0 or self.current_s <= 0:
            return 1.0
        return self.current_rate / self.baseline_rate


def _sampled_share(summary: ServiceSummary, by_entries: bool) -> float | None:
    """The share of its requests (or spans) a summary holds; None when it holds none."""
    return summary.sampling_ratio(entries=True) if by_entries else summary.sampling_ratio()


def observed_seconds(summary: ServiceSummary, fallback: float) -> float:
    """How long a window watched the service; 0 when too short to say.

    The receiver says how long its window covers, by arrival: a service that stopped sending
    shows as a window longer than its spans, and senders' clocks do not matter. Exporters send
    in batches (every 5 s by default), so a window shorter than ``EXPORT_LAG_S`` cannot tell a
    pause between batches from silence. A file of spans says nothing but their time range; an
    empty one is taken to be ``fallback`` long.
    """
    if summary.window_s is not None:
        return summary.window_s if summary.window_s >= EXPORT_LAG_S else 0.0
    return summary.duration_s or fallback


def health_of(current: ServiceSummary, baseline: ServiceSummary, objectives: Objectives) -> Health:
    spans = current.span_count
    error_burn = (current.error_count / spans) / (1 - objectives.availability) if spans else 0.0
    threshold_ms = latency_threshold_ms(objectives, baseline)
    slow = fraction_above(request_latencies(current, baseline.entry_count > 0), threshold_ms * 1e6)
    latency_burn = slow / (1 - objectives.latency_target)
    ratio = Requests.of(current, baseline).ratio
    errors, latency = burn_health(error_burn), burn_health(latency_burn)
    throughput = throughput_health(ratio)
    return Health(
        score=combine(errors, latency, throughput),
        errors=errors,
        latency=latency,
        throughput=throughput,
        error_burn=error_burn,
        latency_burn=latency_burn,
        throughput_ratio=ratio,
        latency_threshold_ms=threshold_ms,
    )
