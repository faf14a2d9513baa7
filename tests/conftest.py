"""Session-wide hooks: the run's local control planes, shared by every xdist worker.

Two planes at most, each started by the first test that needs it: one whose node is the node
agent (pods as local processes: fast, most integration tests) and one whose node is real
(containerd, runc, a kubelet and kube-proxy running the images built from the repository: the
tests marked ``real_node``, which install the chart and run the demo shop in containers).
The first worker that needs a plane starts it under a file lock; the others attach to it. The
process that owns the run (the xdist controller, or pytest itself without xdist) stops it at the
end and keeps its logs; a failing integration test's report names them. Should the owner die
without stopping it (killed with SIGKILL), the plane's watchdog stops it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hack.localplane.plane import NodeKind, Plane

PLANES: dict[NodeKind, str] = {"agent": "plane", "kubelet": "node-plane"}


def _run_root(factory: pytest.TempPathFactory, config: pytest.Config) -> Path:
    base = factory.getbasetemp()
    return base.parent if hasattr(config, "workerinput") else base


def plane_state(config: pytest.Config, kind: NodeKind = "agent") -> Path:
    root = _run_root(config._tmp_path_factory, config)  # type: ignore[attr-defined]
    return root / PLANES[kind]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Tell each xdist worker the controller's pid: the controller owns the run's plane."""
    node.workerinput["weavergen_owner_pid"] = os.getpid()


def run_owner(config: pytest.Config) -> int:
    """The pid of the process that owns the run: its plane stops when that process is gone."""
    workerinput = getattr(config, "workerinput", None)
    return int(workerinput["weavergen_owner_pid"]) if workerinput else os.getpid()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "real_node: runs on the plane whose node is a real kubelet and containerd"
    )


def _shared_plane(config: pytest.Config, kind: NodeKind) -> Plane:
    """The run's plane with ``kind`` of node and the CRDs installed, started by the first
    worker that asks (binaries and images built first if missing; never skipped)."""
    state = plane_state(config, kind)
    state.parent.mkdir(parents=True, exist_ok=True)
    with (state.parent / f"{PLANES[kind]}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        plane = Plane(state)
        if plane.pid("kube-apiserver") is None:
            try:
                plane.up(node_kind=kind, owner_pid=run_owner(config))
                plane.install_crds()
            except BaseException:
                plane.down()  # never leave a half-started plane for the next test to reuse
                raise
    return plane


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests on the real node first: they run for minutes (one holds a fault for four), and
    started last they would leave the other workers idle at the end (``--dist worksteal``
    hands the rest to whichever worker is free)."""
    items.sort(key=lambda item: node_kind(item) != "kubelet")


def node_kind(item: pytest.Item) -> NodeKind:
    return "kubelet" if item.get_closest_marker("real_node") else "agent"


@pytest.fixture
def plane(request: pytest.FixtureRequest) -> Plane:
    """The test's control plane: the real node's for tests marked ``real_node``, else the node
    agent's."""
    return _shared_plane(request.config, node_kind(request.node))


def pytest_sessionfinish(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):
        return
    for kind in PLANES:
        state = plane_state(session.config, kind)
        if state.exists():
            Plane(state).down()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.failed and "plane" in getattr(item, "fixturenames", ()):
        plane = Plane(plane_state(item.config, node_kind(item)))
        logs = "\n".join(str(p) for p in plane.log_files())
        report.sections.append(("control plane logs", logs))
    return report
