"""A node agent for the local control plane: it registers a Ready Node and runs pods as processes.

Test harness only, never shipped: it stands in for a kubelet where no container runtime exists.
Pods are bound to the node by the agent itself (there is no scheduler). Each container's command
runs as a local process from the project's own environment (the image name is ignored; images
without a command run the entrypoint mapped by ``--image-entrypoint``), with the pod's env and a
kubeconfig holding a TokenRequest token of the pod's service account, so RBAC applies to the
process as it would in a cluster. Status goes back through ``pods/status``; deleted pods have their
process group killed and are then removed with grace 0.

Not supported, by design: volumes, ports, liveness probes and exec probes. Readiness probes
(httpGet, tcpSocket) are run against 127.0.0.1, so a rollout waits for a new pod to serve before
the old one is stopped; without one, a running process counts as ready.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import json
import logging
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from hack.localplane.node import NODE_NAME

LOG = logging.getLogger("nodeagent")
TERMINATION_MESSAGE_BYTES = 4096
VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Container:
    """One container of a pod and the process that runs it."""

    name: str
    spec: dict[str, Any]
    init: bool = False
    process: subprocess.Popen[bytes] | None = None
    started_at: str | None = None
    restarts: int = 0
    restart_after: float = 0.0
    terminated: dict[str, Any] | None = None
    last_terminated: dict[str, Any] | None = None
    waiting: str | None = "ContainerCreating"
    ready: bool = False
    probed_at: float = 0.0


@dataclass
class PodRunner:
    """The processes of one pod bound to this node."""

    uid: str
    namespace: str
    name: str
    pod: dict[str, Any]
    directory: Path
    init_containers: list[Container]
    containers: list[Container]
    env: dict[str, dict[str, str]] = field(default_factory=dict)
    started_at: str = field(default_factory=now)
    started_monotonic: float = field(default_factory=time.monotonic)
    phase: str = "Pending"
    reason: str | None = None
    message: str | None = None
    last_status: str = ""

    @property
    def restart_policy(self) -> str:
        policy: str = self.pod["spec"].get("restartPolicy", "Always")
        return policy

    def all_containers(self) -> list[Container]:
        return [*self.init_containers, *self.containers]


class NodeAgent:
    def __init__(self, kubeconfig: str, state: Path, entrypoints: dict[str, list[str]]) -> None:
        self.api_client = config.new_client_from_config(config_file=kubeconfig)
        self.core = client.CoreV1Api(self.api_client)
        self.kubeconfig = json.loads(Path(kubeconfig).read_text())
        self.state = state
        self.entrypoints = entrypoints
        self.runners: dict[str, PodRunner] = {}
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.stopping = threading.Event()

    # -- node -----------------------------------------------------------------------------

    def register_node(self) -> None:
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": NODE_NAME,
                "labels": {
                    "kubernetes.io/hostname": NODE_NAME,
                    "kubernetes.io/os": "linux",
                    "node.weavergen.io/local": "true",
                },
            },
            "spec": {},
        }
        with contextlib.suppress(ApiException):
            self.core.create_node(node)
        # The NodeTaint admission plugin adds a not-ready taint to new Nodes; this node is ready.
        self.core.patch_node(NODE_NAME, {"spec": {"taints": None}})
        self.heartbeat()
        LOG.info("registered node name=%s", NODE_NAME)

    def heartbeat(self) -> None:
        stamp = now()
        status = {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "NodeAgentReady",
                    "message": "weavergen local node agent is running pods as processes",
                    "lastHeartbeatTime": stamp,
                    "lastTransitionTime": stamp,
                }
            ],
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": NODE_NAME},
            ],
            "capacity": {"cpu": "16", "memory": "64Gi", "pods": "250"},
            "allocatable": {"cpu": "16", "memory": "64Gi", "pods": "250"},
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": "weavergen-node-agent",
                "kubeProxyVersion": "",
                "containerRuntimeVersion": "process://local",
                "osImage": "local processes",
                "kernelVersion": os.uname().release,
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
        }
        self.core.patch_node_status(NODE_NAME, {"status": status})

    # -- watching -------------------------------------------------------------------------

    def watch_pods(self) -> None:
        """Feed pod events into the queue; relist on expiry or error (level-based)."""
        while not self.stopping.is_set():
            try:
                listing = self.core.list_pod_for_all_namespaces(_preload_content=False)
                body = json.loads(listing.data)
                for pod in body["items"]:
                    self.events.put(pod)
                version = body["metadata"]["resourceVersion"]
                stream = watch.Watch().stream(
                    self.core.list_pod_for_all_namespaces,
                    resource_version=version,
                    timeout_seconds=60,
                    allow_watch_bookmarks=True,
                    _preload_content=False,
                )
                for event in stream:
                    if self.stopping.is_set():
                        return
                    obj = event["raw_object"]
                    if event["type"] == "ERROR":
                        break
                    if event["type"] == "BOOKMARK":
                        continue
                    obj["__deleted__"] = event["type"] == "DELETED"
                    self.events.put(obj)
            except Exception as err:
                LOG.warning("pod watch failed, relisting: %s", err)
                time.sleep(1)

    # -- main loop ------------------------------------------------------------------------

    def run(self) -> None:
        self.register_node()
        threading.Thread(target=self.watch_pods, daemon=True, name="watch").start()
        last_heartbeat = time.monotonic()
        while not self.stopping.is_set():
            try:
                pod = self.events.get(timeout=0.2)
                self.reconcile(pod)
                while not self.events.empty():
                    self.reconcile(self.events.get_nowait())
            except queue.Empty:
                pass
            except Exception:
                LOG.exception("reconcile failed")
            for runner in list(self.runners.values()):
                try:
                    self.step(runner)
                except Exception:
                    LOG.exception("pod step failed pod=%s/%s", runner.namespace, runner.name)
            if time.monotonic() - last_heartbeat > 30:
                with contextlib.suppress(Exception):
                    self.heartbeat()
                last_heartbeat = time.monotonic()
        for runner in list(self.runners.values()):
            self.kill(runner, grace=2)

    def reconcile(self, pod: dict[str, Any]) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        uid = meta["uid"]
        if pod.get("__deleted__"):
            runner = self.runners.pop(uid, None)
            if runner:
                self.kill(runner, grace=0)
            return
        node = spec.get("nodeName")
        if not node:
            if not meta.get("deletionTimestamp"):
                self.bind(pod)
            return
        if node != NODE_NAME:
            return
        runner = self.runners.get(uid)
        if meta.get("deletionTimestamp"):
            grace = meta.get("deletionGracePeriodSeconds") or 0
            if runner:
                self.kill(runner, grace=min(grace, 10))
                self.runners.pop(uid, None)
            self.finish_deletion(meta)
            return
        if runner:
            runner.pod = pod
            return
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            return
        self.runners[uid] = self.start_pod(pod)

    def bind(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": NODE_NAME},
        }
        try:
            self.core.create_namespaced_binding(meta["namespace"], body, _preload_content=False)
            LOG.info("bound pod=%s/%s", meta["namespace"], meta["name"])
        except ApiException as err:
            if err.status not in (404, 409):
                raise

    def finish_deletion(self, meta: dict[str, Any]) -> None:
        try:
            self.core.delete_namespaced_pod(
                meta["name"],
                meta["namespace"],
                body={"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}},
            )
            LOG.info("deleted pod=%s/%s", meta["namespace"], meta["name"])
        except ApiException as err:
            if err.status not in (404, 409):
                raise

    # -- pods -----------------------------------------------------------------------------

    def start_pod(self, pod: dict[str, Any]) -> PodRunner:
        meta, spec = pod["metadata"], pod["spec"]
        directory = self.state / "pods" / f"{meta['namespace']}_{meta['name']}_{meta['uid'][:8]}"
        directory.mkdir(parents=True, exist_ok=True)
        runner = PodRunner(
            uid=meta["uid"],
            namespace=meta["namespace"],
            name=meta["name"],
            pod=pod,
            directory=directory,
            init_containers=[
                Container(c["name"], c, init=True) for c in spec.get("initContainers") or []
            ],
            containers=[Container(c["name"], c) for c in spec["containers"]],
        )
        try:
            base = self.base_env(runner)
            for container in runner.all_containers():
                runner.env[container.name] = {**base, **self.container_env(runner, container)}
        except (ApiException, KeyError) as err:
            reason = getattr(err, "reason", None) or f"missing {err}"
            runner.message = f"cannot prepare the pod's environment: {reason}"
            for container in runner.all_containers():
                container.waiting = "CreateContainerConfigError"
        LOG.info("started pod=%s/%s dir=%s", runner.namespace, runner.name, directory)
        return runner

    def base_env(self, runner: PodRunner) -> dict[str, str]:
        spec = runner.pod["spec"]
        bin_dir = str(Path(sys.executable).parent)
        env = {
            "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "/usr/bin:/bin")]),
            "HOME": str(runner.directory),
            "HOSTNAME": runner.name,
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "PYTHONUNBUFFERED": "1",
        }
        if spec.get("automountServiceAccountToken", True):
            env["KUBECONFIG"] = str(self.pod_kubeconfig(runner))
        return env

    def pod_kubeconfig(self, runner: PodRunner) -> Path:
        """A kubeconfig with a token for the pod's service account, bound to the pod."""
        sa = runner.pod["spec"].get("serviceAccountName") or "default"
        token = self.core.create_namespaced_service_account_token(
            sa,
            runner.namespace,
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {
                    "expirationSeconds": 48 * 3600,
                    "boundObjectRef": {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "name": runner.name,
                        "uid": runner.uid,
                    },
                },
            },
        ).status.token
        cluster = self.kubeconfig["clusters"][0]
        path = runner.directory / "kubeconfig"
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [cluster],
                    "users": [{"name": sa, "user": {"token": token}}],
                    "contexts": [
                        {
                            "name": "pod",
                            "context": {
                                "cluster": cluster["name"],
                                "user": sa,
                                "namespace": runner.namespace,
                            },
                        }
                    ],
                    "current-context": "pod",
                }
            )
        )
        path.chmod(0o600)
        return path

    def field_value(self, runner: PodRunner, path: str) -> str:
        pod = runner.pod
        simple = {
            "metadata.name": pod["metadata"]["name"],
            "metadata.namespace": pod["metadata"]["namespace"],
            "metadata.uid": pod["metadata"]["uid"],
            "spec.nodeName": NODE_NAME,
            "spec.serviceAccountName": pod["spec"].get("serviceAccountName", "default"),
            "status.podIP": "127.0.0.1",
            "status.hostIP": "127.0.0.1",
        }
        if path in simple:
            return str(simple[path])
        match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
        if match:
            return str((pod["metadata"].get(match[1]) or {}).get(match[2], ""))
        return ""

    def config_data(self, kind: str, namespace: str, name: str) -> dict[str, str]:
        if kind == "configMap":
            return dict(self.core.read_namespaced_config_map(name, namespace).data or {})
        import base64  # noqa: PLC0415 - only for secrets

        raw = self.core.read_namespaced_secret(name, namespace).data or {}
        return {k: base64.b64decode(v).decode() for k, v in raw.items()}

    def container_env(self, runner: PodRunner, container: Container) -> dict[str, str]:
        env = self.env_from(runner, container)
        for item in container.spec.get("env") or []:
            if "value" in item:
                env[item["name"]] = VAR_REF.sub(lambda m: env.get(m[1], m[0]), item["value"])
            else:
                value = self.env_value(runner, item.get("valueFrom") or {})
                if value is not None:
                    env[item["name"]] = value
        return env

    def env_value(self, runner: PodRunner, source: dict[str, Any]) -> str | None:
        if "fieldRef" in source:
            return self.field_value(runner, source["fieldRef"]["fieldPath"])
        if "resourceFieldRef" in source:
            return "1"
        for kind in ("configMap", "secret"):
            ref = source.get(f"{kind}KeyRef")
            if ref:
                try:
                    return self.config_data(kind, runner.namespace, ref["name"])[ref["key"]]
                except (ApiException, KeyError):
                    if not ref.get("optional"):
                        raise
        return None

    def env_from(self, runner: PodRunner, container: Container) -> dict[str, str]:
        env: dict[str, str] = {}
        for source in container.spec.get("envFrom") or []:
            for kind in ("configMap", "secret"):
                ref = source.get(f"{kind}Ref")
                if ref:
                    try:
                        data = self.config_data(kind, runner.namespace, ref["name"])
                    except ApiException:
                        if ref.get("optional"):
                            continue
                        raise
                    prefix = source.get("prefix", "")
                    env.update({prefix + k: v for k, v in data.items()})
        return env

    def argv(self, runner: PodRunner, container: Container) -> list[str] | None:
        spec, env = container.spec, runner.env.get(container.name, {})
        command = list(spec.get("command") or [])
        if not command:
            image = spec.get("image", "")
            for pattern, entrypoint in self.entrypoints.items():
                if fnmatch.fnmatch(image, pattern):
                    command = list(entrypoint)
                    break
            else:
                return None
        expand = lambda s: VAR_REF.sub(lambda m: env.get(m[1], m[0]), s)  # noqa: E731
        return [expand(part) for part in [*command, *(spec.get("args") or [])]]

    # -- processes ------------------------------------------------------------------------

    def launch(self, runner: PodRunner, container: Container) -> None:
        argv = self.argv(runner, container)
        if argv is None:
            container.waiting = None
            container.terminated = {
                "exitCode": 128,
                "reason": "ContainerCannotRun",
                "message": "the local node agent runs containers that have a command; "
                f"image {container.spec.get('image')!r} has no entrypoint mapping",
                "startedAt": now(),
                "finishedAt": now(),
            }
            return
        log_path = runner.directory / f"{container.name}.log"
        workdir = container.spec.get("workingDir")
        cwd = workdir if workdir and Path(workdir).is_dir() else runner.directory
        with log_path.open("ab") as out:
            try:
                container.process = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=cwd,
                    env=runner.env[container.name],
                    start_new_session=True,
                )
            except OSError as err:
                container.terminated = {
                    "exitCode": 127,
                    "reason": "StartError",
                    "message": f"cannot start {argv[0]!r}: {err.strerror}",
                    "startedAt": now(),
                    "finishedAt": now(),
                }
                container.waiting = None
                return
        container.started_at = now()
        container.waiting = None
        container.terminated = None
        LOG.info(
            "started container=%s pod=%s/%s pid=%d",
            container.name, runner.namespace, runner.name, container.process.pid,
        )  # fmt: skip

    def termination_message(self, runner: PodRunner, container: Container, code: int) -> str:
        """Kubernetes' FallbackToLogsOnError: the log's tail when the container failed."""
        if code == 0:
            return ""
        try:
            with (runner.directory / f"{container.name}.log").open("rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - TERMINATION_MESSAGE_BYTES))
                return log.read().decode(errors="replace").strip()
        except OSError:
            return ""

    def collect(self, runner: PodRunner, container: Container) -> None:
        process = container.process
        if process is None or process.poll() is None:
            return
        code = process.returncode
        if code < 0:
            code = 128 - code  # killed by a signal: 128 + signal number, as a runtime reports
        container.process = None
        container.terminated = {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "message": self.termination_message(runner, container, code),
            "startedAt": container.started_at,
            "finishedAt": now(),
        }
        LOG.info(
            "container exited container=%s pod=%s/%s code=%d",
            container.name, runner.namespace, runner.name, code,
        )  # fmt: skip
        policy = runner.restart_policy
        if not container.init and (policy == "Always" or (policy == "OnFailure" and code != 0)):
            container.last_terminated = container.terminated
            container.terminated = None
            container.waiting = "CrashLoopBackOff" if code != 0 else "Restarting"
            container.restart_after = time.monotonic() + min(10.0, 2.0**container.restarts)
            container.restarts += 1
        elif container.init and code != 0 and policy != "Never":
            container.last_terminated = container.terminated
            container.terminated = None
            container.waiting = "CrashLoopBackOff"
            container.restart_after = time.monotonic() + min(10.0, 2.0**container.restarts)
            container.restarts += 1

    def step(self, runner: PodRunner) -> None:
        """Advance a pod: start what should run, collect what exited, report status."""
        if runner.phase in ("Succeeded", "Failed"):
            self.report(runner)  # again, until the API server has it (it may have been down)
            return
        deadline = runner.pod["spec"].get("activeDeadlineSeconds")
        if deadline and time.monotonic() - runner.started_monotonic > deadline:
            self.kill(runner, grace=0)
            runner.phase, runner.reason = "Failed", "DeadlineExceeded"
            runner.message = f"Pod was active on the node longer than {deadline}s."
            self.report(runner)
            return
        if any(c.waiting == "CreateContainerConfigError" for c in runner.all_containers()):
            self.report(runner)
            return
        for container in runner.all_containers():
            self.collect(runner, container)
        pending_init = next(
            (c for c in runner.init_containers if (c.terminated or {}).get("exitCode") != 0), None
        )
        if pending_init is not None:
            if pending_init.terminated and runner.restart_policy == "Never":
                runner.phase = "Failed"
            elif pending_init.process is None and time.monotonic() >= pending_init.restart_after:
                self.launch(runner, pending_init)
        else:
            for container in runner.containers:
                if (
                    container.process is None
                    and container.terminated is None
                    and time.monotonic() >= container.restart_after
                ):
                    self.launch(runner, container)
            if all(c.terminated for c in runner.containers):
                codes = [c.terminated["exitCode"] for c in runner.containers if c.terminated]
                runner.phase = "Succeeded" if all(code == 0 for code in codes) else "Failed"
            else:
                runner.phase = "Running" if any(c.process for c in runner.containers) else "Pending"
        self.report(runner)

    def probe_readiness(self, container: Container) -> None:
        """Run the container's readiness probe (httpGet or tcpSocket) at most twice a second."""
        if container.process is None:
            container.ready = False
            return
        spec = container.spec.get("readinessProbe") or {}
        target = spec.get("httpGet") or spec.get("tcpSocket")
        if not target:
            container.ready = True
            return
        if time.monotonic() - container.probed_at < 0.5:
            return
        container.probed_at = time.monotonic()
        port = target.get("port")
        if isinstance(port, str) and not port.isdigit():
            named = {p.get("name"): p.get("containerPort") for p in container.spec.get("ports", [])}
            port = named.get(port)
        if not listens(container.process.pid, int(port or 0)):
            # Pods share the host's network here: another pod's process (an old replica, with
            # SO_REUSEPORT) may answer on the same port, so this one must itself be listening.
            container.ready = False
            return
        try:
            if "httpGet" in spec:
                url = f"http://127.0.0.1:{port}{target.get('path', '/')}"
                with urllib.request.urlopen(url, timeout=0.5) as answer:
                    container.ready = 200 <= answer.status < 400
            else:
                with socket.create_connection(("127.0.0.1", int(port)), timeout=0.5):
                    container.ready = True
        except (OSError, ValueError, TypeError):
            container.ready = False

    def kill(self, runner: PodRunner, grace: float) -> None:
        processes = [c.process for c in runner.all_containers() if c.process]
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            alive = [p for p in processes if p.poll() is None]
            for process in alive:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, sig)
            deadline = time.monotonic() + wait
            while alive and time.monotonic() < deadline:
                alive = [p for p in alive if p.poll() is None]
                time.sleep(0.05)
            if not alive:
                break

    # -- status ---------------------------------------------------------------------------

    def container_status(self, container: Container) -> dict[str, Any]:
        state: dict[str, Any]
        if container.process is not None:
            state = {"running": {"startedAt": container.started_at}}
        elif container.terminated is not None:
            state = {"terminated": container.terminated}
        else:
            state = {"waiting": {"reason": container.waiting or "ContainerCreating"}}
        status = {
            "name": container.name,
            "image": container.spec.get("image", ""),
            "imageID": "",
            "containerID": f"process://{container.process.pid}" if container.process else "",
            "ready": container.ready,
            "started": container.process is not None,
            "restartCount": container.restarts,
            "state": state,
            "lastState": {"terminated": container.last_terminated}
            if container.last_terminated
            else {},
        }
        return status

    def report(self, runner: PodRunner) -> None:
        for container in runner.containers:
            self.probe_readiness(container)
        ready = runner.phase == "Running" and all(c.ready for c in runner.containers)
        initialized = all((c.terminated or {}).get("exitCode") == 0 for c in runner.init_containers)

        def condition(kind: str, value: bool) -> dict[str, Any]:
            return {"type": kind, "status": "True" if value else "False", "lastProbeTime": None}

        status = {
            "phase": runner.phase,
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": "127.0.0.1",
            "podIPs": [{"ip": "127.0.0.1"}],
            "startTime": runner.started_at,
            "reason": runner.reason,
            "message": runner.message,
            "conditions": [
                condition("PodScheduled", True),
                condition("Initialized", initialized),
                condition("ContainersReady", ready),
                condition("Ready", ready),
            ],
            "initContainerStatuses": [self.container_status(c) for c in runner.init_containers],
            "containerStatuses": [self.container_status(c) for c in runner.containers],
        }
        fingerprint = json.dumps(status, sort_keys=True)
        if fingerprint == runner.last_status:
            return
        stamp = now()
        for item in status["conditions"]:
            item["lastTransitionTime"] = stamp
        try:
            self.core.patch_namespaced_pod_status(
                runner.name, runner.namespace, {"status": status}, _preload_content=False
            )
            runner.last_status = fingerprint
        except ApiException as err:
            if err.status == 404:
                self.kill(runner, grace=0)
                self.runners.pop(runner.uid, None)
            else:
                LOG.warning("status update failed pod=%s/%s: %s", runner.namespace, runner.name,
                            err.reason)  # fmt: skip


def listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds a listening TCP socket on ``port`` (from /proc)."""
    inodes = set()
    try:
        descriptors = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in descriptors:
        with contextlib.suppress(OSError):  # a descriptor may close while we look
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as sockets:
            for line in list(sockets)[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port and inode in inodes:
                    return True
    return False


def parse_entrypoints(values: list[str]) -> dict[str, list[str]]:
    mapping = {}
    for value in values:
        pattern, sep, command = value.partition("=")
        if not sep or not command:
            raise SystemExit(f"--image-entrypoint {value!r}: expected IMAGE_GLOB=COMMAND")
        mapping[pattern] = command.split()
    return mapping


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument(
        "--image-entrypoint",
        action="append",
        default=["*weavergen*=weavergen"],
        metavar="IMAGE_GLOB=COMMAND",
        help="what to run for containers without a command, by image",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    args.state.mkdir(parents=True, exist_ok=True)
    agent = NodeAgent(args.kubeconfig, args.state, parse_entrypoints(args.image_entrypoint))
    signal.signal(signal.SIGTERM, lambda *_: agent.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: agent.stopping.set())
    agent.run()


if __name__ == "__main__":
    main()
