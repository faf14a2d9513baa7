"""An API client rides out an API server restarted a moment ago: a phase pod's tries a refused
connection again until the server answers, where the default client fails at once, and any
client asks a Forbidden again once a server that was not ready yet (its RBAC rules not loaded)
is."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import urllib3
from kubernetes.client.exceptions import ForbiddenException

from weavergen.k8s.client import RIDE_OUT_RESTARTS, api_client
from weavergen.k8s.rest import Rest

CONFIG_MAP = {"kind": "ConfigMap", "metadata": {"name": "result"}, "data": {"a": "b"}}


class _ApiServer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps(CONFIG_MAP).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _kubeconfig(tmp_path: Path, port: int) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return str(path)


def test_a_refused_connection_is_tried_again_until_the_api_server_is_back(
    tmp_path: Path,
) -> None:
    port = _free_port()
    rest = Rest(api_client(_kubeconfig(tmp_path, port), retries=RIDE_OUT_RESTARTS))
    servers: list[HTTPServer] = []

    def come_back() -> None:
        time.sleep(1.5)  # refused meanwhile: nothing listens on the port
        servers.append(HTTPServer(("127.0.0.1", port), _ApiServer))
        servers[0].serve_forever(poll_interval=0.05)

    threading.Thread(target=come_back, daemon=True).start()
    try:
        assert (rest.get("ConfigMap", "ns", "result") or {}).get("data") == CONFIG_MAP["data"]
    finally:
        while not servers:
            time.sleep(0.05)
        servers[0].shutdown()
        servers[0].server_close()


def test_without_those_retries_a_refused_connection_fails_at_once(tmp_path: Path) -> None:
    rest = Rest(api_client(_kubeconfig(tmp_path, _free_port())))
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        rest.get("ConfigMap", "ns", "result")


class _Starting(BaseHTTPRequestHandler):
    """An API server just restarted: not ready, and answering every request ``refusal`` (403:
    its authorizer has no rules yet; 503: its HTTP paths are not installed yet), until
    ``ready_at``; then it allows everything but ``/forbidden``."""

    ready_at = 0.0
    refusal = 403
    asked: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.asked.append(self.path)
        ready = time.monotonic() >= self.ready_at
        if self.path == "/readyz":
            self._answer(200 if ready else 500, b"ok" if ready else b"[-]poststarthook/rbac")
        elif not ready:
            self._answer(
                self.refusal, json.dumps({"kind": "Status", "code": self.refusal}).encode()
            )
        elif "forbidden" in self.path:
            self._answer(403, json.dumps({"kind": "Status", "code": 403}).encode())
        else:
            self._answer(200, json.dumps(CONFIG_MAP).encode())

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _starting_server(
    tmp_path: Path, ready_in: float, refusal: int = 403
) -> tuple[Rest, HTTPServer]:
    _Starting.ready_at, _Starting.asked = time.monotonic() + ready_in, []
    _Starting.refusal = refusal
    server = HTTPServer(("127.0.0.1", 0), _Starting)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    return Rest(api_client(_kubeconfig(tmp_path, server.server_address[1]))), server


@pytest.mark.parametrize("refusal", [403, 503])
def test_a_refusal_from_an_api_server_not_ready_yet_is_asked_again_once_it_is(
    tmp_path: Path, refusal: int
) -> None:
    rest, server = _starting_server(tmp_path, ready_in=1.0, refusal=refusal)
    try:
        assert (rest.get("ConfigMap", "ns", "result") or {}).get("data") == CONFIG_MAP["data"]
    finally:
        server.shutdown()
        server.server_close()
    resource = "/api/v1/namespaces/ns/configmaps/result"
    assert _Starting.asked[0] == resource and _Starting.asked[-1] == resource
    assert _Starting.asked.count("/readyz") > 1


def test_a_forbidden_from_a_ready_api_server_is_raised_at_once(tmp_path: Path) -> None:
    rest, server = _starting_server(tmp_path, ready_in=0.0)
    try:
        with pytest.raises(ForbiddenException):
            rest.get("ConfigMap", "ns", "forbidden")
    finally:
        server.shutdown()
        server.server_close()
    assert _Starting.asked == ["/api/v1/namespaces/ns/configmaps/forbidden", "/readyz"]
