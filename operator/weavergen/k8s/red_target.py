"""A charter's telemetry from Prometheus: its RED window, its captured baseline, and the spans
sampled beside them for the semantic conventions.

The baseline is captured as the span path captures one (``ClusterTarget.baseline``): a charter
is applied to a system that is healthy now, so the first measurement with enough requests keeps
the same queries' counts over ``captureWindows`` windows, ending then, in ``<charter>-baseline``
(key ``red.json``), and measuring starts from the next measurement. Prometheus keeps history, so
nothing has to be waited for when it has watched the service long enough; it is captured only
when it has: the window before that range must show requests already, or ``increase()`` would
count the range from the service's first scrape on, a rate too low to hold later windows to (a
series that starts mid-range is extrapolated over the part it covers only).

Sampled spans (the Collector forwards a sample to the operator's receiver) keep the semantic
conventions measured: when the receiver has spans of the service at capture, they are kept
beside the counts (``samples.json``) and each measurement validates the receiver's current
window against them. Without them the status says ``semanticConventions: none``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NoReturn

from weavergen.api.charter import RegenerationCharterSpec
from weavergen.config import operator_config
from weavergen.domain.errors import BaselinePending, PrometheusQueryFailed
from weavergen.domain.measure.measure import Counts
from weavergen.domain.measure.red import missing_latency, red_summary
from weavergen.domain.measure.summary import ServiceSummary
from weavergen.k8s.rest import Obj, Rest
from weavergen.k8s.versioned import VersionedCache
from weavergen.telemetry.prometheus import Prometheus

RED_KEY = "red.json"
SAMPLES_KEY = "samples.json"
Captured = tuple[ServiceSummary | None, ServiceSummary | None]
CAPTURED_RED: VersionedCache[Captured] = VersionedCache()


@functools.cache
def shared_prometheus() -> Prometheus:
    """The process's Prometheus client: its answers are shared by every charter."""
    return Prometheus(operator_config().prometheus_auth)


@dataclass(frozen=True)
class Parts:
    """What one measurement judges, and where each part came from (see ``measure``)."""

    current: ServiceSummary
    baseline: ServiceSummary | None
    pending: str | None = None
    counts: Counts = "spans"
    attributes: tuple[ServiceSummary, ServiceSummary] | None = None
    sources: dict[str, str] = field(default_factory=dict)


class RedTelemetry:
    """One charter's RED metrics; ``store`` keeps a captured baseline's ConfigMap data."""

    def __init__(
        self,
        rest: Rest,
        namespace: str,
        baseline_name: str,
        spec: RegenerationCharterSpec,
        *,
        store: Callable[[dict[str, str]], None],
        samples: Callable[[], ServiceSummary] | None = None,
        prometheus: Prometheus | None = None,
    ) -> None:
        assert spec.telemetry.prometheus is not None  # the schema requires it
        self.rest = rest
        self.namespace = namespace
        self.baseline_name = baseline_name
        self.telemetry = spec.telemetry
        self.source = spec.telemetry.prometheus
        self.store = store
        self.samples = samples
        self.prometheus = prometheus or shared_prometheus()

    def window(self, seconds: float, end: float) -> ServiceSummary:
        """The service's requests over the ``seconds`` before ``end``, as a summary."""
        service = self.telemetry.service_name
        red = self.prometheus.red(self.source, service, seconds, end)
        if missing_latency(red):
            raise PrometheusQueryFailed(
                f"Prometheus at {self.source.url}: the latency query has no buckets for "
                f"{service}, which had {red.requests:.0f} requests (check telemetry.prometheus."
                "latency and serviceLabel)"
            )
        return red_summary(service, red)

    def parts(self) -> Parts:
        """The current window, the baseline (or why there is none yet), and the samples."""
        end = self.prometheus.now()
        current = self.window(self.telemetry.window_seconds, end)
        baseline: ServiceSummary | None = None
        sampled_before: ServiceSummary | None = None
        pending = None
        try:
            baseline, sampled_before = self.baseline(end)
        except BaselinePending as err:
            pending = str(err)
        attributes = None
        if sampled_before is not None and self.samples is not None:
            sampled = self.samples()
            attributes = (sampled, sampled_before) if sampled.span_count else None
        return Parts(
            current,
            baseline,
            pending,
            counts="red",
            attributes=attributes,
            sources={
                "red": "prometheus",
                "semantic_conventions": "otlp" if attributes else "none",
            },
        )

    def baseline(self, end: float) -> tuple[ServiceSummary, ServiceSummary | None]:
        """The captured baseline and its sampled spans; captured now if there is none."""
        stored = CAPTURED_RED.get(
            self.rest,
            "ConfigMap",
            self.namespace,
            self.baseline_name,
            purpose=RED_KEY,
            derive=_captured,
        )
        if stored is not None and stored[0] is not None:
            return stored[0], stored[1]
        self.capture(end)

    def capture(self, end: float) -> NoReturn:
        """Keep the range of ``captureWindows`` windows ending at ``end`` as the baseline,
        once Prometheus has watched all of it (see the module); BaselinePending either way."""
        t = self.telemetry
        length = t.window_seconds * t.baseline.capture_windows
        if self.window(t.window_seconds, end - length).span_count == 0:
            raise BaselinePending(
                f"no baseline yet: Prometheus has no requests of {t.service_name} in the window "
                f"before the baseline's {length} s range: it has not watched the whole range"
            )
        window = self.window(length, end)
        if window.span_count < t.min_spans:
            raise BaselinePending(
                f"no baseline yet: Prometheus counts {window.span_count} requests of "
                f"{t.service_name} in the last {length} s, fewer than {t.min_spans}"
            )
        data = {RED_KEY: json.dumps(window.to_dict())}
        sampled = self.samples() if self.samples is not None else None
        if sampled is not None and sampled.span_count:
            data[SAMPLES_KEY] = json.dumps(sampled.to_dict())
        self.store(data)
        raise BaselinePending(
            f"captured the baseline from Prometheus over the last {length} s; measuring from "
            "the next measurement"
        )


def _captured(config_map: Obj) -> Captured:
    """The RED baseline and its samples in a baseline ConfigMap (None: not captured yet; a
    span baseline from when the charter read spans is no RED baseline)."""
    data = config_map.get("data") or {}

    def summary(key: str) -> ServiceSummary | None:
        return ServiceSummary.from_dict(json.loads(data[key])) if key in data else None

    return summary(RED_KEY), summary(SAMPLES_KEY)
