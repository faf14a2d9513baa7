"""Notifications (pure): which transition owes which message, its key, and its body per sink.

A transition owes its messages in the status patch that records it: the planner adds one
outbox entry per sink (``status.notifications["<sink>/<event>"]``, result ``Pending``) to that
same patch, so the debt is stored with the transition or not at all. The operator's notifier
delivers Pending entries and marks them afterwards; an operator that dies between a sink's
answer and that mark sends the message again. So: at least once, and the key every message
carries (the object's uid and the event) lets a receiver drop the rare second copy.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from weavergen.api.charter import NOTIFICATION_EVENTS, NotificationsSpec, RegenerationCharterSpec
from weavergen.api.common import API_VERSION
from weavergen.api.keys import APPROVAL_ANNOTATION, REJECT_ANNOTATION
from weavergen.domain.times import stamp

STARTED = "CycleStarted"
CIRCUIT_OPENED = "CircuitOpened"
HELD_BACK = "NotificationsHeldBack"  # the summary of messages the rate limit held back
# A cycle's phase that owes a message of its own (the event has the phase's name).
PHASE_EVENTS = frozenset(
    {"AwaitingApproval", "Succeeded", "RolledBack", "Failed", "Escalated", "Aborted", "Rejected"}
)
CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json"
PLAN_LINES = 10  # planned changes listed in an approval request (the rest are counted)


@dataclass(frozen=True)
class Routing:
    """The sinks a charter's messages go to and the events it wants told; ``problem`` names
    a sink the charter asks for that the operator does not have."""

    sinks: tuple[str, ...] = ()
    events: frozenset[str] = frozenset(NOTIFICATION_EVENTS)
    problem: str | None = None

    def targets(self, event: str) -> tuple[str, ...]:
        return self.sinks if event in self.events else ()


NOWHERE = Routing()  # no sinks: nothing is owed


def routing(
    spec: NotificationsSpec | None, configured: Collection[str], defaults: Sequence[str]
) -> Routing:
    """The charter's routing among the ``configured`` sinks (unknown names are left out and
    reported in ``problem``); a charter naming no sinks gets the ``defaults``."""
    named = list(defaults) if spec is None or spec.sinks is None else spec.sinks
    unknown = [(i, name) for i, name in enumerate(named) if name not in configured]
    problem = None
    if spec is not None and spec.sinks is not None and unknown:
        index, name = unknown[0]
        problem = (
            f"spec.notifications.sinks[{index}]: no sink named {name!r} is configured in the "
            f"operator (its notifications.sinks: {', '.join(sorted(configured)) or 'none'})"
        )
    return Routing(
        sinks=tuple(dict.fromkeys(n for n in named if n in configured)),
        events=frozenset(spec.events) if spec and spec.events else frozenset(NOTIFICATION_EVENTS),
        problem=problem,
    )


def entry_name(sink: str, event: str) -> str:
    """The outbox entry of one event for one sink, in ``status.notifications``."""
    return f"{sink}/{event}"


def parse_entry(name: str) -> tuple[str, str]:
    sink, _, event = name.partition("/")
    return sink, event


def owed(
    events: Iterable[str], routing: Routing, recorded: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    """New outbox entries for ``events``: one per sink, unless already recorded (a plan written
    twice owes nothing twice)."""
    return {
        name: {"dueAt": stamp(now), "result": "Pending", "attempts": 0}
        for event in events
        for sink in routing.targets(event)
        if (name := entry_name(sink, event)) not in recorded
    }


def reopened(event: str, routing: Routing, now: datetime) -> dict[str, Any]:
    """Outbox entries for an event that recurs on one object (a breaker opening again): each
    occurrence replaces the last one's entries, so the status holds one per sink."""
    return {
        entry_name(sink, event): {
            "dueAt": stamp(now),
            "result": "Pending",
            "attempts": 0,
            "updatedAt": stamp(now),
            "message": "",
        }
        for sink in routing.targets(event)
    }


def cycle_events(patch: Mapping[str, Any]) -> list[str]:
    """The events a cycle's status patch records: its start with its first write (every write
    carries ``startedAt``), and a phase that is told of (approval awaited, an outcome)."""
    events = [STARTED] if patch.get("startedAt") else []
    if patch.get("phase") in PHASE_EVENTS:
        events.append(str(patch["phase"]))
    return events


def pending(recorded: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """The entries still to deliver: (sink, event, dueAt), oldest first."""
    found = [
        (*parse_entry(name), str(entry.get("dueAt") or ""))
        for name, entry in recorded.items()
        if (entry or {}).get("result", "Pending") == "Pending"
    ]
    return sorted(found, key=lambda item: item[2])


def event_key(uid: str, event: str, due_at: str) -> str:
    """The deterministic key of one message (the same for every sink): a cycle's events happen
    once each; a charter's (a breaker opening) recur, told apart by when they happened."""
    return (
        f"{uid}/{event}" if event == STARTED or event in PHASE_EVENTS else f"{uid}/{event}/{due_at}"
    )


@dataclass(frozen=True)
class Notification:
    """One message, before it is put in a sink's format."""

    key: str
    event: str
    namespace: str
    charter: str
    cycle: str | None
    summary: str
    occurred_at: str
    stakeholders: tuple[dict[str, str], ...] = ()
    entropy_before: Mapping[str, Any] | None = None
    entropy_after: Mapping[str, Any] | None = None
    trace_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


def stakeholders_of(charter: RegenerationCharterSpec | None) -> tuple[dict[str, str], ...]:
    return tuple(
        {"name": s.name, "role": s.role} for s in (charter.stakeholders if charter else [])
    )


@dataclass(frozen=True)
class CycleFacts:
    """What a cycle's message is built from: the cycle, its status and its charter."""

    namespace: str
    name: str
    uid: str
    reason: str
    status: Mapping[str, Any]
    charter: str
    charter_spec: RegenerationCharterSpec | None


def cycle_notification(facts: CycleFacts, event: str, due_at: str) -> Notification:
    """The message of one event of a cycle."""
    status = facts.status
    summary, details = _cycle_text(facts, event)
    return Notification(
        key=event_key(facts.uid, event, due_at),
        event=event,
        namespace=facts.namespace,
        charter=facts.charter,
        cycle=facts.name,
        summary=summary,
        occurred_at=due_at,
        stakeholders=stakeholders_of(facts.charter_spec),
        entropy_before=status.get("entropyBefore"),
        entropy_after=status.get("entropyAfter"),
        trace_id=status.get("traceId"),
        details=details,
    )


def _cycle_text(facts: CycleFacts, event: str) -> tuple[str, dict[str, Any]]:
    """The one-line summary and the details of a cycle's event."""
    status, cycle, charter = facts.status, facts.name, facts.charter
    strategy = status.get("chosenStrategy")
    message = str(status.get("message") or "")
    if event == STARTED:
        return f"cycle {cycle} started for charter {charter}: {facts.reason}", {
            "reason": facts.reason
        }
    if event == "AwaitingApproval":
        plan = list(status.get("plan") or [])
        return (
            f"cycle {cycle} of charter {charter} awaits approval of {strategy} "
            f"({len(plan)} planned changes)",
            {
                "strategy": strategy,
                "plan": plan_summary(plan),
                "predictedEntropy": status.get("predictedEntropy"),
                "approve": f"kubectl annotate rcy {cycle} -n {facts.namespace} "
                f"{APPROVAL_ANNOTATION}=true",
                "reject": f"kubectl annotate rcy {cycle} -n {facts.namespace} "
                f"{REJECT_ANNOTATION}=true",
            },
        )
    if event == "RolledBack":
        rollback = status.get("rollback") or {}
        restored = list(rollback.get("restoredObjects") or [])
        return (
            f"cycle {cycle} of charter {charter} rolled back: {len(restored)} objects restored "
            f"from the snapshot ({message})",
            {
                "strategy": strategy,
                "message": message,
                "restored": restored,
                "verified": bool(rollback.get("verified")),
                "snapshot": rollback.get("snapshot"),
                "sha256": rollback.get("sha256"),
            },
        )
    if event in ("Aborted", "Rejected"):
        abort = dict(status.get("abort") or {})
        who = abort.get("requestedBy") or "someone"
        return (
            f"cycle {cycle} of charter {charter} was {event.lower()} by {who}: "
            f"{abort.get('reason') or message or 'no reason given'}",
            {"strategy": strategy, "message": message, **abort},
        )
    words = {"Succeeded": "healed its target", "Escalated": "escalated to people"}
    return (
        f"cycle {cycle} of charter {charter} {words.get(event, event.lower())}: {message}",
        {"strategy": strategy, "message": message},
    )


def plan_summary(plan: Sequence[Mapping[str, Any]]) -> list[str]:
    """The planned changes in one line each: action, object and the diff's size."""
    lines = []
    for change in plan[:PLAN_LINES]:
        diff = str(change.get("diff") or "").splitlines()
        added = sum(1 for line in diff if line.startswith("+") and not line.startswith("+++"))
        removed = sum(1 for line in diff if line.startswith("-") and not line.startswith("---"))
        lines.append(f"{change.get('action')} {change.get('object')} (+{added} -{removed})")
    if len(plan) > PLAN_LINES:
        lines.append(f"... and {len(plan) - PLAN_LINES} more")
    return lines


def circuit_notification(
    namespace: str,
    charter: str,
    *,
    uid: str,
    spec: RegenerationCharterSpec | None,
    status: Mapping[str, Any],
    due_at: str,
) -> Notification:
    """The message of a charter's circuit breaker opening."""
    breaker = status.get("circuitBreaker") or {}
    condition: Mapping[str, Any] = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "CircuitOpen"), {}
    )
    why = str(condition.get("message") or "too many cycles in the window")
    entropy = status.get("entropy") or {}
    return Notification(
        key=event_key(uid, CIRCUIT_OPENED, due_at),
        event=CIRCUIT_OPENED,
        namespace=namespace,
        charter=charter,
        cycle=None,
        summary=f"circuit breaker of charter {charter} {why}",
        occurred_at=due_at,
        stakeholders=stakeholders_of(spec),
        entropy_before={k: entropy[k] for k in ("score", "level") if k in entropy} or None,
        details={
            "openUntil": breaker.get("openUntil"),
            "consecutiveOpenings": breaker.get("consecutiveOpenings"),
            "message": why,
        },
    )


def held_back(held: Sequence[Notification], at: str) -> Notification:
    """The summary of messages the charter's rate limit held back (not one is lost unsaid)."""
    first = held[0]
    told = [f"{n.event} {n.cycle or n.charter}: {n.summary}" for n in held]
    return Notification(
        key=f"{first.key}/held-back/{len(held)}",
        event=HELD_BACK,
        namespace=first.namespace,
        charter=first.charter,
        cycle=None,
        summary=f"{len(held)} notifications of charter {first.charter} were held back by the "
        "rate limit",
        occurred_at=at,
        stakeholders=first.stakeholders,
        details={"count": len(held), "notifications": told, "keys": [n.key for n in held]},
    )


def payload(n: Notification) -> dict[str, Any]:
    """The generic webhook's JSON body (also the data of a CloudEvent)."""
    return {
        "key": n.key,
        "event": n.event,
        "summary": n.summary,
        "namespace": n.namespace,
        "charter": n.charter,
        "cycle": n.cycle,
        "stakeholders": list(n.stakeholders),
        "entropy": {"before": n.entropy_before, "after": n.entropy_after},
        "traceId": n.trace_id,
        "occurredAt": n.occurred_at,
        "details": dict(n.details),
    }


def cloudevent(n: Notification) -> dict[str, Any]:
    """A CloudEvent 1.0 in structured mode: the attributes beside the data, in one JSON body."""
    return {
        "specversion": "1.0",
        "id": n.key,
        "source": f"/apis/{API_VERSION}/namespaces/{n.namespace}/regenerationcharters/{n.charter}",
        "type": f"io.weavergen.regeneration.{n.event}",
        "subject": n.cycle or n.charter,
        "time": n.occurred_at,
        "datacontenttype": "application/json",
        "data": payload(n),
    }


def slack(n: Notification) -> dict[str, Any]:
    """A Slack incoming-webhook message: ``text`` for notifications, blocks for the channel."""
    fields = [
        f"*Charter*\n{n.namespace}/{n.charter}",
        f"*Cycle*\n{n.cycle or '-'}",
        f"*Entropy*\n{_entropy(n.entropy_before)} → {_entropy(n.entropy_after)}",
        "*Stakeholders*\n"
        + (", ".join(f"{s['name']} ({s['role']})" for s in n.stakeholders) or "-"),
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": n.event}},
        {"type": "section", "text": {"type": "mrkdwn", "text": n.summary[:3000]}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
    ]
    lines = _detail_lines(n.details)
    if lines:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": lines[:3000]}})
    blocks.append(
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": f"trace {n.trace_id or '-'} · key {n.key}"},
            ],
        }
    )
    return {"text": n.summary, "blocks": blocks}


def _entropy(entropy: Mapping[str, Any] | None) -> str:
    if not entropy:
        return "-"
    return f"{entropy.get('score')} ({entropy.get('level')})"


def _detail_lines(details: Mapping[str, Any]) -> str:
    """The details as Slack lines; commands as code, lists one item a line."""
    lines = []
    for key in ("approve", "reject"):
        if details.get(key):
            lines.append(f"*{key.capitalize()}:* `{details[key]}`")
    for key in ("plan", "restored", "notifications"):
        items = details.get(key) or []
        if items:
            lines.append(f"*{key.capitalize()}:*")
            lines.extend(f"• {item}" for item in items)
    return "\n".join(lines)


def render(n: Notification, sink_type: str) -> tuple[str, dict[str, Any]]:
    """(content type, JSON body) of ``n`` in a sink type's format."""
    if sink_type == "slack":
        return "application/json", slack(n)
    if sink_type == "cloudevents":
        return CLOUDEVENTS_CONTENT_TYPE, cloudevent(n)
    return "application/json", payload(n)
