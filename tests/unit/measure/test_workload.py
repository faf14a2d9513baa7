"""Kubernetes state of the targets as evidence: crash loops, OOM kills, pods not Ready, stalled
rollouts and repeated Warning events become indicators; a healthy or starting workload none;
and the workloads' state alone never stands for the known-good state."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from weavergen.domain.measure.entropy import DEFAULT_THRESHOLDS
from weavergen.domain.measure.measure import Measurement, known_good
from weavergen.domain.measure.workload import WorkloadState, workload_health

NOW = datetime(2026, 12, 3, 12, 0, 0)
WINDOW = timedelta(seconds=60)


def ts(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def deployment(replicas: int = 2, conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": replicas},
        "status": {"conditions": conditions or []},
    }


def pod(
    name: str,
    *,
    ready: bool = True,
    since: float = 600,
    waiting: str | None = None,
    restarts: int = 0,
    last: dict[str, Any] | None = None,
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "ready": ready, "restartCount": restarts}
    container["state"] = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    if last:
        container["lastState"] = {"terminated": last}
    return {
        "metadata": {"name": name, "creationTimestamp": ts(900)},
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": "Ready", "status": str(ready), "lastTransitionTime": ts(since)}
            ],
            "containerStatuses": [container],
        },
    }


def kinds(health: Any) -> list[str]:
    return [i.type for i in health.indicators]


def test_a_healthy_workload_has_no_indicators_and_full_availability() -> None:
    health = workload_health(
        [WorkloadState(deployment(), [pod("web-1"), pod("web-2")])], NOW, WINDOW
    )
    assert kinds(health) == [] and health.availability == 1.0 and not health.down


def test_a_crash_looping_workload_is_down_with_the_crash_loop_as_evidence() -> None:
    crashing = [
        pod(
            f"web-{i}",
            ready=False,
            waiting="CrashLoopBackOff",
            restarts=5 + i,
            last={"exitCode": 1, "reason": "Error", "finishedAt": ts(10)},
        )
        for i in (1, 2)
    ]
    health = workload_health([WorkloadState(deployment(), crashing)], NOW, WINDOW)
    assert kinds(health) == ["crash_loop", "pods_not_ready"]
    loop = health.indicators[0]
    assert loop.severity == 1.0
    assert loop.evidence["pod"] == "web-2" and loop.evidence["restarts"] == 7
    assert loop.evidence["last_exit_code"] == 1
    assert health.indicators[1].evidence["reasons"] == {"CrashLoopBackOff": 2}
    assert health.down and health.availability == 0.0


def test_an_oom_kill_in_the_window_counts_and_an_old_one_does_not() -> None:
    recent = pod("web-1", restarts=1, last={"reason": "OOMKilled", "finishedAt": ts(30)})
    old = pod("web-2", restarts=1, last={"reason": "OOMKilled", "finishedAt": ts(3600)})
    health = workload_health([WorkloadState(deployment(), [recent, old])], NOW, WINDOW)
    assert kinds(health) == ["oom_killed"]
    assert health.indicators[0].evidence == {"pods": 1, "pod": "web-1", "container": "app"}
    alone = WorkloadState(deployment(replicas=1), [old])
    assert kinds(workload_health([alone], NOW, WINDOW)) == []


def test_a_pod_starting_within_its_grace_is_not_failing_but_one_stuck_past_it_is() -> None:
    starting = workload_health(
        [WorkloadState(deployment(), [pod("web-1"), pod("web-2", ready=False, since=5)])],
        NOW,
        WINDOW,
    )
    assert kinds(starting) == []
    stuck = workload_health(
        [WorkloadState(deployment(), [pod("web-1"), pod("web-2", ready=False, since=120)])],
        NOW,
        WINDOW,
    )
    assert kinds(stuck) == ["pods_not_ready"]
    assert stuck.indicators[0].severity == 0.5 and stuck.availability == 0.5


def test_missing_pods_count_as_not_ready_and_scaled_to_zero_is_not_a_failure() -> None:
    unschedulable = workload_health(
        [WorkloadState(deployment(replicas=3), [pod("web-1")])], NOW, WINDOW
    )
    assert kinds(unschedulable) == ["pods_not_ready"]
    assert unschedulable.indicators[0].evidence["ready"] == 1
    zero = workload_health([WorkloadState(deployment(replicas=0), [])], NOW, WINDOW)
    assert kinds(zero) == [] and not zero.down


def test_a_rollout_past_its_progress_deadline_is_stalled() -> None:
    stalled = deployment(
        conditions=[
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": 'ReplicaSet "web-7d" has timed out progressing.',
            }
        ]
    )
    health = workload_health([WorkloadState(stalled, [pod("web-1"), pod("web-2")])], NOW, WINDOW)
    assert kinds(health) == ["rollout_stalled"]
    assert "timed out progressing" in health.indicators[0].evidence["message"]


def test_repeated_warning_events_in_the_window_are_evidence_a_single_one_is_not() -> None:
    def event(
        reason: str, seconds_ago: float, count: int = 1, kind: str = "Warning"
    ) -> dict[str, Any]:
        return {"type": kind, "reason": reason, "count": count, "lastTimestamp": ts(seconds_ago)}

    pods = [pod("web-1"), pod("web-2")]
    one = [event("Unhealthy", 10), event("Pulled", 5, kind="Normal"), event("Failed", 900, 9)]
    assert kinds(workload_health([WorkloadState(deployment(), pods, one)], NOW, WINDOW)) == []
    repeated = [event("Unhealthy", 10, count=4), event("BackOff", 20)]
    health = workload_health([WorkloadState(deployment(), pods, repeated)], NOW, WINDOW)
    assert kinds(health) == ["warning_events"]
    assert health.indicators[0].evidence == {"events": 5, "reasons": {"Unhealthy": 4, "BackOff": 1}}


def test_probe_failures_while_a_pod_started_are_not_evidence_once_it_is_ready() -> None:
    """A real kubelet probes a pod before its server listens: readiness failures of a pod Ready
    since are how it started. The same failures on a pod still not Ready, or a liveness probe
    failing, are evidence."""

    def probe(pod_name: str, probe_kind: str, seconds_ago: float) -> dict[str, Any]:
        return {
            "type": "Warning",
            "reason": "Unhealthy",
            "message": f'{probe_kind} probe failed: Get "http://10.244.1.3:8080/healthz": '
            "connect: connection refused",
            "count": 4,
            "lastTimestamp": ts(seconds_ago),
            "involvedObject": {"kind": "Pod", "name": pod_name},
        }

    started = [pod("web-1", since=20), pod("web-2")]
    while_starting = [probe("web-1", "Readiness", 25), probe("web-1", "Startup", 30)]
    health = workload_health([WorkloadState(deployment(), started, while_starting)], NOW, WINDOW)
    assert kinds(health) == []
    after_ready = [probe("web-1", "Readiness", 10)]  # it went Ready 20 s ago, then failed again
    health = workload_health([WorkloadState(deployment(), started, after_ready)], NOW, WINDOW)
    assert kinds(health) == ["warning_events"]
    not_ready = [pod("web-1", ready=False, since=20), pod("web-2")]
    health = workload_health([WorkloadState(deployment(), not_ready, while_starting)], NOW, WINDOW)
    assert kinds(health) == ["warning_events"]
    liveness = [probe("web-1", "Liveness", 25)]
    health = workload_health([WorkloadState(deployment(), started, liveness)], NOW, WINDOW)
    assert kinds(health) == ["warning_events"]


def test_two_workloads_give_one_indicator_naming_the_worst_and_how_many() -> None:
    broken = WorkloadState(deployment(), [pod("a-1", ready=False, since=300), pod("a-2")])
    worse = WorkloadState(
        {**deployment(), "metadata": {"name": "b"}},
        [pod("b-1", ready=False, since=300), pod("b-2", ready=False, since=300)],
    )
    health = workload_health([broken, worse], NOW, WINDOW)
    (not_ready,) = health.indicators
    assert not_ready.severity == 1.0
    assert not_ready.evidence["workload"] == "Deployment/b" and not_ready.evidence["workloads"] == 2
    assert (health.ready, health.desired) == (1, 4)


def test_only_a_measurement_judged_from_spans_stands_for_the_known_good_state() -> None:
    """The golden snapshot keeps what healthy looked like. Pods that run with a warning or two
    and too few spans to judge by (a bad config that has served little yet) measure LOW from
    the workloads' state alone: that is no proof, so no snapshot is taken from it."""
    weak = workload_health(
        [WorkloadState(deployment(), [pod("web-1"), pod("web-2")], [])], NOW, WINDOW
    )
    common = {"service": "web", "span_count": 27, "baseline_span_count": 0}
    from_pods = Measurement(
        status="ok", thresholds=DEFAULT_THRESHOLDS, entropy_score=0.06,
        evidence=("kubernetes",), workload=weak, **common,
    )  # fmt: skip
    from_spans = replace(from_pods, span_count=400, evidence=("spans", "kubernetes"))
    assert from_pods.entropy_level == from_spans.entropy_level == "low"
    assert not known_good(from_pods)
    assert known_good(from_spans)
    assert not known_good(replace(from_spans, entropy_score=0.5))
    assert not known_good(replace(from_spans, status="insufficient_data", entropy_score=None))
    assert not known_good(None)
