"""Pure decisions of the charter reconciler: when to measure, what the status says, when to act.

Inputs are the charter's spec and status (as the API server stores them), a measurement or the
reason there is none, and the time; outputs are a status patch and, maybe, the reason to start a
cycle. Conditions keep their lastTransitionTime while their status is unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from weavergen.api.charter import EntropyLevel, MeasurementSources, RegenerationCharterSpec
from weavergen.api.profiles import ResolvedCharterSpec, resolve_spec
from weavergen.domain import notify, reasons
from weavergen.domain.decide.control import ChartUpdate, chart_measurement
from weavergen.domain.decide.explore import (
    StrategyRecord,
    TargetContext,
    cause_posterior,
    features_of,
)
from weavergen.domain.decide.incident import (
    RECORDED_BY_CYCLES,
    RECORDED_OUTCOMES,
    Attempt,
    Evidence,
    IncidentStep,
    held,
    record_attempt,
    track,
)
from weavergen.domain.decide.spc import Signal
from weavergen.domain.errors import RegenerationError
from weavergen.domain.measure import sequential
from weavergen.domain.measure.measure import TELEMETRY, MeasureSettings
from weavergen.domain.remedy.strategies import CATALOG
from weavergen.domain.times import parse_time, stamp

# The requests served since a moment (epoch seconds), bad when failed or slower than a latency
# threshold (ms); None where the operator cannot tell.
RequestsSince = Callable[[float, float], sequential.Evidence | None]


class Conditions:
    """A status's conditions, set one by one for one generation at one time."""

    def __init__(
        self, current: list[dict[str, Any]], generation: int | None, now: datetime
    ) -> None:
        self.items = list(current)
        self.generation = generation
        self.now = now

    def set(self, kind: str, status: bool, reason: str, message: str) -> None:
        """Set one condition; its lastTransitionTime changes only when its status does."""
        value = "True" if status else "False"
        old = next((c for c in self.items if c.get("type") == kind), None)
        since = old["lastTransitionTime"] if old and old.get("status") == value else stamp(self.now)
        self.items = [c for c in self.items if c.get("type") != kind] + [
            {
                "type": kind,
                "status": value,
                "reason": reason,
                "message": message,
                "lastTransitionTime": since,
                "observedGeneration": self.generation,
            }
        ]


@dataclass(frozen=True)
class Due:
    """A measurement is due. ``onset`` (epoch seconds) when it is due because the requests
    since the last, healthy, measurement at ``onset`` clearly fail the objectives: a window
    from then judges them alone, not diluted by the healthy requests before them."""

    onset: float | None = None


def measurement_due(
    spec: RegenerationCharterSpec,
    status: Mapping[str, Any],
    now: datetime,
    requested: str | None = None,
    evidence: RequestsSince | None = None,
) -> Due | None:
    """On the cadence; at once when a cycle was requested and not yet handled, or when the
    requests since the last measurement (``evidence``, asked only then) clearly fail the
    objectives of a charter last measured healthy: detecting a fault need not wait for the
    cadence. A charter already degraded keeps its cadence, so an incident adds no status
    writes. Without a latency threshold in the objectives only failed requests count as bad
    (the baseline's latency is the measurement's to judge)."""
    if requested and requested != status.get("handledRequest"):
        return Due()
    cadence = resolve_spec(spec).cadence
    last = parse_time((status.get("entropy") or {}).get("measuredAt"))
    if last is None or now - last >= timedelta(seconds=cadence.measure_interval_seconds):
        return Due()
    onset = healthy_onset(spec, status)
    if evidence is None or onset is None:
        return None
    objectives = MeasureSettings.from_charter(spec).objectives
    threshold = objectives.latency_threshold_ms
    found = evidence(onset, threshold or math.inf)
    test = sequential.SequentialTest.for_objectives(objectives, slow_is_bad=threshold is not None)
    failing = found is not None and test.decide(found) is sequential.Decision.FAIL
    return Due(onset) if failing else None


def healthy_onset(spec: RegenerationCharterSpec, status: Mapping[str, Any]) -> float | None:
    """When the charter last measured its target healthy (below its trigger), in epoch seconds
    as its status has it (to the second): a fault's requests are tested, and the fault measured,
    from there."""
    last = parse_time(_last_good(status, EntropyLevel(spec.trigger.level)))
    return None if last is None else last.replace(tzinfo=UTC).timestamp()


def window_since(status: Mapping[str, Any]) -> float | None:
    """Since when the charter's window may look (epoch seconds): spans from before its last
    cycle's change are not the target as it is now. Without this, the measurements after a
    cycle would judge the fault it just removed. The receiver's window reaches back further
    than its length (whole time slots), so the bound holds however old the change is: a
    window that does not reach the change is not cut by it."""
    since = (status.get("lastCycle") or {}).get("changedSince")
    return None if since is None else float(since)


def incident_onset(status: Mapping[str, Any]) -> float | None:
    """When the charter last measured its target healthy before the open incident (epoch
    seconds): its cycle measures the fault from then, as the measurement that opened it did."""
    last_good = parse_time((status.get("incident") or {}).get("lastGoodAt"))
    return None if last_good is None else last_good.replace(tzinfo=UTC).timestamp()


def changed_since(final: Mapping[str, Any]) -> float | None:
    """Since when the target is as a finished cycle left it (epoch seconds): the end of its
    rollback when it rolled back, else when its change began to settle."""
    rolled_back = parse_time((final.get("rollback") or {}).get("finishedAt"))
    if rolled_back is not None:
        return rolled_back.replace(tzinfo=UTC).timestamp()
    since = (final.get("verification") or {}).get("since")
    return None if since is None else float(since)


@dataclass(frozen=True)
class CharterDecision:
    status: dict[str, Any]
    start_cycle: str | None = None
    signals: list[tuple[str, Signal]] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)  # (reason, message)


def decide(
    spec: RegenerationCharterSpec,
    *,
    generation: int | None,
    status: Mapping[str, Any],
    measurement: Mapping[str, Any] | None,
    problem: RegenerationError | None,
    now: datetime,
    requested: str | None = None,
    inputs: str | None = None,
    routing: notify.Routing = notify.NOWHERE,
) -> CharterDecision:
    """The charter's next status, and the reason to start a cycle if one should start.

    ``requested`` is the time of the latest cycle request (the entropy gate's annotation); a
    request not handled yet starts a cycle at any level, within mode and circuit breaker.
    ``inputs`` fingerprints the targets and what their workloads consume (None: not read): an
    escalated incident holds until it, or the evidence, changes (``domain.incident``).
    """
    resolved = resolve_spec(spec)
    conditions = Conditions(list(status.get("conditions") or []), generation, now)
    patch: dict[str, Any] = {
        "observedGeneration": generation,
        "effectiveThresholds": {
            **_thresholds(resolved),
            "source": "charter" if spec.thresholds else "systemType",
        },
    }
    if (unmeasured := _unmeasured(spec, problem, routing)) is not None:
        conditions.set(reasons.READY, False, *unmeasured)
        patch["conditions"] = conditions.items
        return CharterDecision(patch)
    assert measurement is not None
    if measurement.get("status") != "ok":
        return _insufficient(patch, conditions, measurement, now)
    level, trigger = EntropyLevel(measurement["entropy_level"]), EntropyLevel(spec.trigger.level)
    degraded, running = level >= trigger, bool(status.get("activeCycle"))
    patch["entropy"] = _entropy_status(measurement, now)
    _set_measured(conditions, measurement, trigger, degraded)
    charted = _charted(resolved, status, measurement, now, in_control=not degraded and not running)
    patch["controlCharts"], patch["forecast"] = charted.charts, charted.forecast
    asked = bool(requested) and requested != status.get("handledRequest")
    if asked:
        patch["handledRequest"] = requested
    step = _incident_step(spec, status, measurement, inputs, degraded=degraded, now=now)
    patch["incident"] = _incident_patch(step, cycle_running=running)
    holding = held(step.incident)
    _set_escalated(conditions, step, holding)
    acts = spec.trigger.mode == "auto" and spec.mode != "observe"
    wants = (
        ((degraded or charted.start_cycle is not None) and acts and not holding)
        or (asked and spec.mode != "observe")
    ) and not running
    breaker, allowed = _breaker(spec, status, conditions, wants=wants, now=now, routing=routing)
    patch.update(breaker)
    patch["conditions"] = conditions.items
    reason = _cycle_reason(patch["entropy"], asked=asked, charted=None if degraded else charted)
    return CharterDecision(
        patch, reason if wants and allowed else None, charted.signals, _incident_events(step)
    )


def _incident_step(
    spec: RegenerationCharterSpec,
    status: Mapping[str, Any],
    measurement: Mapping[str, Any],
    inputs: str | None,
    *,
    degraded: bool,
    now: datetime,
) -> IncidentStep:
    """The charter's incident after this measurement (``domain.incident``)."""
    level = EntropyLevel(measurement["entropy_level"])
    return track(
        status.get("incident"),
        Evidence(level, features_of(measurement, TargetContext()), inputs),
        degraded=degraded,
        cycle_running=bool(status.get("activeCycle")),
        now=now,
        recovery_seconds=spec.telemetry.window_seconds,
        last_good_at=_last_good(status, EntropyLevel(spec.trigger.level)),
        diagnose=likely_cause,
    )


def _charted(
    resolved: ResolvedCharterSpec,
    status: Mapping[str, Any],
    measurement: Mapping[str, Any],
    now: datetime,
    *,
    in_control: bool,
) -> ChartUpdate:
    """The measurement on the charter's control charts (baselined only while in control)."""
    return chart_measurement(
        resolved,
        status.get("controlCharts"),
        entropy=measurement["entropy_score"],
        health=measurement["health_score"],
        at=stamp(now),
        thresholds=_thresholds(resolved),
        interval_seconds=resolved.cadence.measure_interval_seconds,
        last_cycle=status.get("lastCycle"),
        in_control=in_control,
    )


def _breaker(
    spec: RegenerationCharterSpec,
    status: Mapping[str, Any],
    conditions: Conditions,
    *,
    wants: bool,
    now: datetime,
    routing: notify.Routing,
) -> tuple[dict[str, Any], bool]:
    """The circuit breaker after this decision, with its condition, and whether a cycle the
    charter wants may start; an opening owes its message to the charter's sinks (``routing``)."""
    breaker, allowed, why = circuit_breaker(
        spec,
        status.get("circuitBreaker") or {},
        wants=wants,
        now=now,
        last_outcome=(status.get("lastCycle") or {}).get("outcome"),
    )
    conditions.set(reasons.CIRCUIT_OPEN, breaker["state"] == "Open", reasons.CIRCUIT_BREAKER, why)
    owed = notify.reopened(notify.CIRCUIT_OPENED, routing, now)
    if owed and _opened(status, breaker):
        return {"circuitBreaker": breaker, "notifications": owed}, allowed
    return {"circuitBreaker": breaker}, allowed


def _thresholds(resolved: ResolvedCharterSpec) -> dict[str, float]:
    t = resolved.thresholds
    return {"medium": t.medium, "high": t.high, "critical": t.critical}


def _opened(status: Mapping[str, Any], breaker: Mapping[str, Any]) -> bool:
    """Whether this decision opens the breaker (not: keeps it open)."""
    before = status.get("circuitBreaker") or {}
    return breaker["state"] == "Open" and breaker.get("openUntil") != before.get("openUntil")


def _unmeasured(
    spec: RegenerationCharterSpec, problem: RegenerationError | None, routing: notify.Routing
) -> tuple[str, str] | None:
    """Why the charter is not Ready without judging a measurement: (reason, message)."""
    unknown = sorted(set(spec.strategies.allow + spec.strategies.deny) - set(CATALOG))
    if unknown:
        return (
            reasons.UNKNOWN_STRATEGY,
            f"unknown strategies in spec.strategies: {', '.join(unknown)}",
        )
    if routing.problem is not None:
        return reasons.UNKNOWN_SINK, routing.problem
    if problem is not None:
        return problem.reason, str(problem)
    return None


def _cycle_reason(entropy: Mapping[str, Any], *, asked: bool, charted: ChartUpdate | None) -> str:
    """Why a cycle starts, for its spec and Event: the entropy and its indicators by name, and
    what asked for it (a person through the gate, or a control chart below the trigger)."""
    reason = f"entropy {entropy['level']} ({entropy['score']})"
    if entropy["indicators"]:
        reason += ": " + ", ".join(i["type"] for i in entropy["indicators"])
    if asked:
        reason += ", requested through the gate"
    elif charted is not None and charted.start_cycle:
        reason += f", {charted.start_cycle}"
    return reason


def _set_measured(
    conditions: Conditions, measurement: Mapping[str, Any], trigger: EntropyLevel, degraded: bool
) -> None:
    level, score = EntropyLevel(measurement["entropy_level"]), measurement["entropy_score"]
    evidence = measurement.get("evidence") or ["spans"]
    if not TELEMETRY.isdisjoint(evidence):
        counted = "requests" if "red" in evidence else "spans"
        enough = (reasons.ENOUGH_SPANS, f"{measurement.get('span_count', 0)} {counted}")
    else:
        enough = (reasons.MEASURED_FROM_WORKLOADS, str(measurement.get("reason")))
    conditions.set(reasons.INSUFFICIENT_DATA, False, *enough)
    conditions.set(reasons.READY, True, reasons.MEASURED, f"entropy {level.value} ({score})")
    conditions.set(
        reasons.DEGRADED,
        degraded,
        reasons.AT_OR_ABOVE_TRIGGER if degraded else reasons.BELOW_TRIGGER,
        f"entropy {level.value} ({score}), trigger at {trigger.value}",
    )


def _entropy_status(measurement: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "score": measurement["entropy_score"],
        "level": measurement["entropy_level"],
        "healthScore": measurement["health_score"],
        "indicators": [
            {"type": i["type"], "severity": i["severity"], "summary": _summary(i)}
            for i in measurement.get("drift_indicators", [])
        ],
        "validationErrorCount": len(measurement.get("validation_errors", [])),
        **_span_counts(measurement),
        "measuredAt": stamp(now),
        "sources": _sources(measurement["sources"]) if measurement.get("sources") else None,
    }


def _span_counts(measurement: Mapping[str, Any]) -> dict[str, Any]:
    """The window's spans, its sampling ratio and the spans it stands for. A measurement from
    before sampling was read is whole: every key is written, so none is left from the last."""
    spans = measurement.get("span_count", 0)
    return {
        "spanCount": spans,
        "samplingRatio": measurement.get("sampling_ratio", 1.0),
        "representedSpans": measurement.get("represented_spans", spans),
    }


def _sources(sources: Mapping[str, str]) -> dict[str, str]:
    """A measurement's sources under their status names (camelCase)."""
    return MeasurementSources.model_validate(dict(sources)).model_dump(by_alias=True)


def likely_cause(features: frozenset[str]) -> str:
    """The most likely cause of a set of features, for telling a new fault from the same one."""
    causes = cause_posterior(features)
    return max(causes, key=causes.__getitem__)


def _last_good(status: Mapping[str, Any], trigger: EntropyLevel) -> str | None:
    """When the previous measurement was below the trigger, its time: the last healthy one."""
    previous = status.get("entropy") or {}
    level = previous.get("level")
    if level is None or EntropyLevel(level) >= trigger:
        return None
    return previous.get("measuredAt")


def _incident_patch(step: IncidentStep, *, cycle_running: bool) -> dict[str, Any] | None:
    """What the charter's reconciler writes of the incident (status is merge-patched).

    What a cycle's end records (its attempt, an escalation) is the cycle's to write: a
    measurement read before that record must not write it back as it was. Only a new incident
    while no cycle runs starts them afresh.
    """
    if step.incident is None:
        return None
    if step.opened and not cycle_running:
        return step.incident
    return {k: v for k, v in step.incident.items() if k not in RECORDED_BY_CYCLES}


def _incident_events(step: IncidentStep) -> list[tuple[str, str]]:
    if step.opened and step.closed:
        return [(reasons.INCIDENT_CHANGED, f"the evidence changed ({step.opened}): acting again")]
    if step.opened:
        return [(reasons.INCIDENT_OPENED, f"incident opened: {step.opened}")]
    if step.closed:
        return [(reasons.INCIDENT_RESOLVED, f"incident resolved: {step.closed}")]
    return []


def _set_escalated(conditions: Conditions, step: IncidentStep, holding: str | None) -> None:
    """``Escalated`` is True from an escalation until the incident resolves or changes."""
    if holding is not None:
        conditions.set(reasons.ESCALATED, True, reasons.NO_REMEDY_HERE, holding)
    elif step.opened and step.closed:
        conditions.set(reasons.ESCALATED, False, reasons.EVIDENCE_CHANGED, step.opened)
    elif step.incident is None:
        conditions.set(reasons.ESCALATED, False, reasons.HEALTHY, "no open incident")
    else:
        tried = len(step.incident.get("attempts") or [])
        conditions.set(
            reasons.ESCALATED, False, reasons.ACTING, f"incident open, {tried} cycles so far"
        )


def _insufficient(
    patch: dict[str, Any],
    conditions: Conditions,
    measurement: Mapping[str, Any],
    now: datetime,
) -> CharterDecision:
    """Status while there is nothing to judge by yet (no baseline, or too short a window).

    A silent service whose baseline had traffic never comes here: it is measured, Degraded.
    """
    lacking = measurement.get("insufficient")
    reason = reasons.BASELINE_TOO_SMALL if lacking == "baseline" else reasons.TOO_FEW_SPANS
    conditions.set(reasons.INSUFFICIENT_DATA, True, reason, str(measurement.get("reason")))
    conditions.set(reasons.READY, True, reasons.MEASURING, f"waiting: {measurement.get('reason')}")
    patch["conditions"] = conditions.items
    patch["entropy"] = {"measuredAt": stamp(now), **_span_counts(measurement)}
    return CharterDecision(patch)


def circuit_breaker(
    spec: RegenerationCharterSpec,
    state: Mapping[str, Any],
    *,
    wants: bool,
    now: datetime,
    last_outcome: str | None = None,
) -> tuple[dict[str, Any], bool, str]:
    """The breaker's next state, whether a wanted cycle may start, and why (pure).

    At most ``maxCycles`` cycles start within ``windowSeconds``; one more opens the breaker for
    ``cooldownSeconds``. When the cooldown is over the breaker closes and the next cycle is a
    trial: if it fails to heal, the breaker opens again for twice as long (capped at
    ``maxCooldownSeconds``); a cycle that succeeds resets the doubling.
    """
    policy = spec.circuit_breaker
    window = timedelta(seconds=policy.window_seconds)
    recent = [
        t
        for t in state.get("recentCycleStarts") or []
        if (started := parse_time(t)) is not None and now - started < window
    ]
    openings = 0 if last_outcome == "Succeeded" else int(state.get("consecutiveOpenings", 0))
    open_until = parse_time(state.get("openUntil"))
    if open_until is not None and now < open_until:
        why = f"open until {stamp(open_until)}: {len(recent)} cycles in {policy.window_seconds}s"
        still_open = {
            "state": "Open",
            "recentCycleStarts": recent,
            "openUntil": stamp(open_until),
            "consecutiveOpenings": openings,
        }
        return still_open, False, why
    if open_until is not None:
        recent = []  # the cooldown is served: the next cycle is a trial
    if wants and len(recent) >= policy.max_cycles:
        cooldown = min(policy.cooldown_seconds * 2**openings, policy.max_cooldown_seconds)
        until = now + timedelta(seconds=cooldown)
        why = (
            f"opened: {len(recent)} cycles within {policy.window_seconds}s reached maxCycles "
            f"{policy.max_cycles}; cooling down {cooldown}s"
        )
        opened = {
            "state": "Open",
            "recentCycleStarts": recent,
            "openUntil": stamp(until),
            "consecutiveOpenings": openings + 1,
        }
        return opened, False, why
    if wants:
        recent = [*recent, stamp(now)]
    why = f"closed: {len(recent)} of {policy.max_cycles} cycles in the window"
    # openUntil None removes a served cooldown from status (status is merge-patched).
    closed = {
        "state": "Closed",
        "recentCycleStarts": recent,
        "openUntil": None,
        "consecutiveOpenings": openings,
    }
    return closed, wants, why


def _summary(indicator: Mapping[str, Any]) -> str:
    evidence = indicator.get("evidence") or {}
    parts = [f"{k}={v}" for k, v in evidence.items() if not isinstance(v, (list, dict))]
    return ", ".join(parts)[:256]


def record_outcome(
    status: Mapping[str, Any],
    *,
    cycle: str,
    final: Mapping[str, Any],
    data: Mapping[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """The charter's status patch once one of its cycles has finished (pure): the charter is
    free for its next cycle, and the outcome joins its strategy history and its incident.
    Nothing (``{}``) once it has been recorded: a second reconcile must not count it twice."""
    if (status.get("lastCycle") or {}).get("name") == cycle:
        return {}
    exploration, chosen = data.get("exploration") or {}, data.get("chosen") or {}
    phase = str(final.get("phase"))
    history = [dict(h) for h in status.get("strategyHistory") or []]
    incident = status.get("incident")
    if exploration and chosen and phase in RECORDED_OUTCOMES:
        key = (chosen["strategy"], exploration["signature"])
        entry = next((h for h in history if (h["strategy"], h["signature"]) == key), None)
        if entry is None:
            entry = {"strategy": key[0], "signature": key[1], "successes": 0, "failures": 0}
            history.append(entry)
        won = phase in ("Succeeded", "Escalated")
        entry["successes" if won else "failures"] += 1
        entry["lastOutcome"] = "Succeeded" if won else "RolledBack"
        entry["lastUsedAt"] = final.get("finishedAt")
        before = data.get("measurement_before") or {}
        incident = record_attempt(
            incident,
            Attempt(cycle, chosen["strategy"], phase, final.get("finishedAt")),
            evidence=Evidence(
                EntropyLevel(before["entropy_level"]), features_of(before, TargetContext())
            )
            if before.get("entropy_level")
            else None,
            now=now,
            escalation=exploration.get("escalation"),
        )
    return {
        "activeCycle": None,
        "lastCycle": {
            "name": cycle,
            "outcome": final.get("phase"),
            "startedAt": final.get("startedAt"),
            "finishedAt": final.get("finishedAt"),
            "changedSince": changed_since(final),
        },
        "strategyHistory": history,
        "incident": incident,
        "entropy": {"measuredAt": None},
    }


def strategy_records(status: Mapping[str, Any]) -> list[StrategyRecord]:
    """A charter status's strategy history, as Explore learns from it."""
    return [
        StrategyRecord(h["strategy"], h["signature"], h.get("successes", 0), h.get("failures", 0))
        for h in status.get("strategyHistory") or []
    ]


def merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386, as the API server applies a status patch: null removes, objects merge."""
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping):
            current = merged.get(key)
            merged[key] = merge_patch(current if isinstance(current, Mapping) else {}, value)
        else:
            merged[key] = value
    return merged
