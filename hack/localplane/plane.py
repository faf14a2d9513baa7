"""Start and stop a local control plane: certificates, etcd, kube-apiserver, controller-manager,
and its node: a real one (``node.py``: containerd, kubelet, kube-proxy, kube-scheduler) or the
node agent (pods as local processes).

Every process runs in its own session, detached, with its log and pid file in the plane's state
directory, so ``up`` can return while the plane keeps running and ``down`` can stop it from another
process. A plane with an owner (a test run) also runs a watchdog that stops it once the owner is
gone, however the owner ended. A plane with the node agent uses loopback addresses only; one with
a real node listens on the host's end of its node's veth pair.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hack.localplane import REPO, log, node, read_text, versions

SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
CONTROLLERS = (
    "job-controller",
    "replicaset-controller",
    "deployment-controller",
    "statefulset-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "ttl-after-finished-controller",
    "root-ca-certificate-publisher-controller",
    "clusterrole-aggregation-controller",
    "pod-garbage-collector-controller",
    "disruption-controller",
    "horizontal-pod-autoscaler-controller",
    "resourcequota-controller",
)
CONTROL_PROCESSES = ("etcd", "kube-apiserver", "kube-controller-manager")
NodeKind = Literal["kubelet", "agent"]
NODE_PROCESSES: dict[str, tuple[str, ...]] = {"kubelet": node.PROCESSES, "agent": ("node-agent",)}
AGENT_SERVICE_CIDR = "10.0.0.0/24"
# Client identities a plane's certificates carry: the admin (system:masters), the apiserver
# towards kubelets, and the node's components, each under the name RBAC's defaults expect.
IDENTITIES = {
    "admin": "/O=system:masters/CN=weavergen-admin",
    "apiserver-kubelet-client": "/O=system:masters/CN=kube-apiserver-kubelet-client",
    "kubelet": f"/O=system:nodes/CN=system:node:{node.NODE_NAME}",
    "kube-proxy": "/CN=system:kube-proxy",
    "kube-scheduler": "/CN=system:kube-scheduler",
    "coredns": "/CN=system:coredns",
}


def cache_dir() -> Path:
    return Path(os.environ.get("WEAVERGEN_CACHE", Path.home() / ".cache" / "weavergen"))


@dataclass(frozen=True)
class Binaries:
    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kubectl: Path
    helm: Path
    kubelet: Path
    kube_scheduler: Path
    kube_proxy: Path
    coredns: Path

    @classmethod
    def from_cache(cls) -> Binaries:
        pins, bins = versions(), cache_dir() / "bin"
        kube = bins / f"kubernetes-{pins['KUBE_VERSION']}"
        return cls(
            etcd=bins / f"etcd-{pins['ETCD_VERSION']}" / "etcd",
            kube_apiserver=kube / "kube-apiserver",
            kube_controller_manager=kube / "kube-controller-manager",
            kubectl=kube / "kubectl",
            helm=bins / f"helm-{pins['HELM_VERSION']}" / "helm",
            kubelet=kube / "kubelet",
            kube_scheduler=kube / "kube-scheduler",
            kube_proxy=kube / "kube-proxy",
            coredns=bins / f"coredns-{pins['COREDNS_VERSION']}" / "coredns",
        )

    def missing(self) -> list[Path]:
        return [p for p in vars(self).values() if not os.access(p, os.X_OK)]

    def ensure_built(self) -> None:
        """Build what is missing (a cold build takes several minutes and prints progress)."""
        if self.missing():
            subprocess.run(["bash", str(REPO / "hack" / "build-control-plane.sh")], check=True)


def built_images() -> list[Path]:
    """The node's image archives, built first if their inputs changed (see build-images.sh)."""
    script = REPO / "hack" / "build-images.sh"
    done = subprocess.run(["bash", str(script)], check=False, stdout=subprocess.PIPE)
    if done.returncode != 0:
        raise PlaneError(f"{script} failed (exit {done.returncode}); its log is above")
    return [Path(line) for line in done.stdout.decode().split()]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(pki: Path, addresses: tuple[str, ...] = ()) -> None:
    """A CA, the apiserver's serving cert (for loopback and ``addresses``), the client certs of
    ``IDENTITIES`` and the SA signing key pair."""
    pki.mkdir(parents=True, exist_ok=True)
    days = "3650"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", days,
            "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=weavergen-local-ca",
            cwd=pki)  # fmt: skip
    names = ["IP:127.0.0.1", *(f"IP:{a}" for a in addresses), "DNS:localhost", "DNS:kubernetes",
             "DNS:kubernetes.default", "DNS:kubernetes.default.svc",
             "DNS:kubernetes.default.svc.cluster.local"]  # fmt: skip
    (pki / "serving.ext").write_text(
        f"subjectAltName={','.join(names)}\nextendedKeyUsage=serverAuth\n"
    )
    (pki / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    certificates = [("apiserver", "/CN=kube-apiserver", "serving.ext")]
    certificates += [(name, subject, "client.ext") for name, subject in IDENTITIES.items()]
    for name, subject, ext in certificates:
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
                "-out", f"{name}.csr", "-subj", subject, cwd=pki)  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", days, "-out", f"{name}.crt", "-extfile", ext,
                cwd=pki)  # fmt: skip
    openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def write_kubeconfig(
    path: Path, server: str, pki: Path, *, identity: str = "admin", token: str | None = None
) -> None:
    """A kubeconfig for the cert of ``identity`` (one of ``IDENTITIES``), or for a bearer token
    when one is given."""
    user = (
        {"token": token}
        if token
        else {
            "client-certificate": str(pki / f"{identity}.crt"),
            "client-key": str(pki / f"{identity}.key"),
        }
    )
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "weavergen-local",
                "cluster": {"server": server, "certificate-authority": str(pki / "ca.crt")},
            }
        ],
        "users": [{"name": "user", "user": user}],
        "contexts": [
            {"name": "weavergen-local", "context": {"cluster": "weavergen-local", "user": "user"}}
        ],
        "current-context": "weavergen-local",
    }
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)


class PlaneError(RuntimeError):
    """The plane failed to start; the message names the log to read."""


class Plane:
    """One local control plane, identified by its state directory."""

    def __init__(self, state: Path, binaries: Binaries | None = None) -> None:
        self.state = state.resolve()
        self.binaries = binaries or Binaries.from_cache()
        self.pki = self.state / "pki"
        self.logs = self.state / "logs"
        self.kubeconfig = self.state / "kubeconfig"

    # -- processes ------------------------------------------------------------------------

    def _pid_file(self, name: str) -> Path:
        return self.state / "run" / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def pid(self, name: str) -> int | None:
        try:
            pid = int(self._pid_file(name).read_text())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return None if _zombie(pid) else pid

    def started_at(self, name: str) -> float | None:
        """When the running process ``name`` was started (its pid file's time)."""
        if self.pid(name) is None:
            return None
        return self._pid_file(name).stat().st_mtime

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        """Start ``argv`` detached as the plane's process ``name``."""
        self.logs.mkdir(parents=True, exist_ok=True)
        self._pid_file(name).parent.mkdir(parents=True, exist_ok=True)
        with self.log_file(name).open("ab") as out:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **(env or {})},
            )
        self._pid_file(name).write_text(str(proc.pid))

    @property
    def node_kind(self) -> NodeKind | None:
        """The node this plane was started with, if any."""
        try:
            kind = (self.state / "node-kind").read_text()
        except OSError:
            return None
        return "kubelet" if kind == "kubelet" else "agent"

    def processes(self) -> tuple[str, ...]:
        kind = self.node_kind
        return CONTROL_PROCESSES + (NODE_PROCESSES[kind] if kind else ())

    def running(self) -> dict[str, int | None]:
        return {name: self.pid(name) for name in self.processes()}

    def stop_process(self, name: str, timeout: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``timeout``."""
        pid = self.pid(name)
        if pid is not None:
            for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(pid, sig)
                except ProcessLookupError:
                    break
                deadline = time.monotonic() + wait
                while time.monotonic() < deadline and self.pid(name) is not None:
                    _reap(pid)
                    time.sleep(0.1)
                if self.pid(name) is None:
                    break
        self._pid_file(name).unlink(missing_ok=True)

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def server(self) -> str:
        return (self.state / "server").read_text().strip()

    @property
    def address(self) -> str:
        """Where the apiserver listens: loopback, or the host's end of a real node's veth."""
        return node.Node(self).subnet.host_ip if self.node_kind == "kubelet" else "127.0.0.1"

    def up(
        self,
        *,
        node_kind: NodeKind = "agent",
        timeout: float = 120.0,
        owner_pid: int | None = None,
    ) -> None:
        """Start every process that is not running, then wait until the plane serves.

        ``node_kind`` picks the node: ``"kubelet"`` (real containers from locally built
        images) or ``"agent"`` (pods as local processes). With ``owner_pid`` a watchdog
        stops the plane when that process is gone, even killed with SIGKILL, so an interrupted
        test run leaves nothing behind. Without one the plane outlives whoever started it, as
        ``make cluster-up`` needs.
        """
        self.binaries.ensure_built()
        started = time.monotonic()
        images = built_images() if node_kind == "kubelet" else []
        if self.node_kind not in (None, node_kind):
            if any(self.running().values()):
                raise PlaneError(f"the plane in {self.state} runs another node: stop it first")
            log(f"{self.state} was a plane with another node: starting anew")
            self.destroy()  # its etcd holds the other node
        self.state.mkdir(parents=True, exist_ok=True)
        (self.state / "node-kind").write_text(node_kind)
        if owner_pid is not None and self.pid("watchdog") is None:
            watch = ["watch", f"--state={self.state}", f"--owner={owner_pid}"]
            argv = [sys.executable, "-m", "hack.localplane", *watch]
            self.spawn("watchdog", argv, env=_repo_on_pythonpath())
        real_node = node.Node(self) if node_kind == "kubelet" else None
        addresses: tuple[str, ...] = ()
        if real_node:
            recorded = real_node.recorded_index()
            subnet = real_node.claim_network()
            if recorded not in (None, subnet.index) and self.pid("etcd") is None:
                # Its Services keep ClusterIPs of the old range, which nothing routes now.
                log(f"{self.state}: node subnet {recorded} is taken, now {subnet.index}: anew")
                shutil.rmtree(self.state / "etcd", ignore_errors=True)
                shutil.rmtree(self.pki, ignore_errors=True)
                (self.state / "server").unlink(missing_ok=True)
            addresses = (subnet.host_ip, subnet.kubernetes_service_ip)
        made_for = self.pki / "addresses"
        if not (self.pki / "sa.key").exists() or read_text(made_for) != " ".join(addresses):
            make_certificates(self.pki, addresses)  # anew when the node's addresses changed
            made_for.write_text(" ".join(addresses))
        if self.pid("etcd") is None:
            self._start_etcd()
        if self.pid("kube-apiserver") is None:  # on its old port, which clients still name
            self._start_apiserver(same_port=(self.state / "server").exists())
        self.wait_ready(timeout)
        if self.pid("kube-controller-manager") is None:
            self._start_controller_manager()
        if real_node:
            real_node.start(images)
        elif node_kind == "agent" and self.pid("node-agent") is None:
            self._start_node_agent()
        self.wait_node_ready(timeout)
        log(f"plane ready in {time.monotonic() - started:.1f}s (state {self.state})")

    def down(self) -> None:
        """Stop everything this plane started: the watchdog (its work is done), the node (it
        stops its pods), then the control plane. Every process a plane can have is looked for,
        whatever its state says it ran."""
        self.stop_process("watchdog")
        real = node.Node(self)
        if self.node_kind == "kubelet" or Path(f"/run/netns/{real.netns}").exists():
            real.stop()
        for name in (*NODE_PROCESSES["agent"], *node.PROCESSES, *reversed(CONTROL_PROCESSES)):
            self.stop_process(name)

    def watch(self, owner_pid: int) -> None:
        """The watchdog: block until ``owner_pid`` has exited, then stop the plane as ``down``
        does. A pidfd, unlike polling the pid, cannot mistake a reused pid for the owner."""
        try:
            owner = os.pidfd_open(owner_pid)
        except ProcessLookupError:
            pass
        else:
            select.select([owner], [], [])
            os.close(owner)
        log(f"owner {owner_pid} is gone: stopping the plane")
        self._pid_file("watchdog").unlink(missing_ok=True)  # down must not stop this process
        self.down()

    def destroy(self) -> None:
        self.down()
        shutil.rmtree(self.state, ignore_errors=True)

    def restart(self, name: str, down_seconds: float = 0.0) -> None:
        """Stop one process and start it again on the same ports, after ``down_seconds``: a
        crash and a restart, as clients see one (their kubeconfig stays valid)."""
        self.stop_process(name)
        time.sleep(down_seconds)
        start = {
            "etcd": lambda: self._start_etcd(same_ports=True),
            "kube-apiserver": lambda: self._start_apiserver(same_port=True),
            "kube-controller-manager": self._start_controller_manager,
            "node-agent": self._start_node_agent,
        }[name]
        start()
        if name in ("etcd", "kube-apiserver"):
            self.wait_ready(120)

    def _start_etcd(self, *, same_ports: bool = False) -> None:
        if same_ports:
            client = int((self.state / "etcd-url").read_text().rsplit(":", 1)[1])
            peer = int((self.state / "etcd-peer-port").read_text())
        else:
            client, peer = free_port(), free_port()
        (self.state / "etcd-url").write_text(f"http://127.0.0.1:{client}")
        (self.state / "etcd-peer-port").write_text(str(peer))
        self.spawn(
            "etcd",
            [
                str(self.binaries.etcd),
                "--name=weavergen-local",
                f"--data-dir={self.state / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{client}",
                f"--advertise-client-urls=http://127.0.0.1:{client}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=weavergen-local=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync",
                "--quota-backend-bytes=4294967296",
                "--log-level=warn",
            ],
        )

    def _start_apiserver(self, *, same_port: bool = False) -> None:
        address = self.address
        port = int(self.server.rsplit(":", 1)[1]) if same_port else free_port(address)
        server = f"https://{address}:{port}"
        (self.state / "server").write_text(server)
        etcd = (self.state / "etcd-url").read_text()
        pki = self.pki
        if self.node_kind == "kubelet":
            node_flags = [
                f"--service-cluster-ip-range={node.Node(self).subnet.service_cidr}",
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
                f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
                # The node's name resolves nowhere: reach the kubelet (logs, exec) by address.
                "--kubelet-preferred-address-types=InternalIP,Hostname",
            ]
        else:  # the `kubernetes` Service cannot have a loopback endpoint: keep it empty
            node_flags = [
                f"--service-cluster-ip-range={AGENT_SERVICE_CIDR}",
                "--authorization-mode=RBAC",
                "--endpoint-reconciler-type=none",
            ]
        self.spawn(
            "kube-apiserver",
            [
                str(self.binaries.kube_apiserver),
                f"--etcd-servers={etcd}",
                f"--cert-dir={self.state / 'apiserver-certs'}",
                f"--bind-address={address}",
                f"--advertise-address={address}",
                f"--secure-port={port}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                *node_flags,
                f"--service-account-issuer={SA_ISSUER}",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--service-account-max-token-expiration=48h",
                "--allow-privileged=true",
                "--profiling=false",
                "--enable-priority-and-fairness=false",
                "--v=1",
            ],
        )
        write_kubeconfig(self.kubeconfig, server, pki)

    def write_identity_kubeconfig(self, path: Path, identity: str) -> None:
        """A kubeconfig for one of ``IDENTITIES``, for the node's components."""
        write_kubeconfig(path, self.server, self.pki, identity=identity)

    def _start_controller_manager(self) -> None:
        controllers = CONTROLLERS + (node.CONTROLLERS if self.node_kind == "kubelet" else ())
        self.spawn(
            "kube-controller-manager",
            [
                str(self.binaries.kube_controller_manager),
                f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                "--controllers=" + ",".join(controllers),
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                f"--cert-dir={self.state / 'controller-manager-certs'}",
                f"--service-account-private-key-file={self.pki / 'sa.key'}",
                f"--root-ca-file={self.pki / 'ca.crt'}",
                "--use-service-account-credentials=false",
                "--concurrent-gc-syncs=5",
                # An HPA acts on its bounds within seconds here (15 s by default).
                "--horizontal-pod-autoscaler-sync-period=2s",
                "--v=1",
            ],
        )

    def _start_node_agent(self) -> None:
        self.spawn(
            "node-agent",
            [
                sys.executable,
                "-m",
                "hack.localplane.nodeagent",
                f"--kubeconfig={self.kubeconfig}",
                f"--state={self.state / 'node'}",
            ],
            env=_repo_on_pythonpath(),
        )

    # -- readiness ------------------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        context.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        return context

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        """GET a path of the apiserver as admin."""
        request = urllib.request.Request(self.server + path)
        try:
            with urllib.request.urlopen(
                request, context=self._ssl_context(), timeout=timeout
            ) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def await_condition(
        self, what: str, check: Callable[[], bool], timeout: float, logs: tuple[str, ...]
    ) -> None:
        """Poll ``check`` until it holds; fail early, naming the log, if a process of ``logs``
        exits."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            for name in logs:
                if self.pid(name) is None:
                    raise PlaneError(f"{name} exited; see {self.log_file(name)}")
            try:
                if check():
                    return
            except (OSError, ValueError) as err:
                last = str(err)
            time.sleep(0.25)
        raise PlaneError(
            f"{what} not ready after {timeout:.0f}s ({last}); see "
            + ", ".join(str(self.log_file(n)) for n in logs)
        )

    def wait_ready(self, timeout: float) -> None:
        self.await_condition(
            "kube-apiserver /readyz",
            lambda: self.get("/readyz")[0] == 200,
            timeout,
            ("etcd", "kube-apiserver"),
        )

    def wait_node_ready(self, timeout: float) -> None:
        def agent_ready() -> bool:
            code, body = self.get("/api/v1/nodes")
            if code != 200:
                return False
            return any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for item in json.loads(body).get("items", [])
                for c in item.get("status", {}).get("conditions", [])
            )

        control = ("kube-apiserver", "kube-controller-manager")
        if self.node_kind == "kubelet":  # a kubelet registers, then a CNI and a sync later: Ready
            real = node.Node(self)
            self.await_condition("node", real.ready, timeout, (*control, *node.PROCESSES))
        elif self.pid("node-agent") is not None:
            self.await_condition("node", agent_ready, timeout, (*control, "node-agent"))

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl as admin against this plane."""
        result = subprocess.run(
            [str(self.binaries.kubectl), *args],
            check=False,
            input=stdin,
            capture_output=True,
            text=True,
            env={**os.environ, **self.env()},
            timeout=timeout,  # beyond the --timeout of any kubectl wait here
        )
        if check and result.returncode != 0:
            raise PlaneError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def helm(self, *args: str, timeout: float = 300, check: bool = True) -> str:
        """Run helm against this plane (its cache and config under the plane's state)."""
        done = subprocess.run(
            [str(self.binaries.helm), *args],
            check=False,
            capture_output=True,
            text=True,
            env={**os.environ, **self.env(), "HOME": str(self.state)},
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise PlaneError(f"helm {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def apply(self, namespace: str, *objects: dict[str, Any]) -> None:
        """``kubectl apply`` the objects, as one List, into ``namespace``."""
        document = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)})
        self.kubectl("apply", "-n", namespace, "-f", "-", stdin=document)

    def pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        found = self.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json")
        items: list[dict[str, Any]] = json.loads(found.stdout)["items"]
        return items

    def service_url(self, namespace: str, name: str, port: str | None = None) -> str:
        """``http://`` a Service's ClusterIP and its port named ``port`` (else its first): the
        host does not use the cluster DNS, and reaches ClusterIPs through a real node's
        kube-proxy, as pods do."""
        found = self.kubectl("get", "service", name, "-n", namespace, "-o", "json").stdout
        spec = json.loads(found)["spec"]
        (number,) = [p["port"] for p in spec["ports"] if p.get("name") == port or port is None][:1]
        return f"http://{spec['clusterIP']}:{number}"

    def install_crds(self) -> None:
        """Apply the project's CRDs and wait until they are served."""
        applied = self.kubectl(
            "apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"), "-o", "name"
        ).stdout.split()
        self.wait_established(applied)

    def wait_established(self, crds: list[str], timeout: float = 60.0) -> None:
        """Wait until every CRD (``customresourcedefinition.../name``) is Established.

        Polled rather than ``kubectl wait``: a CRD created a moment ago has no conditions yet,
        and ``kubectl wait --for=condition`` fails on that instead of waiting.
        """
        deadline = time.monotonic() + timeout
        while True:
            listed = json.loads(self.kubectl("get", *crds, "-o", "json").stdout)
            pending = [
                item["metadata"]["name"]
                for item in listed.get("items", [listed])
                if not any(
                    c.get("type") == "Established" and c.get("status") == "True"
                    for c in (item.get("status") or {}).get("conditions") or []
                )
            ]
            if not pending:
                return
            if time.monotonic() > deadline:
                raise PlaneError(f"CRDs not established after {timeout:.0f}s: {pending}")
            time.sleep(0.2)

    def log_files(self) -> list[Path]:
        return [self.log_file(name) for name in self.processes()]

    def env(self) -> dict[str, str]:
        """Environment for kubectl and helm against this plane."""
        bin_dirs = {str(self.binaries.kubectl.parent), str(self.binaries.helm.parent)}
        return {
            "KUBECONFIG": str(self.kubeconfig),
            "PATH": os.pathsep.join([*sorted(bin_dirs), os.environ.get("PATH", "")]),
        }


def _repo_on_pythonpath() -> dict[str, str]:
    """Environment for the plane's Python processes, which import ``hack``."""
    return {"PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has exited but is not collected yet: a plane process whose starter died
    is reparented to an init that may never reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _reap(pid: int) -> None:
    """Collect a child that has exited (only children of this process can be reaped)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def default_state() -> Path:
    return Path(os.environ.get("WEAVERGEN_PLANE", cache_dir() / "plane"))
