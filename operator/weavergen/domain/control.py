"""A charter's control charts: what each measurement and each finished cycle adds (pure).

Entropy and health are charted on every measurement, cycle duration when a cycle ends. A
successful cycle changed the process on purpose, so the entropy and health charts relearn their
limits after it (once the new process has held steady, see ``ControlChart.request_rebaseline``).
A rising entropy signal, or a predicted crossing of the trigger level within the charter's
horizon, may start a cycle when the charter asks for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from weavergen.api.charter import EntropyLevel, RegenerationCharterSpec
from weavergen.domain.spc import ControlChart, Signal, SpcSettings

LEVELS = list(EntropyLevel)
# The side on which a metric getting worse shows: entropy rises, health falls.
WORSE_SIDE = {"entropy": "upper", "health": "lower", "cycleDuration": "upper"}


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
    baseline, a measurement taken while the charter is degraded or regenerating is left out.
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
        if chart.monitoring or in_control:
            signals += [(metric, s) for s in chart.add(value, at)]
        patch[metric] = chart.to_dict()
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
        reaches = LEVELS.index(EntropyLevel(forecast["level"])) >= LEVELS.index(
            EntropyLevel(spec.trigger.level)
        )
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
