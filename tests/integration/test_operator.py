"""The operator as a process on the local plane: charters measured, cycles run to the end."""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hack.localplane.plane import Plane
from tests.helpers import REPO
from tests.integration.conftest import await_status, measured_again, wait_for
from tests.integration.hold import AdmissionHold
from tests.scenario import (
    BROKEN,
    GOOD,
    HealingExporter,
    OperatorProcess,
    SpanPusher,
    apply,
    asked_cycle,
    condition,
    config_map,
    deployment,
    put,
    spans,
    status,
)
from weavergen.api.charter import PHASES, PhasePolicySpec, RegenerationCharterSpec
from weavergen.api.cycle import FINAL_PHASES
from weavergen.api.keys import SNAPSHOT_LABEL, TURN_ANNOTATION
from weavergen.domain.remedy.snapshot import Snapshot
from weavergen.domain.simulation.simulator import Faults
from weavergen.k8s import snapshots
from weavergen.k8s.cluster_target import baseline_name, golden_name
from weavergen.k8s.cycles import state_name
from weavergen.k8s.jobs import journal_name, result_name, snapshot_name
from weavergen.k8s.rest import Rest
from weavergen.k8s.targets import Targets


def finished(
    rest: Rest, namespace: str, cycle: str, operator: object, timeout: float = 120
) -> dict[str, Any]:
    """The cycle's status once it has ended (``operator`` names where its logs are)."""
    return await_status(
        rest,
        namespace,
        "RegenerationCycle",
        cycle,
        lambda s: s.get("phase") in FINAL_PHASES,
        timeout=timeout,
        what=f"the cycle to finish (operator log: {operator})",
    )


def charter_status(
    rest: Rest,
    namespace: str,
    until: Callable[[dict[str, Any]], object],
    *,
    timeout: float,
    what: str,
    name: str = "web",
) -> dict[str, Any]:
    """The status of the charter ``name`` once ``until`` holds."""
    return await_status(
        rest, namespace, "RegenerationCharter", name, until, timeout=timeout, what=what
    )


def charter(mode: str = "enforce", executor: str = "inline", name: str = "web") -> dict[str, Any]:
    return {
        "apiVersion": "regeneration.weavergen.io/v1alpha1",
        "kind": "RegenerationCharter",
        "metadata": {"name": name},
        "spec": {
            "systemId": "web",
            "systemType": "web-service",
            "mode": mode,
            "executor": executor,
            "target": {"workloads": [{"name": "web"}], "configMaps": ["web-config"]},
            "telemetry": {
                "serviceName": "web",
                "source": "configMap",
                "configMap": {"name": "web-spans", "key": "spans.json"},
                "baseline": {"configMap": {"name": "web-baseline", "key": "spans.json"}},
            },
            "cadence": {"measureIntervalSeconds": 5},
            "trigger": {"mode": "auto", "level": "medium"},
            "successCriteria": {
                "maxEntropyScore": 0.3,
                "minHealthScore": 0.9,
                "minEntropyReduction": 0.2,
                "maxRecoverySeconds": 120,
                "settleSeconds": 1,
                "verifyWindows": 1,
            },
        },
    }


def start_healthy(
    plane: Plane,
    rest: Rest,
    namespace: str,
    operator: OperatorProcess,
    *,
    executor: str,
    mode: str = "enforce",
    spec_update: dict[str, Any] | None = None,
    name: str = "web",
    baseline_given: bool = True,
) -> dict[str, Any]:
    """A healthy target, its charter measured low, and its known-good snapshot taken.

    Without ``baseline_given`` the charter names no baseline: the operator captures one from
    its first window of spans and measures from the next.
    """
    rbac = (REPO / "config" / "rbac" / "phase.yaml").read_text().replace("NAMESPACE", namespace)
    plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=rbac)
    apply(plane, namespace, deployment("web"), config_map("web-config", GOOD))
    put(rest, namespace, config_map("web-spans", {"spans.json": spans(Faults(), 2)}))
    plane.kubectl("rollout", "status", "deploy/web", "-n", namespace, "--timeout=60s")
    applied = charter(mode, executor=executor, name=name)
    if baseline_given:
        put(rest, namespace, config_map("web-baseline", {"spans.json": spans(Faults(), 1)}))
    else:
        del applied["spec"]["telemetry"]["baseline"]
    applied["spec"].update(spec_update or {})
    plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(applied))
    healthy = charter_status(
        rest,
        namespace,
        lambda s: s.get("entropy", {}).get("level"),
        timeout=60,
        what=f"a first measurement (operator log: {operator})",
        name=name,
    )
    assert healthy["entropy"]["level"] == "low"
    assert condition(healthy, "Ready") == "True" and condition(healthy, "Degraded") == "False"
    assert rest.list("RegenerationCycle", namespace) == []
    wait_for(
        lambda: rest.get("ConfigMap", namespace, golden_name(name)),
        30,
        what="the known-good snapshot",
    )
    return applied


def corrupt_and_wait_for_the_cycle(
    rest: Rest,
    namespace: str,
    operator: object,
    while_running: Callable[[str], None] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Corrupt the config; the exporter's spans turn healthy once restarted pods read the reset
    config. Returns the cycle's name and final status (``operator`` names where its logs are)."""
    put(rest, namespace, config_map("web-config", BROKEN))
    put(rest, namespace, config_map("web-spans", {"spans.json": spans(Faults(error_rate=0.3), 3)}))
    with HealingExporter(rest, namespace):
        cycles = wait_for(
            lambda: rest.list("RegenerationCycle", namespace),
            timeout=60,
            what=f"a cycle to start (operator log: {operator})",
        )
        assert isinstance(cycles, list) and len(cycles) == 1
        name = cycles[0]["metadata"]["name"]
        if while_running is not None:
            while_running(name)
        final = finished(rest, namespace, name, operator, timeout=180)
    return name, final


@pytest.mark.parametrize("executor", ["inline", "job"])
def test_healthy_then_degraded_charter_runs_a_cycle_that_heals_it(
    plane: Plane, rest: Rest, namespace: str, operator: OperatorProcess, executor: str
) -> None:
    start_healthy(plane, rest, namespace, operator, executor=executor)
    name, final = corrupt_and_wait_for_the_cycle(rest, namespace, operator)
    assert_healed(plane, rest, namespace, name, final=final, executor=executor)


def assert_healed(
    plane: Plane,
    rest: Rest,
    namespace: str,
    name: str,
    *,
    final: dict[str, Any],
    executor: str,
    charter_name: str = "web",
) -> None:
    assert final["phase"] == "Succeeded", final.get("message")
    assert final["chosenStrategy"] == "partial-regeneration"
    assert final["entropyBefore"]["level"] in ("medium", "high", "critical")
    assert final["entropyAfter"]["level"] == "low"
    assert all(o["reasons"] for o in final["options"])
    for kind in ("Defined", "Measured", "Explored", "Developed", "Implemented", "Succeeded"):
        assert condition(final, kind) == "True", kind
    assert len(final["traceId"]) == 32
    assert final["snapshot"]["configMap"] == snapshot_name(name)
    assert len(final["snapshot"]["sha256"]) == 64 and final["snapshot"]["objects"] == 2
    records = {r["name"]: r for r in final["phases"]}
    assert list(records) == ["define", "measure", "explore", "develop", "implement"]
    assert all(r["outcome"] == "Succeeded" and r["durationSeconds"] >= 0 for r in records.values())
    if executor == "job":
        assert all(r["job"] == result_name(name, phase) for phase, r in records.items())
        job = rest.get("Job", namespace, result_name(name, "measure")) or {}
        env = {
            e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        assert env["TRACEPARENT"].startswith(f"00-{final['traceId']}-")
    events = plane.kubectl("get", "events", "-n", namespace, "-o", "json").stdout
    reasons = {
        e["reason"] for e in json.loads(events)["items"] if e["involvedObject"]["name"] == name
    }
    assert {"Defined", "Measured", "Explored", "Developed", "Implemented", "Succeeded"} <= reasons
    assert (rest.get("ConfigMap", namespace, "web-config") or {})["data"] == GOOD
    assert rest.get("ConfigMap", namespace, snapshot_name(name)) is not None
    assert rest.get("ConfigMap", namespace, state_name(name)) is not None
    jobs = {j["metadata"]["name"] for j in rest.list("Job", namespace)}
    phases = ("define", "measure", "explore", "develop", "implement")
    if executor == "job":
        assert jobs == {result_name(name, phase) for phase in phases}
        for phase in phases:
            assert rest.get("ConfigMap", namespace, result_name(name, phase)) is not None
    else:
        assert jobs == set()
    recorded = charter_status(
        rest,
        namespace,
        lambda s: s.get("lastCycle"),
        timeout=30,
        what="the charter to record the cycle",
        name=charter_name,
    )
    assert recorded["lastCycle"] == {
        "name": name,
        "outcome": "Succeeded",
        "startedAt": final["startedAt"],
        "finishedAt": final["finishedAt"],
        # When its change began to settle: the charter's window starts there for a while.
        "changedSince": final["verification"]["since"],
    }
    assert not recorded.get("activeCycle")
    (entry,) = recorded["strategyHistory"]
    assert entry["strategy"] == "partial-regeneration" and entry["successes"] == 1


def test_observe_mode_never_starts_a_cycle(
    plane: Plane, rest: Rest, namespace: str, operator: OperatorProcess
) -> None:
    apply(plane, namespace, deployment("web"), config_map("web-config", BROKEN))
    put(rest, namespace, config_map("web-baseline", {"spans.json": spans(Faults(), 1)}))
    put(rest, namespace, config_map("web-spans", {"spans.json": spans(Faults(error_rate=0.3), 2)}))
    plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(charter("observe")))
    degraded = charter_status(
        rest,
        namespace,
        lambda s: condition(s, "Degraded") == "True",
        timeout=60,
        what=f"the charter to report Degraded (operator log: {operator})",
    )
    assert degraded["entropy"]["level"] in ("medium", "high", "critical")
    assert rest.list("RegenerationCycle", namespace) == []


def test_propose_mode_waits_for_approval_with_the_plan_in_status(
    plane: Plane, rest: Rest, namespace: str, operator: OperatorProcess
) -> None:
    start_healthy(plane, rest, namespace, operator, executor="inline", mode="propose")

    def approve_after_checking_nothing_changed(name: str) -> None:
        waiting = await_status(
            rest,
            namespace,
            "RegenerationCycle",
            name,
            lambda s: s.get("phase") == "AwaitingApproval",
            timeout=90,
            what=f"the cycle to wait for approval (operator log: {operator})",
        )
        planned = {(c["action"], c["object"]) for c in waiting["plan"]}
        assert ("reset_config_from_baseline", f"ConfigMap/{namespace}/web-config") in planned
        reset = next(c for c in waiting["plan"] if c["action"] == "reset_config_from_baseline")
        assert "-  timeout_ms: '1'" in reset["diff"] and "+  timeout_ms: '800'" in reset["diff"]
        assert "approve" in waiting["message"]
        measured_again(rest, namespace, "web")  # several reconciles later, without approval:
        assert (rest.get("ConfigMap", namespace, "web-config") or {})["data"] == BROKEN
        plane.kubectl(
            "annotate", "rcy", name, "-n", namespace, "regeneration.weavergen.io/approve=true"
        )

    _, final = corrupt_and_wait_for_the_cycle(
        rest, namespace, operator, approve_after_checking_nothing_changed
    )
    assert final["phase"] == "Succeeded", final.get("message")
    assert (rest.get("ConfigMap", namespace, "web-config") or {})["data"] == GOOD


def test_an_operator_killed_in_every_phase_finishes_the_cycle_with_one_job_per_phase(
    plane: Plane, rest: Rest, namespace: str, operator: OperatorProcess
) -> None:
    start_healthy(plane, rest, namespace, operator, executor="job")

    def kill_in_every_phase(name: str) -> None:
        for phase in ("define", "measure", "explore", "develop", "implement"):
            wait_for(
                lambda p=phase: rest.get("Job", namespace, f"{name}-{p}"),
                timeout=90,
                what=f"the {phase} Job (operator log: {operator})",
            )
            operator.kill()
            operator.start()

    name, final = corrupt_and_wait_for_the_cycle(rest, namespace, operator, kill_in_every_phase)
    assert final["phase"] == "Succeeded", final.get("message")
    jobs = counted_jobs(rest, namespace)
    assert sorted(j["metadata"]["name"] for j in jobs) == sorted(
        f"{name}-{p}" for p in ("define", "measure", "explore", "develop", "implement")
    )
    for job in jobs:  # one attempt each: nothing ran twice
        assert job["status"].get("succeeded") == 1 and not job["status"].get("failed")
    assert (rest.get("ConfigMap", namespace, "web-config") or {})["data"] == GOOD


def test_a_cycle_that_needs_no_regeneration_withdraws_the_jobs_started_ahead(
    plane: Plane, rest: Rest, namespace: str, operator: OperatorProcess
) -> None:
    """Phases' Jobs start while the phases before them run and wait for their turn. A cycle
    asked of a healthy charter ends after Measure: the Jobs started ahead (Explore's, and with
    two ahead Develop's) are withdrawn without running or writing a result. Deleted if their
    pod was not running yet; else cancelled, and the cycle ends only once that pod has
    exited."""
    start_healthy(plane, rest, namespace, operator, executor="job")
    asked = asked_cycle("web-asked", "web", "asked by a test")
    plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(asked))
    final = finished(rest, namespace, "web-asked", operator)
    assert final["phase"] == "NotNeeded", final.get("message")
    jobs = {j["metadata"]["name"]: j for j in counted_jobs(rest, namespace)}
    turns = {
        name.removeprefix("web-asked-"): (job["metadata"].get("annotations") or {}).get(
            TURN_ANNOTATION
        )
        for name, job in jobs.items()
    }
    # Started ahead while Define and Measure ran: as many phases after Measure as run ahead.
    ahead = PHASES[2 : 2 + PhasePolicySpec.model_fields["phases_ahead"].default]
    withdrawn = {phase: turn for phase, turn in turns.items() if phase in ahead}
    assert turns == {"define": None, "measure": "go", **withdrawn}
    assert set(withdrawn.values()) <= {"cancelled"}  # those not deleted
    for phase in withdrawn:
        assert rest.get("ConfigMap", namespace, result_name("web-asked", phase)) is None
        assert jobs[f"web-asked-{phase}"]["status"].get("succeeded") == 1
        (pod,) = rest.list("Pod", namespace, {"job-name": f"web-asked-{phase}"})
        (container,) = pod["status"]["containerStatuses"]
        assert container["state"]["terminated"]["exitCode"] == 0
        assert container["state"]["terminated"]["finishedAt"] <= final["finishedAt"]


def test_a_fix_that_does_not_hold_rolls_back_and_the_breaker_stops_retrying(
    plane: Plane, rest: Rest, namespace: str, operator: OperatorProcess
) -> None:
    """Nothing heals the spans here, so the first cycle's verification fails: the target goes
    back to exactly its pre-cycle state; with maxCycles 1 the breaker opens, closes after its
    5 s cooldown for one trial cycle, and opens again for twice as long when that fails too."""
    breaker = {
        "maxCycles": 1,
        "windowSeconds": 3600,
        "cooldownSeconds": 5,
        "maxCooldownSeconds": 3600,
    }
    spec = start_healthy(
        plane, rest, namespace, operator, executor="job", spec_update={"circuitBreaker": breaker}
    )
    put(rest, namespace, config_map("web-config", BROKEN))
    put(rest, namespace, config_map("web-spans", {"spans.json": spans(Faults(error_rate=0.3), 3)}))
    before = Targets(rest, namespace, RegenerationCharterSpec.model_validate(spec["spec"]).target)
    pre_cycle = Snapshot.take(before.objects())
    cycles = wait_for(
        lambda: rest.list("RegenerationCycle", namespace),
        timeout=60,
        what=f"a cycle (operator log: {operator})",
    )
    assert isinstance(cycles, list)
    name = cycles[0]["metadata"]["name"]
    final = finished(rest, namespace, name, operator)
    assert final["phase"] == "RolledBack", final.get("message")
    assert condition(final, "RolledBack") == "True"
    assert "did not meet the success criteria" in final["message"]
    assert Snapshot.take(before.objects()).sha256 == pre_cycle.sha256  # byte-identical again
    rollback = final["rollback"]
    assert rollback["verified"] is True and rollback["reason"] == final["message"]
    assert rollback["snapshot"] == final["snapshot"]["configMap"] == snapshot_name(name)
    assert rollback["sha256"] == final["snapshot"]["sha256"] == pre_cycle.sha256
    assert rollback["restoredObjects"] == [
        f"ConfigMap/{namespace}/web-config",
        f"Deployment/{namespace}/web",
    ]
    assert rollback["startedAt"] <= rollback["finishedAt"] <= final["finishedAt"]
    described = plane.kubectl("describe", "rcy", name, "-n", namespace).stdout
    assert "Rollback:" in described and f"Deployment/{namespace}/web" in described
    opened = charter_status(
        rest,
        namespace,
        lambda s: condition(s, "CircuitOpen") == "True",
        timeout=60,
        what=f"the circuit breaker to open (operator log: {operator})",
    )
    assert opened["circuitBreaker"]["state"] == "Open"
    assert opened["strategyHistory"][0]["failures"] == 1
    open_until = opened["circuitBreaker"]["openUntil"]
    trial = wait_for(
        lambda: [
            c for c in rest.list("RegenerationCycle", namespace) if c["metadata"]["name"] != name
        ],
        timeout=60,
        what=f"the trial cycle after the cooldown (operator log: {operator})",
    )
    assert isinstance(trial, list) and len(trial) == 1
    assert trial[0]["metadata"]["creationTimestamp"] >= open_until  # not before the cooldown
    reopened = charter_status(
        rest,
        namespace,
        lambda s: s.get("circuitBreaker", {}).get("consecutiveOpenings") == 2,
        timeout=120,
        what=f"the breaker to open again (operator log: {operator})",
    )
    assert condition(reopened, "CircuitOpen") == "True"
    assert "cooling down 10s" in next(
        c["message"] for c in reopened["conditions"] if c["type"] == "CircuitOpen"
    )


def test_spans_pushed_to_the_receiver_are_measured_against_a_captured_baseline(
    plane: Plane, rest: Rest, namespace: str, operator: OperatorProcess
) -> None:
    spec = charter("observe")
    spec["spec"]["telemetry"] = {"serviceName": "web", "windowSeconds": 10, "minSpans": 100}
    apply(plane, namespace, deployment("web"), config_map("web-config", GOOD))
    plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(spec))
    port = wait_for(operator.receiver_port, 30, what="the operator's OTLP receiver")
    assert isinstance(port, int)
    # Spans keep coming while the test waits: what a charter measures must not depend on when
    # the (busy) operator gets to measure it.
    pusher = SpanPusher(port, ["web"], interval=0.5, window_s=3)
    pusher.start()
    try:
        baseline = wait_for(
            lambda: rest.get("ConfigMap", namespace, "web-baseline"),
            60,
            what=f"the baseline captured from pushed spans (operator log: {operator})",
        )
        # Captured from a window the receiver watched whole, never from part of one.
        assert json.loads(baseline["data"]["summary.json"])["windowSeconds"] >= 10
        healthy = charter_status(
            rest,
            namespace,
            lambda s: s.get("entropy", {}).get("level"),
            timeout=60,
            what=f"a measurement from pushed spans (operator log: {operator})",
        )
        assert healthy["entropy"]["level"] == "low"
        pusher.set_faults(Faults(error_rate=0.35))
        sick = charter_status(
            rest,
            namespace,
            lambda s: condition(s, "Degraded") == "True",
            timeout=60,
            what=f"the pushed errors to show (operator log: {operator})",
        )
    finally:
        pusher.stop()
    assert "error_rate_increase" in {i["type"] for i in sick["entropy"]["indicators"]}
    assert pusher.failures == []


def test_an_active_standby_pair_acts_once(
    plane: Plane, rest: Rest, namespace: str, operator_kubeconfig: Path, tmp_path: Path
) -> None:
    """Two instances peering under one name: only the higher priority one handles charters."""
    plane.kubectl("apply", "-f", str(REPO / "config" / "crd" / "kopf-peering.yaml"))
    plane.wait_established(["customresourcedefinition.apiextensions.k8s.io/kopfpeerings.kopf.dev"])
    pair = [
        OperatorProcess(
            plane,
            namespace,
            tmp_path / f"operator-{priority}.log",
            operator_kubeconfig,
            "--peering",
            "weavergen",
            "--priority",
            str(priority),
        )
        for priority in (10, 5)
    ]
    try:
        for process in pair:
            process.start()
        wait_for(
            lambda: (
                len((rest.get("KopfPeering", namespace, "weavergen") or {}).get("status") or {})
                == 2
            ),
            timeout=60,
            what=f"both instances in the peering ({pair[0]}, {pair[1]})",
        )
        put(rest, namespace, config_map("web-baseline", {"spans.json": spans(Faults(), 1)}))
        put(rest, namespace, config_map("web-spans", {"spans.json": spans(Faults(), 2)}))
        plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(charter("observe")))
        wait_for(
            lambda: status(rest, namespace, "RegenerationCharter", "web").get("conditions"),
            timeout=60,
            what=f"the active instance to reconcile ({pair[0]})",
        )
        measured_again(rest, namespace, "web")
        active, standby = (p.log.read_text().count("reconcile_charter") for p in pair)
        assert active > 0 and standby == 0
    finally:
        for process in pair:
            process.stop()


def test_an_implement_pod_killed_mid_run_is_retried_and_the_cycle_still_heals(
    plane: Plane, rest: Rest, namespace: str, operator: OperatorProcess
) -> None:
    """The Implement Job's pod is SIGKILLed while it settles: the Job retries it, the retry
    finds the cycle's first snapshot (never overwritten) and finishes the fix."""
    criteria = {**charter()["spec"]["successCriteria"], "settleSeconds": 10}
    start_healthy(
        plane, rest, namespace, operator, executor="job", spec_update={"successCriteria": criteria}
    )
    killed: list[int] = []

    def kill_the_implement_pod(name: str) -> None:
        pid = wait_for(
            lambda: running_implement_pid(rest, namespace, name),
            120,
            what=f"the implement pod ({operator})",
        )
        assert isinstance(pid, int)
        # Inside the settle: the first attempt has journaled the states it wrote (its changes).
        wait_for(
            lambda: (rest.get("ConfigMap", namespace, journal_name(name)) or {}).get("data"),
            60,
            what=f"the first attempt's writes ({operator})",
        )
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    name, final = corrupt_and_wait_for_the_cycle(rest, namespace, operator, kill_the_implement_pod)
    assert killed
    assert final["phase"] == "Succeeded", final.get("message")
    job = next(
        j for j in counted_jobs(rest, namespace) if j["metadata"]["name"] == f"{name}-implement"
    )
    assert job["status"].get("failed") == 1 and job["status"].get("succeeded") == 1
    chunks = snapshot_chunks(rest, namespace, name)
    assert len(chunks) == 1  # one snapshot, taken once
    assert (rest.get("ConfigMap", namespace, "web-config") or {})["data"] == GOOD


def counted_jobs(rest: Rest, namespace: str) -> list[dict[str, Any]]:
    """The namespace's Jobs once the Job controller has counted their pods: a cycle ends as its
    last pod succeeds, a moment before its Job is marked complete."""
    jobs = wait_for(
        lambda: (
            (found := rest.list("Job", namespace)) and all(complete(job) for job in found) and found
        ),
        30,
        what="the Job controller to count the cycle's pods",
    )
    assert isinstance(jobs, list)
    return jobs


def complete(job: dict[str, Any]) -> bool:
    return any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        for c in (job.get("status") or {}).get("conditions") or []
    )


def running_implement_pid(rest: Rest, namespace: str, cycle: str) -> int | None:
    """The process of the Implement Job's running pod (the node agent runs pods as processes)."""
    for pod in rest.list("Pod", namespace, {"job-name": result_name(cycle, "implement")}):
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            if container.get("state", {}).get("running") and container.get("containerID"):
                return int(container["containerID"].removeprefix("process://"))
    return None


def test_an_implement_pod_killed_right_after_writing_its_result_does_not_act_again(
    plane: Plane, rest: Rest, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    """The Implement pod is SIGKILLed while the API server holds its result write; the result
    is then stored as the pod sent it. The Job retries the pod, which finds the result and
    returns it without acting: the pod's writes to the target all happened before the kill."""
    start_healthy(plane, rest, namespace, operator, executor="job")
    phase_user = f"system:serviceaccount:{namespace}:weavergen-phase"

    def implement_result(request: dict[str, Any]) -> bool:
        return (
            request["operation"] == "CREATE"
            and request["kind"]["kind"] == "ConfigMap"
            and str(request["name"]).endswith("-implement")
        )

    def target_writes(seen: list[dict[str, Any]]) -> list[str]:
        return [
            f"{r['kind']['kind']}/{r['name']}"
            for r in seen
            if r["operation"] == "UPDATE"
            and r["name"] in ("web", "web-config")
            and r["userInfo"]["username"] == phase_user
        ]

    before_kill: list[str] = []
    with AdmissionHold(
        plane,
        namespace,
        tmp_path,
        resources=["deployments"],
        picks=implement_result,
        deny_held=True,
    ) as hold:

        def kill_after_the_result_write(name: str) -> None:
            assert hold.holding.wait(180), f"no implement result written ({operator})"
            pid = running_implement_pid(rest, namespace, name)
            assert pid is not None
            before_kill.extend(target_writes(list(hold.seen)))
            os.kill(pid, signal.SIGKILL)
            # Whether the API server still stores a write whose client died is a race, so the
            # held write is refused and the test stores exactly what the pod sent: the result
            # is written, the pod is dead, long before the Job's next pod starts.
            hold.release()
            sent = (hold.held or {})["object"]
            metadata = {k: sent["metadata"][k] for k in ("name", "labels", "ownerReferences")}
            put(rest, namespace, {**sent, "metadata": metadata})

        name, final = corrupt_and_wait_for_the_cycle(
            rest, namespace, operator, kill_after_the_result_write
        )
        after_kill = target_writes(list(hold.seen))
    assert final["phase"] == "Succeeded", final.get("message")
    assert "ConfigMap/web-config" in before_kill  # the first attempt made the fix
    assert after_kill == before_kill  # and the retried pod changed nothing
    implement = result_name(name, "implement")
    job = next(j for j in counted_jobs(rest, namespace) if j["metadata"]["name"] == implement)
    assert job["status"].get("failed") == 1 and job["status"].get("succeeded") == 1
    assert (rest.get("ConfigMap", namespace, "web-config") or {})["data"] == GOOD


def test_a_charter_with_a_63_character_name_heals_and_leaves_nothing_behind_when_deleted(
    plane: Plane, rest: Rest, namespace: str, operator: OperatorProcess
) -> None:
    """Every name the operator derives from a charter named as long as Kubernetes allows fits
    (cycles, phase Jobs and their pods' labels, results, snapshot, journal, workflow state);
    deleting the charter removes everything it made, its captured baseline and golden too."""
    charter_name = "web-" + "x" * 59
    assert len(charter_name) == 63
    start_healthy(
        plane, rest, namespace, operator, executor="job", name=charter_name, baseline_given=False
    )
    assert rest.get("ConfigMap", namespace, baseline_name(charter_name)) is not None
    name, final = corrupt_and_wait_for_the_cycle(rest, namespace, operator)
    assert len(name) <= 63
    assert_healed(
        plane, rest, namespace, name, final=final, executor="job", charter_name=charter_name
    )
    pods = rest.list("Pod", namespace)
    assert {
        p["metadata"]["labels"]["job-name"] for p in pods if "job-name" in p["metadata"]["labels"]
    } == {
        result_name(name, phase)
        for phase in ("define", "measure", "explore", "develop", "implement")
    }
    plane.kubectl("delete", "rch", charter_name, "-n", namespace)
    own = {"web-config", "web-spans", "kube-root-ca.crt"}

    def left_behind() -> list[str]:
        names = [f"ConfigMap/{c['metadata']['name']}" for c in rest.list("ConfigMap", namespace)]
        names = [n for n in names if n.split("/", 1)[1] not in own]
        for kind in ("RegenerationCycle", "Job"):
            names += [f"{kind}/{o['metadata']['name']}" for o in rest.list(kind, namespace)]
        names += [
            f"Pod/{p['metadata']['name']}"
            for p in rest.list("Pod", namespace)
            if "job-name" in p["metadata"].get("labels", {})
        ]
        return names

    wait_for(lambda: not left_behind(), 90, what=f"the charter's objects to go: {left_behind()}")


def records_a_new_cycle(request: dict[str, Any]) -> bool:
    """The charter's status patch that records a cycle it has just created."""
    new = ((request.get("object") or {}).get("status") or {}).get("activeCycle")
    old = ((request.get("oldObject") or {}).get("status") or {}).get("activeCycle")
    return request.get("subResource") == "status" and bool(new) and not old


def hold_the_record_of_a_new_cycle(
    plane: Plane, namespace: str, directory: Path, *, deny_held: bool = False
) -> AdmissionHold:
    """The API server holds the charter's status patch that records its new cycle (then lets
    it through, or refuses it with ``deny_held``) until the test releases it."""
    return AdmissionHold(
        plane,
        namespace,
        directory,
        resources=["regenerationcharters/status"],
        groups=("regeneration.weavergen.io",),
        picks=records_a_new_cycle,
        deny_held=deny_held,
    )


def test_a_cycle_created_before_its_charter_recorded_it_is_adopted_not_started_twice(
    plane: Plane, rest: Rest, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    """The API server holds the charter's status patch that records a new cycle while the
    operator is SIGKILLed, then refuses it (the patch is lost). The restarted operator finds the
    cycle it made instead of starting a second one; that cycle heals and is recorded."""
    start_healthy(plane, rest, namespace, operator, executor="inline")
    with hold_the_record_of_a_new_cycle(plane, namespace, tmp_path, deny_held=True) as hold:

        def kill_before_the_charter_records_it(name: str) -> None:
            assert hold.holding.wait(60), f"no status patch recording {name} ({operator})"
            operator.kill()
            hold.release()  # refused: the record of the new cycle is lost
            operator.start()

        name, final = corrupt_and_wait_for_the_cycle(
            rest, namespace, operator, kill_before_the_charter_records_it
        )
    assert final["phase"] == "Succeeded", final.get("message")
    recorded = charter_status(
        rest,
        namespace,
        lambda s: (s.get("lastCycle") or {}).get("name") == name,
        timeout=30,
        what="the charter to record the adopted cycle",
    )
    assert not recorded.get("activeCycle")
    assert [c["metadata"]["name"] for c in rest.list("RegenerationCycle", namespace)] == [name]


def test_a_malformed_phase_result_fails_the_cycle_with_the_reason(
    plane: Plane, rest: Rest, namespace: str, operator: OperatorProcess
) -> None:
    """A phase result ConfigMap that is not what the phase writes (here written in advance by
    someone else) fails the cycle, naming the phase and the problem; nothing is changed."""
    applied = start_healthy(
        plane,
        rest,
        namespace,
        operator,
        executor="job",
        spec_update={"trigger": {"mode": "manual"}},
    )
    put(rest, namespace, config_map("forced-explore", {"result.json": '{"exploration": 42}'}))
    put(rest, namespace, config_map("web-config", BROKEN))
    put(rest, namespace, config_map("web-spans", {"spans.json": spans(Faults(error_rate=0.3), 3)}))
    before = Targets(
        rest, namespace, RegenerationCharterSpec.model_validate(applied["spec"]).target
    )
    pre_cycle = Snapshot.take(before.objects())
    plane.kubectl(
        "apply", "-n", namespace, "-f", "-",
        stdin=json.dumps({
            "apiVersion": "regeneration.weavergen.io/v1alpha1",
            "kind": "RegenerationCycle",
            "metadata": {"name": "forced"},
            "spec": {"charterRef": {"name": "web"}, "reason": "test"},
        }),
    )  # fmt: skip
    final = finished(rest, namespace, "forced", operator)
    assert final["phase"] == "Failed"
    assert "the explore result is malformed" in final["message"], final["message"]
    assert Snapshot.take(before.objects()).sha256 == pre_cycle.sha256  # nothing changed


def test_an_operator_killed_while_implement_acts_inline_resumes_and_heals(
    plane: Plane, rest: Rest, namespace: str, operator: OperatorProcess
) -> None:
    """Inline executor: SIGKILL once the snapshot is taken and the fix is written, during the
    settle. The restarted operator runs Implement again from the saved workflow state: it finds
    the first snapshot (one, never overwritten), the level-based actions converge, it heals."""
    criteria = {**charter()["spec"]["successCriteria"], "settleSeconds": 10}
    start_healthy(
        plane,
        rest,
        namespace,
        operator,
        executor="inline",
        spec_update={"successCriteria": criteria},
    )

    def kill_while_settling(name: str) -> None:
        wait_for(
            lambda: rest.get("ConfigMap", namespace, f"{name}-snapshot"),
            120,
            what=f"the snapshot ({operator})",
        )
        wait_for(
            lambda: (rest.get("ConfigMap", namespace, "web-config") or {}).get("data") == GOOD,
            60,
            what="the config reset",
        )
        operator.kill()
        operator.start()

    name, final = corrupt_and_wait_for_the_cycle(rest, namespace, operator, kill_while_settling)
    assert final["phase"] == "Succeeded", final.get("message")
    chunks = snapshot_chunks(rest, namespace, name)
    assert len(chunks) == 1
    assert (rest.get("ConfigMap", namespace, "web-config") or {})["data"] == GOOD


def snapshot_chunks(rest: Rest, namespace: str, cycle: str) -> list[dict[str, Any]]:
    """The ConfigMaps holding a cycle's snapshot (one per chunk)."""
    return [
        c
        for c in rest.list("ConfigMap", namespace)
        if c["metadata"]["name"].startswith(f"{cycle}-snapshot")
    ]


OPERATOR_USER = "system:serviceaccount:weavergen-system:weavergen-operator"


def versions(chunks: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """Each chunk's uid and resourceVersion: equal later means never rewritten."""
    return {
        c["metadata"]["name"]: (c["metadata"]["uid"], c["metadata"]["resourceVersion"])
        for c in chunks
    }


def test_an_operator_killed_between_two_snapshot_chunks_completes_the_snapshot_and_heals(
    plane: Plane, rest: Rest, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    """Inline executor, a target over the 900 KiB chunk size: the API server holds the second
    chunk's write (an admission webhook) while the operator is SIGKILLed. The restarted
    operator finds no complete snapshot, takes it again (nothing was changed yet), keeps the
    chunk already written as it was, and heals; the snapshot is the pre-cycle target."""
    assets = {f"web-assets-{i}": {"blob": secrets.token_hex(300_000)} for i in (1, 2)}
    for name, data in assets.items():
        put(rest, namespace, config_map(name, data))
    target = {"workloads": [{"name": "web"}], "configMaps": ["web-config", *assets]}
    spec = start_healthy(
        plane, rest, namespace, operator, executor="inline", spec_update={"target": target}
    )
    targets = Targets(rest, namespace, RegenerationCharterSpec.model_validate(spec["spec"]).target)
    chunk_writes: list[str] = []

    def second_chunk(request: dict[str, Any]) -> bool:
        labels = (request.get("object") or {}).get("metadata", {}).get("labels") or {}
        if request["operation"] != "CREATE" or not labels.get(SNAPSHOT_LABEL, "").endswith(
            "-snapshot"
        ):
            return False
        chunk_writes.append(request["name"])
        return len(chunk_writes) == 2

    at_kill: dict[str, Any] = {}
    with AdmissionHold(plane, namespace, tmp_path, resources=[], picks=second_chunk) as hold:

        def kill_mid_snapshot(name: str) -> None:
            assert hold.holding.wait(120), f"no second snapshot chunk written ({operator})"
            at_kill["chunks"] = versions(snapshot_chunks(rest, namespace, name))
            at_kill["sha256"] = Snapshot.take(targets.objects()).sha256
            operator.kill()
            hold.release()
            operator.start()

        name, final = corrupt_and_wait_for_the_cycle(rest, namespace, operator, kill_mid_snapshot)
    assert final["phase"] == "Succeeded", final.get("message")
    assert len(at_kill["chunks"]) == 1  # the kill landed between the two chunks
    chunks = versions(snapshot_chunks(rest, namespace, name))
    assert len(chunks) == 2
    assert {k: chunks[k] for k in at_kill["chunks"]} == at_kill["chunks"]  # not rewritten
    saved = snapshots.load(rest, namespace, f"{name}-snapshot")
    assert saved.sha256 == at_kill["sha256"]  # whole, and the target as it was before the cycle
    assert (rest.get("ConfigMap", namespace, "web-config") or {})["data"] == GOOD


def test_an_operator_killed_in_the_middle_of_a_rollback_finishes_it_exactly(
    plane: Plane, rest: Rest, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    """Inline executor; nothing heals the spans, so the fix fails verification and Implement
    rolls back. The API server holds the rollback's write of the config (back to what it was)
    while the operator is SIGKILLed; the restarted operator finishes the rollback: the target
    is byte-identical to its pre-cycle state, the snapshot untouched, the cycle RolledBack."""
    breaker = {"maxCycles": 1, "windowSeconds": 3600, "cooldownSeconds": 3600}
    spec = start_healthy(
        plane, rest, namespace, operator, executor="inline", spec_update={"circuitBreaker": breaker}
    )
    targets = Targets(rest, namespace, RegenerationCharterSpec.model_validate(spec["spec"]).target)

    def rollback_of_the_config(request: dict[str, Any]) -> bool:
        return (
            request["operation"] == "UPDATE"
            and request["name"] == "web-config"
            and request["userInfo"]["username"] == OPERATOR_USER
            and (request.get("object") or {}).get("data") == BROKEN
        )

    with AdmissionHold(
        plane, namespace, tmp_path, resources=["deployments"], picks=rollback_of_the_config
    ) as hold:
        put(rest, namespace, config_map("web-config", BROKEN))
        put(
            rest,
            namespace,
            config_map("web-spans", {"spans.json": spans(Faults(error_rate=0.3), 3)}),
        )
        pre_cycle = Snapshot.take(targets.objects()).sha256
        assert hold.holding.wait(180), f"no rollback write ({operator})"
        cycle = rest.list("RegenerationCycle", namespace)[0]["metadata"]["name"]
        at_kill = versions(snapshot_chunks(rest, namespace, cycle))
        operator.kill()
        hold.release()
        operator.start()
        final = finished(rest, namespace, cycle, operator)
    assert final["phase"] == "RolledBack", (final.get("message"), operator.log.read_text()[-3000:])
    assert Snapshot.take(targets.objects()).sha256 == pre_cycle  # byte-identical again
    assert versions(snapshot_chunks(rest, namespace, cycle)) == at_kill  # never rewritten
    assert len(rest.list("RegenerationCycle", namespace)) == 1


def test_an_implement_job_hanging_past_its_deadline_is_stopped_and_the_cycle_rolls_back(
    plane: Plane, rest: Rest, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    """Job executor, Implement's deadline 20 s. The API server holds the Implement pod's last
    write (its result) for 25 s, past the deadline: the Job controller stops the pod
    (DeadlineExceeded) with the fix already written. The operator fails the phase with that
    reason and rolls back from the snapshot, the pod's recorded writes telling its own changes
    from a person's: the target is byte-identical to before the cycle."""
    deadlines = {f"{p}DeadlineSeconds": 120 for p in ("define", "measure", "explore", "develop")}
    policy = {
        **deadlines,
        "implementDeadlineSeconds": 20,
        "cycleDeadlineSeconds": 600,
        "backoffLimit": 2,
    }
    breaker = {"maxCycles": 1, "windowSeconds": 3600, "cooldownSeconds": 3600}
    spec = start_healthy(
        plane,
        rest,
        namespace,
        operator,
        executor="job",
        spec_update={"phasePolicy": policy, "circuitBreaker": breaker},
    )
    targets = Targets(rest, namespace, RegenerationCharterSpec.model_validate(spec["spec"]).target)

    def implement_result(request: dict[str, Any]) -> bool:
        return request["operation"] == "CREATE" and str(request["name"]).endswith("-implement")

    with AdmissionHold(
        plane, namespace, tmp_path, resources=[], picks=implement_result, deny_held=True
    ):
        put(rest, namespace, config_map("web-config", BROKEN))
        bad = spans(Faults(error_rate=0.3), 3)
        put(rest, namespace, config_map("web-spans", {"spans.json": bad}))
        pre_cycle = Snapshot.take(targets.objects()).sha256
        with HealingExporter(rest, namespace):  # the fix works: only the deadline fails it
            cycles = wait_for(
                lambda: rest.list("RegenerationCycle", namespace), 60, what=f"a cycle ({operator})"
            )
            assert isinstance(cycles, list)
            cycle = cycles[0]["metadata"]["name"]
            final = finished(rest, namespace, cycle, operator, timeout=240)
    job = rest.get("Job", namespace, f"{cycle}-implement") or {}
    reasons = [c.get("reason") for c in job.get("status", {}).get("conditions", [])]
    assert "DeadlineExceeded" in reasons, job.get("status")
    assert final["phase"] == "RolledBack", (final.get("message"), operator.log.read_text()[-3000:])
    assert "DeadlineExceeded" in final["message"]
    assert Snapshot.take(targets.objects()).sha256 == pre_cycle  # byte-identical again
    assert rest.get("ConfigMap", namespace, f"{cycle}-implement") is None  # the held write


def test_a_crash_looping_deployment_with_no_spans_gets_a_cycle_naming_the_crash_loop(
    plane: Plane, rest: Rest, namespace: str, operator: OperatorProcess
) -> None:
    """Its pods exit at once, so it never sends a span and no baseline is ever captured: the
    workloads' state is the evidence. The charter is measured from it (HIGH: no pod is Ready),
    and the cycle it starts names the crash loop."""
    crashing = deployment("web")
    crashing["spec"]["template"]["spec"]["containers"][0]["command"] = [
        "/bin/sh",
        "-c",
        "echo cannot read the config >&2; exit 3",
    ]
    apply(plane, namespace, crashing, config_map("web-config", GOOD))
    applied = charter(executor="inline")
    applied["spec"]["telemetry"] = {"serviceName": "web", "windowSeconds": 30}  # the receiver
    plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(applied))
    cycles = wait_for(
        lambda: rest.list("RegenerationCycle", namespace),
        120,
        what=f"a cycle for the crash loop (operator log: {operator})",
    )
    assert isinstance(cycles, list)
    assert "crash_loop" in cycles[0]["spec"]["reason"], cycles[0]["spec"]
    measured = charter_status(  # the charter records the cycle it started, and why
        rest,
        namespace,
        lambda s: (
            cycles[0]["metadata"]["name"]
            in (s.get("activeCycle"), (s.get("lastCycle") or {}).get("name"))
        ),
        timeout=30,
        what=f"the charter to record its cycle (operator log: {operator})",
    )
    assert condition(measured, "InsufficientData") == "False"
    assert measured["entropy"]["spanCount"] == 0
    (loop,) = [i for i in measured["entropy"]["indicators"] if i["type"] == "crash_loop"]
    assert "last_exit_code=3" in loop["summary"]


def test_a_new_cycle_begins_only_once_its_charter_has_recorded_it(
    plane: Plane, rest: Rest, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    """The charter records a new cycle, with the incident that cycle measures (since when the
    target was healthy), in a status patch just after creating it. Held at the API server for
    two seconds, the cycle waits for that record instead of beginning on a charter that has no
    incident yet (it measured the fault diluted by the healthy spans before it); then it heals."""
    start_healthy(plane, rest, namespace, operator, executor="inline")
    with hold_the_record_of_a_new_cycle(plane, namespace, tmp_path) as hold:

        def hold_the_record(name: str) -> None:
            assert hold.holding.wait(60), f"no status patch recording {name} ({operator})"
            time.sleep(2)
            waiting = (rest.get("RegenerationCycle", namespace, name) or {}).get("status") or {}
            hold.release()
            began = waiting.get("phase")
            assert not began, f"began before its charter recorded it: {began}, {waiting['phases']}"

        _, final = corrupt_and_wait_for_the_cycle(rest, namespace, operator, hold_the_record)
    assert final["phase"] == "Succeeded", final.get("message")
