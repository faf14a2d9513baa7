"""A person's abort, reject and retry of a cycle, on the local plane with the operator running."""

from __future__ import annotations

from typing import Any

from hack.localplane.plane import Plane
from tests.integration import test_operator as running
from tests.integration.conftest import await_status, measured_again, wait_for
from tests.integration.test_operator import charter_status, running_implement_pid, start_healthy
from tests.scenario import BROKEN, OperatorProcess, condition, config_map, put, spans
from weavergen.api.charter import RegenerationCharterSpec
from weavergen.api.cycle import FINAL_PHASES
from weavergen.api.keys import (
    ABORT_ANNOTATION,
    REJECT_ANNOTATION,
    REQUESTED_BY_ANNOTATION,
    RETRY_ANNOTATION,
)
from weavergen.domain.names import retry_name
from weavergen.domain.remedy.snapshot import Snapshot
from weavergen.domain.simulation.simulator import Faults
from weavergen.k8s.jobs import journal_name, result_name, snapshot_name
from weavergen.k8s.rest import Rest
from weavergen.k8s.targets import Targets

# One cycle at most: nothing the operator starts after the first may touch the target.
ONE_CYCLE = {"maxCycles": 1, "windowSeconds": 3600, "cooldownSeconds": 3600}


def degrade(rest: Rest, namespace: str) -> None:
    """Corrupt the config and send failing spans: the charter starts a cycle."""
    put(rest, namespace, config_map("web-config", BROKEN))
    put(rest, namespace, config_map("web-spans", {"spans.json": spans(Faults(error_rate=0.3), 3)}))


def the_cycle(rest: Rest, namespace: str, operator: object) -> str:
    cycles = wait_for(
        lambda: rest.list("RegenerationCycle", namespace), 60, what=f"a cycle ({operator})"
    )
    assert isinstance(cycles, list) and len(cycles) == 1
    return str(cycles[0]["metadata"]["name"])


def ended(rest: Rest, namespace: str, cycle: str, operator: object) -> dict[str, Any]:
    return await_status(
        rest,
        namespace,
        "RegenerationCycle",
        cycle,
        lambda s: s.get("phase") in FINAL_PHASES,
        timeout=180,
        what=f"cycle {cycle} to end (operator log: {operator})",
    )


def annotate(plane: Plane, namespace: str, cycle: str, *pairs: str) -> None:
    plane.kubectl("annotate", "--overwrite", "rcy", cycle, "-n", namespace, *pairs)


def event_reasons(rest: Rest, namespace: str, name: str) -> list[str]:
    return [
        e["reason"]
        for e in rest.list("Event", namespace)
        if e["involvedObject"].get("name") == name
    ]


def posted(rest: Rest, namespace: str, name: str, reasons: set[str]) -> None:
    """Wait for these Events of the cycle: what a final status owes is posted by the
    reconcile after the one that wrote it (an outbox), a moment after the status."""
    wait_for(
        lambda: reasons <= set(event_reasons(rest, namespace, name)),
        30,
        what=f"Events {sorted(reasons)} of {name}",
    )


def test_an_abort_in_the_middle_of_implement_stops_its_job_and_restores_byte_identical(
    plane: Plane, rest: Rest, namespace: str, operator: OperatorProcess
) -> None:
    """Implement runs as a Job and settles for 5 minutes after its changes: the abort deletes
    the Job, waits until its pod is gone, restores the snapshot and ends Aborted."""
    criteria = {
        **running.charter()["spec"]["successCriteria"],
        "settleSeconds": 300,
        "maxRecoverySeconds": 600,
    }
    spec = start_healthy(
        plane,
        rest,
        namespace,
        operator,
        executor="job",
        spec_update={"successCriteria": criteria, "circuitBreaker": ONE_CYCLE},
    )
    targets = Targets(rest, namespace, RegenerationCharterSpec.model_validate(spec["spec"]).target)
    degrade(rest, namespace)
    pre_cycle = Snapshot.take(targets.objects()).sha256
    cycle = the_cycle(rest, namespace, operator)
    wait_for(
        lambda: running_implement_pid(rest, namespace, cycle), 120, what=f"Implement ({operator})"
    )
    # Inside the settle: the fix is written (journaled) and differs from the snapshot.
    wait_for(
        lambda: (rest.get("ConfigMap", namespace, journal_name(cycle)) or {}).get("data"),
        60,
        what=f"Implement's writes ({operator})",
    )
    assert Snapshot.take(targets.objects()).sha256 != pre_cycle
    annotate(
        plane,
        namespace,
        cycle,
        f"{ABORT_ANNOTATION}=wrong target",
        f"{REQUESTED_BY_ANNOTATION}=alice",
    )
    final = ended(rest, namespace, cycle, operator)
    assert final["phase"] == "Aborted", (final.get("message"), operator.log.read_text()[-3000:])
    assert final["abort"]["requestedBy"] == "alice" and final["abort"]["reason"] == "wrong target"
    assert final["abort"]["restored"] is True
    assert final["abort"]["requestedAt"] <= final["finishedAt"]
    assert Snapshot.take(targets.objects()).sha256 == pre_cycle  # byte-identical again
    rollback = final["rollback"]
    assert rollback["verified"] is True and rollback["sha256"] == pre_cycle
    assert rollback["snapshot"] == snapshot_name(cycle)
    assert rest.get("Job", namespace, result_name(cycle, "implement")) is None
    assert not rest.list("Pod", namespace, {"job-name": result_name(cycle, "implement")})
    implement = next(p for p in final["phases"] if p["name"] == "implement")
    assert implement["outcome"] == "Failed" and "aborted by alice" in implement["message"]
    posted(rest, namespace, cycle, {"AbortRequested", "Aborted"})
    recorded = charter_status(
        rest,
        namespace,
        lambda s: (s.get("lastCycle") or {}).get("name") == cycle,
        timeout=30,
        what="the charter to record the aborted cycle",
    )
    assert recorded["lastCycle"]["outcome"] == "Aborted" and not recorded.get("activeCycle")
    assert not recorded.get("strategyHistory")  # an abort is no failed remedy


def test_a_plan_awaiting_approval_is_rejected_and_nothing_changes(
    plane: Plane, rest: Rest, namespace: str, operator: OperatorProcess
) -> None:
    start_healthy(plane, rest, namespace, operator, executor="inline", mode="propose")
    degrade(rest, namespace)
    cycle = the_cycle(rest, namespace, operator)
    await_status(
        rest,
        namespace,
        "RegenerationCycle",
        cycle,
        lambda s: s.get("phase") == "AwaitingApproval",
        timeout=90,
        what=f"the plan to await approval ({operator})",
    )
    annotate(plane, namespace, cycle, f"{REJECT_ANNOTATION}=true")
    final = ended(rest, namespace, cycle, operator)
    assert final["phase"] == "Rejected", final.get("message")
    assert final["abort"]["requestedBy"] == "unknown" and final["abort"]["reason"] == ""
    assert final["abort"]["restored"] is False and "rollback" not in final
    assert (rest.get("ConfigMap", namespace, "web-config") or {})["data"] == BROKEN
    assert rest.get("ConfigMap", namespace, snapshot_name(cycle)) is None  # never took one
    posted(rest, namespace, cycle, {"RejectRequested", "Rejected"})
    # An abort of the rejected cycle is moot: no Event, and it stays Rejected.
    annotate(plane, namespace, cycle, f"{ABORT_ANNOTATION}=true")
    measured_again(rest, namespace, "web")
    after = rest.get("RegenerationCycle", namespace, cycle) or {}
    assert after["status"]["phase"] == "Rejected"
    assert "AbortIgnored" not in event_reasons(rest, namespace, cycle)


def test_a_rolled_back_cycle_retried_twice_starts_exactly_one_new_cycle(
    plane: Plane, rest: Rest, namespace: str, operator: OperatorProcess
) -> None:
    """Nothing heals the spans, so the cycle rolls back and the breaker opens (maxCycles 1):
    the operator starts nothing more, but a person's retry runs, and only once."""
    start_healthy(
        plane,
        rest,
        namespace,
        operator,
        executor="inline",
        spec_update={"circuitBreaker": ONE_CYCLE},
    )
    degrade(rest, namespace)
    cycle = the_cycle(rest, namespace, operator)
    assert ended(rest, namespace, cycle, operator)["phase"] == "RolledBack"
    charter_status(
        rest,
        namespace,
        lambda s: condition(s, "CircuitOpen") == "True",
        timeout=60,
        what=f"the circuit breaker to open ({operator})",
    )
    annotate(plane, namespace, cycle, f"{RETRY_ANNOTATION}=true", f"{REQUESTED_BY_ANNOTATION}=bob")
    new = retry_name(cycle)
    old = await_status(
        rest,
        namespace,
        "RegenerationCycle",
        cycle,
        lambda s: s.get("retriedBy"),
        timeout=60,
        what=f"the retry ({operator})",
    )
    assert old["retriedBy"] == new
    retried = rest.get("RegenerationCycle", namespace, new) or {}
    assert retried["spec"]["retryOf"] == cycle
    assert (
        retried["spec"]["reason"]
        == (rest.get("RegenerationCycle", namespace, cycle) or {})["spec"]["reason"]
    )
    # Asked again (the annotation written anew): still the one retry.
    annotate(plane, namespace, cycle, f"{RETRY_ANNOTATION}=true", f"{REQUESTED_BY_ANNOTATION}=eve")
    assert ended(rest, namespace, new, operator)["phase"] == "RolledBack"
    measured_again(rest, namespace, "web")
    names = sorted(c["metadata"]["name"] for c in rest.list("RegenerationCycle", namespace))
    assert names == sorted([cycle, new])
    started = [
        e["message"]
        for e in rest.list("Event", namespace)
        if e["reason"] == "CycleStarted" and new in e["message"]
    ]
    assert len(started) == 1 and "requested by bob" in started[0]
    assert "circuit breaker is open" in started[0]
