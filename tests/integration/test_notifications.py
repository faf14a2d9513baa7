"""Notifications on the local plane: an operator process with a webhook sink (its URL in a file,
as the chart mounts it), a real HTTP server in the test receiving, a cycle that heals."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from hack.localplane.plane import Plane
from tests.integration.conftest import await_status, measured_again
from tests.integration.test_operator import charter, corrupt_and_wait_for_the_cycle, start_healthy
from tests.scenario import OperatorProcess, condition
from weavergen.k8s.rest import Rest

STAKEHOLDERS = [{"name": "payments-team", "role": "owner"}, {"name": "sre-oncall", "role": "sre"}]


class Hook:
    """A webhook receiver: keeps every JSON body posted to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with hook.lock:
                    hook.bodies.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def received(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.bodies)


@pytest.fixture
def hook() -> Iterator[Hook]:
    receiver = Hook()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()


@pytest.fixture
def operator(
    plane: Plane, namespace: str, tmp_path: Path, operator_kubeconfig: Path, hook: Hook
) -> Iterator[OperatorProcess]:
    """The operator with one webhook sink, ``hook``, whose URL is a file (a mounted Secret)."""
    sinks = tmp_path / "notifications"
    sinks.mkdir()
    (sinks / "hook").write_text(hook.url + "\n")
    env = {
        "WEAVERGEN_NOTIFICATIONS_DIR": str(sinks),
        "WEAVERGEN_NOTIFICATIONS_SINKS": "hook=webhook",
    }
    process = OperatorProcess(
        plane, namespace, tmp_path / "operator.log", operator_kubeconfig, env=env
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


def test_a_healing_cycle_tells_its_start_and_success_once_each(
    plane: Plane, rest: Rest, namespace: str, operator: OperatorProcess, hook: Hook
) -> None:
    notifications = {"sinks": ["hook"], "events": ["CycleStarted", "Succeeded", "Failed"]}
    start_healthy(
        plane,
        rest,
        namespace,
        operator,
        executor="inline",
        spec_update={"notifications": notifications, "stakeholders": STAKEHOLDERS},
    )
    name, final = corrupt_and_wait_for_the_cycle(rest, namespace, operator)
    assert final["phase"] == "Succeeded", final.get("message")
    delivered = await_status(
        rest,
        namespace,
        "RegenerationCycle",
        name,
        lambda s: all(
            (s.get("notifications") or {}).get(f"hook/{event}", {}).get("result") == "Delivered"
            for event in ("CycleStarted", "Succeeded")
        ),
        timeout=60,
        what=f"both messages marked delivered (operator log: {operator.log})",
    )
    assert set(delivered["notifications"]) == {"hook/CycleStarted", "hook/Succeeded"}
    # Reconciles go on (the charter is measured twice more): nothing is sent again.
    measured_again(rest, namespace, "web", times=2)
    bodies = hook.received()
    assert sorted(b["event"] for b in bodies) == ["CycleStarted", "Succeeded"], bodies
    uid = (rest.get("RegenerationCycle", namespace, name) or {})["metadata"]["uid"]
    for body in bodies:
        assert body["key"] == f"{uid}/{body['event']}"
        assert (body["namespace"], body["charter"], body["cycle"]) == (namespace, "web", name)
        assert body["stakeholders"] == STAKEHOLDERS
        assert body["traceId"] == final["traceId"]
    succeeded = next(b for b in bodies if b["event"] == "Succeeded")
    assert succeeded["entropy"]["before"]["level"] in ("medium", "high", "critical")
    assert succeeded["entropy"]["after"]["level"] == "low"


def test_a_charter_naming_an_unknown_sink_is_not_ready_and_says_which_field(
    plane: Plane, rest: Rest, namespace: str, operator: OperatorProcess
) -> None:
    applied = charter()
    applied["spec"]["notifications"] = {"sinks": ["hook", "pager"]}
    plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(applied))
    found = await_status(
        rest,
        namespace,
        "RegenerationCharter",
        "web",
        lambda s: condition(s, "Ready") == "False",
        timeout=60,
        what=f"the charter's Ready condition (operator log: {operator.log})",
    )
    (ready,) = [c for c in found["conditions"] if c["type"] == "Ready"]
    assert ready["reason"] == "UnknownNotificationSink"
    assert ready["message"].startswith("spec.notifications.sinks[1]: no sink named 'pager'")
    assert operator.process is not None and operator.process.poll() is None  # no crash
