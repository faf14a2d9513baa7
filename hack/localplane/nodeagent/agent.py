"""The agent's main loop: pod events in from the watch, each pod of this node stepped and its
status reported, the node's heartbeat kept, every pod killed on the way out."""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config

from hack.localplane.node import NODE_NAME
from hack.localplane.nodeagent import LOG
from hack.localplane.nodeagent.binding import bind, finish_deletion
from hack.localplane.nodeagent.environment import PodEnvironment
from hack.localplane.nodeagent.lifecycle import advance
from hack.localplane.nodeagent.pods import Container, PodRunner
from hack.localplane.nodeagent.podwatch import watch_pods
from hack.localplane.nodeagent.processes import kill
from hack.localplane.nodeagent.readiness import probe_readiness
from hack.localplane.nodeagent.registration import heartbeat, register_node
from hack.localplane.nodeagent.status import report_status


class NodeAgent:
    """One node's agent: the pods bound to it, by uid, and the queue of pod events."""

    def __init__(self, kubeconfig: str, state: Path, entrypoints: dict[str, list[str]]) -> None:
        self.core = client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))
        self.environment = PodEnvironment(self.core, json.loads(Path(kubeconfig).read_text()))
        self.state = state
        self.entrypoints = entrypoints
        self.runners: dict[str, PodRunner] = {}
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.stopping = threading.Event()

    def run(self) -> None:
        """Register the node and run its pods until ``stopping`` is set, then kill them all."""
        register_node(self.core)
        args = (self.core, self.events, self.stopping)
        threading.Thread(target=watch_pods, args=args, daemon=True, name="watch").start()
        last_heartbeat = time.monotonic()
        while not self.stopping.is_set():
            self.reconcile_events()
            self.step_all()
            if time.monotonic() - last_heartbeat > 30:
                with contextlib.suppress(Exception):
                    heartbeat(self.core)
                last_heartbeat = time.monotonic()
        for runner in list(self.runners.values()):
            kill(runner, grace=2)

    def reconcile_events(self) -> None:
        """Reconcile the queued pod events, waiting up to 0.2s for the first (the loop's pace)."""
        try:
            pod = self.events.get(timeout=0.2)
            self.reconcile(pod)
            while not self.events.empty():
                self.reconcile(self.events.get_nowait())
        except queue.Empty:
            pass
        except Exception:
            LOG.exception("reconcile failed")

    def step_all(self) -> None:
        """Step every pod of this node; one pod's failure does not hold up the others."""
        for runner in list(self.runners.values()):
            try:
                self.step(runner)
            except Exception:
                LOG.exception("pod step failed pod=%s/%s", runner.namespace, runner.name)

    def reconcile(self, pod: dict[str, Any]) -> None:
        """Act on one pod event: bind a pod without a node, start a new pod of this node, kill
        and remove a terminating or deleted one."""
        meta, spec = pod["metadata"], pod["spec"]
        uid = meta["uid"]
        if pod.get("__deleted__"):
            self.forget(uid, grace=0)
            return
        node = spec.get("nodeName")
        if not node and not meta.get("deletionTimestamp"):
            bind(self.core, pod)
        if node != NODE_NAME:
            return
        if meta.get("deletionTimestamp"):
            self.forget(uid, grace=min(meta.get("deletionGracePeriodSeconds") or 0, 10))
            finish_deletion(self.core, meta)
            return
        if uid in self.runners:
            self.runners[uid].pod = pod
        elif pod.get("status", {}).get("phase") not in ("Succeeded", "Failed"):
            self.runners[uid] = self.start_pod(pod)

    def forget(self, uid: str, grace: float) -> None:
        """Kill the pod's processes (SIGKILL after ``grace`` seconds) and stop tracking it."""
        runner = self.runners.pop(uid, None)
        if runner:
            kill(runner, grace=grace)

    def start_pod(self, pod: dict[str, Any]) -> PodRunner:
        """Track a pod new to this node: its directory made, its containers' environments
        prepared; its processes start at its first step."""
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
        self.environment.prepare(runner)
        LOG.info("started pod=%s/%s dir=%s", runner.namespace, runner.name, directory)
        return runner

    def step(self, runner: PodRunner) -> None:
        """Advance a pod: start what should run, collect what exited, report status (a finished
        pod's too, until the API server has it: it may have been down)."""
        if runner.phase not in ("Succeeded", "Failed"):
            advance(runner, self.entrypoints)
        self.report(runner)

    def report(self, runner: PodRunner) -> None:
        """Probe the containers' readiness and report the pod's status; a pod gone from the API
        server is killed and forgotten."""
        for container in runner.containers:
            probe_readiness(container)
        if not report_status(self.core, runner):
            self.forget(runner.uid, grace=0)
