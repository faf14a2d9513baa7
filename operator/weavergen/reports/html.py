"""A self-contained HTML page about one RegenerationCharter and its cycles.

Input is what ``kubectl get rch,rcy -o json`` prints, so the report works from a saved file with
no cluster access; output is one HTML string with inline CSS and SVG (no scripts, no external
assets) that a person can open offline, print or attach to an incident ticket. Status fields are
read defensively: a brand-new charter with no status yet gets empty states, not an exception.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from weavergen.reports.svg import (
    CHART_TITLES,
    MEASURED_CHARTS,
    Band,
    CycleSpan,
    as_float,
    as_map,
    as_maps,
    control_chart,
    cycle_spans,
    cycles_in_range,
    esc,
    fmt_duration,
    fmt_num,
    fmt_time,
    limits_note,
    outcome_class,
    parse_time,
    phase_bars,
    signals_in_range,
)

CHARTER_KIND = "RegenerationCharter"
CYCLE_KIND = "RegenerationCycle"

# Option fields shown as columns, in this order; other scalar fields found follow them.
_OPTION_COLUMNS = {
    "rank": ("#", 0),
    "strategy": ("strategy", None),
    "score": ("score", 3),
    "successProbability": ("success", 2),
    "recoveryTimeSeconds": ("recovery (s)", 0),
    "risk": ("risk", 2),
    "resourceCost": ("resources", 2),
}
_OPTION_NOT_COLUMNS = frozenset({"reasons", "excluded"})

_CSS = """
:root { --ok: #1a7f37; --warn: #bc4c00; --bad: #cf222e; --neutral: #6e7781; --active: #0969da;
  --low: #1a7f37; --medium: #bf8700; --high: #bc4c00; --critical: #cf222e; --line: #d0d7de;
  --cycle: #1b7c83; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328;
  margin: 0 auto; padding: 24px; max-width: 1180px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px;
  border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 16px 0 6px; } h4 { font-size: 14px; margin: 12px 0 4px; }
.meta, .muted { color: #59636e; } .empty { color: #59636e; font-style: italic; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(210px, 1fr)); gap: 12px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; }
.card h3 { margin: 0 0 6px; font-size: 13px; text-transform: uppercase; color: #59636e; }
.big { font-size: 22px; font-weight: 600; }
table { border-collapse: collapse; width: 100%; margin: 4px 0 10px; }
th, td { border: 1px solid var(--line); padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } table.cycles td:first-child { white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
ul.reasons { margin: 0; padding-left: 16px; }
pre { background: #f6f8fa; padding: 6px; overflow-x: auto; white-space: pre-wrap; margin: 0;
  font-size: 12px; }
.badge { display: inline-block; padding: 0 6px; border-radius: 10px; color: #fff; font-size: 12px;
  font-weight: 600; }
.level-low { background: var(--low); } .level-medium { background: var(--medium); }
.level-high { background: var(--high); } .level-critical { background: var(--critical); }
.level-unknown { background: var(--neutral); }
.outcome-ok { background: var(--ok); } .outcome-warn { background: var(--warn); }
.outcome-bad { background: var(--bad); } .outcome-neutral { background: var(--neutral); }
.outcome-active { background: var(--active); }
tr.chosen td { background: #dafbe1; font-weight: 600; }
figure { margin: 10px 0 18px; } figcaption { font-size: 12px; color: #59636e; }
article.cycle { border: 1px solid var(--line); border-radius: 6px; padding: 4px 12px 8px;
  margin: 12px 0; }
svg { max-width: 100%; height: auto; font: 11px system-ui, sans-serif; }
svg .frame { fill: none; stroke: #8c959f; } svg .grid { stroke: #eaeef2; }
svg .tick, svg .axis { fill: #59636e; } svg .note { fill: #59636e; font-size: 13px; }
svg .series { fill: none; stroke: var(--active); stroke-width: 1.5; }
svg .point { fill: var(--active); } svg .signal { fill: var(--bad); stroke: #fff; }
svg .center { stroke: #1f2328; } svg .limit { stroke: #1f2328; stroke-dasharray: 6 4; }
svg .ewma-limit { stroke: #8250df; stroke-dasharray: 2 3; } svg .ewma { fill: #8250df; }
svg .threshold { stroke-width: 1.2; stroke-dasharray: 10 3 2 3; }
svg .cycle-band { fill: var(--cycle); fill-opacity: 0.1; }
svg .cycle-start, svg .cycle-end { stroke: var(--cycle); stroke-width: 1.5; }
svg .cycle-end { stroke-dasharray: 4 2; } svg text.cycle-label { fill: var(--cycle); }
svg .gap { stroke: #8c959f; stroke-dasharray: 1 3; }
svg .threshold-medium { stroke: var(--medium); } svg .threshold-high { stroke: var(--high); }
svg .threshold-critical { stroke: var(--critical); }
svg text.threshold-medium { fill: var(--medium); stroke: none; }
svg text.threshold-high { fill: var(--high); stroke: none; }
svg text.threshold-critical { fill: var(--critical); stroke: none; }
svg text.ewma-limit, svg text.ewma { fill: #8250df; stroke: none; }
svg text.line-label { stroke: none; }
svg .bar-label, svg .bar-text { font-size: 12px; }
svg .bar-label { fill: #1f2328; } svg .bar-text { fill: #59636e; }
svg rect.outcome-ok { fill: var(--ok); } svg rect.outcome-warn { fill: var(--warn); }
svg rect.outcome-bad { fill: var(--bad); } svg rect.outcome-neutral { fill: var(--neutral); }
svg rect.outcome-active { fill: var(--active); }
@media print {
  body { padding: 0; max-width: none; font-size: 11px; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  figure, article.cycle, .card, tr { break-inside: avoid; }
  h2 { break-after: avoid; }
}
"""


def cycle_sort_key(cycle: Mapping[str, Any]) -> tuple[bool, datetime, str]:
    """By status.startedAt; cycles not started yet (no startedAt) come last, then by name."""
    started = parse_time(as_map(cycle.get("status")).get("startedAt"))
    name = str(as_map(cycle.get("metadata")).get("name", ""))
    return (started is None, started or datetime.min.replace(tzinfo=UTC), name)


def split_objects(doc: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The one charter in ``kubectl get rch,rcy -o json`` output and its cycles by start time.

    A single charter object is accepted too. Cycles belong to the charter when their
    ``spec.charterRef.name`` names it and they live in its namespace.
    """
    items = doc.get("items")
    objects = as_maps(items) if isinstance(items, list) else [doc]
    charters = [o for o in objects if o.get("kind") == CHARTER_KIND]
    if not charters:
        raise ValueError(
            f"the input holds no {CHARTER_KIND}: pass the output of "
            "'kubectl get rch,rcy -o json' for a namespace with one charter"
        )
    if len(charters) > 1:
        names = ", ".join(sorted(_ref(c) for c in charters))
        raise ValueError(
            f"the input holds {len(charters)} {CHARTER_KIND}s ({names}); a report covers one: "
            "pass 'kubectl get rch NAME -o json' together with that charter's cycles"
        )
    charter = dict(charters[0])
    meta = as_map(charter.get("metadata"))
    cycles = [
        dict(o)
        for o in objects
        if o.get("kind") == CYCLE_KIND
        and as_map(as_map(o.get("spec")).get("charterRef")).get("name") == meta.get("name")
        and as_map(o.get("metadata")).get("namespace") == meta.get("namespace")
    ]
    return charter, sorted(cycles, key=cycle_sort_key)


def render_report(
    charter: Mapping[str, Any], cycles: Sequence[Mapping[str, Any]], *, generated_at: datetime
) -> str:
    """The whole page; ``generated_at`` is passed in so a report is reproducible."""
    spec, status = as_map(charter.get("spec")), as_map(charter.get("status"))
    ordered = sorted(cycles, key=cycle_sort_key)
    title = f"RegenerationCharter {_ref(charter)}"
    when = generated_at.astimezone(UTC) if generated_at.tzinfo else generated_at
    body = [
        "<header>",
        f"<h1>{esc(title)}</h1>",
        '<p class="meta">'
        + " · ".join(
            [
                f"system {esc(spec.get('systemId', '—'))}",
                f"type {esc(spec.get('systemType', '—'))}",
                f"mode {esc(spec.get('mode', 'enforce'))}",
                f"generated {when:%Y-%m-%d %H:%M:%S} UTC",
            ]
        )
        + "</p>",
        "</header>",
        _summary(status),
        _incident(as_map(status.get("incident"))),
        _charts(status, as_map(spec.get("spc")), cycle_spans(ordered)),
        _cycles(ordered),
        _strategy_history(as_maps(status.get("strategyHistory"))),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def _ref(obj: Mapping[str, Any]) -> str:
    meta = as_map(obj.get("metadata"))
    name = str(meta.get("name", "?"))
    return f"{meta['namespace']}/{name}" if meta.get("namespace") else name


def _table(headers: Iterable[str], rows: Iterable[Iterable[str]], css: str = "") -> str:
    """A table from cells the caller has already escaped."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    lines = [f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>']
    for row in rows:
        lines.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    lines.append("</tbody></table>")
    return "".join(lines)


def _table_or_empty(
    headers: Iterable[str], rows: Sequence[Sequence[str]], *, empty: str, css: str = ""
) -> str:
    """The rows as a table, or a line saying there are none: a table of headers alone reads
    as a broken report."""
    return _table(headers, rows, css) if rows else _empty(empty)


def _level_badge(level: object) -> str:
    known = level if level in ("low", "medium", "high", "critical") else "unknown"
    return f'<span class="badge level-{known}">{esc(level or "unknown")}</span>'


def _outcome_badge(outcome: object) -> str:
    text = str(outcome or "Pending")
    return f'<span class="badge outcome-{outcome_class(text)}">{esc(text)}</span>'


def _empty(text: str) -> str:
    return f'<p class="empty">{esc(text)}</p>'


def _card(title: str, content: str) -> str:
    return f'<div class="card"><h3>{esc(title)}</h3>{content}</div>'


def _summary(status: Mapping[str, Any]) -> str:
    """Where the charter stands now: entropy, thresholds, breaker, forecast, conditions."""
    entropy = as_map(status.get("entropy"))
    parts = [
        '<section class="summary"><h2>Summary</h2><div class="cards">',
        _card("Entropy", _entropy_card(entropy)),
        _card("Thresholds", _thresholds_card(as_map(status.get("effectiveThresholds")))),
        _card("Circuit breaker", _breaker_card(as_map(status.get("circuitBreaker")))),
        _card("Forecast", esc(forecast_sentence(status.get("forecast")))),
        _card("Cycles", _cycles_card(status)),
        "</div>",
    ]
    parts.append("<h3>Drift indicators</h3>")
    parts.append(
        _table_or_empty(
            ["type", "severity", "summary"],
            [
                [esc(i.get("type", "?")), fmt_num(i.get("severity")), esc(i.get("summary", ""))]
                for i in as_maps(entropy.get("indicators"))
            ],
            empty="no drift indicators",
        )
    )
    parts.append("<h3>Conditions</h3>")
    parts.append(
        _table_or_empty(
            ["type", "status", "reason", "message", "since"],
            [
                [
                    esc(c.get("type", "?")),
                    esc(c.get("status", "?")),
                    esc(c.get("reason", "")),
                    esc(c.get("message", "")),
                    fmt_time(c.get("lastTransitionTime")),
                ]
                for c in as_maps(status.get("conditions"))
            ],
            empty="no conditions yet",
        )
    )
    parts.append("</section>")
    return "\n".join(parts)


def _entropy_card(entropy: Mapping[str, Any]) -> str:
    """The last measurement; a charter not measured yet says so rather than show zeros."""
    if entropy.get("score") is None and entropy.get("level") is None:
        return _empty("not measured yet")
    return (
        f'<div class="big">{_level_badge(entropy.get("level"))} '
        f"{fmt_num(entropy.get('score'))}</div>"
        f"<div>health {fmt_num(entropy.get('healthScore'))}</div>"
        f'<div class="muted">{esc(entropy.get("spanCount", 0))} spans · '
        f"{esc(entropy.get('validationErrorCount', 0))} validation errors · "
        f"measured {fmt_time(entropy.get('measuredAt'))}</div>"
    )


def _thresholds_card(thresholds: Mapping[str, Any]) -> str:
    """The levels in force and their source, which says whether anyone chose them."""
    if not thresholds:
        return _empty("not resolved yet")
    return (
        " · ".join(
            f"{level} {fmt_num(thresholds.get(level))}" for level in ("medium", "high", "critical")
        )
        + f'<div class="muted">source: {esc(thresholds.get("source", "—"))}</div>'
    )


def _breaker_card(breaker: Mapping[str, Any]) -> str:
    """The circuit breaker's state, and until when it holds cycles back when open."""
    if not breaker:
        return _empty("closed (no cycle yet)")
    state = str(breaker.get("state", "Closed"))
    starts = breaker.get("recentCycleStarts")
    return (
        f'<div class="big">{esc(state)}</div>'
        + (
            f"<div>open until {fmt_time(breaker.get('openUntil'))}</div>"
            if breaker.get("openUntil")
            else ""
        )
        + f'<div class="muted">{len(starts) if isinstance(starts, list) else 0} '
        "cycle starts in the window</div>"
    )


def _cycles_card(status: Mapping[str, Any]) -> str:
    """The running cycle and how the last one ended, the first things asked in an incident."""
    last = as_map(status.get("lastCycle"))
    return f"<div>active: {esc(status.get('activeCycle') or 'none')}</div>" + (
        f"<div>last: {esc(last.get('name', '?'))} {_outcome_badge(last.get('outcome'))}"
        f'<div class="muted">finished {fmt_time(last.get("finishedAt"))}</div></div>'
        if last
        else "<div>last: none</div>"
    )


def forecast_sentence(forecast: object) -> str:
    """'entropy predicted to reach high (0.60) in 12 min', or why there is no such sentence."""
    data = as_map(forecast)
    if not data:
        return "no forecast: entropy is not trending toward a higher level"
    level = data.get("level", "a higher level")
    threshold = as_float(data.get("threshold"))
    seconds = as_float(data.get("seconds"))
    target = f"{level} ({threshold:.2f})" if threshold is not None else str(level)
    sentence = f"entropy predicted to reach {target}"
    sentence += f" in {fmt_duration(seconds)}" if seconds is not None else ""
    trend = as_float(data.get("trendPerPoint"))
    return sentence + (f" (trend {trend:+.3f} per point)" if trend is not None else "")


def _charts(status: Mapping[str, Any], spc: Mapping[str, Any], cycles: list[CycleSpan]) -> str:
    """One figure per chart the status holds: entropy, health, cycle duration, then any other.

    The cycles are marked on the charts of measurements.
    """
    charts = as_map(status.get("controlCharts"))
    keys = [k for k in CHART_TITLES if isinstance(charts.get(k), Mapping)]
    keys += sorted(k for k, v in charts.items() if k not in CHART_TITLES and isinstance(v, Mapping))
    parts = ["<section><h2>Control charts</h2>"]
    if not keys:
        parts.append(_empty("no control charts yet"))
    if charts.get("rebaselinedAfter"):
        parts.append(
            f'<p class="muted">limits are being relearned after cycle '
            f"{esc(charts['rebaselinedAfter'])}</p>"
        )
    thresholds = as_map(status.get("effectiveThresholds"))
    parts.extend(
        _chart_figure(
            key, as_map(charts[key]), thresholds, spc, cycles if key in MEASURED_CHARTS else []
        )
        for key in keys
    )
    parts.append("</section>")
    return "\n".join(parts)


def _chart_figure(
    key: str,
    chart: Mapping[str, Any],
    thresholds: Mapping[str, Any],
    spc: Mapping[str, Any],
    cycles: list[CycleSpan],
) -> str:
    """The SVG, a caption with the numbers behind it, and the cycles and signals as text:
    tooltips do not print."""
    title = CHART_TITLES.get(key, (key, ""))[0]
    facts = [f"phase {esc(chart.get('phase', '—'))}", f"{esc(chart.get('points', 0))} points"]
    if chart.get("limitsSince"):
        facts.append(
            f"limits since {fmt_time(chart['limitsSince'])}, "
            f"{esc(chart.get('monitoredPoints', 0))} points judged by them"
        )
    facts += [
        f"{label} {fmt_num(chart.get(field), 3)}"
        for field, label in (
            ("centerLine", "CL"),
            ("sigma", "sigma"),
            ("upperControlLimit", "UCL"),
            ("lowerControlLimit", "LCL"),
            ("movingRangeUpperLimit", "MR UCL"),
            ("ewma", "EWMA"),
        )
        if as_float(chart.get(field)) is not None
    ]
    if (note := limits_note(chart, spc)) is not None:
        facts.append(esc(note))
    parts = [
        f"<figure><h3>{esc(title)}</h3>{control_chart(key, chart, thresholds, spc, cycles)}",
        f"<figcaption>{' · '.join(facts)}</figcaption>",
    ]
    shaded = cycles_in_range(chart, cycles)
    if shaded:
        parts.append(
            '<ul class="cycles">' + "".join(f"<li>{_shaded(b)}</li>" for b in shaded) + "</ul>"
        )
    shown = signals_in_range(chart)
    if shown:
        parts.append(
            '<ul class="signals">'
            + "".join(
                f"<li><b>{esc(s.get('rule', '?'))}</b> {esc(s.get('chart', ''))} "
                f"{fmt_time(s.get('at'))}: {esc(s.get('message', ''))}</li>"
                for s in shown
            )
            + "</ul>"
        )
    parts.append("</figure>")
    return "\n".join(parts)


def _shaded(band: Band) -> str:
    """A shaded cycle in words, saying when the chart does not show its start or end."""
    span = band.span
    start = f"started {fmt_time(span.started)}" if band.starts else "started before the first point"
    if span.finished is None:
        end = "still running"
    elif band.ends:
        end = f"finished {fmt_time(span.finished)}"
    else:
        end = "finished after the last point"
    return f"shaded: cycle <b>{esc(span.name)}</b>, {start}, {end}"


def _snapshot(entropy: object, field: str) -> str:
    data = as_map(entropy)
    value = fmt_num(data.get(field))
    if field == "score" and data.get("level"):
        value += f" ({esc(data['level'])})"
    return value


def _cycle_duration(status: Mapping[str, Any]) -> str:
    started, finished = parse_time(status.get("startedAt")), parse_time(status.get("finishedAt"))
    if started is None:
        return "—"
    if finished is None:
        return "running"
    return fmt_duration((finished - started).total_seconds())


def _cycles(cycles: Sequence[Mapping[str, Any]]) -> str:
    """The cycles table, then one article per cycle with its timing, decision and plan."""
    parts = ["<section><h2>Cycles</h2>"]
    if not cycles:
        parts.append(_empty("no cycles yet"))
        parts.append("</section>")
        return "\n".join(parts)
    rows = []
    for cycle in cycles:
        name = str(as_map(cycle.get("metadata")).get("name", "?"))
        status = as_map(cycle.get("status"))
        before, after = status.get("entropyBefore"), status.get("entropyAfter")
        rows.append(
            [
                f'<a href="#cycle-{esc(name)}">{esc(name)}</a>',
                esc(as_map(cycle.get("spec")).get("reason", "")),
                _outcome_badge(status.get("phase")),
                fmt_time(status.get("startedAt")),
                _cycle_duration(status),
                f"{_snapshot(before, 'score')} → {_snapshot(after, 'score')}",
                f"{_snapshot(before, 'healthScore')} → {_snapshot(after, 'healthScore')}",
                esc(status.get("chosenStrategy") or "—"),
                f"<code>{esc(status.get('traceId') or '—')}</code>",
            ]
        )
    headers = ["name", "reason", "outcome", "started", "duration", "entropy", "health"]
    parts.append(_table([*headers, "strategy", "trace id"], rows, "cycles"))
    parts.extend(_cycle_article(cycle) for cycle in cycles)
    parts.append("</section>")
    return "\n".join(parts)


def _cycle_article(cycle: Mapping[str, Any]) -> str:
    name = str(as_map(cycle.get("metadata")).get("name", "?"))
    status = as_map(cycle.get("status"))
    parts = [
        f'<article class="cycle" id="cycle-{esc(name)}">',
        f"<h3>{esc(name)} {_outcome_badge(status.get('phase'))}</h3>",
    ]
    if status.get("message"):
        parts.append(f'<p class="message">{esc(status["message"])}</p>')
    phases = as_maps(status.get("phases"))
    parts.append("<h4>Phase timing</h4>")
    parts.append(phase_bars(phases) if phases else _empty("no phase has run yet"))
    parts.append(_decision(status))
    plan = as_maps(status.get("plan"))
    parts.append("<h4>Plan</h4>")
    parts.append(
        _table_or_empty(
            ["action", "object", "diff"],
            [
                [
                    esc(change.get("action", "?")),
                    esc(change.get("object", "?")),
                    f"<pre>{esc(change.get('diff') or '(no diff)')}</pre>",
                ]
                for change in plan
            ],
            empty="no planned changes",
            css="plan",
        )
    )
    snapshot = as_map(status.get("snapshot"))
    if snapshot:
        parts.append(
            f"<p>Snapshot: ConfigMap {esc(snapshot.get('configMap', '?'))}, "
            f"{esc(snapshot.get('objects', '?'))} objects, "
            f"sha256 <code>{esc(snapshot.get('sha256', '?'))}</code></p>"
        )
    rollback = as_map(status.get("rollback"))
    if rollback:
        verified = "verified" if rollback.get("verified") else "not verified"
        parts.append(
            '<h4>Rollback</h4><p class="rollback">'
            f"{esc(rollback.get('reason', 'no reason recorded'))}<br>"
            f"{fmt_time(rollback.get('startedAt'))} to {fmt_time(rollback.get('finishedAt'))}, "
            f"live state {verified} against the snapshot"
            f"{_restored_from(rollback)}</p>"
        )
    parts.append("</article>")
    return "\n".join(parts)


def _restored_from(rollback: Mapping[str, Any]) -> str:
    """Which snapshot a rollback restored, and which objects, when the record says so."""
    restored = [str(o) for o in rollback.get("restoredObjects") or []]
    source = ""
    if rollback.get("snapshot") or rollback.get("sha256"):
        source = (
            f"<br>from snapshot {esc(rollback.get('snapshot', '?'))} "
            f"(sha256 <code>{esc(rollback.get('sha256', '?'))}</code>)"
        )
    if restored:
        source += f"<br>restored: {esc(', '.join(restored))}"
    return source


def _decision(status: Mapping[str, Any]) -> str:
    """The ranked options with their reasons, the chosen one highlighted, the excluded apart."""
    options = as_maps(status.get("options"))
    ranked = [o for o in options if not o.get("excluded")]
    excluded = [o for o in options if o.get("excluded")]
    ranked.sort(key=_option_order)
    chosen = status.get("chosenStrategy")
    parts = ["<h4>Decision</h4>"]
    if not options:
        parts.append(_empty("no options explored"))
        return "\n".join(parts)
    if ranked:
        parts.append(_options_table(ranked, chosen))
    if excluded:
        parts.append(
            '<p>Excluded:</p><ul class="excluded">'
            + "".join(
                f"<li><b>{esc(o.get('strategy', '?'))}</b>: {esc(o['excluded'])}</li>"
                for o in excluded
            )
            + "</ul>"
        )
    if chosen and not any(o.get("strategy") == chosen for o in ranked):
        parts.append(f"<p>Chosen: <b>{esc(chosen)}</b> (not among the ranked options)</p>")
    predicted = as_float(status.get("predictedEntropy"))
    if predicted is not None:
        parts.append(f'<p class="muted">predicted entropy after the fix: {predicted:.2f}</p>')
    return "\n".join(parts)


def _option_order(option: Mapping[str, Any]) -> tuple[float, float]:
    """By rank; options without one after the ranked ones, best score first."""
    rank, score = as_float(option.get("rank")), as_float(option.get("score"))
    return (math.inf if rank is None else rank, -(score or 0.0))


def _options_table(ranked: Sequence[Mapping[str, Any]], chosen: object) -> str:
    """Known option fields first, in a fixed order, then any other scalar field found."""
    columns = [key for key in _OPTION_COLUMNS if any(key in o for o in ranked)]
    columns += sorted(
        {
            key
            for o in ranked
            for key, value in o.items()
            if key not in _OPTION_COLUMNS
            and key not in _OPTION_NOT_COLUMNS
            and isinstance(value, str | int | float)
        }
    )
    lines = [
        '<table class="options"><thead><tr>'
        + "".join(f"<th>{esc(_OPTION_COLUMNS.get(k, (k, None))[0])}</th>" for k in columns)
        + "<th>reasons</th></tr></thead><tbody>"
    ]
    for option in ranked:
        is_chosen = chosen is not None and option.get("strategy") == chosen
        cells = []
        for key in columns:
            digits = _OPTION_COLUMNS.get(key, (key, None))[1]
            value = option.get(key)
            if digits is not None and as_float(value) is not None:
                cells.append(f'<td class="num">{fmt_num(value, digits)}</td>')
            else:
                text = esc(value if value is not None else "—")
                if key == "strategy" and is_chosen:
                    text += ' <span class="badge outcome-ok">chosen</span>'
                cells.append(f"<td>{text}</td>")
        reasons = [r for r in option.get("reasons") or [] if isinstance(r, str)]
        cells.append(
            '<td><ul class="reasons">'
            + "".join(f"<li>{esc(r)}</li>" for r in reasons)
            + "</ul></td>"
        )
        row_class = ' class="chosen"' if is_chosen else ""
        lines.append(f"<tr{row_class}>{''.join(cells)}</tr>")
    lines.append("</tbody></table>")
    return "".join(lines)


def _incident(incident: Mapping[str, Any]) -> str:
    """The open incident: what it is, what was tried, whether it was escalated and why, and
    what changed outside the targets (the likely cause when fixes fail)."""
    if not incident:
        return ""
    escalated = as_map(incident.get("escalated"))
    parts = [
        '<section class="incident"><h2>Open incident</h2>',
        "<p>"
        + esc(
            f"opened {fmt_time(incident.get('openedAt'))}: {incident.get('because', '')}; "
            f"worst level {incident.get('worstLevel', '?')}; "
            f"evidence {', '.join(incident.get('indicators') or []) or 'none'}"
        )
        + "</p>",
    ]
    if escalated:
        parts.append(
            '<p class="escalated">'
            + esc(
                f"escalated {fmt_time(escalated.get('since'))} by {escalated.get('cycle')}, "
                "holding until the evidence changes or a person asks: "
                f"{escalated.get('reason', '')}"
            )
            + "</p>"
        )
    suspects = [str(s) for s in incident.get("suspects") or []]
    if suspects:
        parts.append('<h3>Changed outside the charter\'s targets</h3><ul class="suspects">')
        parts += [f"<li>{esc(s)}</li>" for s in suspects]
        parts.append("</ul>")
    parts.append(
        _table_or_empty(
            ["cycle", "strategy", "outcome", "finished"],
            [
                [
                    esc(a.get("cycle", "?")),
                    esc(a.get("strategy", "?")),
                    _outcome_badge(a.get("outcome")),
                    fmt_time(a.get("finishedAt")),
                ]
                for a in as_maps(incident.get("attempts"))
            ],
            empty="no cycle has finished for this incident yet",
            css="attempts",
        )
    )
    parts.append("</section>")
    return "\n".join(parts)


def _strategy_history(history: Sequence[Mapping[str, Any]]) -> str:
    parts = ["<section><h2>Strategy history</h2>"]
    parts.append(
        _table_or_empty(
            ["strategy", "signature", "successes", "failures", "last outcome", "last used"],
            [
                [
                    esc(h.get("strategy", "?")),
                    f"<code>{esc(h.get('signature', '—'))}</code>",
                    esc(h.get("successes", 0)),
                    esc(h.get("failures", 0)),
                    _outcome_badge(h["lastOutcome"]) if h.get("lastOutcome") else "—",
                    fmt_time(h.get("lastUsedAt")),
                ]
                for h in history
            ],
            empty="no strategy history yet",
            css="strategies",
        )
    )
    parts.append("</section>")
    return "\n".join(parts)
