"""Incidents: one degradation of a charter's workload, and what the operator tried for it.

An incident opens at the first measurement at or above the trigger and closes once the workload
has been healthy for a whole recovery period (one telemetry window: a shorter dip below the
trigger is noise, not a recovery), or when a cycle's fix is verified. The operator acts the way
an on-call engineer would:

- a fix that rolled back for an incident is not tried again in it (``Explore`` excludes it);
- after ``maxFailedFixes`` failed mutating cycles the next cycle escalates, with the history;
- once escalated, no cycle starts for the incident until the evidence changes materially or a
  person asks: new indicators (seen in two measurements in a row, so one noisy window is not
  news) that change the diagnosis (a fault growing more symptoms of the same cause, such as a
  failing dependency whose errors now also shift attributes, is the same fault), a level above
  the worst seen, or the targets and what they consume edited (their fingerprint). Such a
  change closes the incident and opens a new one: what failed before may work now. A recovery
  then relapse is a new incident too.

Changes seen while a cycle runs are absorbed, not news: the cycle's own restarts cause them.
The incident is kept in the charter's status (camelCase, ``api.charter.IncidentStatus``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from weavergen.api.charter import EntropyLevel
from weavergen.domain.remedy.strategies import CATALOG, OBSERVE
from weavergen.domain.times import parse_time, stamp

FAILED_FIX_OUTCOMES = frozenset({"RolledBack", "Failed"})
RECORDED_OUTCOMES = frozenset({"Succeeded", "RolledBack", "Failed", "Escalated"})
MAX_ATTEMPTS_KEPT = 20
# Written when a cycle ends (``record_attempt``), never by a measurement.
RECORDED_BY_CYCLES = ("attempts", "escalated", "suspects")


@dataclass(frozen=True)
class Attempt:
    """One finished cycle of an incident: the strategy it ran and how that ended."""

    cycle: str
    strategy: str
    outcome: str
    finished_at: str | None = None

    @property
    def mutating(self) -> bool:
        known = CATALOG.get(self.strategy)
        return known is not None and known.mutating

    @property
    def failed_fix(self) -> bool:
        """A change to the targets that did not heal them (and was undone, or failed)."""
        return self.mutating and self.outcome in FAILED_FIX_OUTCOMES

    def as_status(self) -> dict[str, Any]:
        return {
            "cycle": self.cycle,
            "strategy": self.strategy,
            "outcome": self.outcome,
            "finishedAt": self.finished_at,
        }

    @classmethod
    def from_status(cls, data: Mapping[str, Any]) -> Attempt:
        return cls(
            str(data["cycle"]), str(data["strategy"]), str(data["outcome"]), data.get("finishedAt")
        )


def attempts_of(incident: Mapping[str, Any] | None) -> list[Attempt]:
    return [Attempt.from_status(a) for a in (incident or {}).get("attempts") or []]


def failed_fixes(attempts: Iterable[Attempt]) -> list[Attempt]:
    return [a for a in attempts if a.failed_fix]


def history_text(attempts: Sequence[Attempt]) -> str:
    """``semantic-refresh RolledBack (cycle x), ...``: what was tried, for messages."""
    return ", ".join(f"{a.strategy} {a.outcome} ({a.cycle})" for a in attempts) or "nothing"


@dataclass(frozen=True)
class Evidence:
    """What one measurement says about an incident."""

    level: EntropyLevel
    indicators: frozenset[str]
    inputs: str | None = None  # fingerprint of the targets and what they consume; None: unread


@dataclass(frozen=True)
class IncidentStep:
    """The incident after one measurement, and what happened to it (for events)."""

    incident: dict[str, Any] | None
    opened: str | None = None
    closed: str | None = None


def open_incident(
    evidence: Evidence, now: datetime, *, last_good_at: str | None, because: str | None = None
) -> dict[str, Any]:
    return {
        "openedAt": stamp(now),
        "because": because or "entropy reached the trigger",
        "lastGoodAt": last_good_at,
        "indicators": sorted(evidence.indicators),
        "worstLevel": evidence.level.value,
        "novel": [],
        "inputs": evidence.inputs,
        "attempts": [],
        "escalated": None,
        "suspects": [],
        "healthySince": None,
    }


Diagnose = Callable[[frozenset[str]], str]


def track(
    incident: Mapping[str, Any] | None,
    evidence: Evidence,
    *,
    degraded: bool,
    cycle_running: bool,
    now: datetime,
    recovery_seconds: float,
    last_good_at: str | None,
    diagnose: Diagnose | None = None,
) -> IncidentStep:
    """The incident after a measurement (pure). ``diagnose`` names the likely cause of a set
    of indicators; without it every persisting new indicator is news."""
    if incident is None:
        if not degraded:
            return IncidentStep(None)
        return IncidentStep(
            open_incident(evidence, now, last_good_at=last_good_at), opened="entropy at trigger"
        )
    if not degraded:
        since = parse_time(incident.get("healthySince")) or now
        if now - since >= timedelta(seconds=recovery_seconds):
            return IncidentStep(None, closed=f"healthy for {recovery_seconds:.0f}s")
        return IncidentStep({**incident, "healthySince": stamp(since)})
    if cycle_running:
        return IncidentStep(_absorbed(incident, evidence))
    change = material_change(incident, evidence, diagnose)
    if change is not None:
        reopened = open_incident(
            evidence, now, last_good_at=incident.get("lastGoodAt"), because=change
        )
        return IncidentStep(reopened, opened=change, closed=change)
    seen = set(incident.get("indicators") or [])
    return IncidentStep(
        {
            **incident,
            "healthySince": None,
            "novel": sorted(evidence.indicators - seen) + _level_token(incident, evidence),
            "inputs": incident.get("inputs") or evidence.inputs,
        }
    )


def material_change(
    incident: Mapping[str, Any], evidence: Evidence, diagnose: Diagnose | None = None
) -> str | None:
    """Why the evidence differs materially from the incident's, or None if it does not."""
    seen = frozenset(incident.get("indicators") or [])
    novel = set(incident.get("novel") or [])
    persisting = sorted((evidence.indicators - seen) & novel)
    if persisting:
        before = diagnose(seen) if diagnose else None
        after = diagnose(seen | frozenset(persisting)) if diagnose else None
        if diagnose is None or before != after:
            why = f" (likely cause now {after}, was {before})" if diagnose else ""
            return "new indicators: " + ", ".join(persisting) + why
    level_token = _level_token(incident, evidence)
    if level_token and level_token[0] in novel:
        return f"entropy rose to {evidence.level.value}"
    recorded = incident.get("inputs")
    if recorded and evidence.inputs and recorded != evidence.inputs:
        return "the targets or what they consume were edited"
    return None


def _level_token(incident: Mapping[str, Any], evidence: Evidence) -> list[str]:
    worst = EntropyLevel(incident.get("worstLevel") or "low")
    return [f"level:{evidence.level.value}"] if evidence.level > worst else []


def _absorbed(incident: Mapping[str, Any], evidence: Evidence) -> dict[str, Any]:
    """What a running cycle's measurements add: their indicators and level become known."""
    worst = EntropyLevel(incident.get("worstLevel") or "low")
    return {
        **incident,
        "healthySince": None,
        "indicators": sorted(set(incident.get("indicators") or []) | evidence.indicators),
        "worstLevel": max(worst, evidence.level).value,
        "novel": [],
    }


def record_attempt(
    incident: Mapping[str, Any] | None,
    attempt: Attempt,
    *,
    evidence: Evidence | None,
    now: datetime,
    escalation: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The incident after one of its cycles finished (pure).

    A verified fix closes it. A cycle that ends otherwise while no incident is open (a person's
    cycle, or one that outlived a recovery) opens one from the cycle's own measurement, so its
    failure still counts and its escalation still holds.
    """
    if attempt.outcome == "Succeeded":
        return None
    if attempt.outcome not in RECORDED_OUTCOMES:
        return dict(incident) if incident is not None else None
    if incident is None:
        if evidence is None:
            return None
        incident = open_incident(evidence, now, last_good_at=None, because="a cycle did not heal")
    attempts = [*(incident.get("attempts") or []), attempt.as_status()][-MAX_ATTEMPTS_KEPT:]
    updated = {**incident, "attempts": attempts}
    if attempt.outcome == "Escalated" and attempt.strategy == OBSERVE:
        updated["escalated"] = {
            "since": attempt.finished_at or stamp(now),
            "cycle": attempt.cycle,
            "reason": str((escalation or {}).get("reason") or "no safe remedy"),
        }
        updated["suspects"] = list((escalation or {}).get("suspects") or [])
    return updated


def held(incident: Mapping[str, Any] | None) -> str | None:
    """Why no cycle may start for the incident now (it is escalated), or None."""
    escalated = (incident or {}).get("escalated")
    if not escalated:
        return None
    return (
        f"escalated since {escalated.get('since')} ({escalated.get('cycle')}): "
        f"{escalated.get('reason')}; holding until the evidence changes or a person asks"
    )
