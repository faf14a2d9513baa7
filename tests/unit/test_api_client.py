"""A phase pod's API client rides out an API server that is away a moment (a restart): a refused
connection is tried again until the server answers, where the default client fails at once."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import urllib3

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
