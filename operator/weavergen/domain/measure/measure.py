"""Measure: a current window against a baseline -> entropy, health, indicators, validation.

The output follows the measurement contract of DESIGN.md section 5. Validation findings that the
baseline already had (a development-stability attribute the service has always used, say) are
reported as ``validation_known`` and do not count: only what changed since the baseline counts.

Missing telemetry is evidence, never a pass. A window with too few spans is ``insufficient_data``
only while there is nothing to judge it by: no baseline yet, or one too small, or a window too
short to expect much. When the baseline had traffic and the window has (almost) none, the
service went silent: a ``throughput_drop`` marked ``silent``, and the level at least HIGH. The
state of the target workloads (crash loops, OOM kills, pods not Ready, a stalled rollout,
Warning events) is evidence of its own: it measures a service that sends no spans at all.

Spans may reach the operator through a sampler. Each says its sampling probability in its
tracestate when the sampler wrote one; the others are taken as sampled at ``sampling_ratio``
(the charter's ``samplingRatio``, 1 by default). Rates are estimated from what the spans stand
for; every test, and ``min_spans``, judges the spans that came, the sample as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from weavergen.api.charter import RegenerationCharterSpec
from weavergen.api.profiles import profile_for, resolve_spec
from weavergen.domain.measure.drift import DriftIndicator, detect, throughput_drop
from weavergen.domain.measure.entropy import DEFAULT_THRESHOLDS, Thresholds, entropy_score
from weavergen.domain.measure.health import DEFAULT_OBJECTIVES, Health, Objectives, health_of
from weavergen.domain.measure.otlp import decode
from weavergen.domain.measure.semconv import Finding, Registry, validate
from weavergen.domain.measure.summary import ServiceSummary, Summariser
from weavergen.domain.measure.workload import WorkloadHealth

DEFAULT_MIN_SPANS = 100


Insufficient = Literal["baseline", "window"]
# What a window's counts come from: spans, or RED metrics (requests, errors, durations).
Counts = Literal["spans", "red"]
TELEMETRY: frozenset[str] = frozenset(("spans", "red"))


@dataclass(frozen=True)
class Measurement:
    """One measurement; ``status`` is ``insufficient_data`` when there is nothing to judge by.

    ``insufficient`` says what is missing: the ``baseline`` (none yet, or too small) or enough
    of a ``window``. ``evidence`` names where a measurement came from: spans, RED metrics
    (``red``), Kubernetes state. ``sources`` says where the caller read each part from.
    """

    service: str
    status: str
    span_count: int
    baseline_span_count: int
    thresholds: Thresholds
    sampling_ratio: float = 1.0  # the share of the window's spans that reached the operator
    represented_spans: int = 0  # the spans the window stands for: span_count / sampling_ratio
    entropy_score: float | None = None
    health: Health | None = None
    drift_indicators: list[DriftIndicator] = field(default_factory=list)
    validation_errors: list[Finding] = field(default_factory=list)
    validation_known: list[Finding] = field(default_factory=list)
    reason: str = ""
    insufficient: Insufficient | None = None
    evidence: tuple[str, ...] = ()
    workload: WorkloadHealth | None = None
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def entropy_level(self) -> str | None:
        if self.entropy_score is None:
            return None
        return self.thresholds.level(self.entropy_score).value

    @property
    def health_score(self) -> float | None:
        return None if self.health is None else round(self.health.score, 6)

    def as_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "status": self.status,
            "reason": self.reason,
            "entropy_score": self.entropy_score,
            "entropy_level": self.entropy_level,
            "health_score": self.health_score,
            "health": self.health.as_dict() if self.health else None,
            "drift_indicators": [i.as_dict() for i in self.drift_indicators],
            "validation_errors": [f.as_dict() for f in self.validation_errors],
            "validation_known": [f.as_dict() for f in self.validation_known],
            "span_count": self.span_count,
            "baseline_span_count": self.baseline_span_count,
            "sampling_ratio": self.sampling_ratio,
            "represented_spans": self.represented_spans,
            "thresholds": self.thresholds.__dict__,
            "insufficient": self.insufficient,
            "evidence": list(self.evidence),
            "workload": self.workload.as_dict() if self.workload else None,
            "sources": dict(self.sources),
        }


def measure(
    current: ServiceSummary,
    baseline: ServiceSummary | None,
    *,
    registry: Registry | None = None,
    objectives: Objectives = DEFAULT_OBJECTIVES,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    min_spans: int = DEFAULT_MIN_SPANS,
    workload: WorkloadHealth | None = None,
    sampling_ratio: float = 1.0,
    counts: Counts = "spans",
    attributes: tuple[ServiceSummary, ServiceSummary] | None = None,
) -> Measurement:
    """Measure ``current`` against ``baseline`` (both summaries of the same service; no
    baseline yet is None), with the target workloads' state when it was gathered. Spans that
    say no sampling probability count as sampled at ``sampling_ratio``.

    ``counts`` names what the summaries were counted from; ``attributes`` gives the sampled
    spans (current, baseline) to validate when the summaries carry none (RED metrics)."""
    current = current.assuming(sampling_ratio)
    baseline = baseline.assuming(sampling_ratio) if baseline is not None else None
    common = _common(current, baseline, thresholds, workload)
    failing = workload if workload is not None and workload.indicators else None
    if baseline is None or baseline.span_count < min_spans:
        reason = (
            "no baseline yet"
            if baseline is None
            else f"the baseline has {baseline.span_count} spans, fewer than {min_spans}"
        )
        return _too_few_spans(common, failing, reason, "baseline")
    if current.span_count < min_spans and throughput_drop(current, baseline) is None:
        reason = f"the window has {current.span_count} spans, fewer than {min_spans}"
        return _too_few_spans(common, failing, reason, "window")
    registry = registry or Registry.builtin()
    health = health_of(current, baseline, objectives)
    indicators = detect(current, baseline)
    if workload is not None:
        # Pods that are not Ready answer nothing, whatever the spans of the others say.
        health = replace(health, score=min(health.score, workload.availability))
        indicators += workload.indicators
    seen_now, seen_before = attributes or (current, baseline)
    known = {(f.code, f.attribute) for f in validate(seen_before.observed_attributes(), registry)}
    findings = validate(seen_now.observed_attributes(), registry)
    new = [f for f in findings if (f.code, f.attribute) not in known]
    old = [f for f in findings if (f.code, f.attribute) in known]
    score = entropy_score(health.score, len(indicators), len(new))
    return Measurement(
        status="ok",
        entropy_score=_at_least_high_when_down(score, indicators, workload, thresholds),
        health=health,
        drift_indicators=indicators,
        validation_errors=new,
        validation_known=old,
        evidence=(counts, "kubernetes") if workload is not None else (counts,),
        **common,
    )


def _common(
    current: ServiceSummary,
    baseline: ServiceSummary | None,
    thresholds: Thresholds,
    workload: WorkloadHealth | None,
) -> dict[str, Any]:
    """What every measurement of the window says, judged or not."""
    return {
        "service": current.service,
        "span_count": current.span_count,
        "baseline_span_count": baseline.span_count if baseline else 0,
        # Six significant digits: a ratio of 2^-40 is a ratio still, not 0.
        "sampling_ratio": float(f"{current.sampling_ratio() or current.assumed_ratio:.6g}"),
        "represented_spans": round(current.represented_spans),
        "thresholds": thresholds,
        "workload": workload,
    }


def _too_few_spans(
    common: dict[str, Any],
    failing: WorkloadHealth | None,
    reason: str,
    missing: Insufficient,
) -> Measurement:
    """Spans too few to judge by: failing workloads still measure (a service that crashes sends
    no spans), anything else is ``insufficient_data`` saying which side is ``missing``."""
    if failing is not None:
        return _from_workload(common, failing)
    return Measurement(status="insufficient_data", reason=reason, insufficient=missing, **common)


def _at_least_high_when_down(
    score: float,
    indicators: list[DriftIndicator],
    workload: WorkloadHealth | None,
    thresholds: Thresholds,
) -> float:
    """A silent service, or one with no Ready pod, is at least HIGH: the worst case is the one
    that says least, so its level must not depend on how few indicators it could raise."""
    silent = any(i.type == "throughput_drop" and i.evidence.get("silent") for i in indicators)
    if silent or (workload is not None and workload.down):
        return max(score, thresholds.high)
    return score


def known_good(measurement: Measurement | None) -> bool:
    """Whether a measurement may stand for the known-good state the
    golden snapshot keeps: LOW, judged from telemetry (spans or RED metrics). The workloads'
    state alone says the pods run, not that they serve right: a bad config that has sent too
    few spans yet looks just as fine there."""
    return (
        measurement is not None
        and measurement.entropy_level == "low"
        and not TELEMETRY.isdisjoint(measurement.evidence)
    )


def _from_workload(common: dict[str, Any], workload: WorkloadHealth) -> Measurement:
    """A measurement from the workloads' state alone: no baseline or window of spans to judge
    by, but Kubernetes says what is wrong. Health is the share of desired pods Ready."""
    available = workload.availability
    health = Health(
        score=available,
        errors=1.0,
        latency=1.0,
        throughput=available,
        error_burn=0.0,
        latency_burn=0.0,
        throughput_ratio=available,
        latency_threshold_ms=0.0,
    )
    indicators = list(workload.indicators)
    score = entropy_score(health.score, len(indicators), 0)
    return Measurement(
        status="ok",
        entropy_score=_at_least_high_when_down(score, indicators, workload, common["thresholds"]),
        health=health,
        drift_indicators=indicators,
        reason="too few spans to judge: measured from the workloads' state",
        evidence=("kubernetes",),
        **common,
    )


@dataclass(frozen=True)
class MeasureSettings:
    """What a charter says about measuring: service, objectives, thresholds, minimum spans,
    and the sampling ratio of spans that say none."""

    service: str | None = None
    objectives: Objectives = DEFAULT_OBJECTIVES
    thresholds: Thresholds = DEFAULT_THRESHOLDS
    thresholds_source: str = "default"
    compute_thresholds: bool = False
    complexity: float = 0.5
    min_spans: int = DEFAULT_MIN_SPANS
    sampling_ratio: float = 1.0

    @classmethod
    def from_charter(cls, spec: RegenerationCharterSpec) -> MeasureSettings:
        resolved = resolve_spec(spec)
        given = resolved.thresholds
        return cls(
            service=spec.telemetry.service_name,
            objectives=Objectives(
                availability=spec.objectives.availability,
                latency_threshold_ms=spec.objectives.latency_threshold_ms,
                latency_target=spec.objectives.latency_target,
            ),
            thresholds=Thresholds(given.medium, given.high, given.critical),
            thresholds_source="charter" if spec.thresholds else "systemType",
            compute_thresholds=given.mode == "computed",
            complexity=profile_for(spec.system_type).complexity,
            min_spans=spec.telemetry.min_spans,
            sampling_ratio=spec.telemetry.sampling_ratio,
        )


def summarise(payloads: list[tuple[bytes, str]]) -> dict[str, ServiceSummary]:
    """Summaries per service of OTLP payloads given as (bytes, content type)."""
    summariser = Summariser()
    for data, content_type in payloads:
        summariser.add(decode(data, content_type))
    return summariser.services


def pick_service(
    summaries: dict[str, ServiceSummary], wanted: str | None, what: str
) -> ServiceSummary:
    """The summary of the wanted service, or the only one; ``ValueError`` naming the choices."""
    if wanted is not None:
        if wanted not in summaries:
            found = ", ".join(sorted(summaries)) or "none"
            raise ValueError(f"{what}: no spans of service {wanted!r} (services found: {found})")
        return summaries[wanted]
    if len(summaries) != 1:
        found = ", ".join(sorted(summaries)) or "none"
        raise ValueError(f"{what}: choose a service with --service (services found: {found})")
    return next(iter(summaries.values()))


def _sampled(m: Measurement) -> str:
    """How many spans a sampled window stands for; nothing when it was not sampled."""
    if m.sampling_ratio >= 1:
        return ""
    return f", a {m.sampling_ratio:.3g} sample of ~{m.represented_spans}"


def render_text(m: Measurement) -> str:
    """A readable report of a measurement: level, score, health, each indicator's evidence."""
    if m.status != "ok" or m.health is None or m.entropy_score is None:
        return f"{m.service}: insufficient data: {m.reason}\n"
    h = m.health
    lines = [
        f"{m.service}: entropy {str(m.entropy_level).upper()} ({m.entropy_score:.4f}), "
        f"health {h.score:.3f}; {len(m.drift_indicators)} drift indicators, "
        f"{len(m.validation_errors)} new validation findings "
        f"({m.span_count} spans{_sampled(m)}, baseline {m.baseline_span_count})",
        f"  health: errors {h.errors:.3f} (burn {h.error_burn:.2f}x), latency {h.latency:.3f} "
        f"(burn {h.latency_burn:.2f}x over {h.latency_threshold_ms:.1f} ms), "
        f"throughput {h.throughput:.3f} (rate {h.throughput_ratio:.2f}x baseline)",
    ]
    if m.drift_indicators:
        lines.append("  drift indicators:")
        lines += [
            f"    {i.type:<32} severity {i.severity:.2f}  {i.summary()}" for i in m.drift_indicators
        ]
    if m.validation_errors:
        lines.append("  new validation findings:")
        lines += [
            f"    {f.code:<24} {f.attribute:<36} {f.count:>7} spans  {f.detail}"
            for f in m.validation_errors
        ]
    if m.validation_known:
        lines.append(
            f"  known since the baseline: {len(m.validation_known)} findings (not counted)"
        )
    t = m.thresholds
    lines.append(f"  thresholds: medium {t.medium}, high {t.high}, critical {t.critical}")
    return "\n".join(lines) + "\n"
