"""Verifying a fix on the local plane: the settle stops when the requests since the fix say
enough, whichever way, and never on silence."""

from __future__ import annotations

import json
from typing import Any

from hack.localplane.plane import Plane
from tests.integration.conftest import measured_again, wait_for
from tests.integration.test_operator import charter, charter_status, finished
from tests.scenario import (
    BROKEN,
    GOOD,
    HealingExporter,
    OperatorProcess,
    SpanPusher,
    apply,
    condition,
    config_map,
    deployment,
    put,
)
from weavergen.domain.simulation.simulator import Faults
from weavergen.k8s.rest import Rest

SETTLE = 60  # the most a settle may last: both cycles here must end well before


def pushed_charter(
    namespace: str, plane: Plane, rest: Rest, operator: OperatorProcess
) -> SpanPusher:
    """A healthy ``web`` whose spans reach the operator's receiver, its charter measured low
    from a baseline captured from them, and its known-good snapshot taken."""
    apply(plane, namespace, deployment("web"), config_map("web-config", GOOD))
    plane.kubectl("rollout", "status", "deploy/web", "-n", namespace, "--timeout=60s")
    spec: dict[str, Any] = charter("enforce")
    # A window longer than detection, fix and verification together: when the cycle ends, it
    # still holds the fault's spans.
    spec["spec"]["telemetry"] = {"serviceName": "web", "windowSeconds": 20, "minSpans": 100}
    # The pusher sends every 0.5 s spans begun within the last 2 s.
    spec["spec"]["telemetry"]["exportDelaySeconds"] = 2
    # A team's latency objective. Without one it is the baseline's p99, and the pusher sends
    # the same 32 requests over and over: the top one or two of them would always be "slow".
    spec["spec"]["objectives"] = {"latencyThresholdMs": 1000}
    spec["spec"]["successCriteria"].update(settleSeconds=SETTLE, maxRecoverySeconds=2 * SETTLE)
    port = wait_for(operator.receiver_port, 30, what="the operator's OTLP receiver")
    assert isinstance(port, int)
    pusher = SpanPusher(port, ["web"], interval=0.5, window_s=2, live_clock=True)
    pusher.start()
    plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(spec))
    healthy = charter_status(
        rest,
        namespace,
        lambda s: s.get("entropy", {}).get("level") == "low" and s,
        timeout=90,
        what=f"a healthy measurement from pushed spans (operator log: {operator})",
    )
    assert condition(healthy, "Degraded") == "False"
    wait_for(lambda: rest.get("ConfigMap", namespace, "web-golden"), 30, what="the golden snapshot")
    return pusher


def break_config(rest: Rest, namespace: str, pusher: SpanPusher) -> None:
    put(rest, namespace, config_map("web-config", BROKEN))
    pusher.set_faults(Faults(error_rate=0.35))


def the_cycle(rest: Rest, namespace: str, operator: OperatorProcess) -> dict[str, Any]:
    cycles = wait_for(lambda: rest.list("RegenerationCycle", namespace), 60, what="a cycle")
    assert isinstance(cycles, list)
    name = cycles[0]["metadata"]["name"]
    return {"name": name, **finished(rest, namespace, name, operator, timeout=180)}


def test_a_fix_that_heals_is_verified_as_soon_as_its_requests_say_so(
    plane: Plane, rest: Rest, namespace: str, operator: OperatorProcess
) -> None:
    pusher = pushed_charter(namespace, plane, rest, operator)
    try:
        # The pushed spans turn healthy once the config is reset and the pods restarted.
        with HealingExporter(rest, namespace, heal=lambda: pusher.set_faults(Faults())):
            break_config(rest, namespace, pusher)
            final = the_cycle(rest, namespace, operator)
        # The cycle ended seconds after the fix, its window still full of the fault's spans:
        # the charter judges only what came since the fix, and starts no second cycle.
        after = measured_again(rest, namespace, "web")
    finally:
        pusher.stop()
    assert condition(after, "Degraded") == "False", after.get("entropy")
    cycles = [c["metadata"]["name"] for c in rest.list("RegenerationCycle", namespace)]
    assert cycles == [final["name"]]
    assert final["phase"] == "Succeeded", final.get("message")
    verification = final["verification"]
    assert verification["decision"] == "Pass", verification
    assert verification["seconds"] < SETTLE / 2, verification
    assert verification["requests"] > 0 and "since the fix: pass" in verification["summary"]
    assert pusher.failures == []


def test_a_fix_that_does_not_heal_fails_early_and_is_rolled_back(
    plane: Plane, rest: Rest, namespace: str, operator: OperatorProcess
) -> None:
    pusher = pushed_charter(namespace, plane, rest, operator)
    try:
        break_config(rest, namespace, pusher)  # and the spans stay broken whatever is done
        final = the_cycle(rest, namespace, operator)
    finally:
        pusher.stop()
    assert final["phase"] == "RolledBack", final.get("message")
    verification = final["verification"]
    assert verification["decision"] == "Fail", verification
    assert verification["seconds"] < SETTLE / 2, verification
    assert verification["bad"] > 0 and "since the fix: fail" in final["message"]
