"""Session-wide hooks: one local control plane per test run, shared by every xdist worker.

The first worker that needs the plane starts it under a file lock; the others attach to it. The
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

from hack.localplane.plane import Plane


def _run_root(factory: pytest.TempPathFactory, config: pytest.Config) -> Path:
    base = factory.getbasetemp()
    return base.parent if hasattr(config, "workerinput") else base


def plane_state(config: pytest.Config) -> Path:
    return _run_root(config._tmp_path_factory, config) / "plane"  # type: ignore[attr-defined]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Tell each xdist worker the controller's pid: the controller owns the run's plane."""
    node.workerinput["weavergen_owner_pid"] = os.getpid()


def run_owner(config: pytest.Config) -> int:
    """The pid of the process that owns the run: its plane stops when that process is gone."""
    workerinput = getattr(config, "workerinput", None)
    return int(workerinput["weavergen_owner_pid"]) if workerinput else os.getpid()


@pytest.fixture(scope="session")
def plane(request: pytest.FixtureRequest) -> Iterator[Plane]:
    """The run's control plane with the CRDs installed (built first if missing, never skipped)."""
    state = plane_state(request.config)
    state.parent.mkdir(parents=True, exist_ok=True)
    with (state.parent / "plane.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        plane = Plane(state)
        if plane.pid("kube-apiserver") is None:
            plane.up(owner_pid=run_owner(request.config))
            plane.install_crds()
    yield plane


def pytest_sessionfinish(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):
        return
    state = plane_state(session.config)
    if state.exists():
        Plane(state).down()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.failed and "plane" in getattr(item, "fixturenames", ()):
        logs = "\n".join(str(p) for p in Plane(plane_state(item.config)).log_files())
        report.sections.append(("control plane logs", logs))
    return report
