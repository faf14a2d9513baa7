"""Control-plane faults: a cycle survives kube-apiserver or etcd going away and coming back.

Each test runs on a plane of its own (restarting the shared one would break other tests):
the operator's watches break while the component is down and resume after, and the cycle
finishes as if nothing happened, with one Job per phase.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hack.localplane.plane import Plane
from tests.conftest import run_owner
from tests.integration.conftest import wait_for
from tests.integration.test_operator import corrupt_and_wait_for_the_cycle, start_healthy
from tests.scenario import GOOD, OperatorProcess
from weavergen.k8s.client import api_client
from weavergen.k8s.rest import Rest

NAMESPACE = "faults"
PHASES = ("define", "measure", "explore", "develop", "implement")


@pytest.fixture
def own_plane(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Plane]:
    plane = Plane(tmp_path / "plane")
    plane.up(owner_pid=run_owner(request.config))
    try:
        plane.install_crds()
        plane.kubectl("create", "namespace", NAMESPACE)
        wait_for(
            lambda: (
                plane.kubectl("get", "sa", "default", "-n", NAMESPACE, check=False).returncode == 0
            ),
            60,
            what="the default ServiceAccount",
        )
        yield plane
    finally:
        plane.down()


@pytest.mark.parametrize(("component", "down_seconds"), [("kube-apiserver", 5), ("etcd", 5)])
def test_a_cycle_survives_a_control_plane_restart(
    own_plane: Plane, tmp_path: Path, component: str, down_seconds: float
) -> None:
    rest = Rest(api_client(str(own_plane.kubeconfig)))
    operator = OperatorProcess(
        own_plane, NAMESPACE, tmp_path / "operator.log", own_plane.kubeconfig
    )
    operator.start()
    try:
        start_healthy(own_plane, rest, NAMESPACE, operator, executor="job")
        restarted: list[str] = []

        def restart_mid_cycle(name: str) -> None:
            wait_for(
                lambda: rest.get("Job", NAMESPACE, f"{name}-explore"),
                timeout=120,
                what=f"the explore Job ({operator})",
            )
            own_plane.restart(component, down_seconds=down_seconds)
            restarted.append(component)

        name, final = corrupt_and_wait_for_the_cycle(rest, NAMESPACE, operator, restart_mid_cycle)
    finally:
        operator.stop()
    assert restarted == [component]
    assert final["phase"] == "Succeeded", (final.get("message"), operator.log.read_text()[-3000:])
    jobs = rest.list("Job", NAMESPACE)
    assert sorted(j["metadata"]["name"] for j in jobs) == sorted(f"{name}-{p}" for p in PHASES)
    assert (rest.get("ConfigMap", NAMESPACE, "web-config") or {})["data"] == GOOD
