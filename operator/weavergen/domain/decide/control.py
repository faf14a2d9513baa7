"""A charter's control charts: what each measurement and each finished cycle adds (pure).

Entropy and health are charted on every measurement, cycle duration when a cycle ends. A
successful cycle changed the process on purpose, so the entropy and health charts relearn their
limits after it (once the new process has held steady, see ``ControlChart.request_rebaseline``).
A rising entropy signal, or a predicted crossing of the trigger level within the charter's
horizon, may start a cycle when the charter asks for it.

A chart's history is a rolling window of the latest points: a report opened long after an
incident would find it gone. So each measured chart also keeps the points around its latest
cycles (``cycleWindows``), every one of them bounded, and status stays bounded in size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from weavergen.api.charter import EntropyLevel, RegenerationCharterSpec
from weavergen.domain.decide.spc import ControlChart, Signal, SpcSettings

# The side on which a metric getting worse shows: entropy rises, health falls.
WORSE_SIDE = {"entropy": "upper", "health": "lower", "cycleDuration": "upper"}
KEPT_CYCLES = 5  # latest cycles whose points outlive the rolling history
MARGIN_POINTS = 10  # points kept before a cycle starts and after it ends
WINDOW_POINTS = 60  # at most per cycle: a longer one keeps its first and last points


def settings_of(spec: RegenerationCharterSpec) -> SpcSettings:
    return SpcSettings(
        baseline_points=spec.spc.baseline_points, hold_down_points=spec.spc.hold_down_points
    )


@dataclass(frozen=True)
class ChartUpdate:
    """The charts' next state, the signals raised, and a reason to start a cycle, if any."""

    charts: dict[str, Any]
    signals: list[tuple[str, Signal]] = field(default_factory=list)
    forecast: dict[str, Any] | None = None
    start_cycle: str | None = None


def chart_measurement(
    spec: RegenerationCharterSpec,
    charts: Mapping[str, Any] | None,
    *,
    entropy: float,
    health: float,
    at: str,
    thresholds: Mapping[str, float],
    interval_seconds: float,
    last_cycle: Mapping[str, Any] | None = None,
    in_control: bool = True,
) -> ChartUpdate:
    """Chart one measurement of entropy and health; forecast the next threshold crossing.

    Phase-I limits must come from an in-control process: while a chart is still collecting its
    baseline, a measurement taken while the charter is degraded or regenerating stays out of the
    baseline (it is charted all the same). ``last_cycle`` is the charter's ``status.lastCycle``.
    """
    settings = settings_of(spec)
    saved = dict(charts or {})
    patch: dict[str, Any] = {}
    succeeded = (last_cycle or {}).get("outcome") == "Succeeded"
    relearn = succeeded and saved.get("rebaselinedAfter") != (last_cycle or {}).get("name")
    signals: list[tuple[str, Signal]] = []
    entropy_chart = None
    for metric, value in (("entropy", entropy), ("health", health)):
        chart = ControlChart.from_dict(metric, saved.get(metric), settings)
        if relearn:
            chart.request_rebaseline()
        signals += [(metric, s) for s in chart.add(value, at, in_control=in_control)]
        state = chart.to_dict()
        saved_windows = (saved.get(metric) or {}).get("cycleWindows") or []
        state["cycleWindows"] = cycle_windows(saved_windows, state["history"], last_cycle)
        patch[metric] = state
        if metric == "entropy":
            entropy_chart = chart
    if relearn:
        patch["rebaselinedAfter"] = (last_cycle or {}).get("name")
    assert entropy_chart is not None
    ordered = sorted(thresholds.items(), key=lambda item: item[1])
    forecast = entropy_chart.forecast_crossing(ordered, interval_seconds)
    forecast_status = forecast.to_dict() if forecast else None
    return ChartUpdate(
        patch,
        signals,
        forecast_status,
        _reason_to_start(spec, signals, forecast_status),
    )


def cycle_windows(
    saved: Sequence[Mapping[str, Any]],
    history: Sequence[Mapping[str, Any]],
    last_cycle: Mapping[str, Any] | None,
) -> list[dict[str, Any]]:
    """The points around each of the latest ``KEPT_CYCLES`` cycles, oldest cycle first.

    The last finished cycle's window is cut again on every measurement from its saved points and
    the history, so it fills up with the points that follow the cycle's end; once
    ``MARGIN_POINTS`` of them are in, cutting again changes nothing.
    """
    windows = [dict(w) for w in saved]
    cycle = last_cycle or {}
    name, started, finished = cycle.get("name"), cycle.get("startedAt"), cycle.get("finishedAt")
    if not (name and started and finished):
        return windows
    kept = next((w.get("points") or [] for w in windows if w.get("cycle") == name), [])
    first = datetime.fromisoformat(history[0]["at"]) if history else None
    older = [p for p in kept if first is None or datetime.fromisoformat(p["at"]) < first]
    window = {
        "cycle": name,
        "startedAt": started,
        "finishedAt": finished,
        "points": _around([*older, *history], started, finished),
    }
    return [*(w for w in windows if w.get("cycle") != name), window][-KEPT_CYCLES:]


def _around(
    points: Sequence[Mapping[str, Any]], started: str, finished: str
) -> list[dict[str, Any]]:
    """The points (oldest first) from ``MARGIN_POINTS`` before ``started`` to as many after
    ``finished``, at most ``WINDOW_POINTS`` of them."""
    times = [datetime.fromisoformat(p["at"]) for p in points]
    start, end = datetime.fromisoformat(started), datetime.fromisoformat(finished)
    first = next((i for i, t in enumerate(times) if t >= start), len(times))
    after = next((i for i, t in enumerate(times) if t > end), len(times))
    window = [dict(p) for p in points[max(0, first - MARGIN_POINTS) : after + MARGIN_POINTS]]
    if len(window) > WINDOW_POINTS:
        half = WINDOW_POINTS // 2
        window = window[:half] + window[-half:]
    return window


def _reason_to_start(
    spec: RegenerationCharterSpec,
    signals: list[tuple[str, Signal]],
    forecast: Mapping[str, Any] | None,
) -> str | None:
    # A moving-range signal is a jump either way (an improvement too): it never starts a cycle.
    worse = [
        s for metric, s in signals if s.chart != "movingRange" and s.side == WORSE_SIDE[metric]
    ]
    if spec.spc.trigger_cycles and worse:
        return f"control chart signal: {worse[0].message}"
    proactive = spec.spc.proactive
    if proactive.enabled and forecast is not None:
        reaches = EntropyLevel(forecast["level"]) >= EntropyLevel(spec.trigger.level)
        if reaches and forecast["seconds"] <= proactive.horizon_seconds:
            return (
                f"entropy predicted to reach {forecast['level']} ({forecast['threshold']}) in "
                f"{forecast['seconds']:.0f}s, within the {proactive.horizon_seconds}s horizon"
            )
    return None


def chart_cycle(
    spec: RegenerationCharterSpec,
    charts: Mapping[str, Any] | None,
    *,
    duration_seconds: float,
    at: str,
) -> ChartUpdate:
    """Chart a finished cycle's duration (a cycle far slower than usual is worth a look)."""
    chart = ControlChart.from_dict(
        "cycleDuration", (charts or {}).get("cycleDuration"), settings_of(spec)
    )
    signals = [("cycleDuration", s) for s in chart.add(duration_seconds, at)]
    return ChartUpdate({"cycleDuration": chart.to_dict()}, signals)
