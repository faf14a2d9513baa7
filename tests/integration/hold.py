"""Hold one write in the API server while a test acts: a real validating admission webhook.

The API server calls the webhook for the writes its rules match, before it stores them; the
webhook answers every request at once except the first one ``picks`` accepts, which it keeps
waiting until the test calls ``release``: then it allows it, or with ``deny_held`` refuses it
(so that it never lands, whatever happened to its client meanwhile). So a test can SIGKILL the
operator exactly while that write is in flight (between two chunks of a snapshot, in the middle
of a rollback), or hold a phase past its deadline, without a hook in the operator: what the
operator sees is a slow API server.
"""

from __future__ import annotations

import base64
import itertools
import json
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from hack.localplane.plane import Plane

Review = dict[str, Any]  # AdmissionReview.request
HOLD_SECONDS = 25  # under the webhook's 30 s timeout, the longest the API server waits


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that is its own CA (the webhook's caBundle)."""
    cert, key = directory / "webhook.crt", directory / "webhook.key"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"]
    command += ["-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        command,
        check=True,
        capture_output=True,
    )
    return cert, key


class AdmissionHold:
    """A ValidatingWebhookConfiguration for ``resources`` in one namespace, served here."""

    def __init__(
        self,
        plane: Plane,
        namespace: str,
        directory: Path,
        *,
        resources: list[str],
        picks: Callable[[Review], bool],
        deny_held: bool = False,
        groups: tuple[str, ...] = ("", "apps"),
    ) -> None:
        self.plane = plane
        self.namespace = namespace
        self.directory = directory
        self.rules = [
            {
                "apiGroups": sorted({"", *groups}),
                "apiVersions": ["*"],
                "operations": ["CREATE", "UPDATE"],
                "resources": sorted({"configmaps", *resources}),  # configmaps for the probe
                "scope": "Namespaced",
            }
        ]
        self.picks = picks
        self.deny_held = deny_held
        self.name = f"hold-{namespace}"
        self.seen: list[Review] = []
        self.held: Review | None = None
        self.holding = threading.Event()
        self._released = threading.Event()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def _answer(self, request: Review) -> dict[str, Any]:
        """The AdmissionReview response, once the request may go on."""
        with self._lock:
            self.seen.append(request)
            hold = self.held is None and self.picks(request)
            if hold:
                self.held = request
        if hold:
            self.holding.set()
            self._released.wait(HOLD_SECONDS)
        if hold and self.deny_held:
            return {"uid": request["uid"], "allowed": False, "status": {"message": "held"}}
        return {"uid": request["uid"], "allowed": True}

    def __enter__(self) -> AdmissionHold:
        cert, key = self_signed(self.directory)
        hold = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                response = hold._answer(review["request"])
                body = json.dumps(
                    {
                        "apiVersion": "admission.k8s.io/v1",
                        "kind": "AdmissionReview",
                        "response": response,
                    }
                ).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the API server gave up on a held request (its client was killed)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server
        port = server.server_address[1]
        webhook = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": self.name},
            "webhooks": [
                {
                    "name": "hold.tests.weavergen.io",
                    "clientConfig": {
                        "url": f"https://127.0.0.1:{port}/hold",
                        "caBundle": base64.b64encode(cert.read_bytes()).decode(),
                    },
                    "rules": self.rules,
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": self.namespace}
                    },
                    "failurePolicy": "Ignore",  # a test that ended early blocks nothing
                    "sideEffects": "None",
                    "admissionReviewVersions": ["v1"],
                    "timeoutSeconds": 30,
                }
            ],
        }
        self.plane.kubectl("apply", "-f", "-", stdin=json.dumps(webhook))
        self._await_calls()
        return self

    def _await_calls(self) -> None:
        """Write a probe ConfigMap until the API server calls us for it (it loads webhook
        configurations asynchronously)."""
        deadline = time.monotonic() + 30
        for attempt in itertools.count():
            probe = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "hold-probe"},
                "data": {"attempt": str(attempt)},
            }
            self.plane.kubectl("apply", "-n", self.namespace, "-f", "-", stdin=json.dumps(probe))
            if any(r["name"] == "hold-probe" for r in self.seen):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the API server never called the webhook {self.name}")
            time.sleep(0.5)

    def release(self) -> None:
        self._released.set()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.release()
        self.plane.kubectl(
            "delete", "validatingwebhookconfiguration", self.name, "--wait=false", check=False
        )
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
