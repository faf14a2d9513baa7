"""Wall time of one regeneration cycle on the local control plane, with default settings.

Starts a plane and the operator, applies a web-service charter (phase Jobs, the profile's
30 s settle), corrupts the target's ConfigMap and prints, once the cycle has healed it, the time
from the fault to the cycle's start, from the cycle's creation to Succeeded, and each phase's
duration. Prints figures; asserts nothing.

Run: .venv/bin/python -m benchmarks.cycle_walltime
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.progress import log
from hack.localplane.plane import Plane
from tests.scenario import (
    BROKEN,
    GOOD,
    HealingExporter,
    OperatorProcess,
    apply,
    charter_spec,
    config_map,
    deployment,
    put,
    spans,
    status,
)
from weavergen.domain.simulation.simulator import Faults
from weavergen.k8s.client import api_client
from weavergen.k8s.rest import Rest

REPO = Path(__file__).resolve().parents[1]
NAMESPACE = "bench"


def wait(what: str, check: object, timeout: float) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check() if callable(check) else None
        if value:
            return value
        time.sleep(0.5)
    raise TimeoutError(f"{what} did not happen within {timeout:.0f}s")


def parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def main() -> None:
    with tempfile.TemporaryDirectory() as state:
        plane = Plane(Path(state) / "plane")
        log("starting the local control plane")
        plane.up(owner_pid=os.getpid())
        plane.install_crds()
        operator = OperatorProcess(plane, NAMESPACE, Path(state) / "operator.log", plane.kubeconfig)
        operator.env.pop("WEAVERGEN_TIMER_SECONDS")  # the default timer interval
        try:
            run(plane, operator)
        finally:
            operator.stop()
            plane.down()


def run(plane: Plane, operator: OperatorProcess) -> None:
    rest = Rest(api_client(str(plane.kubeconfig)))
    plane.kubectl("create", "namespace", NAMESPACE)
    wait(
        "the default service account",
        lambda: plane.kubectl("get", "sa", "default", "-n", NAMESPACE, check=False).returncode == 0,
        30,
    )
    rbac = (REPO / "config" / "rbac" / "phase.yaml").read_text().replace("NAMESPACE", NAMESPACE)
    plane.kubectl("apply", "-n", NAMESPACE, "-f", "-", stdin=rbac)
    apply(plane, NAMESPACE, deployment("web"), config_map("web-config", GOOD))
    put(rest, NAMESPACE, config_map("web-baseline", {"spans.json": spans(Faults(), 1)}))
    put(rest, NAMESPACE, config_map("web-spans", {"spans.json": spans(Faults(), 2)}))
    plane.kubectl("rollout", "status", "deploy/web", "-n", NAMESPACE, "--timeout=60s")
    charter = {
        "apiVersion": "regeneration.weavergen.io/v1alpha1",
        "kind": "RegenerationCharter",
        "metadata": {"name": "web"},
        "spec": {**charter_spec(), "trigger": {"level": "medium"}},
    }
    operator.start()
    plane.kubectl("apply", "-n", NAMESPACE, "-f", "-", stdin=json.dumps(charter))
    log("waiting for the first measurement and the known-good snapshot")
    wait("the known-good snapshot", lambda: rest.get("ConfigMap", NAMESPACE, "web-golden"), 120)
    log("corrupting web-config")
    fault = datetime.now(UTC)
    put(rest, NAMESPACE, config_map("web-config", BROKEN))
    put(rest, NAMESPACE, config_map("web-spans", {"spans.json": spans(Faults(error_rate=0.3), 3)}))
    with HealingExporter(rest, NAMESPACE):
        cycles = wait("a cycle", lambda: rest.list("RegenerationCycle", NAMESPACE), 180)
        assert isinstance(cycles, list)
        cycle = cycles[0]
        name = cycle["metadata"]["name"]
        log(f"cycle {name} started")
        final = wait(
            "the cycle to finish",
            lambda: (
                (s := status(rest, NAMESPACE, "RegenerationCycle", name)).get("finishedAt") and s
            ),
            900,
        )
    assert isinstance(final, dict)
    created = parse(cycle["metadata"]["creationTimestamp"])
    finished = parse(final["finishedAt"])
    print(f"outcome: {final['phase']} ({final.get('chosenStrategy')})")
    print(
        f"fault to cycle start: {(created - fault).total_seconds():.1f}s "
        "(charter cadence 30 s, timer 5 s)"
    )
    print(
        f"cycle, creation to {final['phase']}: {(finished - created).total_seconds():.1f}s "
        "(seed target < 600 s)"
    )
    targets = {"define": 30, "measure": 60, "explore": 120, "develop": 180, "implement": 300}
    for record in final.get("phases", []):
        print(
            f"  {record['name']:<10} {record.get('durationSeconds', 0):>7.1f}s "
            f"(seed target < {targets[record['name']]} s)"
        )


if __name__ == "__main__":
    main()
