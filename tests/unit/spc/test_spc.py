"""Control charts flag what their rules promise, no more often than theory allows, and persist."""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter

import numpy as np
import pytest

from weavergen.domain.decide.spc import (
    RULES,
    ControlChart,
    Signal,
    SpcSettings,
    western_electric,
)

SETTINGS = SpcSettings()
HALF_MR = 0.564  # alternating +-0.564 has mean 0 and MR-bar 1.128, so sigma 1
THRESHOLDS = [("medium", 0.3), ("high", 0.6), ("critical", 0.8)]


def feed(chart: ControlChart, values: list[float], start: int = 0) -> list[list[Signal]]:
    return [chart.add(v, f"t{start + i}") for i, v in enumerate(values)]


def alternating(center: float, count: int) -> list[float]:
    return [center + (HALF_MR if i % 2 == 0 else -HALF_MR) for i in range(count)]


def monitoring_chart(metric: str = "entropy", settings: SpcSettings = SETTINGS) -> ControlChart:
    """A chart past its baseline with center 0 and sigma 1."""
    chart = ControlChart(metric, settings)
    feed(chart, alternating(0.0, settings.baseline_points))
    state = chart.to_dict()
    assert state["phase"] == "monitoring"
    assert state["centerLine"] == pytest.approx(0.0, abs=1e-12)
    assert state["sigma"] == pytest.approx(1.0, rel=1e-12)
    return chart


def individuals(signals: list[Signal]) -> list[tuple[str, str]]:
    return [(s.rule, s.side) for s in signals if s.chart == "individuals"]


# (points with center 0 and sigma 1, rules that fire at the last point)
PATTERNS = {
    "WE1 upper": ([0.0, 0.0, 0.0, 3.5], [("WE1", "upper")]),
    "WE1 lower": ([0.0, -3.2], [("WE1", "lower")]),
    "WE2 upper": ([0.0, 2.5, 0.5, 2.5], [("WE2", "upper")]),
    "WE2 lower": ([-2.1, 0.0, -2.6], [("WE2", "lower")]),
    "WE3 upper": ([0.0, 1.5, 1.5, 0.5, 1.5, 1.5], [("WE3", "upper")]),
    "WE3 lower": ([-1.2, -1.5, 0.3, -1.8, -1.1], [("WE3", "lower")]),
    "WE4 upper": ([0.5] * 8, [("WE4", "upper")]),
    "WE4 lower": ([-0.3] * 8, [("WE4", "lower")]),
    "WE1 and WE2 together": ([0.0, 2.5, 3.4], [("WE1", "upper"), ("WE2", "upper")]),
    "near WE1: exactly 2.99": ([0.0, 2.99], []),
    "near WE2: 1 of 3 beyond 2": ([0.0, 2.5, 0.5, 0.5, 2.5], []),
    "near WE2: latest not beyond": ([0.0, 2.5, 2.5, 0.5], []),
    "near WE2: opposite sides": ([0.0, -2.5, 0.5, 2.5], []),
    "near WE3: 3 of 5 beyond 1": ([1.5, 0.5, 1.5, 0.5, 1.5], []),
    "near WE3: latest not beyond": ([1.5, 1.5, 1.5, 1.5, 0.5], []),
    "near WE3: mixed sides": ([-1.5, 1.5, -1.5, 1.5, 1.5], []),
    "near WE4: 7 on one side": ([0.5] * 7, []),
    "near WE4: run broken by the latest": ([0.5] * 7 + [-0.5], []),
    "near WE4: run broken by the first": ([-0.5] + [0.5] * 7, []),
}


def test_rule_ids_are_the_four_western_electric_rules() -> None:
    assert list(RULES) == ["WE1", "WE2", "WE3", "WE4"]
    assert all(RULES.values())


@pytest.mark.parametrize(("points", "expected"), PATTERNS.values(), ids=PATTERNS.keys())
def test_western_electric_on_textbook_patterns(
    points: list[float], expected: list[tuple[str, str]]
) -> None:
    assert western_electric(points, 0.0, 1.0) == expected
    scaled = [10.0 + 2.0 * p for p in points]  # the rules work in sigma units of any center
    assert western_electric(scaled, 10.0, 2.0) == expected


@pytest.mark.parametrize(("points", "expected"), PATTERNS.values(), ids=PATTERNS.keys())
def test_control_chart_raises_the_rules_at_the_completing_point(
    points: list[float], expected: list[tuple[str, str]]
) -> None:
    chart = monitoring_chart()
    raised = feed(chart, points, start=100)
    assert individuals(raised[-1]) == expected
    for signal in (s for s in raised[-1] if s.chart == "individuals"):
        assert signal.at == f"t{100 + len(points) - 1}"
        assert signal.value == points[-1]
        assert signal.message.startswith(f"entropy {signal.rule}: ")


def test_signal_message_names_rule_side_and_limit() -> None:
    chart = monitoring_chart()
    *_, last = feed(chart, [0.0, 2.5, 0.5, 2.5])
    (we2,) = [s for s in last if s.chart == "individuals"]
    assert (
        we2.message == "entropy WE2: 2 of 3 points beyond 2 sigma above the center line (2.5 > 2)"
    )
    assert we2.to_dict() == {
        "chart": "individuals",
        "rule": "WE2",
        "at": "t3",
        "value": 2.5,
        "side": "upper",
        "message": we2.message,
    }
    assert chart.to_dict()["lastSignal"] == last[-1].message


def test_western_electric_rejects_a_non_positive_sigma() -> None:
    with pytest.raises(ValueError, match="sigma"):
        western_electric([1.0], 0.0, 0.0)


def test_rules_do_not_mix_baseline_points_into_a_run() -> None:
    chart = ControlChart("entropy", SETTINGS)
    baseline = [-1.0, 1.0] * 6 + [0.2, 0.3] * 4  # mean 0.1, its last 8 points above the mean
    feed(chart, baseline)
    assert chart.to_dict()["centerLine"] == pytest.approx(0.1)
    raised = feed(chart, [0.5] * 8, start=20)
    assert [individuals(r) for r in raised[:7]] == [[]] * 7
    assert individuals(raised[7]) == [("WE4", "upper")]


# --- false-alarm rates -------------------------------------------------------------------


def tail(sigmas: float) -> float:
    """1 - Phi(sigmas)."""
    return 0.5 * math.erfc(sigmas / math.sqrt(2))


def firing_probability(sigmas: float, needed: int, span: int) -> float:
    """Per-point probability that "needed of the last span beyond sigmas, the latest among them"
    fires on independent N(0, 1) points: enumerate which earlier points lie beyond."""
    p = tail(sigmas)
    on_one_side = sum(
        math.prod(p if beyond else 1 - p for beyond in earlier)
        for earlier in itertools.product((True, False), repeat=span - 1)
        if 1 + sum(earlier) >= needed
    )
    return 2 * p * on_one_side


THEORY = {
    ("individuals", "WE1"): firing_probability(3, 1, 1),
    ("individuals", "WE2"): firing_probability(2, 2, 3),
    ("individuals", "WE3"): firing_probability(1, 4, 5),
    ("individuals", "WE4"): firing_probability(0, 8, 8),
    # |X_t - X_(t-1)| ~ sqrt(2) |Z| against 3.267 * 1.128 sigma
    ("movingRange", "WE1"): 2 * tail(3.267 * 1.128 / math.sqrt(2)),
}
SEEDS = 20
POINTS = 1000


def test_theoretical_rates_match_the_textbook_values() -> None:
    assert THEORY["individuals", "WE1"] == pytest.approx(0.0027, abs=1e-5)
    assert THEORY["individuals", "WE4"] == pytest.approx(2 * 0.5**8)
    # WE2 with the latest point beyond: 2 p (1 - (1 - p)^2), p = 1 - Phi(2)
    assert THEORY["individuals", "WE2"] == pytest.approx(2 * tail(2) * (1 - (1 - tail(2)) ** 2))


def test_in_control_false_alarms_stay_within_theory() -> None:
    counts: dict[tuple[str, str], list[int]] = {key: [] for key in THEORY}
    ewma: list[int] = []
    for seed in range(SEEDS):
        chart = ControlChart.from_dict(
            "entropy", {"phase": "monitoring", "centerLine": 0.0, "sigma": 1.0}, SETTINGS
        )
        raised = Counter(
            (s.chart, s.rule)
            for signals in feed(chart, list(np.random.default_rng(seed).standard_normal(POINTS)))
            for s in signals
        )
        for key in THEORY:
            counts[key].append(raised[key])
        ewma.append(raised["ewma", "WE1"])
    print(f"\nper {POINTS} in-control points, mean of {SEEDS} seeds")
    print(f"{'chart':12} {'rule':4} {'observed':>9} {'theory':>8} {'+4 SE':>8}")
    failures = []
    for (chart_name, rule), observed in counts.items():
        expected = THEORY[chart_name, rule] * POINTS
        # Signals come in clumps, so the spread is at least the Poisson one.
        spread = max(float(np.std(observed, ddof=1)), math.sqrt(expected))
        bound = 4 * spread / math.sqrt(SEEDS)
        mean = float(np.mean(observed))
        print(f"{chart_name:12} {rule:4} {mean:9.2f} {expected:8.2f} {expected + bound:8.2f}")
        if abs(mean - expected) > bound:  # too many is a false alarm; too few, a dead rule
            failures.append((chart_name, rule, mean, expected))
    print(f"{'ewma':12} {'WE1':4} {np.mean(ewma):9.2f}   (points beyond; no closed form)")
    assert not failures


def test_estimated_limits_keep_false_alarms_within_twice_the_known_limit_rate() -> None:
    """A 100-point phase I estimates sigma with error, which raises the false-alarm rate on
    average; it must stay below twice the rate with known limits."""
    settings = SpcSettings(baseline_points=100)
    known_rate = sum(p for (chart, _), p in THEORY.items() if chart == "individuals")
    totals = []
    for seed in range(SEEDS):
        chart = ControlChart("entropy", settings)
        series = list(np.random.default_rng(1000 + seed).standard_normal(100 + POINTS))
        totals.append(sum(len(individuals(s)) for s in feed(chart, series)))
    print(f"\nestimated limits: {np.mean(totals):.2f} individuals signals per {POINTS} points")
    print(f"known limits theory: {known_rate * POINTS:.2f}; bound {2 * known_rate * POINTS:.2f}")
    assert np.mean(totals) <= 2 * known_rate * POINTS


# --- phases, limits and the other charts -------------------------------------------------


def test_phase_one_collects_the_baseline_without_signals() -> None:
    chart = ControlChart("entropy", SETTINGS)
    wild = [0.0, 100.0, -50.0] + [0.1] * 16
    assert all(signals == [] for signals in feed(chart, wild))
    state = chart.to_dict()
    assert state["phase"] == "baseline"
    assert state["centerLine"] is None
    assert state["baselineValues"] == wild
    chart.add(0.1, "t19")
    assert chart.to_dict()["phase"] == "monitoring"


def test_limits_come_from_the_mean_and_the_average_moving_range() -> None:
    baseline = list(np.random.default_rng(7).normal(0.4, 0.05, 20))
    chart = ControlChart("entropy", SETTINGS)
    feed(chart, baseline)
    state = chart.to_dict()
    mr_bar = float(np.mean(np.abs(np.diff(baseline))))
    sigma = mr_bar / 1.128
    assert state["phase"] == "monitoring"
    assert state["centerLine"] == pytest.approx(np.mean(baseline))
    assert state["sigma"] == pytest.approx(sigma)
    assert state["upperControlLimit"] == pytest.approx(np.mean(baseline) + 3 * sigma)
    assert state["lowerControlLimit"] == pytest.approx(np.mean(baseline) - 3 * sigma)
    assert state["movingRangeUpperLimit"] == pytest.approx(3.267 * mr_bar)
    assert state["baselineValues"] == []
    chart.add(0.4, "t20")
    width = 3 * sigma * math.sqrt(0.2 / 1.8 * (1 - 0.8**2))
    after = chart.to_dict()
    assert after["ewma"] == pytest.approx(0.8 * np.mean(baseline) + 0.2 * 0.4)
    assert after["ewmaUpperLimit"] == pytest.approx(np.mean(baseline) + width)
    assert after["ewmaLowerLimit"] == pytest.approx(np.mean(baseline) - width)


def test_limits_stay_frozen_through_a_shift() -> None:
    chart = monitoring_chart()
    before = chart.to_dict()
    raised = feed(chart, [5.0] * 50, start=20)
    after = chart.to_dict()
    for key in ("centerLine", "sigma", "upperControlLimit", "movingRangeUpperLimit"):
        assert after[key] == before[key]
    assert all(("WE1", "upper") in individuals(signals) for signals in raised)


@pytest.mark.parametrize(
    ("metric", "value", "sigma"),
    [
        ("entropy", 0.0, 1e-3),
        ("health", 0.1, 1e-3),
        ("cycleDuration", 12.7, 12.7e-3),
        ("health", 0.9571162814602269, 1e-3),  # its 20-point mean is one ulp off the value
    ],
)
def test_a_constant_series_gets_floored_limits_and_no_signals(
    metric: str, value: float, sigma: float
) -> None:
    chart = ControlChart(metric, SETTINGS)
    assert all(signals == [] for signals in feed(chart, [value] * 300))
    state = chart.to_dict()
    assert state["sigma"] == pytest.approx(sigma)
    assert state["signals"] == []
    assert state["lastSignal"] is None


def test_moving_range_flags_a_jump_that_stays_inside_the_individual_limits() -> None:
    chart = monitoring_chart("cycleDuration")
    jump_down, jump_up = feed(chart, [-1.9, 1.95])
    assert jump_down == []
    (signal,) = [s for s in jump_up if s.chart == "movingRange"]
    assert (signal.rule, signal.side) == ("WE1", "upper")
    assert signal.value == pytest.approx(3.85)
    assert individuals(jump_up) == []
    assert signal.message.startswith("cycleDuration moving range WE1: ")


def first_signal(signals: list[list[Signal]], chart: str, rule: str) -> int | None:
    hits = [i for i, s in enumerate(signals) if any((x.chart, x.rule) == (chart, rule) for x in s)]
    return hits[0] if hits else None


def test_ewma_catches_a_one_sigma_shift_sooner_than_we1() -> None:
    state = monitoring_chart().to_dict()
    runs, length = 200, 30
    ewma_first, we1_first = [], []
    for seed in range(runs):
        chart = ControlChart.from_dict("entropy", state, SETTINGS)
        shifted = list(np.random.default_rng(seed).normal(1.0, 1.0, length))
        raised = feed(chart, shifted)
        ewma_first.append(first_signal(raised, "ewma", "WE1"))
        we1_first.append(first_signal(raised, "individuals", "WE1"))
    ewma_rate = sum(f is not None for f in ewma_first) / runs
    we1_rate = sum(f is not None for f in we1_first) / runs
    print(f"\n1-sigma shift, {length} points: EWMA detects {ewma_rate:.0%}, WE1 {we1_rate:.0%}")
    assert ewma_rate >= 0.85
    assert we1_rate <= ewma_rate - 0.2
    both = [(e, w) for e, w in zip(ewma_first, we1_first, strict=True) if e is not None and w]
    assert np.mean([e for e, _ in both]) < np.mean([w for _, w in both])


def test_ewma_signals_below_on_a_downward_shift() -> None:
    chart = monitoring_chart("health")
    raised = feed(chart, [-1.5] * 10)
    ewma = [s for signals in raised for s in signals if s.chart == "ewma"]
    assert ewma
    assert {s.side for s in ewma} == {"lower"}
    assert all(
        not any(s.rule == "WE1" for s in signals if s.chart == "individuals") for signals in raised
    )


# --- re-baselining ----------------------------------------------------------------------


def test_without_a_request_limits_never_change() -> None:
    chart = monitoring_chart()
    feed(chart, alternating(5.0, 200), start=20)
    assert chart.to_dict()["centerLine"] == pytest.approx(0.0, abs=1e-12)
    assert chart.to_dict()["rebaseline"] is None


def test_rebaseline_takes_effect_after_the_hold_down() -> None:
    chart = monitoring_chart()
    chart.request_rebaseline()
    assert chart.to_dict()["rebaseline"] == {"candidates": []}
    new_process = alternating(5.0, SETTINGS.hold_down_points)
    for i, value in enumerate(new_process[:-1]):
        signals = chart.add(value, f"t{20 + i}")
        assert ("WE1", "upper") in individuals(signals)  # the old limits are still in force
        state = chart.to_dict()
        assert state["centerLine"] == pytest.approx(0.0, abs=1e-12)
        assert len(state["rebaseline"]["candidates"]) == i + 1
    chart.add(new_process[-1], "t39")
    state = chart.to_dict()
    assert state["centerLine"] == pytest.approx(5.0)
    assert state["sigma"] == pytest.approx(1.0)
    assert state["rebaseline"] is None
    assert state["limitsSince"] == "t39"
    assert state["phase"] == "monitoring"
    assert all(s == [] for s in feed(chart, alternating(5.0, 50), start=40))


def test_an_unstable_candidate_slides_out_before_the_rebaseline() -> None:
    chart = monitoring_chart()
    chart.request_rebaseline()
    hold = SETTINGS.hold_down_points
    feed(chart, [*alternating(5.0, 10), 20.0], start=20)
    after_spike = alternating(5.0, hold)
    feed(chart, after_spike[:-1], start=31)
    assert chart.to_dict()["centerLine"] == pytest.approx(0.0, abs=1e-12)
    assert len(chart.to_dict()["rebaseline"]["candidates"]) == hold
    chart.add(after_spike[-1], "t50")
    assert chart.to_dict()["centerLine"] == pytest.approx(5.0)


def test_rebaseline_during_phase_one_restarts_the_baseline() -> None:
    chart = ControlChart("entropy", SETTINGS)
    feed(chart, [0.9] * 10)
    chart.request_rebaseline()
    feed(chart, alternating(0.2, 19), start=10)
    assert chart.to_dict()["phase"] == "baseline"
    chart.add(0.2 - HALF_MR, "t29")
    assert chart.to_dict()["centerLine"] == pytest.approx(0.2)


# --- persistence ------------------------------------------------------------------------


def mixed_series(seed: int, count: int) -> list[float]:
    rng = np.random.default_rng(seed)
    shifts = np.repeat(rng.normal(0.0, 2.0, count // 50 + 1), 50)[:count]
    return list(rng.normal(0.4, 0.05, count) + 0.05 * shifts)


def test_save_and_load_between_every_point_changes_nothing() -> None:
    series = mixed_series(3, 400)
    kept = ControlChart("entropy", SETTINGS)
    state: dict[str, object] | None = None
    for i, value in enumerate(series):
        if i % 97 == 50:
            kept.request_rebaseline()
        reloaded = ControlChart.from_dict("entropy", state, SETTINGS)
        if i % 97 == 50:
            reloaded.request_rebaseline()
        assert reloaded.add(value, f"t{i}") == kept.add(value, f"t{i}")
        state = json.loads(json.dumps(reloaded.to_dict()))
        assert state == kept.to_dict()
    assert kept.to_dict()["signals"]  # the series did exercise the charts
    assert kept.to_dict()["limitsSince"] != "t19"  # ... and a re-baseline


def test_a_fresh_chart_loads_from_nothing() -> None:
    fresh = ControlChart("health", SETTINGS).to_dict()
    assert ControlChart.from_dict("health", None, SETTINGS).to_dict() == fresh
    assert ControlChart.from_dict("health", {}, SETTINGS).to_dict() == fresh
    assert fresh["phase"] == "baseline"
    assert fresh["points"] == 0
    assert fresh["holt"] is None
    assert {
        "phase",
        "centerLine",
        "sigma",
        "upperControlLimit",
        "lowerControlLimit",
        "movingRangeUpperLimit",
        "ewma",
        "ewmaUpperLimit",
        "ewmaLowerLimit",
        "points",
        "history",
        "signals",
        "lastSignal",
        "rebaseline",
        "holt",
    } <= set(fresh)


STATE_BOUND = 16_000  # characters of JSON per metric, whatever the number of points


def test_state_stays_bounded() -> None:
    chart = ControlChart("cycleDuration", SETTINGS)
    for i, value in enumerate(mixed_series(5, 10_000)):
        if i % 1000 == 999:
            chart.request_rebaseline()
        chart.add(value, f"2025-01-01T00:00:00.{i:06d}Z")
    state = chart.to_dict()
    size = len(json.dumps(state))
    print(f"\nstate after 10,000 points: {size} characters")
    assert size < STATE_BOUND
    assert state["points"] == 10_000
    assert len(state["history"]) == SETTINGS.history_points
    assert len(state["signals"]) == SETTINGS.max_signals


# --- forecast and input checks ----------------------------------------------------------


def test_holt_smooths_level_and_trend_with_alpha_half_and_beta_three_tenths() -> None:
    chart = ControlChart("entropy", SETTINGS)
    chart.add(0.0, "t0")
    assert chart.to_dict()["holt"] == {"level": 0.0, "trend": 0.0}
    chart.add(1.0, "t1")  # level 0.5 * 1 + 0.5 * (0 + 0); trend 0.3 * (0.5 - 0) + 0.7 * 0
    assert chart.to_dict()["holt"] == {"level": 0.5, "trend": pytest.approx(0.15)}


def test_forecast_of_a_linear_ramp() -> None:
    chart = ControlChart("entropy", SETTINGS)
    feed(chart, [0.005 * i for i in range(40)])  # reaches 0.3 at point 60
    forecast = chart.forecast_crossing(THRESHOLDS, 30.0)
    assert forecast is not None
    assert forecast.level == "medium"
    assert forecast.threshold == 0.3
    assert forecast.seconds == pytest.approx((60 - 39) * 30.0, rel=0.03)
    assert forecast.trend_per_point == pytest.approx(0.005, rel=0.03)
    assert set(forecast.to_dict()) == {"level", "threshold", "seconds", "trendPerPoint"}
    feed(chart, [0.005 * i for i in range(40, 80)], start=40)  # past 0.3: next is high at 120
    later = chart.forecast_crossing(THRESHOLDS, 30.0)
    assert later is not None
    assert later.level == "high"
    assert later.seconds == pytest.approx((120 - 79) * 30.0, rel=0.03)


@pytest.mark.parametrize(
    "series",
    [
        [],
        [0.4] * 30,
        [0.6 - 0.005 * i for i in range(40)],
        [0.85 + 0.001 * i for i in range(40)],  # rising, but already above every threshold
    ],
    ids=["empty", "flat", "falling", "above all"],
)
def test_no_forecast_without_a_rise_toward_a_threshold(series: list[float]) -> None:
    chart = ControlChart("entropy", SETTINGS)
    feed(chart, series)
    assert chart.forecast_crossing(THRESHOLDS, 30.0) is None


def test_forecast_rejects_unordered_thresholds() -> None:
    chart = ControlChart("entropy", SETTINGS)
    with pytest.raises(ValueError, match="ascending"):
        chart.forecast_crossing([("high", 0.6), ("medium", 0.3)], 30.0)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_rejected(bad: float) -> None:
    chart = monitoring_chart("health")
    before = chart.to_dict()
    with pytest.raises(ValueError, match=rf"health: value {bad!r}"):
        chart.add(bad, "t99")
    assert chart.to_dict() == before


def test_settings_need_enough_points_for_a_baseline() -> None:
    with pytest.raises(ValueError, match="at least 8"):
        SpcSettings(baseline_points=7)
    with pytest.raises(ValueError, match="ewma_lambda"):
        SpcSettings(ewma_lambda=0.0)
