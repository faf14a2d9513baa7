"""Hand-written inline SVG for the HTML report: control charts and phase-timing bars.

The report must open from a file, offline, printed or attached to a ticket, so there is no
JavaScript and no plotting library: a chart is a few lines, a polyline and circles, drawn here.
Every string that comes from a Kubernetes object goes through ``esc``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any

from weavergen.api.charter import SpcSpec

CHART_WIDTH = 860
CHART_HEIGHT = 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 62, 118, 18, 46
_PLOT_W = CHART_WIDTH - _LEFT - _RIGHT
_PLOT_H = CHART_HEIGHT - _TOP - _BOTTOM
_LABEL_GAP = 11.0
_X_TICKS = 6

BAR_WIDTH = 380
_BAR_LEFT = 96
_BAR_ROW = 24
_BARS_WIDTH = 820

# Title and y-axis unit of the charts the operator keeps; unknown charts are titled by their key.
CHART_TITLES = {
    "entropy": ("Entropy score", "score"),
    "health": ("Health score", "score"),
    "cycleDuration": ("Cycle duration", "seconds"),
}
_THRESHOLDS = ("medium", "high", "critical")
_SPC_DEFAULTS = SpcSpec()  # what the API server fills in when spec.spc is left out


def esc(value: object) -> str:
    """Escape text (and attribute values) taken from objects: names and messages are user input."""
    return escape(str(value), quote=True)


def as_map(value: object) -> Mapping[str, Any]:
    """The value if it is a mapping, else an empty one: status fields may be missing or null."""
    return value if isinstance(value, Mapping) else {}


def as_maps(value: object) -> list[Mapping[str, Any]]:
    """The mappings of a list field, ignoring anything else: a malformed entry must not crash."""
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def as_float(value: object) -> float | None:
    """A finite number, or None for null, text, booleans, NaN and infinities."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 timestamp as Kubernetes writes it, in UTC; None when absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def fmt_num(value: object, digits: int = 2) -> str:
    """A number with fixed digits, or an em dash when there is none."""
    number = as_float(value)
    return "—" if number is None else f"{number:.{digits}f}"


def fmt_duration(seconds: float | None) -> str:
    """Seconds as a person reads them: 12.3 s, 4 min 5 s, 1 h 2 min."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes} min" if rest == 0 else f"{minutes} min {rest} s"
    hours, rest = divmod(whole, 3600)
    return f"{hours} h {rest // 60} min"


def fmt_time(value: object) -> str:
    """A timestamp in UTC to the second; unreadable text is shown (escaped) as it came."""
    parsed = parse_time(value)
    if parsed is None:
        return "—" if value in (None, "") else esc(value)
    return parsed.strftime("%Y-%m-%d %H:%M:%S UTC")


def _nice_step(span: float) -> float:
    """A 1, 2 or 5 times a power of ten step that cuts the span into about four intervals."""
    raw = span / 4
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1.0, 2.0, 5.0):
        if raw <= factor * power:
            return factor * power
    return 10.0 * power


@dataclass(frozen=True)
class _Scale:
    """Maps point indexes and values to plot coordinates; bounds are rounded to the tick step."""

    points: int
    low: float
    high: float
    step: float

    @classmethod
    def covering(cls, points: int, values: Sequence[float]) -> _Scale:
        low, high = min(values), max(values)
        if high - low < 1e-9:
            pad = max(abs(high), 1.0) * 0.05
            low, high = low - pad, high + pad
        step = _nice_step(high - low)
        return cls(points, math.floor(low / step) * step, math.ceil(high / step) * step, step)

    @property
    def digits(self) -> int:
        """Decimals that tell two ticks apart."""
        return max(0, -math.floor(math.log10(self.step)))

    def x(self, index: int) -> float:
        if self.points < 2:
            return _LEFT + _PLOT_W / 2
        return _LEFT + index * _PLOT_W / (self.points - 1)

    def y(self, value: float) -> float:
        return _TOP + (self.high - value) / (self.high - self.low) * _PLOT_H


_Series = list[tuple[datetime | None, float]]
_Line = tuple[float, str, str]  # value, label, css class


def _history(chart: Mapping[str, Any]) -> _Series:
    """The charted points that have a numeric value, oldest first, with their times."""
    return [
        (parse_time(p.get("at")), value)
        for p in as_maps(chart.get("history"))
        if (value := as_float(p.get("value"))) is not None
    ]


def _signals_in_range(
    chart: Mapping[str, Any], history: _Series
) -> list[tuple[Mapping[str, Any], int, datetime]]:
    """Signals raised within the charted history, with the index of their point and their time.

    The operator stamps a signal with the time of the point that completed its pattern; the
    nearest point is taken so a rounded timestamp still lands on it.
    """
    known = [(t, i) for i, (t, _) in enumerate(history) if t is not None]
    if not known:
        return []
    first, last = known[0][0], known[-1][0]
    found = []
    for signal in as_maps(chart.get("signals")):
        at = parse_time(signal.get("at"))
        if at is None or not first <= at <= last:
            continue
        index = min(known, key=lambda ti: abs((ti[0] - at).total_seconds()))[1]
        found.append((signal, index, at))
    return found


def signals_in_range(chart: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The chart's signals that fall within its history, the ones the SVG marks."""
    return [signal for signal, _, _ in _signals_in_range(chart, _history(chart))]


def limits_note(chart: Mapping[str, Any], spc: Mapping[str, Any]) -> str | None:
    """How far the chart is in learning its limits: n of the N points ``spec.spc`` asks for.

    Phase I collects ``baselinePoints`` before there are limits at all; after a successful
    cycle the old limits stay in force while ``holdDownPoints`` stable points are collected.
    """
    rebaseline = chart.get("rebaseline")
    if chart.get("phase") == "baseline":
        values = chart.get("baselineValues")
        count = len(values) if isinstance(values, list) else chart.get("points", 0)
        wanted = spc.get("baselinePoints", _SPC_DEFAULTS.baseline_points)
        return f"collecting baseline ({count}/{wanted})"
    if isinstance(rebaseline, Mapping):
        candidates = rebaseline.get("candidates")
        count = len(candidates) if isinstance(candidates, list) else 0
        wanted = spc.get("holdDownPoints", _SPC_DEFAULTS.hold_down_points)
        return f"relearning limits after a change ({count}/{wanted})"
    return None


def _hline(y: float, css: str) -> str:
    return f'<line class="{css}" x1="{_LEFT}" x2="{_LEFT + _PLOT_W}" y1="{y:.1f}" y2="{y:.1f}"/>'


def _note(text: str, y: float) -> str:
    return (
        f'<text class="note" x="{_LEFT + _PLOT_W / 2}" y="{y}" text-anchor="middle">'
        f"{esc(text)}</text>"
    )


def _reference_lines(
    key: str, chart: Mapping[str, Any], thresholds: Mapping[str, Any]
) -> list[_Line]:
    """Center line, control and EWMA limits present, and the level thresholds on entropy."""
    lines = [
        (value, label, css)
        for field, label, css in (
            ("centerLine", "CL", "center"),
            ("upperControlLimit", "UCL", "limit"),
            ("lowerControlLimit", "LCL", "limit"),
            ("ewmaUpperLimit", "EWMA UCL", "ewma-limit"),
            ("ewmaLowerLimit", "EWMA LCL", "ewma-limit"),
        )
        if (value := as_float(chart.get(field))) is not None
    ]
    if key == "entropy":
        lines += [
            (value, level, f"threshold threshold-{level}")
            for level in _THRESHOLDS
            if (value := as_float(thresholds.get(level))) is not None
        ]
    return lines


def _axes(scale: _Scale, history: _Series, unit: str) -> list[str]:
    """Y ticks with grid lines, a few time labels along x, the date range and the frame."""
    parts = []
    for k in range(round((scale.high - scale.low) / scale.step) + 1):
        tick = scale.low + k * scale.step
        y = scale.y(tick)
        parts.append(_hline(y, "grid"))
        parts.append(
            f'<text class="tick" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{tick:.{scale.digits}f}</text>"
        )
    parts.append(
        f'<text class="axis" transform="translate(14 {_TOP + _PLOT_H / 2}) rotate(-90)" '
        f'text-anchor="middle">{esc(unit)}</text>'
    )
    last = len(history) - 1
    for index in sorted({round(k * last / (_X_TICKS - 1)) for k in range(_X_TICKS)}):
        x, at = scale.x(index), history[index][0]
        parts.append(
            f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{_TOP}" y2="{_TOP + _PLOT_H}"/>'
            f'<text class="tick" x="{x:.1f}" y="{_TOP + _PLOT_H + 16}" text-anchor="middle">'
            f"{at.strftime('%H:%M') if at else f'#{index + 1}'}</text>"
        )
    known = [t for t, _ in history if t is not None]
    if known:
        parts.append(
            f'<text class="axis" x="{_LEFT + _PLOT_W / 2}" y="{CHART_HEIGHT - 8}" '
            f'text-anchor="middle">UTC, {known[0]:%Y-%m-%d %H:%M} to {known[-1]:%Y-%m-%d %H:%M}'
            "</text>"
        )
    parts.append(
        f'<rect class="frame" x="{_LEFT}" y="{_TOP}" width="{_PLOT_W}" height="{_PLOT_H}"/>'
    )
    return parts


def _line_marks(scale: _Scale, lines: Sequence[_Line], ewma: float | None) -> list[str]:
    """The horizontal lines, the current EWMA as a diamond at the last point, and their labels.

    Labels sit right of the plot, pushed apart vertically so close lines stay readable.
    """
    parts, labels = [], []
    shown = scale.digits + 1
    for value, label, css in lines:
        parts.append(_hline(scale.y(value), css))
        labels.append((scale.y(value), f"{label} {value:.{shown}f}", css))
    if ewma is not None:
        x, y = scale.x(scale.points - 1), scale.y(ewma)
        parts.append(
            f'<path class="ewma" d="M{x:.1f} {y - 6:.1f} l6 6 l-6 6 l-6 -6 z">'
            f"<title>EWMA now {ewma:.{shown}f}</title></path>"
        )
        labels.append((y, f"EWMA {ewma:.{shown}f}", "ewma"))
    previous = -math.inf
    for y, text, css in sorted(labels):
        placed = max(y, previous + _LABEL_GAP)
        parts.append(
            f'<text class="line-label {css}" x="{_LEFT + _PLOT_W + 6}" y="{placed + 4:.1f}">'
            f"{esc(text)}</text>"
        )
        previous = placed
    return parts


def _series(scale: _Scale, history: _Series, chart: Mapping[str, Any]) -> list[str]:
    """The polyline, a circle per point, and a red circle per signal naming its rule."""
    coords = " ".join(f"{scale.x(i):.1f},{scale.y(v):.1f}" for i, (_, v) in enumerate(history))
    parts = [f'<polyline class="series" points="{coords}"/>']
    for i, (at, value) in enumerate(history):
        when = f"{at:%Y-%m-%d %H:%M:%S} UTC" if at else f"point {i + 1}"
        parts.append(
            f'<circle class="point" cx="{scale.x(i):.1f}" cy="{scale.y(value):.1f}" r="2.2">'
            f"<title>{when}: {value:.{scale.digits + 2}f}</title></circle>"
        )
    for signal, index, at in _signals_in_range(chart, history):
        # The point's own value: a moving-range or EWMA signal's value is not on this scale.
        y = scale.y(history[index][1])
        tip = f"{signal.get('rule', '?')} ({signal.get('chart', '?')}) at {at:%H:%M:%S} UTC"
        parts.append(
            f'<circle class="signal" cx="{scale.x(index):.1f}" cy="{y:.1f}" r="5">'
            f"<title>{esc(tip)}: {esc(signal.get('message', ''))}</title></circle>"
        )
    return parts


def control_chart(
    key: str, chart: Mapping[str, Any], thresholds: Mapping[str, Any], spc: Mapping[str, Any]
) -> str:
    """One control chart: series with points, center line, control limits, EWMA and signals.

    Points are placed by index, not by time: measurements come at the charter's cadence, and a
    gap (the operator down for an hour) would otherwise squash the rest of the series; the tick
    labels carry the real times. ``thresholds`` (the entropy levels) are drawn on the entropy
    chart only; ``spc`` is the charter's ``spec.spc``, for how many points a baseline takes.
    """
    title, unit = CHART_TITLES.get(key, (key, "value"))
    history = _history(chart)
    parts = [
        f'<svg class="control-chart" data-chart="{esc(key)}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" '
        f'width="{CHART_WIDTH}" height="{CHART_HEIGHT}">',
        f"<title>{esc(title)} control chart</title>",
    ]
    note = limits_note(chart, spc)
    if not history:
        parts += [_note(note or "no points yet", _TOP + _PLOT_H / 2), "</svg>"]
        return "".join(parts)
    lines = _reference_lines(key, chart, thresholds)
    ewma = as_float(chart.get("ewma"))
    drawn = [v for _, v in history] + [v for v, _, _ in lines]
    scale = _Scale.covering(len(history), [*drawn, ewma] if ewma is not None else drawn)
    parts += _axes(scale, history, unit)
    parts += _line_marks(scale, lines, ewma)
    parts += _series(scale, history, chart)
    if note is not None:
        parts.append(_note(note, _TOP + 16))
    parts.append("</svg>")
    return "".join(parts)


def phase_duration(phase: Mapping[str, Any]) -> float | None:
    """durationSeconds, or finishedAt minus startedAt when the operator did not write it."""
    seconds = as_float(phase.get("durationSeconds"))
    if seconds is not None:
        return seconds
    started, finished = parse_time(phase.get("startedAt")), parse_time(phase.get("finishedAt"))
    if started is None or finished is None:
        return None
    return max(0.0, (finished - started).total_seconds())


def phase_bars(phases: Sequence[Mapping[str, Any]]) -> str:
    """Horizontal bars, one per phase, the longest phase filling the bar width."""
    durations = [phase_duration(p) for p in phases]
    longest = max((d for d in durations if d is not None), default=0.0)
    height = len(phases) * _BAR_ROW + 6
    parts = [
        f'<svg class="phase-bars" role="img" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {_BARS_WIDTH} {height}" width="{_BARS_WIDTH}" height="{height}">',
        "<title>Phase timing</title>",
    ]
    for row, (phase, seconds) in enumerate(zip(phases, durations, strict=True)):
        y = 4 + row * _BAR_ROW
        outcome = str(phase.get("outcome") or "")
        parts.append(
            f'<text class="bar-label" x="{_BAR_LEFT - 8}" y="{y + 12}" text-anchor="end">'
            f"{esc(phase.get('name', '?'))}</text>"
        )
        width = 0.0 if seconds is None or longest <= 0 else seconds / longest * BAR_WIDTH
        if seconds is not None:
            parts.append(
                f'<rect class="bar outcome-{outcome_class(outcome)}" x="{_BAR_LEFT}" y="{y}" '
                f'width="{width:.2f}" height="16"><title>{esc(phase.get("name", "?"))}: '
                f"{fmt_duration(seconds)}</title></rect>"
            )
        details = [fmt_duration(seconds) if seconds is not None else "no timing"]
        details += [outcome] if outcome else []
        attempts = phase.get("attempts")
        if isinstance(attempts, int) and attempts > 1:
            details.append(f"{attempts} attempts")
        if phase.get("job"):
            details.append(f"job {phase['job']}")
        parts.append(
            f'<text class="bar-text" x="{_BAR_LEFT + width + 6:.2f}" y="{y + 12}">'
            f"{esc(' · '.join(details))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


_OUTCOME_CLASSES = {
    "Succeeded": "ok",
    "NotNeeded": "neutral",
    "Skipped": "neutral",
    "RolledBack": "warn",
    "Escalated": "warn",
    "Failed": "bad",
}


def outcome_class(outcome: str) -> str:
    """A fixed CSS class per outcome, so status text never lands in a class attribute."""
    return _OUTCOME_CLASSES.get(outcome, "active")
