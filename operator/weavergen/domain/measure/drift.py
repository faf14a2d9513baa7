"""Drift detectors: the current window against the baseline, one indicator type each.

Every detector asks for statistical significance (a test at ``Z_CRITICAL``, about p < 0.001 one
sided, strict because seven detectors look at many operations) *and* a minimum effect size, so
ordinary noise — a few percent of latency wobble, 0.5% -> 0.8% errors on a few thousand spans —
raises nothing. Each indicator carries the numbers that triggered it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

from weavergen.domain.measure.health import Requests
from weavergen.domain.measure.sketch import KMV_SIZE, fraction_above, quantile_ns
from weavergen.domain.measure.stats import chi2_sf, g_test, poisson_rate_z, two_proportion_z
from weavergen.domain.measure.summary import AttributeStats, OperationStats, ServiceSummary

Z_CRITICAL = 3.09
P_CRITICAL = 0.001
MIN_OPERATION_SPANS = 50
MIN_INSPECTED = 30
MIN_P95_RATIO = 1.25
# Requests at or below this share of the baseline's rate: the service is as good as silent.
SILENCE_RATIO = 0.1
MIN_DISTINCT = 50
# A key seen for the first time has no baseline to grow from: its sample alone must show values
# that seldom repeat, past the sketch's exact range (a key of ~100 values cannot show 128).
MIN_NEW_KEY_DISTINCT = 2 * KMV_SIZE
MIN_TYPE_SHARE = 0.05  # of the spans carrying an attribute: a stray odd value is not drift

INDICATOR_TYPES = (
    "semantic_drift",
    "latency_degradation",
    "error_rate_increase",
    "retry_storm",
    "throughput_drop",
    "attribute_cardinality_explosion",
    "span_mix_shift",
)


@dataclass(frozen=True)
class DriftIndicator:
    type: str
    severity: float
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "severity": round(self.severity, 4), "evidence": self.evidence}

    def summary(self) -> str:
        """The evidence in one line, for status and text reports."""
        parts = [f"{k}={_short(v)}" for k, v in self.evidence.items() if not isinstance(v, list)]
        for example in self.evidence.get("examples", [])[:2]:
            change = example["change"]
            if change == "type":
                change = (
                    f"type {example['baseline_type']} -> {example['type']} "
                    f"({example['share']:.0%} of spans)"
                )
            parts.append(f"{example['attribute']} {change} on {example['operation']}")
        return ", ".join(parts)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _clip(value: float) -> float:
    return min(1.0, max(0.0, value))


def _errors(summary: ServiceSummary, dependency: bool | None = None) -> tuple[int, int]:
    """(errors, spans) of all operations, or of dependency calls / own operations only."""
    ops = [
        op
        for op in summary.operations.values()
        if dependency is None or op.calls_dependency == dependency
    ]
    return sum(op.errors for op in ops), sum(op.count for op in ops)


def _increase(current: tuple[int, int], baseline: tuple[int, int]) -> tuple[float, float, float]:
    """(baseline rate, current rate, z) of an error-rate comparison."""
    (e_b, n_b), (e_c, n_c) = baseline, current
    p_b = e_b / n_b if n_b else 0.0
    p_c = e_c / n_c if n_c else 0.0
    return p_b, p_c, two_proportion_z(e_b, n_b, e_c, n_c)


def _significant(p_b: float, p_c: float, z: float) -> bool:
    return z >= Z_CRITICAL and p_c - p_b >= max(0.01, p_b)


def error_rate_increase(current: ServiceSummary, baseline: ServiceSummary) -> DriftIndicator | None:
    """More errors; the evidence says whether calls to dependencies carry the increase."""
    p_b, p_c, z = _increase(_errors(current), _errors(baseline))
    if not _significant(p_b, p_c, z):
        return None
    dep_b, dep_c, dep_z = _increase(_errors(current, True), _errors(baseline, True))
    own_b, own_c, _ = _increase(_errors(current, False), _errors(baseline, False))
    # Calls to dependencies carry the increase when theirs is clearly larger than the service's
    # own (a failing database errors its client spans first); equal increases point inward.
    on_dependencies = _significant(dep_b, dep_c, dep_z) and (
        dep_c - dep_b >= 1.5 * (own_c - own_b) + 0.02
    )
    return DriftIndicator(
        "error_rate_increase",
        _clip((p_c - p_b) / 0.25),
        {
            "baseline_error_rate": round(p_b, 5),
            "error_rate": round(p_c, 5),
            "dependency_error_rate": round(dep_c, 5),
            "own_error_rate": round(own_c, 5),
            "on_dependency_calls": on_dependencies,
            "z": round(z, 2),
            "spans": current.span_count,
        },
    )


def bonferroni_z(tests: int, alpha: float = P_CRITICAL) -> float:
    """One-sided critical z when ``tests`` comparisons share the false-alarm budget ``alpha``."""
    return NormalDist().inv_cdf(1 - alpha / max(tests, 1))


def _p95_ratio_bound(cur: np.ndarray, base: np.ndarray, n_cur: int, n_base: int) -> float:
    """A lower confidence bound (one-sided 95%) of the current p95 over the baseline's.

    The minimum effect must hold for the bound, not the point estimate: a p95 estimated from a
    few hundred spans wanders by 10-20%, and the largest of several operations' ratios would
    otherwise pass it on ordinary hour-to-hour wobble. Binomial order-statistic bounds: the
    current p95 is at least its (0.95 - 1.645 se) quantile, the baseline's at most its
    (0.95 + 1.645 se) quantile.
    """

    def margin(n: int) -> float:
        return 1.645 * math.sqrt(0.95 * 0.05 / max(n, 1))

    low = quantile_ns(cur, max(0.0, 0.95 - margin(n_cur)))
    high = quantile_ns(base, min(1.0, 0.95 + margin(n_base)))
    return low / high if high > 0 else 0.0


def latency_degradation(current: ServiceSummary, baseline: ServiceSummary) -> DriftIndicator | None:
    """An operation whose spans exceed its baseline p95 far more often, with p95 >= 1.25x
    (the lower confidence bound of the ratio, see ``_p95_ratio_bound``).

    Operations are compared one by one: a service-wide comparison would mistake a shift in the
    operation mix (more calls to a slow endpoint) for every operation getting slower. The whole
    service is compared only when no operation has enough spans on both sides.
    """
    candidates = [
        (
            name,
            op.histogram,
            baseline.operations[name].histogram,
            op.count,
            baseline.operations[name].count,
        )
        for name, op in current.operations.items()
        if name in baseline.operations
        and op.count >= MIN_OPERATION_SPANS
        and baseline.operations[name].count >= MIN_OPERATION_SPANS
    ] or [
        (
            "(service)",
            current.histogram(),
            baseline.histogram(),
            current.span_count,
            baseline.span_count,
        )
    ]
    critical = bonferroni_z(len(candidates))
    worst: tuple[float, dict[str, Any]] | None = None
    worst_ratio = {True: 0.0, False: 0.0}  # by "calls a dependency"
    for name, cur, base, n_cur, n_base in candidates:
        p95_b = quantile_ns(base, 0.95)
        share_b, share_c = fraction_above(base, p95_b), fraction_above(cur, p95_b)
        z = two_proportion_z(share_b * n_base, n_base, share_c * n_cur, n_cur)
        p95_c = quantile_ns(cur, 0.95)
        ratio = p95_c / p95_b if p95_b > 0 else 0.0
        if z < critical or share_c < 2 * share_b:
            continue
        if _p95_ratio_bound(cur, base, n_cur, n_base) < MIN_P95_RATIO:
            continue
        op = current.operations.get(name)
        calls_dependency = bool(op and op.calls_dependency)
        worst_ratio[calls_dependency] = max(worst_ratio[calls_dependency], ratio)
        evidence = {
            "operation": name,
            "baseline_p95_ms": round(p95_b / 1e6, 3),
            "p95_ms": round(p95_c / 1e6, 3),
            "p95_ratio": round(ratio, 3),
            "share_above_baseline_p95": round(share_c, 4),
            "z": round(z, 2),
        }
        if worst is None or ratio > worst[0]:
            worst = (ratio, evidence)
    if worst is None:
        return None
    # Dependency calls carry it when they slowed down clearly more than the service's own work.
    worst[1]["on_dependency_calls"] = worst_ratio[True] >= 1.5 * max(worst_ratio[False], 1.0)
    return DriftIndicator("latency_degradation", _clip((worst[0] - 1) / 2), worst[1])


def throughput_drop(current: ServiceSummary, baseline: ServiceSummary) -> DriftIndicator | None:
    """Requests (entry spans) falling well below the baseline's rate, down to silence.

    A window with few spans or none is judged too, as long as it covers enough time: a service
    that stopped answering is the worst drop, not missing data (``silent``: at most
    ``SILENCE_RATIO`` of the expected requests).

    Behind a sampler the rates and the ratio are estimates of the real ones (the sample scaled
    up), while the test runs on the sampled counts over their exposure (``Requests``): a 25%
    sample of a halved rate is still found, on the evidence a quarter of the spans give.
    """
    requests = Requests.of(current, baseline)
    if requests.baseline <= 0 or requests.baseline_s <= 0 or requests.current_s <= 0:
        return None
    ratio = requests.ratio
    z = poisson_rate_z(
        requests.baseline, requests.baseline_exposure, requests.current, requests.current_exposure
    )
    if -z < Z_CRITICAL or ratio > 0.6:
        return None
    sampled = (
        {"sampled_requests": requests.current, "sampling_ratio": round(requests.current_p, 4)}
        if requests.current_p < 1 or requests.baseline_p < 1
        else {}
    )
    return DriftIndicator(
        "throughput_drop",
        _clip((1 - ratio) / 0.8),
        {
            "baseline_requests_per_s": round(requests.baseline_rate, 3),
            "requests_per_s": round(requests.current_rate, 3),
            "requests": round(requests.current_rate * requests.current_s),
            "expected_requests": round(requests.baseline_rate * requests.current_s),
            "window_seconds": round(requests.current_s, 1),
            "ratio": round(ratio, 3),
            "z": round(z, 2),
            "silent": ratio <= SILENCE_RATIO,
            **sampled,
        },
    )


def _retries(summary: ServiceSummary) -> tuple[int, int]:
    inspected = sum(op.inspected for op in summary.operations.values())
    return sum(op.retries for op in summary.operations.values()), inspected


def _fans_out_per_request(current: ServiceSummary, baseline: ServiceSummary) -> bool:
    """Whether spans per request rose by half, counted exactly where both sides have entry
    spans: the per-trace figure comes from a distinct-count sketch that can misjudge a few
    hundred traces by a third, so it alone cannot raise an alarm where the counts say no."""
    if not (baseline.entry_count and current.entry_count):
        return True  # nothing exact to ask: the sketch's figure stands
    per_request_b = baseline.span_count / baseline.entry_count
    return current.span_count / current.entry_count >= 1.5 * per_request_b


def retry_storm(current: ServiceSummary, baseline: ServiceSummary) -> DriftIndicator | None:
    """Retried spans (semconv resend counts) or spans per trace rising well above the baseline."""
    r_b, i_b = _retries(baseline)
    r_c, i_c = _retries(current)
    share_b = r_b / i_b if i_b else 0.0
    share_c = r_c / i_c if i_c else 0.0
    z = two_proportion_z(r_b, i_b, r_c, i_c)
    spt_b, spt_c = baseline.spans_per_trace(), current.spans_per_trace()
    spt_ratio = spt_c / spt_b if spt_b else 0.0
    traces_c = current.traces.estimate()
    by_share = z >= Z_CRITICAL and share_c >= 0.05 and share_c >= 3 * share_b
    by_fanout = (
        spt_ratio >= 1.5
        and traces_c >= KMV_SIZE
        and baseline.traces.estimate() >= KMV_SIZE
        and _fans_out_per_request(current, baseline)
    )
    if not (by_share or by_fanout):
        return None
    severity = max(_clip(share_c / 0.3), _clip((spt_ratio - 1) / 2) if by_fanout else 0.0)
    return DriftIndicator(
        "retry_storm",
        severity,
        {
            "baseline_retry_share": round(share_b, 4),
            "retry_share": round(share_c, 4),
            "z": round(z, 2),
            "baseline_spans_per_trace": round(spt_b, 3),
            "spans_per_trace": round(spt_c, 3),
        },
    )


def _cardinality(stats: AttributeStats, inspected: int) -> tuple[float, float]:
    """(distinct values, uniqueness): distinct values per inspected span, at most 1."""
    distinct = stats.distinct.estimate()
    return distinct, min(1.0, distinct / inspected) if inspected else 0.0


def _most_unique(summary: ServiceSummary) -> dict[str, tuple[float, float]]:
    """Per attribute key, its ``_cardinality`` on the operation where it was most unique."""
    known: dict[str, tuple[float, float]] = {}
    for op in summary.operations.values():
        for key, stats in op.attributes.items():
            seen = _cardinality(stats, op.inspected)
            if key not in known or seen[1] > known[key][1]:
                known[key] = seen
    return known


def attribute_cardinality_explosion(
    current: ServiceSummary, baseline: ServiceSummary
) -> DriftIndicator | None:
    """An attribute (or the span name) that went from few values, or none, to nearly one per span.

    A key the operation did not carry in the baseline is compared with the same key on the
    baseline's other operations (an id present all along stays quiet); a key the baseline never
    carried anywhere must itself show ``MIN_NEW_KEY_DISTINCT`` mostly unique values.
    """
    worst: tuple[float, dict[str, Any]] | None = None
    names_b, names_c = baseline.operation_names.estimate(), current.operation_names.estimate()
    if names_c >= 50 and names_c >= 5 * max(names_b, 1):
        worst = (
            names_c / max(names_b, 1),
            {
                "attribute": "(span name)",
                "baseline_distinct": round(names_b),
                "distinct": round(names_c),
            },
        )
    known = _most_unique(baseline)
    for name, op in current.operations.items():
        base = baseline.operations.get(name)
        if op.inspected < MIN_INSPECTED or (base is not None and base.inspected < MIN_INSPECTED):
            continue
        for key, stats in op.attributes.items():
            distinct, u_c = _cardinality(stats, op.inspected)
            if distinct < MIN_DISTINCT:
                continue
            base_stats = base.attributes.get(key) if base is not None else None
            reference = (
                _cardinality(base_stats, base.inspected)
                if base is not None and base_stats is not None
                else known.get(key)
            )
            d_b, u_b = reference or (0.0, 0.0)
            minimum = MIN_DISTINCT if reference is not None else MIN_NEW_KEY_DISTINCT
            if distinct < minimum or u_c < 0.5 or u_c < 5 * max(u_b, 0.01):
                continue
            ratio = distinct / max(d_b, 1)
            evidence = {
                "operation": name,
                "attribute": key,
                "new_key": reference is None,
                "baseline_distinct": round(d_b),
                "distinct": round(distinct),
                "baseline_uniqueness": round(u_b, 3),
                "uniqueness": round(u_c, 3),
                "inspected": op.inspected,
            }
            if worst is None or ratio > worst[0]:
                worst = (ratio, evidence)
    if worst is None:
        return None
    return DriftIndicator(
        "attribute_cardinality_explosion", _clip(math.log10(max(worst[0], 1)) / 2), worst[1]
    )


def span_mix_shift(current: ServiceSummary, baseline: ServiceSummary) -> DriftIndicator | None:
    """The share of spans per operation moved (total variation >= 0.15, G-test significant)."""
    names = sorted(set(current.operations) | set(baseline.operations))
    if len(names) < 2:
        return None
    counts_b = [
        float(baseline.operations[n].count) if n in baseline.operations else 0.0 for n in names
    ]
    counts_c = [
        float(current.operations[n].count) if n in current.operations else 0.0 for n in names
    ]
    total_b, total_c = sum(counts_b), sum(counts_c)
    if not total_b or not total_c:
        return None  # no mix to compare (a silent window is throughput_drop's)
    tvd = 0.5 * sum(abs(b / total_b - c / total_c) for b, c in zip(counts_b, counts_c, strict=True))
    g, dof = g_test(counts_b, counts_c)
    p = chi2_sf(g, dof)
    if tvd < 0.15 or p > P_CRITICAL:
        return None
    moved = sorted(
        names,
        key=lambda n: -abs(counts_c[names.index(n)] / total_c - counts_b[names.index(n)] / total_b),
    )[:3]
    return DriftIndicator(
        "span_mix_shift",
        _clip(tvd / 0.5),
        {
            "total_variation": round(tvd, 4),
            "g": round(g, 2),
            "p_value": float(f"{p:.3g}"),
            "most_moved": moved,
        },
    )


def _presence(op: OperationStats, key: str) -> float:
    stats = op.attributes.get(key)
    return stats.carried / op.inspected if stats and op.inspected else 0.0


def _type_shifts(
    name: str, op: OperationStats, base: OperationStats, key: str
) -> list[tuple[float, dict[str, Any] | None]]:
    """(z, change) per value type the attribute's spans carry now; change ``None`` if too small.

    Shares are of the inspected spans carrying the key, so an attribute that is merely set more
    often keeps its mix of types; the new type's share must rise by ``MIN_TYPE_SHARE`` and at
    least double, so a mix the baseline already had (ints and doubles, say) may wobble.
    """
    stats, before = op.attributes.get(key), base.attributes.get(key)
    if stats is None or before is None or min(stats.carried, before.carried) < MIN_INSPECTED:
        return []
    shifts: list[tuple[float, dict[str, Any] | None]] = []
    for kind, hits in stats.value_types.items():
        hits_b = before.value_types.get(kind, 0)
        p_b, p_c = hits_b / before.carried, hits / stats.carried
        z = two_proportion_z(hits_b, before.carried, hits, stats.carried)
        if p_c - p_b < max(MIN_TYPE_SHARE, p_b):
            shifts.append((z, None))
            continue
        old = next((k for k, _ in before.value_types.most_common() if k != kind), None)
        change = {
            "operation": name,
            "attribute": key,
            "change": "type",
            "baseline_type": old,
            "type": kind,
            "share": round(hits / op.inspected, 3),
            "baseline_carrier_share": round(p_b, 3),
            "carrier_share": round(p_c, 3),
            "z": round(z, 2),
        }
        shifts.append((z, change))
    return shifts


def _affected(change: dict[str, Any]) -> float:
    """Share of the operation's spans a change touches."""
    if change["change"] == "disappeared":
        return float(change["baseline_presence"])
    return float(change["presence"] if change["change"] == "appeared" else change["share"])


def semantic_drift(current: ServiceSummary, baseline: ServiceSummary) -> DriftIndicator | None:
    """Attributes that disappeared, appeared or changed type (on any share) on an operation.

    Type shares are compared for every attribute and type, so their test is Bonferroni-corrected.
    """
    changes: list[dict[str, Any]] = []
    shifts: list[tuple[float, dict[str, Any] | None]] = []
    for name, op in current.operations.items():
        base = baseline.operations.get(name)
        if base is None or op.inspected < MIN_INSPECTED or base.inspected < MIN_INSPECTED:
            continue
        for key in sorted(set(op.attributes) | set(base.attributes)):
            before, after = _presence(base, key), _presence(op, key)
            z = two_proportion_z(
                before * base.inspected, base.inspected, after * op.inspected, op.inspected
            )
            if before >= 0.9 and after <= 0.5 and -z >= Z_CRITICAL:
                changes.append(
                    {
                        "operation": name,
                        "attribute": key,
                        "change": "disappeared",
                        "baseline_presence": round(before, 3),
                        "presence": round(after, 3),
                    }
                )
            elif before <= 0.05 and after >= 0.5 and z >= Z_CRITICAL:
                changes.append(
                    {
                        "operation": name,
                        "attribute": key,
                        "change": "appeared",
                        "baseline_presence": round(before, 3),
                        "presence": round(after, 3),
                    }
                )
            else:
                shifts += _type_shifts(name, op, base, key)
    critical = bonferroni_z(len(shifts))
    changes += [change for z, change in shifts if change is not None and z >= critical]
    if not changes:
        return None
    affected = max(_affected(c) for c in changes)
    return DriftIndicator(
        "semantic_drift",
        _clip(0.5 * affected + 0.1 * len(changes)),
        {"changes": len(changes), "examples": changes[:5]},
    )


DETECTORS: tuple[Callable[[ServiceSummary, ServiceSummary], DriftIndicator | None], ...] = (
    semantic_drift,
    latency_degradation,
    error_rate_increase,
    retry_storm,
    throughput_drop,
    attribute_cardinality_explosion,
    span_mix_shift,
)


def detect(current: ServiceSummary, baseline: ServiceSummary) -> list[DriftIndicator]:
    """Every indicator that fires, in the fixed order of ``INDICATOR_TYPES``."""
    return [i for detector in DETECTORS if (i := detector(current, baseline)) is not None]
