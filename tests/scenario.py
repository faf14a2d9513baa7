"""The scenario the integration tests and the cycle benchmark share: a Deployment and its
ConfigMap, spans in ConfigMaps, a config corruption, and an exporter that reports healthy spans
once restarted pods read the reset config. Also the operator as a restartable process."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

from hack.localplane.plane import Plane
from weavergen.api.charter import RegenerationCharterSpec
from weavergen.api.profiles import profile_for
from weavergen.config import operator_config
from weavergen.domain.remedy.actions import RESTARTED_AT
from weavergen.domain.simulation.simulator import (
    EntropySimulator,
    Faults,
    SyntheticChunk,
    to_otlp_json,
    to_otlp_protobuf,
)
from weavergen.k8s.cluster_target import ClusterTarget
from weavergen.k8s.rest import Rest
from weavergen.k8s.targets import Targets
from weavergen.phases.operators import Operators
from weavergen.workflows.engine import WorkflowRun, load_process

PYTHON = os.path.basename(sys.executable)
GOOD = {"timeout_ms": "800", "pool": "20"}
BROKEN = {"timeout_ms": "1", "pool": "20"}


def deployment(name: str, image: str = "app:1") -> dict[str, Any]:
    """A Deployment whose pods are a sleeping Python process: the node agent's from the
    project's environment, a real node's from ``image`` (the operator's has ``python``)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "app",
                            "image": image,
                            "command": [PYTHON, "-c", "import time; time.sleep(3600)"],
                        }
                    ],
                },
            },
        },
    }


def config_map(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def asked_cycle(name: str, charter: str, reason: str, **spec: Any) -> dict[str, Any]:
    """A cycle a person asks of a charter (``spec``: more of its spec, e.g. dryRun=True)."""
    return {
        "apiVersion": "regeneration.weavergen.io/v1alpha1",
        "kind": "RegenerationCycle",
        "metadata": {"name": name},
        "spec": {"charterRef": {"name": charter}, "reason": reason, **spec},
    }


def apply(plane: Plane, namespace: str, *objects: dict[str, Any]) -> None:
    plane.apply(namespace, *objects)


def charter_spec() -> dict[str, Any]:
    return {
        "systemId": "web",
        "systemType": "web-service",
        "target": {"workloads": [{"name": "web"}], "configMaps": ["web-config"]},
        "telemetry": {
            "serviceName": "web",
            "source": "configMap",
            "configMap": {"name": "web-spans", "key": "spans.json"},
            "baseline": {"configMap": {"name": "web-baseline", "key": "spans.json"}},
        },
    }


def spans(faults: Faults, seed: int) -> str:
    """About 500 spans of OTLP/JSON: a ConfigMap holds at most 1 MiB."""
    sim = EntropySimulator(3)
    system = sim.system("web")
    return json.dumps(to_otlp_json(list(sim.chunks(system, faults, seed, window_s=8))))


def put(rest: Rest, namespace: str, obj: dict[str, Any]) -> None:
    """Create or replace a ConfigMap (kubectl apply would double it with its annotation)."""
    target = RegenerationCharterSpec.model_validate(charter_spec()).target
    Targets(rest, namespace, target).write(obj)


def status(rest: Rest, namespace: str, kind: str, name: str) -> dict[str, Any]:
    obj = rest.get(kind, namespace, name) or {}
    found: dict[str, Any] = obj.get("status") or {}
    return found


def condition(status: dict[str, Any], kind: str) -> str | None:
    return next((c["status"] for c in status.get("conditions", []) if c["type"] == kind), None)


def run_strategy(
    target: ClusterTarget, strategy: str, entropy_before: float
) -> tuple[WorkflowRun, Operators]:
    """One strategy's workflow run in-process against ``target``, settling at once."""
    criteria = profile_for("web-service").success_criteria
    assert criteria is not None
    operators = Operators(target, criteria)
    spec, subs = load_process(
        operator_config().bpmn_dir / "strategies" / f"{strategy}.bpmn", strategy.replace("-", "_")
    )
    run = WorkflowRun.start(
        spec, subs, operators.registry(), {"entropy_before": entropy_before, "settle_seconds": 0}
    )
    run.run()
    return run, operators


def restarted(workload: Mapping[str, Any]) -> bool:
    """Whether a restart was asked of the workload: its template's annotation, or a Rollout's
    ``restartAt``."""
    template = workload.get("spec", {}).get("template") or {}
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    return RESTARTED_AT in annotations or "restartAt" in workload.get("spec", {})


class HealingExporter:
    """Stands in for the app's span exporter: once the config is reset and the workload ``web``
    (of ``kind``) restarted, the spans it writes are healthy again (a context manager running a
    polling thread). ``heal`` makes them healthy: by default it writes healthy spans into
    ``web-spans``."""

    def __init__(
        self,
        rest: Rest,
        namespace: str,
        kind: str = "Deployment",
        heal: Callable[[], None] | None = None,
    ) -> None:
        self.rest = rest
        self.namespace = namespace
        self.kind = kind
        self.heal = heal or self._write_healthy_spans
        self.stop = threading.Event()
        self.healed = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self.stop.wait(0.3):
            try:
                if self._healed():
                    self.healed.set()
                    return
            except Exception:
                continue

    def settled(self, seconds: float) -> None:
        """A settle that lasts until the app exports healthy spans (at most a minute): for a
        target settled in-process with ``settle_seconds: 0``, which would otherwise race the
        exporter's polling on a busy machine."""
        self.healed.wait(max(seconds, 60))

    def _healed(self) -> bool:
        """Write healthy spans once the config is reset and the pods restarted."""
        config = (self.rest.get("ConfigMap", self.namespace, "web-config") or {}).get("data")
        if config != GOOD or not restarted(self.rest.get(self.kind, self.namespace, "web") or {}):
            return False
        self.heal()
        return True

    def _write_healthy_spans(self) -> None:
        put(self.rest, self.namespace, config_map("web-spans", {"spans.json": spans(Faults(), 4)}))

    def __enter__(self) -> HealingExporter:
        self.thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop.set()
        self.thread.join(5)


class OperatorProcess:
    """``weavergen operator run`` watching one namespace, restartable; logs to one file."""

    def __init__(
        self,
        plane: Plane,
        namespace: str,
        log: Path,
        kubeconfig: Path,
        *flags: str,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.flags = flags or ("--standalone",)
        self.env = {
            **os.environ,
            **plane.env(),
            "WEAVERGEN_TIMER_SECONDS": "1",
            "KUBECONFIG": str(kubeconfig),
            **(env or {}),
        }
        self.namespace = namespace
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "weavergen.cli",
            "operator",
            "run",
            *self.flags,
            "--namespace",
            self.namespace,
            "--receiver-port",
            "0",
            "--log-format",
            "text",
        ]
        with self.log.open("a") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=self.env
            )

    def kill(self) -> None:
        """SIGKILL: no cleanup, no chance to save anything."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def receiver_port(self) -> int | None:
        """The OTLP receiver's port, once the operator has logged it."""
        found = re.findall(r"started the OTLP receiver\S* .*port=(\d+)", self.log.read_text())
        return int(found[-1]) if found else None

    def __str__(self) -> str:
        return str(self.log)


class SpanPusher:
    """Services sending their simulated spans to an OTLP receiver, as exporters batch: each one
    OTLP/protobuf request per ``interval`` on a fixed schedule, whatever a request takes, until
    stopped. Payloads are encoded up front (a few per service, in rotation), so pushing costs
    little; ``set_faults`` changes what every service sends from then on."""

    def __init__(
        self,
        port: int,
        services: list[str],
        *,
        interval: float = 1.0,
        window_s: float = 1.0,
        threads: int = 1,
        rotation: int = 4,
        live_clock: bool = False,
    ) -> None:
        self.url = f"http://127.0.0.1:{port}/v1/traces"
        self.interval = interval
        self.window_s = window_s
        self.rotation = rotation
        self.live_clock = live_clock
        self.sim = EntropySimulator(7)
        self.systems = [self.sim.system(service) for service in services]
        self.payloads: list[list[tuple[list[SyntheticChunk], bytes, int]]] = []
        self.set_faults(Faults())
        self.spans = 0
        self.failures: list[str] = []
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(i, threads), daemon=True)
            for i in range(threads)
        ]

    def set_faults(self, faults: Faults) -> None:
        payloads = []
        for system in self.systems:
            encoded = []
            for seed in range(self.rotation):
                chunks = list(self.sim.chunks(system, faults, seed, window_s=self.window_s))
                encoded.append((chunks, to_otlp_protobuf(chunks), sum(len(c) for c in chunks)))
            payloads.append(encoded)
        self.payloads = payloads  # one assignment: a sender sees the old list or the new one

    def _body(self, chunks: list[SyntheticChunk], encoded: bytes) -> bytes:
        """The payload; with ``live_clock`` its spans are timed in the window just ended, as
        an SDK's are (the simulator's own times are fixed, years back)."""
        if not self.live_clock:
            return encoded
        end = time.time_ns()
        window = int(self.window_s * 1e9)
        return to_otlp_protobuf([replace(c, start_ns=end - window, end_ns=end) for c in chunks])

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self.stopped.set()
        for thread in self._threads:
            thread.join(15)

    def _run(self, offset: int, stride: int) -> None:
        start = time.monotonic()
        for tick in itertools.count():
            for encoded in self.payloads[offset::stride]:
                chunks, body, count = encoded[tick % len(encoded)]
                request = urllib.request.Request(
                    self.url,
                    data=self._body(chunks, body),
                    headers={"Content-Type": "application/x-protobuf"},
                )
                try:
                    with urllib.request.urlopen(request, timeout=10) as response:
                        response.read()
                    with self._lock:
                        self.spans += count
                except OSError as err:
                    with self._lock:
                        self.failures.append(str(err))
            if self.stopped.wait(max(0.0, start + (tick + 1) * self.interval - time.monotonic())):
                return
