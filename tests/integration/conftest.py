"""Fixtures of the integration tests: a fresh namespace per test and API clients."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterator

import pytest
from kubernetes import client, config

from hack.localplane.plane import Plane


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def api(plane: Plane) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(plane.kubeconfig))


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
