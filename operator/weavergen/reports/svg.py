"""Hand-written inline SVG for the HTML report: control charts and phase-timing bars.

The report must open from a file, offline, printed or attached to a ticket, so there is no
JavaScript and no plotting library: a chart is a few lines, a polyline and circles, drawn here.
Every string that comes from a Kubernetes object goes through ``esc``.

A measured chart (entropy, health) also shades each cycle from its start to its end, so the
points before, during and after an incident read at a glance.
"""

from __future__ import annotations

import itertools
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
# Charts of measurements, on which cycles are marked (cycle duration is charted per cycle).
MEASURED_CHARTS = ("entropy", "health")
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
    """An RFC 3339 timestamp as Kubernetes writes it (or a datetime), in UTC; None when absent
    or unreadable."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
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
    """A timestamp (text or datetime) in UTC to the second; unreadable text is shown (escaped)
    as it came."""
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

    def x(self, index: float) -> float:
        """The x of a point index; a fractional one lies between two points."""
        if self.points < 2:
            return _LEFT + _PLOT_W / 2
        return _LEFT + index * _PLOT_W / (self.points - 1)

    def y(self, value: float) -> float:
        return _TOP + (self.high - value) / (self.high - self.low) * _PLOT_H


_Point = tuple[datetime | None, float]
_Line = tuple[float, str, str]  # value, label, css class


@dataclass(frozen=True)
class _Series:
    """The points to draw, oldest first, and the indexes the line breaks before."""

    points: list[_Point]
    breaks: frozenset[int]

    @classmethod
    def of(cls, chart: Mapping[str, Any]) -> _Series:
        """The chart's rolling history, after the points kept around earlier cycles that are
        older than it (``cycleWindows``). Neighbours are joined only when one list holds them
        one after the other: the points between two cycles' windows were not kept."""
        runs = [_points(w.get("points")) for w in as_maps(chart.get("cycleWindows"))]
        history = _points(chart.get("history"))
        first = next((t for t, _ in history if t is not None), None)
        older = {
            (t, v) for run in runs for t, v in run if t is not None and (first is None or t < first)
        }
        points = sorted(older, key=lambda point: (point[0], point[1])) + history
        joined = {pair for run in [*runs, history] for pair in itertools.pairwise(run)}
        breaks = (i for i in range(1, len(points)) if (points[i - 1], points[i]) not in joined)
        return cls(points, frozenset(breaks))

    def locate(self, at: datetime) -> float | None:
        """The point index of time ``at``, fractional between two points; None before the first
        point, after the last, or where the line breaks (no point was kept there)."""
        known = [(i, t) for i, (t, _) in enumerate(self.points) if t is not None]
        for i, t in known:
            if t == at:
                return float(i)
        for (i, a), (j, b) in itertools.pairwise(known):
            if a < at < b:
                if any(k in self.breaks for k in range(i + 1, j + 1)):
                    return None
                return i + (j - i) * (at - a).total_seconds() / (b - a).total_seconds()
        return None


def _points(value: object) -> list[_Point]:
    """The points of a list that have a numeric value, with their times, in order."""
    return [
        (parse_time(p.get("at")), number)
        for p in as_maps(value)
        if (number := as_float(p.get("value"))) is not None
    ]


def _signals_in_range(
    chart: Mapping[str, Any], series: _Series
) -> list[tuple[Mapping[str, Any], int, datetime]]:
    """Signals raised within the charted points, with the index of their point and their time.

    The operator stamps a signal with the time of the point that completed its pattern; the
    nearest point is taken so a rounded timestamp still lands on it.
    """
    found = []
    for signal in as_maps(chart.get("signals")):
        at = parse_time(signal.get("at"))
        where = None if at is None else series.locate(at)
        if at is not None and where is not None:
            found.append((signal, round(where), at))
    return found


def signals_in_range(chart: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The chart's signals that fall within its points, the ones the SVG marks."""
    return [signal for signal, _, _ in _signals_in_range(chart, _Series.of(chart))]


@dataclass(frozen=True)
class CycleSpan:
    """A cycle as a chart marks it; ``finished`` is None while it runs."""

    name: str
    started: datetime
    finished: datetime | None


def cycle_spans(cycles: Sequence[Mapping[str, Any]]) -> list[CycleSpan]:
    """The cycles that have started, from their ``status.startedAt`` and ``finishedAt``."""
    spans = []
    for cycle in cycles:
        status = as_map(cycle.get("status"))
        started = parse_time(status.get("startedAt"))
        if started is not None:
            name = str(as_map(cycle.get("metadata")).get("name", "?"))
            spans.append(CycleSpan(name, started, parse_time(status.get("finishedAt"))))
    return spans


@dataclass(frozen=True)
class Band:
    """Where a cycle lies on a chart: point indexes of its start and end, and whether the start
    and the end themselves are charted (else the band runs from or to the edge)."""

    span: CycleSpan
    left: float
    right: float
    starts: bool
    ends: bool


def _bands(chart: Mapping[str, Any], series: _Series, cycles: Sequence[CycleSpan]) -> list[Band]:
    """The cycles that overlap the charted points, with those only the chart still knows of.

    A cycle's start before the first point or its end after the last (or still running) is
    clamped to the edge; a cycle that falls where the line breaks is not charted.
    """
    named = {c.name for c in cycles}
    spans = list(cycles) + [
        CycleSpan(str(w.get("cycle")), started, parse_time(w.get("finishedAt")))
        for w in as_maps(chart.get("cycleWindows"))
        if str(w.get("cycle")) not in named and (started := parse_time(w.get("startedAt")))
    ]
    known = [t for t, _ in series.points if t is not None]
    if not known:
        return []
    first, last = known[0], known[-1]
    bands = []
    for span in spans:
        if span.started > last or (span.finished is not None and span.finished < first):
            continue
        starts = span.started >= first
        finished = span.finished if span.finished is not None and span.finished <= last else None
        left = series.locate(span.started) if starts else 0.0
        right = float(len(series.points) - 1) if finished is None else series.locate(finished)
        if left is not None and right is not None:
            bands.append(Band(span, left, right, starts, finished is not None))
    return bands


def cycles_in_range(chart: Mapping[str, Any], cycles: Sequence[CycleSpan]) -> list[Band]:
    """The cycles the SVG shades on the chart."""
    return _bands(chart, _Series.of(chart), cycles)


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


def _axes(scale: _Scale, history: Sequence[_Point], unit: str) -> list[str]:
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
    ticks = sorted({round(k * last / (_X_TICKS - 1)) for k in range(_X_TICKS)})
    times = [t for i in ticks if (t := history[i][0]) is not None]
    # Minutes, unless two ticks fall in the same minute (a short incident): then seconds too.
    shown = "%H:%M" if len({f"{t:%H:%M}" for t in times}) == len(times) else "%H:%M:%S"
    for index in ticks:
        x, at = scale.x(index), history[index][0]
        parts.append(
            f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{_TOP}" y2="{_TOP + _PLOT_H}"/>'
            f'<text class="tick" x="{x:.1f}" y="{_TOP + _PLOT_H + 16}" text-anchor="middle">'
            f"{at.strftime(shown) if at else f'#{index + 1}'}</text>"
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


def _series(scale: _Scale, series: _Series, chart: Mapping[str, Any]) -> list[str]:
    """A polyline per unbroken run, a circle per point, a dashed line where the line breaks,
    and a red circle per signal naming its rule."""
    history = series.points
    starts = [0, *sorted(series.breaks), len(history)]
    parts = [
        '<polyline class="series" points="'
        + " ".join(f"{scale.x(i):.1f},{scale.y(history[i][1]):.1f}" for i in range(a, b))
        + '"/>'
        for a, b in itertools.pairwise(starts)
    ]
    for i in sorted(series.breaks):
        x = scale.x(i - 0.5)
        parts.append(
            f'<line class="gap" x1="{x:.1f}" x2="{x:.1f}" y1="{_TOP}" y2="{_TOP + _PLOT_H}">'
            f"<title>no points kept between {_when(history, i - 1)} and {_when(history, i)}"
            "</title></line>"
        )
    for i, (_, value) in enumerate(history):
        parts.append(
            f'<circle class="point" cx="{scale.x(i):.1f}" cy="{scale.y(value):.1f}" r="2.2">'
            f"<title>{_when(history, i)}: {value:.{scale.digits + 2}f}</title></circle>"
        )
    for signal, index, at in _signals_in_range(chart, series):
        # The point's own value: a moving-range or EWMA signal's value is not on this scale.
        y = scale.y(history[index][1])
        tip = f"{signal.get('rule', '?')} ({signal.get('chart', '?')}) at {at:%H:%M:%S} UTC"
        parts.append(
            f'<circle class="signal" cx="{scale.x(index):.1f}" cy="{y:.1f}" r="5">'
            f"<title>{esc(tip)}: {esc(signal.get('message', ''))}</title></circle>"
        )
    return parts


def _when(points: Sequence[_Point], index: int) -> str:
    at = points[index][0]
    return fmt_time(at) if at else f"point {index + 1}"


def _cycle_marks(scale: _Scale, bands: Sequence[Band]) -> list[str]:
    """A shaded band per cycle, a line at its start and at its end, and its name above the plot.

    A start or an end that is not charted (before the first point, after the last, or the
    cycle still running) gets no line: the band runs to the edge.
    """
    parts = []
    for band in bands:
        left, right = scale.x(band.left), scale.x(band.right)
        span = band.span
        until = fmt_time(span.finished) if span.finished else "still running"
        tip = f"cycle {span.name}: {fmt_time(span.started)} to {until}"
        parts.append(
            f'<g class="cycle" data-cycle="{esc(span.name)}">'
            f'<rect class="cycle-band" x="{left:.1f}" y="{_TOP}" width="{right - left:.1f}" '
            f'height="{_PLOT_H}"><title>{esc(tip)}</title></rect>'
        )
        for css, x, charted in (
            ("cycle-start", left, band.starts),
            ("cycle-end", right, band.ends),
        ):
            if charted:
                parts.append(
                    f'<line class="{css}" x1="{x:.1f}" x2="{x:.1f}" y1="{_TOP}" '
                    f'y2="{_TOP + _PLOT_H}"/>'
                )
        parts.append(
            f'<text class="cycle-label" x="{left + 3:.1f}" y="{_TOP - 5}">{esc(span.name)}</text>'
            "</g>"
        )
    return parts


def control_chart(
    key: str,
    chart: Mapping[str, Any],
    thresholds: Mapping[str, Any],
    spc: Mapping[str, Any],
    cycles: Sequence[CycleSpan] = (),
) -> str:
    """One control chart: series with points, center line, control limits, EWMA and signals.

    Points are placed by index, not by time: measurements come at the charter's cadence, and a
    gap (the operator down for an hour) would otherwise squash the rest of the series; the tick
    labels carry the real times. ``thresholds`` (the entropy levels) are drawn on the entropy
    chart only; ``spc`` is the charter's ``spec.spc``, for how many points a baseline takes.
    ``cycles`` are shaded where they overlap the points.
    """
    title, unit = CHART_TITLES.get(key, (key, "value"))
    series = _Series.of(chart)
    history = series.points
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
    parts += _cycle_marks(scale, _bands(chart, series, cycles))
    parts += _line_marks(scale, lines, ewma)
    parts += _series(scale, series, chart)
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
