"""What `kubectl weavergen` prints, as pure functions of the objects and the clock.

Tables follow kubectl's look (upper-case headers, columns three spaces apart, a NAMESPACE
column with ``-A``); the watch screens follow ``kubectl argo rollouts get rollout``: a header
of key facts, then one line per part with a status symbol.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from weavergen.api.charter import PHASES, RegenerationCharter, RegenerationCharterStatus
from weavergen.api.cycle import (
    FINAL_PHASES,
    EntropySnapshot,
    PhaseStatus,
    RegenerationCycle,
    RegenerationCycleStatus,
)
from weavergen.reports.svg import fmt_duration

NONE = "<none>"
SYMBOLS = {
    "Succeeded": "✔",
    "NotNeeded": "✔",
    "Skipped": "·",
    "Running": "◌",
    "Failed": "✖",
    "RolledBack": "↺",
    "RollingBack": "↺",
    "Escalated": "⚠",
    "AwaitingApproval": "॥",
    "Aborted": "✖",
    "Rejected": "✖",
}
SPARKS = "▁▂▃▄▅▆▇█"


def age(created: object, now: datetime) -> str:
    """kubectl's short age: 45s, 3m20s, 17m, 5h, 3d4h, 40d."""
    if not isinstance(created, datetime | str):
        return NONE
    when = created if isinstance(created, datetime) else datetime.fromisoformat(created)
    seconds = max(0, int((now - when).total_seconds()))
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 48:
        return f"{hours}h"
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    return f"{days}d"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Left-aligned columns three spaces apart, as kubectl prints them."""
    lines = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
    return "".join(
        "   ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        + "\n"
        for line in lines
    )


def _number(value: float | None) -> str:
    return NONE if value is None else f"{value:.2f}"


def _created(meta: Any) -> object:
    return (meta.model_extra or {}).get("creationTimestamp")


# -- get ----------------------------------------------------------------------------------------

CHARTER_HEADERS = ("NAME", "MODE", "LEVEL", "ENTROPY", "HEALTH", "LAST OUTCOME", "BREAKER", "AGE")
CHARTER_WIDE = ("SYSTEM TYPE", "ACTIVE CYCLE", "LAST CYCLE", "MEASURED", "INDICATORS")
CYCLE_HEADERS = ("NAME", "CHARTER", "PHASE", "STRATEGY", "LEVEL", "ENTROPY", "AGE")
CYCLE_WIDE = ("DURATION", "REASON", "TRACE ID")


def breaker(status: RegenerationCharterStatus, now: datetime) -> str:
    """Closed, or Open with the time it has left."""
    state = status.circuit_breaker
    if state is None or state.state == "Closed":
        return "Closed"
    if state.open_until is None or state.open_until <= now:
        return "Open"
    return f"Open ({age(now, state.open_until)} left)"


def charter_row(charter: RegenerationCharter, now: datetime, *, wide: bool) -> list[str]:
    status = charter.status or RegenerationCharterStatus()
    entropy = status.entropy
    last = status.last_cycle
    row = [
        charter.metadata.name,
        charter.spec.mode,
        str(entropy.level) if entropy and entropy.level else NONE,
        _number(entropy.score if entropy else None),
        _number(entropy.health_score if entropy else None),
        (last.outcome or NONE) if last else NONE,
        breaker(status, now),
        age(_created(charter.metadata), now),
    ]
    if wide:
        measured = entropy.measured_at if entropy else None
        row += [
            str(charter.spec.system_type),
            status.active_cycle or NONE,
            last.name if last else NONE,
            f"{age(measured, now)} ago" if measured else NONE,
            _indicator_types(entropy),
        ]
    return row


def _indicator_types(entropy: Any) -> str:
    return ",".join(i.type for i in entropy.indicators) if entropy and entropy.indicators else NONE


def _transition(before: EntropySnapshot | None, after: EntropySnapshot | None) -> tuple[str, str]:
    """(level, score) as ``high->low`` and ``0.71->0.12``; before alone while there is no after."""
    if before is None:
        return NONE, NONE
    if after is None:
        return str(before.level), f"{before.score:.2f}"
    return f"{before.level}->{after.level}", f"{before.score:.2f}->{after.score:.2f}"


def cycle_duration(status: RegenerationCycleStatus, now: datetime) -> str:
    if status.started_at is None:
        return NONE
    end = status.finished_at or now
    return fmt_duration(max(0.0, (end - status.started_at).total_seconds()))


def cycle_row(cycle: RegenerationCycle, now: datetime, *, wide: bool) -> list[str]:
    status = cycle.status or RegenerationCycleStatus()
    level, score = _transition(status.entropy_before, status.entropy_after)
    row = [
        cycle.metadata.name,
        cycle.spec.charter_ref.name,
        status.phase,
        status.chosen_strategy or cycle.spec.strategy or NONE,
        level,
        score,
        age(_created(cycle.metadata), now),
    ]
    if wide:
        row += [cycle_duration(status, now), cycle.spec.reason, status.trace_id or NONE]
    return row


def get_table(
    charters: Sequence[RegenerationCharter] | None,
    cycles: Sequence[RegenerationCycle] | None,
    now: datetime,
    *,
    wide: bool = False,
    all_namespaces: bool = False,
) -> str:
    """The `get` tables: charters, cycles, or both one after the other (None: not asked for)."""

    def columns(headers: Sequence[str], extra: Sequence[str]) -> list[str]:
        return [*(["NAMESPACE"] if all_namespaces else []), *headers, *(extra if wide else [])]

    def namespace(meta: Any) -> list[str]:
        return [meta.namespace or ""] if all_namespaces else []

    parts = []
    if charters:
        rows = [namespace(c.metadata) + charter_row(c, now, wide=wide) for c in charters]
        parts.append(table(columns(CHARTER_HEADERS, CHARTER_WIDE), rows))
    if cycles:
        rows = [namespace(c.metadata) + cycle_row(c, now, wide=wide) for c in cycles]
        parts.append(table(columns(CYCLE_HEADERS, CYCLE_WIDE), rows))
    return "\n".join(parts)


# -- watch --------------------------------------------------------------------------------------


def _facts(pairs: Iterable[tuple[str, str]]) -> str:
    """``Key:  value`` lines with the values aligned, skipping empty values."""
    shown = [(k, v) for k, v in pairs if v]
    width = max((len(k) for k, _ in shown), default=0) + 2
    return "".join(f"{(k + ':').ljust(width)}{v}\n" for k, v in shown)


def sparkline(values: Sequence[float]) -> str:
    """Values 0..1 as block characters, one per value."""
    top = len(SPARKS) - 1
    return "".join(SPARKS[min(top, max(0, round(v * top)))] for v in values)


def charter_screen(charter: RegenerationCharter, now: datetime, history: int = 30) -> str:
    """The live view of a charter: its latest measurement, the entropy trend, breaker, cycles."""
    spec, status = charter.spec, charter.status or RegenerationCharterStatus()
    entropy, thresholds = status.entropy, status.effective_thresholds
    measured = ""
    if entropy and entropy.score is not None:
        measured = (
            f"{entropy.score:.2f} {entropy.level}, health {_number(entropy.health_score)}, "
            f"{entropy.span_count} spans"
            + (f", measured {age(entropy.measured_at, now)} ago" if entropy.measured_at else "")
        )
    last = status.last_cycle
    text = _facts(
        [
            ("Name", charter.metadata.name),
            ("Namespace", charter.metadata.namespace or ""),
            ("System", f"{spec.system_id} ({spec.system_type})"),
            ("Mode", f"{spec.mode}, trigger {spec.trigger.mode} at {spec.trigger.level}"),
            ("Entropy", measured or "not measured yet"),
            (
                "Thresholds",
                f"medium {thresholds.medium:.2f}, high {thresholds.high:.2f}, "
                f"critical {thresholds.critical:.2f} ({thresholds.source})"
                if thresholds
                else "",
            ),
            ("Breaker", breaker(status, now)),
            ("Active cycle", status.active_cycle or ""),
            ("Last cycle", f"{last.name} {last.outcome or ''}".strip() if last else ""),
            ("Incident", status.incident.because if status.incident else ""),
        ]
    )
    return text + _indicators(status) + _trend(status, history) + _forecast(status)


def _indicators(status: RegenerationCharterStatus) -> str:
    found = status.entropy.indicators if status.entropy else []
    if not found:
        return "\nNo drift indicators.\n"
    rows = [(i.type, f"{i.severity:.2f}", i.summary) for i in found]
    return "\n" + table(("INDICATOR", "SEVERITY", "EVIDENCE"), rows)


def _trend(status: RegenerationCharterStatus, history: int) -> str:
    charts = status.control_charts
    chart = charts.entropy if charts else None
    points = chart.history[-history:] if chart else []
    if not points:
        return ""
    values = [p.value for p in points]
    line = (
        f"\nEntropy, last {len(values)}: {sparkline(values)}  {values[0]:.2f} -> {values[-1]:.2f}"
    )
    if chart and chart.upper_control_limit is not None:
        line += f"  (control limit {chart.upper_control_limit:.2f})"
    return line + "\n" + (f"Signal: {chart.last_signal}\n" if chart and chart.last_signal else "")


def _forecast(status: RegenerationCharterStatus) -> str:
    found = status.forecast
    if found is None:
        return ""
    return (
        f"Forecast: {found.level} ({found.threshold:.2f}) in about "
        f"{fmt_duration(found.seconds)} at this trend\n"
    )


def phase_lines(status: RegenerationCycleStatus, now: datetime) -> list[list[str]]:
    """One row per DMEDI phase, the ones not reached yet included."""
    records: dict[str, PhaseStatus] = {p.name: p for p in status.phases}
    rows = []
    for name in PHASES:
        record = records.get(name)
        if record is None:
            rows.append([name, "· Pending", NONE, NONE, ""])
            continue
        outcome = record.outcome or "Running"
        seconds = record.duration_seconds
        if seconds is None and record.started_at is not None and outcome == "Running":
            seconds = max(0.0, (now - record.started_at).total_seconds())
        rows.append(
            [
                name,
                f"{SYMBOLS.get(outcome, '?')} {outcome}",
                record.job or NONE,
                fmt_duration(seconds) if seconds is not None else NONE,
                record.message,
            ]
        )
    return rows


def _entropy_line(status: RegenerationCycleStatus) -> str:
    parts = []
    for label, snapshot in (("before", status.entropy_before), ("after", status.entropy_after)):
        if snapshot is not None:
            parts.append(
                f"{label} {snapshot.score:.2f} {snapshot.level} "
                f"(health {snapshot.health_score:.2f})"
            )
    if status.predicted_entropy is not None and status.entropy_after is None:
        parts.append(f"predicted {status.predicted_entropy:.2f}")
    return ", ".join(parts)


def cycle_screen(cycle: RegenerationCycle, now: datetime) -> str:
    """The live view of a cycle: where it is, its phases, and what to do when it waits."""
    status = cycle.status or RegenerationCycleStatus()
    symbol = SYMBOLS.get(status.phase, "◌" if status.phase not in FINAL_PHASES else "")
    text = _facts(
        [
            ("Name", cycle.metadata.name),
            ("Namespace", cycle.metadata.namespace or ""),
            ("Charter", cycle.spec.charter_ref.name),
            ("Reason", cycle.spec.reason + (" (dry run)" if cycle.spec.dry_run else "")),
            ("Status", f"{symbol} {status.phase}".strip()),
            ("Message", status.message),
            ("Strategy", status.chosen_strategy or cycle.spec.strategy or ""),
            ("Entropy", _entropy_line(status)),
            ("Duration", cycle_duration(status, now) if status.started_at else ""),
            ("Trace", status.trace_id or ""),
            ("Retry of", cycle.spec.retry_of or ""),
            ("Retried by", status.retried_by or ""),
        ]
    )
    phases = table(("PHASE", "STATUS", "JOB", "DURATION", "MESSAGE"), phase_lines(status, now))
    text += "\n" + phases
    if status.phase == "AwaitingApproval":
        name = cycle.metadata.name
        text += (
            f"\nWaiting for approval. The plan: kubectl weavergen why {name}\n"
            f"Then: kubectl weavergen approve {name}   (or: reject {name} --reason ...)\n"
        )
    return text + _stopped(status)


def _stopped(status: RegenerationCycleStatus) -> str:
    """The rollback or abort record, in a line each."""
    lines = []
    if status.rollback is not None:
        back = status.rollback
        verified = "verified" if back.verified else "NOT verified"
        lines.append(
            f"Rollback: {back.reason}; restored {len(back.restored_objects)} objects, {verified}"
        )
    if status.abort is not None:
        stop = status.abort
        who = f" by {stop.requested_by}" if stop.requested_by else ""
        restored = ", targets restored from the snapshot" if stop.restored else ""
        lines.append(f"Stopped{who}: {stop.reason or 'no reason given'}{restored}")
    return "".join(f"\n{line}" for line in lines) + ("\n" if lines else "")
