"""A charter's control charts: charting measurements and cycles, and what they may start."""

from __future__ import annotations

from typing import Any

from weavergen.api.charter import RegenerationCharterSpec
from weavergen.domain.decide.control import (
    KEPT_CYCLES,
    MARGIN_POINTS,
    WINDOW_POINTS,
    chart_cycle,
    chart_measurement,
)
from weavergen.domain.decide.spc import SpcSettings

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
    values = [0.05, 0.06, 0.7, 0.7, 0.7, 0.05, 0.04, 0.05, 0.06, 0.05, 0.07]
    for n, value in enumerate(values):
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
    assert entropy["phase"] == "monitoring"
    assert entropy["limitsSince"] == "t10"  # the 8th in-control point completed the baseline
    assert entropy["centerLine"] < 0.1  # the degraded points never entered the baseline
    # ... but they are charted: the history is what was measured.
    assert entropy["points"] == len(values)
    assert [p["value"] for p in entropy["history"]] == values


def minute(n: int) -> str:
    """The time ``n`` minutes into a day, as the operator stamps it."""
    return f"2026-12-03T{n // 60:02d}:{n % 60:02d}:00Z"


def test_the_points_around_the_latest_cycles_outlive_the_history_in_bounded_windows() -> None:
    # Seven cycles two hours apart, a measurement a minute; web-2 runs 90 minutes.
    cycles = [(f"web-{k}", 20 + 120 * k, 20 + 120 * k + (90 if k == 2 else 5)) for k in range(7)]
    charts: dict[str, Any] = {}
    most = SpcSettings().history_points + KEPT_CYCLES * WINDOW_POINTS
    for n in range(800):
        ended = [(name, a, b) for name, a, b in cycles if b < n]
        last = None
        if ended:
            name, started, finished = ended[-1]
            last = {
                "name": name,
                "outcome": "RolledBack",
                "startedAt": minute(started),
                "finishedAt": minute(finished),
            }
        update = chart_measurement(
            spec(),
            charts,
            entropy=0.1 + 0.01 * (n % 7),
            health=0.9,
            at=minute(n),
            thresholds=THRESHOLDS,
            interval_seconds=60,
            last_cycle=last,
        )
        charts.update(update.charts)
        for metric in ("entropy", "health"):
            kept = charts[metric]["cycleWindows"]
            assert len(charts[metric]["history"]) + sum(len(w["points"]) for w in kept) <= most
    windows = {w["cycle"]: w for w in charts["entropy"]["cycleWindows"]}
    assert list(windows) == ["web-2", "web-3", "web-4", "web-5", "web-6"]  # the latest five
    assert [w["cycle"] for w in charts["health"]["cycleWindows"]] == list(windows)
    assert charts["entropy"]["history"][0]["at"] > minute(cycles[5][2] + MARGIN_POINTS)

    def minutes(name: str) -> list[str]:
        return [p["at"] for p in windows[name]["points"]]

    # A short cycle: the margin before its start, every point of it, the margin after its end.
    _, started, finished = cycles[3]
    span = range(started - MARGIN_POINTS, finished + MARGIN_POINTS + 1)
    assert minutes("web-3") == [minute(n) for n in span]
    assert (windows["web-3"]["startedAt"], windows["web-3"]["finishedAt"]) == (
        minute(started),
        minute(finished),
    )
    # A long one keeps its first and its last points, WINDOW_POINTS in all.
    _, started, finished = cycles[2]
    half = WINDOW_POINTS // 2
    assert minutes("web-2") == [
        *(minute(n) for n in range(started - MARGIN_POINTS, started - MARGIN_POINTS + half)),
        *(
            minute(n)
            for n in range(finished + MARGIN_POINTS + 1 - half, finished + MARGIN_POINTS + 1)
        ),
    ]
