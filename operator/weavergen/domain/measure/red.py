"""RED metrics (requests, errors, durations) from Prometheus, as the summary Measure judges.

A charter with ``telemetry.source: prometheus`` is measured by the same code as one fed spans:
its window's counts become a ``ServiceSummary`` of one operation, ``(requests)``, whose spans
are the requests (``increase()`` over the window, so the statistical tests see real counts),
whose errors are the failed ones and whose latency histogram is the requests' duration
histogram. The health score, the burn rates, the drift tests and the entropy levels are then the
span path's own. What RED metrics cannot show (attributes, traces, span names) leaves the
detectors that need it quiet: semantic conventions are validated from sampled spans instead,
when the receiver gets them.

Prometheus histograms have a few explicit buckets (span_metrics: 5 ms ... 10 s); the summary's
are log buckets, four per doubling. Each explicit bucket's requests are spread over the log
buckets it covers, evenly in log space (the geometric interpolation ``sketch.quantile_ns`` does
inside its own buckets); the lowest bucket over the octave below its bound, +Inf over the octave
above the highest. Shares above a threshold inside a wide bucket are interpolated so, alike for
the baseline and the window, so a healthy window spends its budget as its baseline did.

Queries are templates (``api.charter.PrometheusSpec``): ``{{window}}`` is the range, a duration
such as ``60s``; ``{{service}}`` the service's name. One without ``{{service}}`` answers for
every service at once and is shared by every charter that uses it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from weavergen.api.charter import PrometheusSpec
from weavergen.domain.measure.sketch import BUCKETS_PER_OCTAVE, FIRST_OCTAVE, NUM_BUCKETS
from weavergen.domain.measure.summary import OperationStats, ServiceSummary

REQUESTS_OPERATION = "(requests)"
SPAN_KIND_SERVER = 2
# Requests as span_metrics counts them: the spans that enter a service.
ENTRY_SPANS = 'span_kind=~"SPAN_KIND_SERVER|SPAN_KIND_CONSUMER"'
DEFAULT_REQUESTS = (
    "sum by (service_name) "
    f"(increase(traces_span_metrics_calls_total{{{ENTRY_SPANS}}}[{{{{window}}}}]))"
)
DEFAULT_ERRORS = (
    "sum by (service_name) (increase(traces_span_metrics_calls_total"
    f'{{{ENTRY_SPANS},status_code="STATUS_CODE_ERROR"}}[{{{{window}}}}]))'
)
DEFAULT_LATENCY = (
    "sum by (service_name, le) (increase("
    f"traces_span_metrics_duration_milliseconds_bucket{{{ENTRY_SPANS}}}[{{{{window}}}}]))"
)
UNIT_NS = {"milliseconds": 1e6, "seconds": 1e9}
T = TypeVar("T")
Index = dict[str | None, float]
BucketIndex = dict[str | None, dict[float, float]]


@dataclass(frozen=True)
class RedQueries:
    """The three query templates of a charter, with how to read their answers."""

    requests: str = DEFAULT_REQUESTS
    errors: str = DEFAULT_ERRORS
    latency: str = DEFAULT_LATENCY
    service_label: str = "service_name"
    latency_unit: str = "milliseconds"

    @classmethod
    def of(cls, spec: PrometheusSpec) -> RedQueries:
        return cls(
            requests=spec.requests or DEFAULT_REQUESTS,
            errors=spec.errors or DEFAULT_ERRORS,
            latency=spec.latency or DEFAULT_LATENCY,
            service_label=spec.service_label,
            latency_unit=spec.latency_unit,
        )


def duration(seconds: float) -> str:
    """A PromQL range duration: whole seconds, at least one."""
    return f"{max(1, round(seconds))}s"


def render(template: str, seconds: float, service: str) -> str:
    """The query of a template for a range of ``seconds`` and one service (a PromQL string's
    escapes applied to its name, so a quote in it cannot end the string)."""
    quoted = service.replace("\\", "\\\\").replace('"', '\\"')
    return template.replace("{{window}}", duration(seconds)).replace("{{service}}", quoted)


def names_service(template: str) -> bool:
    """Whether a template is one charter's own: it names the service, so no other shares it."""
    return "{{service}}" in template


def evaluation_time(now: float, slot_seconds: float) -> float:
    """The end of the window every charter measuring within one slot shares: the start of the
    slot ``now`` falls in, so they ask Prometheus one query, not one each."""
    return math.floor(now / slot_seconds) * slot_seconds


def _samples(data: Mapping[str, Any], what: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of an instant vector answer; ``ValueError`` naming what is wrong."""
    kind = data.get("resultType")
    if kind != "vector":
        raise ValueError(f"{what}: expected an instant vector, got a {kind} (wrap it in sum by)")
    samples = []
    for series in data.get("result") or []:
        try:
            labels, value = dict(series.get("metric") or {}), float(series["value"][1])
        except (AttributeError, KeyError, IndexError, TypeError, ValueError):
            raise ValueError(f"{what}: a series is not a sample: {series!r:.200}") from None
        if not math.isfinite(value):
            raise ValueError(f"{what}: the series {labels} has the value {value}")
        samples.append((labels, value))
    return samples


def index_counts(data: Mapping[str, Any], service_label: str, what: str) -> Index:
    """Per service, the sum of its series' values; series without the label under None."""
    found: Index = {}
    for labels, value in _samples(data, what):
        service = labels.get(service_label)
        found[service] = found.get(service, 0.0) + value
    return found


def index_buckets(data: Mapping[str, Any], service_label: str, what: str) -> BucketIndex:
    """Per service, its cumulative bucket counts by upper bound (``le``)."""
    found: BucketIndex = {}
    for labels, value in _samples(data, what):
        if "le" not in labels:
            raise ValueError(f"{what}: the series {labels} has no le label")
        buckets = found.setdefault(labels.get(service_label), {})
        bound = float(labels["le"])
        buckets[bound] = buckets.get(bound, 0.0) + value
    return found


def pick(index: Mapping[str | None, T], service: str, own: bool) -> T | None:
    """The service's entry; for a charter's own query also its unlabelled series."""
    found = index.get(service)
    if found is None and own:
        return index.get(None)
    return found


@dataclass(frozen=True)
class RedWindow:
    """One service's RED counts over ``seconds``; ``buckets`` cumulative, by upper bound."""

    requests: float
    errors: float
    buckets: Mapping[float, float]
    seconds: float
    unit_ns: float = UNIT_NS["milliseconds"]


def sketch_histogram(buckets: Mapping[float, float], unit_ns: float) -> np.ndarray:
    """The summary's log-bucket histogram of cumulative explicit buckets (see the module)."""
    bounds = sorted(buckets)
    cumulative = np.maximum.accumulate(np.array([max(0.0, buckets[b]) for b in bounds] or [0.0]))
    counts = np.diff(cumulative, prepend=0.0)
    finite = [math.log2(b * unit_ns) for b in bounds if math.isfinite(b) and b > 0]
    spread = np.zeros(NUM_BUCKETS)
    for bound, count in zip(bounds, counts, strict=False):
        if count > 0:
            spread += count * _shares(bound, unit_ns, finite)
    # Whole requests, the total kept: round the running sum, not each bucket.
    return np.diff(np.round(np.cumsum(spread)), prepend=0.0).astype(np.int64)


def _shares(bound: float, unit_ns: float, finite: list[float]) -> np.ndarray:
    """How one explicit bucket's requests spread over the log buckets (see the module)."""
    if bound <= 0:  # nothing is faster than 0: the first bucket holds it
        first = np.zeros(NUM_BUCKETS)
        first[0] = 1.0
        return first
    if math.isfinite(bound):
        upper = math.log2(bound * unit_ns)
        below = [b for b in finite if b < upper]
        lower = below[-1] if below else upper - 1
    else:
        lower = finite[-1] if finite else float(FIRST_OCTAVE)
        upper = lower + 1
    low = np.arange(NUM_BUCKETS) / BUCKETS_PER_OCTAVE + FIRST_OCTAVE
    high = low + 1 / BUCKETS_PER_OCTAVE
    low[0], high[-1] = -math.inf, math.inf  # the first and last buckets hold the rest
    overlap: np.ndarray = np.clip(np.minimum(high, upper) - np.maximum(low, lower), 0.0, None)
    return overlap / (upper - lower)


def red_summary(service: str, window: RedWindow) -> ServiceSummary:
    """The window as the summary Measure judges: one operation whose spans are the requests."""
    requests = max(0, round(window.requests))
    op = OperationStats(
        kind=SPAN_KIND_SERVER,
        count=requests,
        entries=requests,
        errors=min(requests, max(0, round(window.errors))),
        histogram=sketch_histogram(window.buckets, window.unit_ns),
    )
    operations = {REQUESTS_OPERATION: op} if requests or op.histogram.any() else {}
    # Metrics count every request: nothing was sampled, whatever the charter's samplingRatio.
    return ServiceSummary(
        service, operations=operations, window_s=window.seconds, fallback_ratio=1.0
    )


def missing_latency(window: RedWindow) -> bool:
    """Requests without a duration histogram: the latency query reads something else."""
    return round(window.requests) > 0 and not any(v > 0 for v in window.buckets.values())


def red_window(
    service: str,
    counts: Sequence[Mapping[str | None, Any]],
    queries: RedQueries,
    seconds: float,
) -> RedWindow:
    """The service's window from the indexed answers (requests, errors, latency); a service
    absent from an answer had none of it (a silent service has no series at all)."""
    requests, errors, latency = counts
    return RedWindow(
        requests=pick(requests, service, names_service(queries.requests)) or 0.0,
        errors=pick(errors, service, names_service(queries.errors)) or 0.0,
        buckets=pick(latency, service, names_service(queries.latency)) or {},
        seconds=seconds,
        unit_ns=UNIT_NS[queries.latency_unit],
    )
