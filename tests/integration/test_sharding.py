"""Charters sharded across operator replicas, with real parts: the Collector built from Go
modules routing with its loadbalancing exporter (the chart's configuration for it), the
operator's own OTLP/gRPC receivers, and operator processes as shards on the local plane.

Each shard must measure exactly the charters whose services the Collector sends it: the
Python ring (``domain.shards``) names them, the Collector's ring routes the spans.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from hack.localplane.plane import Binaries, Plane, free_port
from hack.localplane.services import HostProcess, collector, loadbalancing_config
from tests.integration.conftest import await_status, wait_for
from tests.integration.test_operator import FINAL_PHASES, charter
from tests.scenario import (
    GOOD,
    OperatorProcess,
    SpanPusher,
    apply,
    asked_cycle,
    config_map,
    deployment,
    put,
)
from weavergen.domain.shards import Shards, shard_finalizer
from weavergen.domain.simulation.simulator import EntropySimulator, Faults, to_otlp_json
from weavergen.k8s.rest import Rest
from weavergen.telemetry.otlp_grpc import serve_grpc
from weavergen.telemetry.receiver import ReceiverConfig
from weavergen.telemetry.windows import WindowStore

TOKEN = "shard-s3cret"


def sharding_collector(workdir: Path, helm: Path, endpoints: Sequence[str]) -> HostProcess:
    """The chart's Collector configuration, every span kept, with the chart's loadbalancing
    exporter over it: each service's spans to one of ``endpoints``, with the token."""
    over = loadbalancing_config(helm, endpoints, workdir / "loadbalancing.yaml")
    process, _ = collector(workdir, "http://127.0.0.1:9", sampling_percentage=100, over=[over])
    process.env["WEAVERGEN_RECEIVER_TOKEN"] = TOKEN
    return process


class Receivers:
    """The operator's OTLP/gRPC receivers, one per shard, in this process on an event loop of
    their own (the operator runs them on kopf's)."""

    def __init__(self, count: int) -> None:
        self.stores = [WindowStore() for _ in range(count)]
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.servers: list[Any] = []
        self.ports: list[int] = []

    def __enter__(self) -> Receivers:
        self.thread.start()
        for store in self.stores:
            started = serve_grpc(store, ReceiverConfig(token=TOKEN), "127.0.0.1", 0)
            server, port = asyncio.run_coroutine_threadsafe(started, self.loop).result(30)
            self.servers.append(server)
            self.ports.append(port)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        for server in self.servers:
            asyncio.run_coroutine_threadsafe(server.stop(None), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def test_the_collector_sends_each_services_spans_only_to_the_shard_the_ring_names(
    tmp_path: Path,
) -> None:
    services = [f"svc-{i:02d}" for i in range(20)]
    binaries = Binaries.from_cache()
    binaries.ensure_built()
    with Receivers(2) as receivers:
        endpoints = [f"127.0.0.1:{port}" for port in receivers.ports]
        expected = [
            {s for s in services if Shards(tuple(endpoints), me).owns(s)} for me in endpoints
        ]
        assert all(expected), f"the ring gives one shard every service: {expected}"
        with sharding_collector(tmp_path, binaries.helm, endpoints) as process:
            port = int(process.env["COLLECTOR_OTLP_HTTP_ENDPOINT"].rsplit(":", 1)[1])
            pusher = SpanPusher(port, services, interval=0.5, window_s=1, rotation=2)
            pusher.start()
            try:
                wait_for(
                    lambda: sum(len(s.services()) for s in receivers.stores) == len(services),
                    60,
                    what=f"every service at a receiver (collector log: {process.log})",
                )
            finally:
                pusher.stop()
            wait_for(
                lambda: sum(s.counters.spans_accepted for s in receivers.stores) >= pusher.spans,
                30,
                what=f"the last batches to arrive (collector log: {process.log})",
            )
    assert pusher.failures == []
    assert [set(store.services()) for store in receivers.stores] == expected
    # Every span once: none lost, none sent to two shards, none refused (the token was sent).
    assert sum(s.counters.spans_accepted for s in receivers.stores) == pusher.spans
    assert sum(s.counters.rejected_requests for s in receivers.stores) == 0


# -- operator processes as shards on the plane --------------------------------------------------


class ShardRunner:
    """Operator processes on the plane as shards, each a shard ``k`` of an endpoint list, with
    gRPC on the port given (0: any); all stopped when the test ends."""

    def __init__(self, plane: Plane, namespace: str, kubeconfig: Path, logs: Path) -> None:
        self.plane, self.namespace, self.kubeconfig, self.logs = plane, namespace, kubeconfig, logs
        self.started: list[OperatorProcess] = []

    def start(
        self, endpoints: Sequence[str], grpc_ports: Sequence[int] | None = None
    ) -> list[OperatorProcess]:
        ports = grpc_ports or [0] * len(endpoints)
        return [
            self._start(
                f"shard-{k}-of-{len(endpoints)}",
                {
                    "WEAVERGEN_SHARD_ENDPOINTS": ",".join(endpoints),
                    "WEAVERGEN_SHARD_SELF": str(k),
                    "WEAVERGEN_RECEIVER_GRPC_PORT": str(ports[k]),
                    "WEAVERGEN_RECEIVER_TOKEN": TOKEN,
                },
            )
            for k in range(len(endpoints))
        ]

    def start_unsharded(self) -> OperatorProcess:
        return self._start("unsharded", {})

    def _start(self, name: str, env: dict[str, str]) -> OperatorProcess:
        process = OperatorProcess(
            self.plane, self.namespace, self.logs / f"{name}.log", self.kubeconfig, env=env
        )
        self.started.append(process)
        process.start()
        return process

    def stop(self) -> None:
        for process in self.started:
            process.stop()


@pytest.fixture
def shards(
    plane: Plane, namespace: str, operator_kubeconfig: Path, tmp_path: Path
) -> Iterator[ShardRunner]:
    runner = ShardRunner(plane, namespace, operator_kubeconfig, tmp_path)
    try:
        yield runner
    finally:
        runner.stop()


def charters_of(names: dict[str, str], source: str = "configMap") -> list[dict[str, Any]]:
    """Observe-mode charters ``name -> service`` on the ``web`` Deployment, measuring the
    service's spans from its ConfigMaps (``service_spans``) or from the receiver."""
    bodies = []
    for name, service in names.items():
        body = charter("observe", name=name)
        telemetry = body["spec"]["telemetry"]
        telemetry["serviceName"] = service
        telemetry["configMap"]["name"] = f"{service}-spans"
        telemetry["baseline"]["configMap"]["name"] = f"{service}-baseline"
        if source == "otlp":
            body["spec"]["telemetry"] = {
                "serviceName": service,
                "windowSeconds": 10,
                "minSpans": 100,
            }
        bodies.append(body)
    return bodies


def service_spans(rest: Rest, namespace: str, service: str) -> None:
    """Healthy spans of ``service`` in its ConfigMaps: the current window and the baseline."""
    sim = EntropySimulator(3)
    for kind, seed in (("baseline", 1), ("spans", 2)):
        chunks = list(sim.chunks(sim.system(service), Faults(), seed, window_s=8))
        put(
            rest,
            namespace,
            config_map(f"{service}-{kind}", {"spans.json": json.dumps(to_otlp_json(chunks))}),
        )


def logs(processes: Sequence[OperatorProcess]) -> str:
    return ", ".join(str(p) for p in processes)


def manual_cycle(charter_name: str) -> dict[str, Any]:
    """A cycle a person asks of a charter: plan only."""
    return asked_cycle(f"{charter_name}-manual", charter_name, "asked of one shard", dryRun=True)


def scrape(process: OperatorProcess) -> str:
    port = process.receiver_port()
    assert port is not None, f"no receiver port in {process}"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text: str = answer.read().decode()
        return text


def measured_charters(process: OperatorProcess, namespace: str) -> set[str]:
    """Charters whose entropy this process has measured (its own gauge series)."""
    found = set()
    for line in scrape(process).splitlines():
        if line.startswith("weavergen_entropy_score{") and f'namespace="{namespace}"' in line:
            found.add(re.findall(r'charter="([^"]+)"', line)[0])
    return found


def settled_shards(
    rest: Rest, namespace: str, owners: dict[str, str], endpoints: Sequence[str], what: str
) -> dict[str, dict[str, Any]]:
    """The charters once each is measured, names its owner (``owners``, one of ``endpoints``)
    as its shard and carries that shard's finalizer alone."""

    def settled() -> dict[str, dict[str, Any]] | None:
        found = {n: rest.get("RegenerationCharter", namespace, n) or {} for n in owners}
        for name, body in found.items():
            state = body.get("status") or {}
            if state.get("shard") != owners[name] or not (state.get("entropy") or {}).get("level"):
                return None
            finalizer = shard_finalizer(list(endpoints).index(owners[name]))
            if body["metadata"].get("finalizers") != [finalizer]:
                return None
        return found

    found = wait_for(settled, 120, what=what)
    assert isinstance(found, dict)
    return found


ENDPOINTS = [
    f"weavergen-operator-{k}.weavergen-operator-shards.weavergen-system.svc:4317" for k in (0, 1)
]


def test_two_shards_measure_each_charter_once_and_hand_charters_over_when_resharded(
    plane: Plane, rest: Rest, namespace: str, shards: ShardRunner
) -> None:
    names = {f"c{i}": f"svc-{i}" for i in range(8)}
    two = {name: Shards(tuple(ENDPOINTS), ENDPOINTS[0]).owner(s) for name, s in names.items()}
    assert set(two.values()) == set(ENDPOINTS)
    apply(plane, namespace, deployment("web"), config_map("web-config", GOOD))
    for service in names.values():
        service_spans(rest, namespace, service)
    pair = shards.start(ENDPOINTS)
    for body in charters_of(names):
        plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(body))
    settled_shards(rest, namespace, two, ENDPOINTS, f"two shards to settle ({logs(pair)})")
    # A cycle follows its charter: one asked of a charter of each shard.
    picks = [min(n for n, owner in two.items() if owner == endpoint) for endpoint in ENDPOINTS]
    for name in picks:
        plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(manual_cycle(name)))
    for k, process in enumerate(pair):
        mine = {name for name, owner in two.items() if owner == ENDPOINTS[k]}
        assert measured_charters(process, namespace) == mine
        took = set(re.findall(r"took over charter=(\S+)", process.log.read_text()))
        assert took == mine
        cycle = await_status(
            rest, namespace, "RegenerationCycle", f"{picks[k]}-manual",
            lambda s: s.get("phase") in FINAL_PHASES, timeout=120,
            what=f"the manual cycle of {picks[k]} ({logs(pair)})",
        )  # fmt: skip
        assert cycle["phase"] == "NotNeeded"
    for k, process in enumerate(pair):
        finished = set(re.findall(r"finished cycle=(\S+)", process.log.read_text()))
        assert finished == {f"{picks[k]}-manual"}
        body = rest.get("RegenerationCycle", namespace, f"{picks[k]}-manual") or {}
        assert body["metadata"]["finalizers"] == [shard_finalizer(k)]
    shards.stop()

    # One shard now: the ring of one endpoint gives it every charter; shard 1's finalizer is
    # nobody's any more, and the new owner removes it.
    one = {name: ENDPOINTS[0] for name in names}
    [alone] = shards.start(ENDPOINTS[:1])
    settled_shards(rest, namespace, one, ENDPOINTS[:1], f"the charters to move ({logs([alone])})")
    moved = set(
        re.findall(r"took over charter=(\S+) shard=\S+ previous=\S+", alone.log.read_text())
    )
    assert moved == {name for name, owner in two.items() if owner == ENDPOINTS[1]}
    plane.kubectl("delete", "rch", "c0", "-n", namespace, "--timeout=60s")
    shards.stop()

    # Unsharded again: the operator takes every shard's finalizer off and status.shard away.
    plain = shards.start_unsharded()

    def unsharded() -> bool:
        bodies = [rest.get("RegenerationCharter", namespace, n) or {} for n in names if n != "c0"]
        return all(
            b["metadata"].get("finalizers") == ["regeneration.weavergen.io/finalizer"]
            and "shard" not in (b.get("status") or {})
            for b in bodies
        )

    wait_for(unsharded, 60, what=f"the unsharded operator to take the charters back ({plain})")


def test_shards_behind_the_collector_measure_their_own_services_spans(
    plane: Plane, rest: Rest, namespace: str, shards: ShardRunner, tmp_path: Path
) -> None:
    """End to end: spans of eight services through the Collector's loadbalancing exporter to two
    operator shards over OTLP/gRPC; each shard captures baselines and measures its charters
    from the spans it alone received."""
    names = {f"s{i}": f"shop-{i}" for i in range(8)}
    ports = [free_port(), free_port()]
    endpoints = [f"127.0.0.1:{port}" for port in ports]
    owners = {name: Shards(tuple(endpoints), endpoints[0]).owner(s) for name, s in names.items()}
    apply(plane, namespace, deployment("web"), config_map("web-config", GOOD))
    pair = shards.start(endpoints, ports)
    for body in charters_of(names, source="otlp"):
        plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(body))
    with sharding_collector(tmp_path, plane.binaries.helm, endpoints) as process:
        http_port = int(process.env["COLLECTOR_OTLP_HTTP_ENDPOINT"].rsplit(":", 1)[1])
        pusher = SpanPusher(http_port, list(names.values()), interval=0.5, window_s=3)
        pusher.start()
        try:
            found = settled_shards(
                rest, namespace, owners, endpoints, f"measurements from spans ({logs(pair)})"
            )
        finally:
            pusher.stop()
    assert pusher.failures == []
    for name, body in found.items():
        # Measured from the spans that reached its shard: a shard without them would see
        # no baseline (InsufficientData) or silence, never a low entropy.
        assert body["status"]["entropy"]["level"] == "low", (name, body["status"])
    for k, process in enumerate(pair):
        mine = {name for name, owner in owners.items() if owner == endpoints[k]}
        assert measured_charters(process, namespace) == mine
