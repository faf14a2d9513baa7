"""Fixtures of the integration tests: a fresh namespace per test and API clients."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from hack.localplane.plane import Plane, write_kubeconfig
from tests.helpers import REPO
from tests.scenario import OperatorProcess, status
from weavergen.k8s.rest import Rest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def api(plane: Plane) -> client.ApiClient:
    return _api_client(str(plane.kubeconfig))


@pytest.fixture
def rest(api: client.ApiClient) -> Rest:
    """The operator's JSON client on the test's plane."""
    return Rest(api)


@functools.cache
def _api_client(kubeconfig: str) -> client.ApiClient:
    """One client per plane and worker (each holds a connection pool)."""
    return config.new_client_from_config(config_file=kubeconfig)


@pytest.fixture
def namespace(plane: Plane, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace of the test's own, deleted (without waiting) afterwards."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    digest = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:6]
    name = f"t-{slug}-{digest}"
    plane.kubectl("create", "namespace", name)
    # Pods are refused until the serviceaccount controller has made the default account.
    wait_for(lambda: plane.kubectl("get", "sa", "default", "-n", name, check=False).returncode == 0)
    yield name
    plane.kubectl("delete", "namespace", name, "--wait=false", check=False)


@contextlib.contextmanager
def one_of(slots: int, directory: Path, name: str) -> Iterator[None]:
    """Hold one of ``slots`` places shared by the session's workers (file locks in
    ``directory``) while the block runs; wait for one to be free."""
    while True:
        for index in range(slots):
            with (directory / f"{name}-{index}.lock").open("w") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                yield
                return
        time.sleep(0.5)


def wait_for(condition: Callable[[], object], timeout: float = 60.0, what: str = "") -> object:
    """Poll ``condition`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what or condition}")
        time.sleep(0.2)


@pytest.fixture
def operator_kubeconfig(plane: Plane, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kubeconfig holding a token of the weavergen-operator service account, bound by
    config/rbac/operator.yaml: what the operator runs under in the tests, to prove its RBAC."""
    path = _OPERATOR_KUBECONFIGS.get(plane.state)
    if path is None:
        path = _OPERATOR_KUBECONFIGS[plane.state] = _operator_kubeconfig(plane, tmp_path_factory)
    return path


_OPERATOR_KUBECONFIGS: dict[Path, Path] = {}


@pytest.fixture
def operator(
    plane: Plane, namespace: str, tmp_path: Path, operator_kubeconfig: Path
) -> Iterator[OperatorProcess]:
    """``weavergen operator run`` for the test's namespace, under the operator's own RBAC."""
    process = OperatorProcess(plane, namespace, tmp_path / "operator.log", operator_kubeconfig)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def _operator_kubeconfig(plane: Plane, tmp_path_factory: pytest.TempPathFactory) -> Path:
    lock = tmp_path_factory.getbasetemp().parent / "operator-rbac.lock"
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        plane.kubectl("create", "namespace", "weavergen-system", check=False)
        plane.kubectl("apply", "-f", str(REPO / "config" / "rbac" / "operator.yaml"))
    token = plane.kubectl(
        "create", "token", "weavergen-operator", "-n", "weavergen-system", "--duration=4h"
    ).stdout.strip()
    path = tmp_path_factory.mktemp("operator") / "kubeconfig"
    write_kubeconfig(path, plane.server, plane.pki, token=token)
    return path


def measured_again(
    rest: Rest, namespace: str, charter: str, *, times: int = 2, timeout: float = 90
) -> dict[str, Any]:
    """The charter's status once it has been measured ``times`` more times.

    A check that something did *not* happen waits for this, not for a fixed time: a slow
    operator that has not looked yet cannot make it pass.
    """
    seen: set[str] = set()
    first = (status(rest, namespace, "RegenerationCharter", charter).get("entropy") or {}).get(
        "measuredAt"
    )

    def measured() -> dict[str, Any] | None:
        current = status(rest, namespace, "RegenerationCharter", charter)
        at = (current.get("entropy") or {}).get("measuredAt")
        if at and at != first:
            seen.add(at)
        return current if len(seen) >= times else None

    found = wait_for(measured, timeout, what=f"{times} more measurements of {charter}")
    assert isinstance(found, dict)
    return found


def await_status(
    rest: Rest,
    namespace: str,
    kind: str,
    name: str,
    until: Callable[[dict[str, Any]], object],
    *,
    timeout: float,
    what: str,
) -> dict[str, Any]:
    """Poll an object's status until ``until(status)`` holds; return that status."""

    def holding() -> dict[str, Any] | None:
        current = status(rest, namespace, kind, name)
        return current if until(current) else None

    found = wait_for(holding, timeout, what=what)
    assert isinstance(found, dict)
    return found
