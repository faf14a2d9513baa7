"""A charter's control charts: charting measurements and cycles, and what they may start."""

from __future__ import annotations

from typing import Any

from weavergen.api.charter import RegenerationCharterSpec
from weavergen.domain.control import chart_cycle, chart_measurement

THRESHOLDS = {"medium": 0.3, "high": 0.6, "critical": 0.8}


def spec(**spc: Any) -> RegenerationCharterSpec:
    return RegenerationCharterSpec.model_validate(
        {
            "systemId": "web",
            "systemType": "web-service",
            "target": {"workloads": [{"name": "web"}]},
            "telemetry": {"serviceName": "web"},
            "trigger": {"level": "high"},
            "spc": {"baselinePoints": 8, "holdDownPoints": 8, **spc},
        }
    )


def feed(
    charter: RegenerationCharterSpec,
    values: list[float],
    charts: dict[str, Any] | None = None,
    last_cycle: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], list[Any], Any]:
    signals: list[Any] = []
    update = None
    for n, value in enumerate(values):
        update = chart_measurement(
            charter,
            charts,
            entropy=value,
            health=1 - value,
            at=f"t{n}",
            thresholds=THRESHOLDS,
            interval_seconds=30,
            last_cycle=last_cycle,
        )
        charts = {**(charts or {}), **update.charts}
        signals += update.signals
    assert charts is not None
    return charts, signals, update


BASELINE = [0.05, 0.06, 0.04, 0.05, 0.07, 0.05, 0.06, 0.04]


def test_both_charts_leave_the_baseline_and_a_jump_signals_on_both() -> None:
    charts, signals, update = feed(spec(), [*BASELINE, 0.5])
    assert charts["entropy"]["phase"] == charts["health"]["phase"] == "monitoring"
    metrics = {(metric, s.rule, s.side) for metric, s in signals}
    assert ("entropy", "WE1", "upper") in metrics and ("health", "WE1", "lower") in metrics
    assert update.start_cycle is None  # triggerCycles is off


def test_a_worsening_signal_starts_a_cycle_only_when_the_charter_asks() -> None:
    *_, update = feed(spec(triggerCycles=True), [*BASELINE, 0.5])
    assert update.start_cycle is not None and "entropy WE1" in update.start_cycle
    # An improvement (entropy falling below its limits) is a signal but no reason to act.
    *_, better = feed(spec(triggerCycles=True), [0.3, 0.31, 0.29, 0.3, 0.32, 0.3, 0.31, 0.29, 0.0])
    assert any(s.side == "lower" for _, s in better.signals)
    assert better.start_cycle is None


def test_a_predicted_crossing_within_the_horizon_starts_a_proactive_cycle() -> None:
    ramp = [0.1 + 0.03 * n for n in range(12)]  # rising 0.03 per 30 s measurement
    *_, update = feed(spec(proactive={"enabled": True, "horizonSeconds": 600}), ramp)
    assert update.forecast is not None and update.forecast["level"] == "high"
    assert 0 < update.forecast["seconds"] <= 600
    assert update.start_cycle is not None and "predicted to reach high" in update.start_cycle
    *_, far = feed(spec(proactive={"enabled": True, "horizonSeconds": 60}), ramp)
    assert far.start_cycle is None
    *_, off = feed(spec(), ramp)
    assert off.forecast is not None and off.start_cycle is None


def test_a_successful_cycle_starts_relearning_the_limits_once() -> None:
    charts, _, _ = feed(spec(), BASELINE)
    succeeded = {"name": "web-1", "outcome": "Succeeded"}
    charts, _, _ = feed(spec(), [0.02], charts, last_cycle=succeeded)
    assert charts["rebaselinedAfter"] == "web-1"
    assert charts["entropy"]["rebaseline"] == {"candidates": [0.02]}
    charts, _, _ = feed(spec(), [0.02] * 7, charts, last_cycle=succeeded)
    assert charts["entropy"]["rebaseline"] is None  # 8 stable points: new limits
    assert abs(charts["entropy"]["centerLine"] - 0.02) < 1e-9
    charts, _, _ = feed(spec(), [0.02], charts, last_cycle=succeeded)
    assert charts["entropy"]["rebaseline"] is None  # the same cycle is not relearned twice


def test_cycle_durations_are_charted_on_their_own_chart() -> None:
    charts: dict[str, Any] = {}
    signals = []
    for n, seconds in enumerate([40, 42, 39, 41, 40, 43, 38, 41, 400]):
        update = chart_cycle(spec(), charts, duration_seconds=seconds, at=f"t{n}")
        charts.update(update.charts)
        signals += update.signals
    assert set(charts) == {"cycleDuration"}
    assert charts["cycleDuration"]["points"] == 9
    assert any(s.rule == "WE1" and s.side == "upper" for _, s in signals)


def test_the_baseline_is_collected_only_while_the_process_is_in_control() -> None:
    charts: dict[str, Any] = {}
    for n, value in enumerate([0.05, 0.06, 0.7, 0.7, 0.7, 0.05, 0.04, 0.05, 0.06, 0.05, 0.07]):
        update = chart_measurement(
            spec(),
            charts,
            entropy=value,
            health=1 - value,
            at=f"t{n}",
            thresholds=THRESHOLDS,
            interval_seconds=30,
            in_control=value < 0.3,
        )
        charts.update(update.charts)
    entropy = charts["entropy"]
    assert entropy["phase"] == "monitoring" and entropy["points"] == 8
    assert entropy["centerLine"] < 0.1  # the degraded points never entered the baseline
