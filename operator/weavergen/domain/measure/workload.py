"""Kubernetes state of a charter's workloads as evidence: the failures spans cannot show.

A crash-looping or unschedulable workload emits few spans or none, so the worst failures are the
quietest in telemetry. The pods, the workload's own status and its Warning events say what is
wrong; each finding becomes an indicator with its evidence, beside the span-based ones.

Pure: the gatherer hands in the objects as the API server returns them and the time; nothing
here remembers earlier measurements (a restart "within the window" is read from the container's
last termination time, not from a count kept between measurements).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from weavergen.domain.measure.drift import DriftIndicator

# Types of indicator read from Kubernetes state (span-based ones are in drift.INDICATOR_TYPES).
WORKLOAD_INDICATOR_TYPES = (
    "crash_loop",
    "oom_killed",
    "pods_not_ready",
    "rollout_stalled",
    "warning_events",
)
# A pod that has not been Ready for this long is failing, not starting.
NOT_READY_GRACE = timedelta(seconds=30)
MAX_EXAMPLES = 3
# Warning events in the window before they are evidence: one probe failure while a pod starts
# is routine, a repeated one is not.
MIN_WARNINGS = 3
# Probe failures that stop traffic for a while but never restart a container.
PASSING_PROBES = ("Readiness probe failed", "Startup probe failed")

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class WorkloadState:
    """One target workload (Deployment or StatefulSet), its pods and the Warning events on
    it, its pods and its ReplicaSets, as read from the API server."""

    workload: Obj
    pods: Sequence[Obj] = ()
    events: Sequence[Obj] = ()


@dataclass(frozen=True)
class WorkloadHealth:
    """What the workloads' state says: its indicators and the share of desired pods Ready."""

    indicators: list[DriftIndicator] = field(default_factory=list)
    ready: int = 0
    desired: int = 0

    @property
    def availability(self) -> float:
        """Ready pods over desired ones; 1 when none are desired (scaled to zero on purpose)."""
        return min(1.0, self.ready / self.desired) if self.desired else 1.0

    @property
    def down(self) -> bool:
        """Pods are wanted and none of them is Ready: the service is not there at all."""
        return self.desired > 0 and self.ready == 0

    def as_dict(self) -> dict[str, Any]:
        return {"ready": self.ready, "desired": self.desired, "down": self.down}


def parse_time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name", "?"))


def _ready(pod: Obj) -> tuple[bool, datetime | None]:
    """Whether a pod is Ready, and since when its Ready condition has had that value."""
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            since = parse_time(condition.get("lastTransitionTime"))
            return condition.get("status") == "True", since
    return False, parse_time((pod.get("metadata") or {}).get("creationTimestamp"))


def _containers(pod: Obj) -> list[Obj]:
    status = pod.get("status") or {}
    return [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]


def _live(pods: Sequence[Obj]) -> list[Obj]:
    """Pods that count: not being deleted and not finished."""
    return [
        p
        for p in pods
        if not (p.get("metadata") or {}).get("deletionTimestamp")
        and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
    ]


def workload_health(
    states: Sequence[WorkloadState], now: datetime, window: timedelta
) -> WorkloadHealth:
    """The indicators of every workload's state, over the last ``window`` before ``now``."""
    indicators: dict[str, list[tuple[float, dict[str, Any]]]] = {}
    ready_total = desired_total = 0
    for state in states:
        desired = int((state.workload.get("spec") or {}).get("replicas", 1) or 0)
        pods = _live(state.pods)
        ready = sum(1 for p in pods if _ready(p)[0])
        desired_total += desired
        ready_total += min(ready, desired)
        for kind, found in (
            ("crash_loop", _crash_loops(pods)),
            ("oom_killed", _oom_kills(pods, now - window)),
            ("pods_not_ready", _not_ready(state.workload, pods, desired, now)),
            ("rollout_stalled", _stalled(state.workload)),
            ("warning_events", _warnings(state.events, pods, now - window)),
        ):
            if found is not None:
                indicators.setdefault(kind, []).append(found)
    merged = [
        DriftIndicator(kind, max(s for s, _ in each), _evidence(each))
        for kind in WORKLOAD_INDICATOR_TYPES
        if (each := indicators.get(kind))
    ]
    return WorkloadHealth(merged, ready_total, desired_total)


def _started_since(event: Obj, last: datetime, pods: Sequence[Obj]) -> bool:
    """A readiness or startup probe that failed on a pod Ready since: how a pod starts (its
    server not listening yet), not a fault. Liveness failures, and probes of pods still not
    Ready, stay evidence."""
    if event.get("reason") != "Unhealthy" or not str(event.get("message", "")).startswith(
        PASSING_PROBES
    ):
        return False
    name = (event.get("involvedObject") or {}).get("name")
    for pod in pods:
        if _name(pod) == name:
            ready, since = _ready(pod)
            return ready and since is not None and since >= last
    return False


def _evidence(found: list[tuple[float, dict[str, Any]]]) -> dict[str, Any]:
    """The worst workload's evidence; with several workloads, how many are affected."""
    worst = max(found, key=lambda f: f[0])[1]
    return {**worst, "workloads": len(found)} if len(found) > 1 else worst


def _crash_loops(pods: Sequence[Obj]) -> tuple[float, dict[str, Any]] | None:
    looping = [
        (pod, c)
        for pod in pods
        for c in _containers(pod)
        if ((c.get("state") or {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff"
    ]
    if not looping:
        return None
    pods_looping = {_name(p) for p, _ in looping}
    pod, container = max(looping, key=lambda pc: int(pc[1].get("restartCount", 0)))
    last = (container.get("lastState") or {}).get("terminated") or {}
    return (
        len(pods_looping) / max(len(pods), 1),
        {
            "pods": len(pods_looping),
            "pod": _name(pod),
            "container": container.get("name"),
            "restarts": int(container.get("restartCount", 0)),
            "last_exit_code": last.get("exitCode"),
            "last_reason": last.get("reason"),
        },
    )


def _oom_kills(pods: Sequence[Obj], since: datetime) -> tuple[float, dict[str, Any]] | None:
    killed = []
    for pod in pods:
        for c in _containers(pod):
            for state in (
                (c.get("lastState") or {}).get("terminated"),
                (c.get("state") or {}).get("terminated"),
            ):
                finished = parse_time((state or {}).get("finishedAt"))
                if (
                    state
                    and state.get("reason") == "OOMKilled"
                    and (finished is None or finished >= since)
                ):
                    killed.append((pod, c))
    if not killed:
        return None
    pod, container = killed[0]
    return (
        min(1.0, 0.5 + 0.5 * len({_name(p) for p, _ in killed}) / max(len(pods), 1)),
        {
            "pods": len({_name(p) for p, _ in killed}),
            "pod": _name(pod),
            "container": container.get("name"),
        },
    )


def _not_ready(
    workload: Obj, pods: Sequence[Obj], desired: int, now: datetime
) -> tuple[float, dict[str, Any]] | None:
    """Fewer Ready pods than desired, counting only pods past their start-up grace."""
    if desired <= 0:
        return None
    stuck = []
    ready = 0
    for pod in pods:
        is_ready, since = _ready(pod)
        if is_ready:
            ready += 1
        elif since is None or now - since >= NOT_READY_GRACE:
            stuck.append(pod)
    missing = desired - ready
    if missing <= 0 or (not stuck and len(pods) >= desired):
        return None
    reasons = Counter(
        ((c.get("state") or {}).get("waiting") or {}).get("reason") or "NotReady"
        for pod in stuck
        for c in _containers(pod)
        if not c.get("ready")
    )
    return (
        missing / desired,
        {
            "workload": f"{workload.get('kind')}/{_name(workload)}",
            "ready": ready,
            "desired": desired,
            "pods_not_ready": [_name(p) for p in stuck][:MAX_EXAMPLES],
            "reasons": dict(reasons.most_common(MAX_EXAMPLES)),
        },
    )


def _stalled(workload: Obj) -> tuple[float, dict[str, Any]] | None:
    """A Deployment past its progress deadline (the controller's own verdict)."""
    for condition in (workload.get("status") or {}).get("conditions") or []:
        if (
            condition.get("type") == "Progressing"
            and condition.get("status") == "False"
            and condition.get("reason") == "ProgressDeadlineExceeded"
        ):
            return 0.8, {
                "workload": f"{workload.get('kind')}/{_name(workload)}",
                "message": str(condition.get("message", ""))[:200],
            }
    return None


def _warnings(
    events: Sequence[Obj], pods: Sequence[Obj], since: datetime
) -> tuple[float, dict[str, Any]] | None:
    recent: Counter[str] = Counter()
    for event in events:
        if event.get("type") != "Warning":
            continue
        last = parse_time(event.get("lastTimestamp") or event.get("eventTime")) or parse_time(
            (event.get("metadata") or {}).get("creationTimestamp")
        )
        if last is not None and last >= since and not _started_since(event, last, pods):
            recent[str(event.get("reason", "Warning"))] += int(event.get("count") or 1)
    total = sum(recent.values())
    if total < MIN_WARNINGS:
        return None
    return min(1.0, 0.2 + 0.05 * total), {
        "events": total,
        "reasons": dict(recent.most_common(MAX_EXAMPLES)),
    }
