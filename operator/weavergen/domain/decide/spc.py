"""Statistical process control of a charter's metrics: individuals, moving-range and EWMA charts.

A fixed threshold says how bad a score is, not whether it is unusual for this charter. A control
chart learns the metric's own noise from a phase-I baseline, freezes the limits, and then flags
points the baseline process would rarely produce (Western Electric rules), sudden jumps (moving
range) and small sustained shifts the rules are slow to see (EWMA). A Holt trend forecasts when
the metric will cross the next threshold. The state lives in the charter's Kubernetes status, so
it round-trips through JSON (camelCase keys) and is bounded by ``SpcSettings``.

Choices:

- sigma = MR-bar / d2 (d2 = 1.128), floored at ``SIGMA_FLOOR * max(1, |center|)``: a constant
  baseline (entropy exactly 0.0) still gets limits, and a constant series raises nothing.
- In phase II the rules see only points judged against the current limits, never the baseline
  points that set them (those are not evidence against their own limits).
- EWMA limits use the exact, time-varying width; i counts points since the limits were set.
- Re-baselining slides: the old limits stay in force while a window of the last
  ``hold_down_points`` points is kept; once every point of it lies within 3 sigma of the
  window's own center (sigma from its own moving ranges) it becomes the new baseline.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

RULES: dict[str, str] = {
    "WE1": "one point beyond 3 sigma from the center line",
    "WE2": "2 of 3 consecutive points beyond 2 sigma on the same side, the latest among them",
    "WE3": "4 of 5 consecutive points beyond 1 sigma on the same side, the latest among them",
    "WE4": "8 consecutive points on the same side of the center line",
}


class _Pattern(NamedTuple):
    rule: str
    sigmas: float  # how far beyond the center a point must lie to count
    needed: int  # points that must lie beyond ...
    span: int  # ... among the latest this many
    phrase: str


_PATTERNS = (
    _Pattern("WE1", 3.0, 1, 1, "1 point beyond 3 sigma"),
    _Pattern("WE2", 2.0, 2, 3, "2 of 3 points beyond 2 sigma"),
    _Pattern("WE3", 1.0, 4, 5, "4 of 5 points beyond 1 sigma"),
    _Pattern("WE4", 0.0, 8, 8, "8 points in a row"),
)
WINDOW = max(p.span for p in _PATTERNS)

D2 = 1.128  # E|X_t - X_(t-1)| / sigma for normal data, so MR-bar / D2 estimates sigma
D4 = 3.267  # upper-limit factor of a moving range of span 2
SIGMA_FLOOR = 1e-3  # relative to max(1, |center|): a thousandth of a 0..1 score's scale
# A point within this many sigma of the center is on neither side, so the float rounding of a
# constant series' mean cannot build a WE4 run.
SIDE_EPSILON = 1e-9
# Holt's linear trend: level follows the data fairly quickly, the trend more cautiously.
HOLT_ALPHA = 0.5
HOLT_BETA = 0.3
# A trend below this (per point, relative to max(1, |level|)) is float noise, not a trend.
TREND_EPSILON = 1e-9


@dataclass(frozen=True)
class SpcSettings:
    baseline_points: int = 20
    hold_down_points: int = 20
    history_points: int = 120
    ewma_lambda: float = 0.2
    ewma_width: float = 3.0
    max_signals: int = 10

    def __post_init__(self) -> None:
        if min(self.baseline_points, self.hold_down_points) < WINDOW:
            raise ValueError(f"a baseline needs at least {WINDOW} points to estimate limits")
        if self.history_points < WINDOW:
            raise ValueError(f"history_points must hold the {WINDOW}-point rule window")
        if not 0 < self.ewma_lambda <= 1 or self.ewma_width <= 0:
            raise ValueError("ewma_lambda must be in (0, 1] and ewma_width positive")
        if self.max_signals < 1:
            raise ValueError("max_signals must be at least 1")


@dataclass(frozen=True)
class Signal:
    chart: str
    rule: str
    at: str
    value: float  # the point, the moving range or the EWMA, depending on the chart
    side: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "chart": self.chart,
            "rule": self.rule,
            "at": self.at,
            "value": self.value,
            "side": self.side,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signal:
        return cls(
            chart=str(data["chart"]),
            rule=str(data["rule"]),
            at=str(data["at"]),
            value=float(data["value"]),
            side=str(data["side"]),
            message=str(data["message"]),
        )


@dataclass(frozen=True)
class Forecast:
    level: str
    threshold: float
    seconds: float
    trend_per_point: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "threshold": self.threshold,
            "seconds": self.seconds,
            "trendPerPoint": self.trend_per_point,
        }


def western_electric(points: Sequence[float], center: float, sigma: float) -> list[tuple[str, str]]:
    """Rules (id, side) that fire at the LAST point of ``points`` (points oldest first).

    A rule fires at the point that completes its pattern, so the latest point must be one of
    those beyond. With fewer points than a pattern spans, the points there are must complete it
    on their own (earlier points could only add to it); WE4 needs all 8.
    """
    if not math.isfinite(sigma) or sigma <= 0:
        raise ValueError(f"sigma must be a positive number, got {sigma!r}")
    z = [(p - center) / sigma for p in points[-WINDOW:]]
    fired: list[tuple[str, str]] = []
    for side, sign in (("upper", 1.0), ("lower", -1.0)):
        signed = [sign * v for v in z]
        for pattern in _PATTERNS:
            cut = max(pattern.sigmas, SIDE_EPSILON)
            recent = signed[-pattern.span :]
            if recent and recent[-1] > cut and sum(v > cut for v in recent) >= pattern.needed:
                fired.append((pattern.rule, side))
    return fired


@dataclass(frozen=True)
class _Limits:
    center: float
    sigma: float

    @classmethod
    def estimate(cls, values: Sequence[float]) -> _Limits:
        center = math.fsum(values) / len(values)
        mr_bar = math.fsum(abs(b - a) for a, b in itertools.pairwise(values)) / (len(values) - 1)
        return cls(center, max(mr_bar / D2, SIGMA_FLOOR * max(1.0, abs(center))))

    @property
    def upper(self) -> float:
        return self.center + 3 * self.sigma

    @property
    def lower(self) -> float:
        return self.center - 3 * self.sigma

    @property
    def moving_range_upper(self) -> float:
        return D4 * D2 * self.sigma  # = 3.267 * MR-bar when sigma is not floored

    def ewma_half_width(self, settings: SpcSettings, points: int) -> float:
        lam = settings.ewma_lambda
        spread = lam / (2 - lam) * (1 - (1 - lam) ** (2 * points))
        return settings.ewma_width * self.sigma * math.sqrt(spread)


class ControlChart:
    """Individuals + moving range + EWMA chart of one metric, with phase I/II and re-baselining."""

    def __init__(self, metric: str, settings: SpcSettings) -> None:
        self.metric = metric
        self.settings = settings
        self._points = 0
        self._history: list[tuple[str, float]] = []
        self._baseline: list[float] = []
        self._limits: _Limits | None = None
        self._limits_since: str | None = None
        self._monitored = 0  # points judged against the current limits
        self._ewma = 0.0
        self._candidates: list[float] | None = None
        self._holt: tuple[float, float] | None = None
        self._signals: list[Signal] = []

    @classmethod
    def from_dict(
        cls, metric: str, data: Mapping[str, Any] | None, settings: SpcSettings
    ) -> ControlChart:
        """The chart saved by ``to_dict`` (a fresh one for None or {}), trimmed to ``settings``."""
        chart = cls(metric, settings)
        if not data:
            return chart
        chart._points = int(data.get("points", 0))
        history = [(str(h["at"]), float(h["value"])) for h in data.get("history", [])]
        chart._history = history[-settings.history_points :]
        baseline = [float(v) for v in data.get("baselineValues", [])]
        chart._baseline = baseline[-settings.baseline_points :]
        center, sigma = data.get("centerLine"), data.get("sigma")
        if center is not None and sigma is not None:
            chart._limits = _Limits(float(center), float(sigma))
            ewma = data.get("ewma")
            chart._ewma = float(center if ewma is None else ewma)
            chart._monitored = int(data.get("monitoredPoints", 0))
            since = data.get("limitsSince")
            chart._limits_since = None if since is None else str(since)
        rebaseline = data.get("rebaseline")
        if rebaseline is not None:
            candidates = [float(v) for v in rebaseline.get("candidates", [])]
            chart._candidates = candidates[-settings.hold_down_points :]
        holt = data.get("holt")
        if holt is not None:
            chart._holt = (float(holt["level"]), float(holt["trend"]))
        signals = [Signal.from_dict(s) for s in data.get("signals", [])]
        chart._signals = signals[-settings.max_signals :]
        return chart

    def to_dict(self) -> dict[str, Any]:
        """JSON-able state; its size is bounded by the settings, not by the number of points."""
        state: dict[str, Any] = {
            "phase": "baseline",
            "centerLine": None,
            "sigma": None,
            "upperControlLimit": None,
            "lowerControlLimit": None,
            "movingRangeUpperLimit": None,
            "ewma": None,
            "ewmaUpperLimit": None,
            "ewmaLowerLimit": None,
            "points": self._points,
            "monitoredPoints": self._monitored,
            "limitsSince": self._limits_since,
            "baselineValues": list(self._baseline),
            "history": [{"at": at, "value": value} for at, value in self._history],
            "signals": [s.to_dict() for s in self._signals],
            "lastSignal": self._signals[-1].message if self._signals else None,
            "rebaseline": None,
            "holt": None,
        }
        if self._candidates is not None:
            state["rebaseline"] = {"candidates": list(self._candidates)}
        if self._holt is not None:
            state["holt"] = {"level": self._holt[0], "trend": self._holt[1]}
        if self._limits is not None:
            limits = self._limits
            width = limits.ewma_half_width(self.settings, self._monitored)
            state.update(
                phase="monitoring",
                centerLine=limits.center,
                sigma=limits.sigma,
                upperControlLimit=limits.upper,
                lowerControlLimit=limits.lower,
                movingRangeUpperLimit=limits.moving_range_upper,
                ewma=self._ewma,
                ewmaUpperLimit=limits.center + width,
                ewmaLowerLimit=limits.center - width,
            )
        return state

    def add(self, value: float, at: str, *, in_control: bool = True) -> list[Signal]:
        """Chart one point and return the signals it raised (none while the baseline is built).

        Every point enters the history, which is what was measured; only an ``in_control`` one
        enters a phase-I baseline, whose limits must describe the process when it is healthy.
        """
        if not math.isfinite(value):
            raise ValueError(f"{self.metric}: value {value!r} is not a finite number")
        value = float(value)
        previous = self._history[-1][1] if self._history else None
        self._points += 1
        self._history = [*self._history, (at, value)][-self.settings.history_points :]
        self._update_holt(value)
        if self._limits is None:
            if not in_control:
                return []
            self._baseline.append(value)
            if len(self._baseline) >= self.settings.baseline_points:
                self._set_limits(self._baseline, at)
                self._baseline = []
            return []
        signals = self._judge(self._limits, value, previous, at)
        if self._candidates is not None:
            self._candidates = [*self._candidates, value][-self.settings.hold_down_points :]
            if len(self._candidates) == self.settings.hold_down_points and _stable(
                self._candidates
            ):
                self._set_limits(self._candidates, at)
                self._candidates = None
        self._signals = [*self._signals, *signals][-self.settings.max_signals :]
        return signals

    def request_rebaseline(self) -> None:
        """The process was changed on purpose: learn new limits once it has settled.

        In phase I the points so far describe the old process, so the baseline starts over. In
        phase II the old limits stay in force until ``hold_down_points`` stable points follow; a
        second request restarts that hold-down, since the process changed again.
        """
        if self._limits is None:
            self._baseline = []
        else:
            self._candidates = []

    def forecast_crossing(
        self, thresholds: Sequence[tuple[str, float]], interval_seconds: float
    ) -> Forecast | None:
        """When the Holt trend reaches the first threshold above the current level, if it rises."""
        values = [value for _, value in thresholds]
        if values != sorted(values):
            raise ValueError(f"{self.metric}: thresholds must be ascending, got {thresholds!r}")
        if not interval_seconds > 0:
            raise ValueError(f"{self.metric}: interval must be positive, got {interval_seconds!r}")
        if self._holt is None:
            return None
        level, trend = self._holt
        if trend <= TREND_EPSILON * max(1.0, abs(level)):
            return None
        for name, threshold in thresholds:
            if threshold > level:
                seconds = (threshold - level) / trend * interval_seconds
                return Forecast(name, threshold, seconds, trend)
        return None

    def _set_limits(self, values: Sequence[float], at: str) -> None:
        self._limits = _Limits.estimate(values)
        self._limits_since = at
        self._monitored = 0
        self._ewma = self._limits.center

    def _update_holt(self, value: float) -> None:
        if self._holt is None:
            self._holt = (value, 0.0)
            return
        level, trend = self._holt
        new_level = HOLT_ALPHA * value + (1 - HOLT_ALPHA) * (level + trend)
        self._holt = (new_level, HOLT_BETA * (new_level - level) + (1 - HOLT_BETA) * trend)

    def _judge(
        self, limits: _Limits, value: float, previous: float | None, at: str
    ) -> list[Signal]:
        self._monitored += 1
        window = [v for _, v in self._history[-min(WINDOW, self._monitored) :]]
        signals = [
            self._individuals_signal(limits, rule, side, value, at)
            for rule, side in western_electric(window, limits.center, limits.sigma)
        ]
        if previous is not None and abs(value - previous) > limits.moving_range_upper:
            jump = abs(value - previous)
            message = (
                f"{self.metric} moving range WE1: a jump of {jump:.4g} beyond the moving-range"
                f" upper limit ({jump:.4g} > {limits.moving_range_upper:.4g})"
            )
            signals.append(Signal("movingRange", "WE1", at, jump, "upper", message))
        lam = self.settings.ewma_lambda
        self._ewma = lam * value + (1 - lam) * self._ewma
        width = limits.ewma_half_width(self.settings, self._monitored)
        if abs(self._ewma - limits.center) > width:
            upper = self._ewma > limits.center
            limit = limits.center + width if upper else limits.center - width
            message = (
                f"{self.metric} EWMA WE1: the smoothed value is beyond the EWMA"
                f" {'upper' if upper else 'lower'} limit"
                f" ({self._ewma:.4g} {'>' if upper else '<'} {limit:.4g})"
            )
            side = "upper" if upper else "lower"
            signals.append(Signal("ewma", "WE1", at, self._ewma, side, message))
        return signals

    def _individuals_signal(
        self, limits: _Limits, rule: str, side: str, value: float, at: str
    ) -> Signal:
        pattern = next(p for p in _PATTERNS if p.rule == rule)
        upper = side == "upper"
        limit = limits.center + (1 if upper else -1) * pattern.sigmas * limits.sigma
        message = (
            f"{self.metric} {rule}: {pattern.phrase} {'above' if upper else 'below'} the center"
            f" line ({value:.4g} {'>' if upper else '<'} {limit:.4g})"
        )
        return Signal("individuals", rule, at, value, side, message)


def _stable(values: Sequence[float]) -> bool:
    """No point beyond 3 sigma of limits estimated from the points themselves."""
    limits = _Limits.estimate(values)
    return all(limits.lower <= v <= limits.upper for v in values)
