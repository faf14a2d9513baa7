"""ThresholdCalculator: entropy thresholds from the baseline's own noise, never below the defaults.

A parametric bootstrap: windows are resampled from the baseline summary (Poisson span counts,
multinomial operation mix and latency buckets, binomial errors; attributes as observed) and each
is measured against the baseline exactly as a real window would be. The 99th percentile of those
entropies is the noise floor a healthy system reaches by chance. MEDIUM starts a margin above it
(wider for more complex systems), and HIGH and CRITICAL move up by the same amount, so a noisy
system does not flap between levels while a quiet one keeps the defaults.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from weavergen.domain.measure.entropy import Thresholds
from weavergen.domain.measure.health import DEFAULT_OBJECTIVES, Objectives
from weavergen.domain.measure.measure import measure
from weavergen.domain.measure.semconv import Registry
from weavergen.domain.measure.summary import ServiceSummary

MAX_CRITICAL = 0.95


@dataclass(frozen=True)
class ComputedThresholds:
    thresholds: Thresholds
    noise_p99: float
    samples: int


class ThresholdCalculator:
    """Thresholds for one system from its baseline; deterministic for a given seed."""

    def __init__(
        self,
        defaults: Thresholds,
        complexity: float,
        *,
        samples: int = 200,
        seed: int = 0,
    ) -> None:
        self.defaults = defaults
        self.complexity = min(1.0, max(0.0, complexity))
        self.samples = samples
        self.seed = seed

    def margin(self) -> float:
        return 0.05 + 0.1 * self.complexity

    def resample(self, baseline: ServiceSummary, rng: np.random.Generator) -> ServiceSummary:
        """A window the healthy baseline could have produced by chance."""
        window = copy.deepcopy(baseline)
        names = list(window.operations)
        counts = np.array([window.operations[n].count for n in names], dtype=np.float64)
        total = int(rng.poisson(counts.sum()))
        drawn = rng.multinomial(total, counts / counts.sum()) if counts.sum() else counts
        for name, n in zip(names, drawn, strict=True):
            op, base = window.operations[name], baseline.operations[name]
            op.count = int(n)
            # Spans of known sampling probability keep their share and adjusted count per span.
            share = n / base.count if base.count else 0.0
            op.sampled, op.adjusted = round(base.sampled * share), base.adjusted * share
            op.errors = int(rng.binomial(n, base.errors / base.count)) if base.count else 0
            hist = base.histogram / base.histogram.sum() if base.histogram.sum() else None
            op.histogram = rng.multinomial(n, hist) if hist is not None else op.histogram * 0
        return window

    def noise_floor(
        self, baseline: ServiceSummary, registry: Registry, objectives: Objectives
    ) -> float:
        rng = np.random.default_rng(self.seed)
        scores = [
            measure(
                self.resample(baseline, rng),
                baseline,
                registry=registry,
                objectives=objectives,
                thresholds=self.defaults,
                min_spans=1,
            ).entropy_score
            or 0.0
            for _ in range(self.samples)
        ]
        return float(np.quantile(scores, 0.99))

    def compute(
        self,
        baseline: ServiceSummary,
        registry: Registry | None = None,
        objectives: Objectives = DEFAULT_OBJECTIVES,
    ) -> ComputedThresholds:
        noise = self.noise_floor(baseline, registry or Registry.builtin(), objectives)
        shift = max(0.0, noise + self.margin() - self.defaults.medium)
        critical = min(MAX_CRITICAL, self.defaults.critical + shift)
        high = min(critical - 0.01, self.defaults.high + shift)
        medium = min(high - 0.01, self.defaults.medium + shift)
        return ComputedThresholds(
            Thresholds(round(medium, 4), round(high, 4), round(critical, 4)), noise, self.samples
        )
