"""Every Prometheus metric of the operator, declared in one place.

Labels stay bounded: namespace and charter name (one series per charter, removed with it),
phase, outcome, indicator type, chart and rule (fixed sets). The receiver's span counts are read
from its own counters at scrape time rather than counted twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from weavergen.domain.decide.cycle_status import cycle_duration_seconds
from weavergen.domain.decide.spc import RULES, Signal
from weavergen.domain.measure.drift import INDICATOR_TYPES
from weavergen.telemetry.windows import WindowStore

CHARTER = ("namespace", "charter")
PHASE_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 180, 300, 600)
CYCLE_BUCKETS = (5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800)

ENTROPY_SCORE = Gauge(
    "weavergen_entropy_score", "Latest entropy score of a charter's target (0-1).", CHARTER
)
ENTROPY_LEVEL = Gauge(
    "weavergen_entropy_level",
    "Latest entropy level as a number: 0 low, 1 medium, 2 high, 3 critical.",
    CHARTER,
)
HEALTH_SCORE = Gauge("weavergen_health_score", "Latest health score (0-1).", CHARTER)
INDICATORS = Gauge(
    "weavergen_drift_indicator_severity",
    "Severity (0-1) of each drift indicator type in the latest measurement; 0 when absent.",
    (*CHARTER, "type"),
)
VALIDATION_ERRORS = Gauge(
    "weavergen_validation_errors",
    "Semantic-convention validation errors new since the baseline, latest measurement.",
    CHARTER,
)
CIRCUIT_OPEN = Gauge(
    "weavergen_circuit_breaker_open", "1 while the charter's circuit breaker is open.", CHARTER
)
CYCLES = Counter(
    "weavergen_cycles_total", "Finished regeneration cycles by outcome.", (*CHARTER, "outcome")
)
ROLLBACKS = Counter("weavergen_rollbacks_total", "Cycles that rolled their changes back.", CHARTER)
PHASE_DURATION = Histogram(
    "weavergen_phase_duration_seconds",
    "Duration of DMEDI phases.",
    ("phase",),
    buckets=PHASE_BUCKETS,
)
CYCLE_DURATION = Histogram(
    "weavergen_cycle_duration_seconds",
    "Duration of whole cycles by outcome.",
    ("outcome",),
    buckets=CYCLE_BUCKETS,
)
PROMETHEUS_QUERIES = Counter(
    "weavergen_prometheus_queries_total",
    "Queries sent to the Prometheus servers charters read (one per query and slot, shared by "
    "the charters), by outcome: ok, unavailable (no answer, 5xx), failed (an error answer).",
    ("outcome",),
)
PROMETHEUS_QUERY_SECONDS = Histogram(
    "weavergen_prometheus_query_duration_seconds",
    "Time Prometheus took to answer a query, errors included.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
GATE_DECISIONS = Counter(
    "weavergen_gate_decisions_total", "Answers of the entropy gate.", ("decision",)
)
SPC_SIGNALS = Counter(
    "weavergen_spc_signals_total",
    "Control-chart signals by chart and Western Electric rule.",
    (*CHARTER, "metric", "chart", "rule"),
)
FORECAST_SECONDS = Gauge(
    "weavergen_entropy_forecast_seconds",
    "Predicted seconds until entropy crosses its next threshold; absent without a rising trend.",
    (*CHARTER, "level"),
)
NOTIFICATION_RESULTS = ("delivered", "failed", "retried", "dropped_rate_limited", "duplicate")
NOTIFICATIONS = Counter(
    "weavergen_notifications_total",
    "Notification deliveries by sink and result: delivered, failed (refused or out of attempts), "
    "retried (an attempt to repeat), dropped_rate_limited (held back, told in a summary), "
    "duplicate (offered again after delivery, not sent).",
    ("sink", "result"),
)

LEVEL_NUMBER = {"low": 0, "medium": 1, "high": 2, "critical": 3}
_CHARTER_METRICS = (
    ENTROPY_SCORE,
    ENTROPY_LEVEL,
    HEALTH_SCORE,
    VALIDATION_ERRORS,
    CIRCUIT_OPEN,
    ROLLBACKS,
)


for _decision in ("allowed", "blocked", "regenerating"):
    GATE_DECISIONS.labels(_decision)  # every answer's series exists from the start, at 0


def record_prometheus_query(outcome: str, seconds: float) -> None:
    """One query sent to a Prometheus: ``ok``, ``unavailable`` or ``failed``."""
    PROMETHEUS_QUERIES.labels(outcome).inc()
    PROMETHEUS_QUERY_SECONDS.observe(seconds)


def record_notification(sink: str, result: str) -> None:
    NOTIFICATIONS.labels(sink, result).inc()


def declare_sinks(sinks: Iterable[str]) -> None:
    """Every configured sink's series from the start, at 0."""
    for sink in sinks:
        for result in NOTIFICATION_RESULTS:
            NOTIFICATIONS.labels(sink, result)


def record_charter(namespace: str, charter: str, status: Mapping[str, Any]) -> None:
    """Set a charter's gauges from the status the operator just wrote.

    Its counters start at 0 here, so a dashboard sees "no rollbacks" rather than no data.
    """
    ROLLBACKS.labels(namespace, charter)
    for metric in ("entropy", "health"):
        for rule in RULES:
            SPC_SIGNALS.labels(namespace, charter, metric, "individuals", rule)
    entropy = status.get("entropy") or {}
    if entropy.get("score") is not None:
        ENTROPY_SCORE.labels(namespace, charter).set(entropy["score"])
        ENTROPY_LEVEL.labels(namespace, charter).set(LEVEL_NUMBER[entropy["level"]])
        HEALTH_SCORE.labels(namespace, charter).set(entropy.get("healthScore") or 0.0)
        VALIDATION_ERRORS.labels(namespace, charter).set(entropy.get("validationErrorCount", 0))
        found = {i["type"]: i["severity"] for i in entropy.get("indicators") or []}
        for kind in INDICATOR_TYPES:
            INDICATORS.labels(namespace, charter, kind).set(found.get(kind, 0.0))
    breaker = status.get("circuitBreaker")
    if breaker:
        CIRCUIT_OPEN.labels(namespace, charter).set(1 if breaker.get("state") == "Open" else 0)


def record_forecast(namespace: str, charter: str, forecast: Mapping[str, Any] | None) -> None:
    _remove_matching(FORECAST_SECONDS, namespace, charter)
    if forecast:
        FORECAST_SECONDS.labels(namespace, charter, forecast["level"]).set(forecast["seconds"])


def record_cycle(namespace: str, charter: str, final: Mapping[str, Any]) -> None:
    """Count a finished cycle, its rollback and its phase and cycle durations."""
    outcome = str(final.get("phase"))
    CYCLES.labels(namespace, charter, outcome).inc()
    if outcome == "RolledBack":
        ROLLBACKS.labels(namespace, charter).inc()
    for phase in final.get("phases") or []:
        if phase.get("durationSeconds") is not None:
            PHASE_DURATION.labels(phase["name"]).observe(phase["durationSeconds"])
    duration = cycle_duration_seconds(final)
    if duration is not None:
        CYCLE_DURATION.labels(outcome).observe(duration)


def record_signal(namespace: str, charter: str, metric: str, signal: Signal) -> None:
    SPC_SIGNALS.labels(namespace, charter, metric, signal.chart, signal.rule).inc()


def forget_charter(namespace: str, charter: str) -> None:
    """Drop a deleted charter's series so the label set stays bounded by live charters."""
    for metric in (*_CHARTER_METRICS, INDICATORS, CYCLES, SPC_SIGNALS, FORECAST_SECONDS):
        _remove_matching(metric, namespace, charter)


def _remove_matching(metric: Gauge | Counter, namespace: str, charter: str) -> None:
    # Label values of a child are in the metric's label order; CHARTER labels come first.
    for values in list(metric._metrics):
        if values[:2] == (namespace, charter):
            metric.remove(*values)


class ReceiverCollector(Collector):
    """Span counts straight from the receiver's counters, read at scrape time."""

    def __init__(self, store: WindowStore) -> None:
        self.store = store

    def collect(self) -> Iterable[Metric]:
        counters = self.store.counters
        received = CounterMetricFamily(
            "weavergen_spans_received", "Spans accepted by the OTLP receiver."
        )
        received.add_metric([], counters.spans_accepted)
        dropped = CounterMetricFamily(
            "weavergen_spans_dropped", "Spans the receiver dropped (service limit reached)."
        )
        dropped.add_metric([], counters.spans_dropped)
        requests = CounterMetricFamily(
            "weavergen_receiver_requests", "OTLP requests by result.", labels=("result",)
        )
        requests.add_metric(["accepted"], counters.requests - counters.rejected_requests)
        requests.add_metric(["rejected"], counters.rejected_requests)
        yield from (received, dropped, requests)


def register_receiver(store: WindowStore, registry: CollectorRegistry = REGISTRY) -> None:
    registry.register(ReceiverCollector(store))


def exposition(registry: CollectorRegistry = REGISTRY) -> bytes:
    """The text exposition of every metric, as ``/metrics`` serves it."""
    return generate_latest(registry)
