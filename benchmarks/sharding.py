"""Charters sharded across operator replicas (issue 20, part 3): how evenly they split, and
how many spans per second two shards take behind the Collector's load_balancing exporter.

**Split.** 4,000 charters of distinct services placed on the ring of the chart's StatefulSet
endpoints (``domain.shards``, the port of the exporter's ring) for 2 shards, and for 3, 4 and
8 for comparison: charters per shard, the largest share against an even one, the share of
charters that move when one shard is added, and what the kopf filter costs per call (a ring
lookup: every watch event of every charter pays it on every replica).

**Ceiling.** Two of the operator's OTLP/gRPC receivers (``telemetry.otlp_grpc``: the decode
and window store of the operator, no token), each in a process of its own, behind the
Collector built by ``hack/build-collector.sh`` running the chart's ``files/collector.yaml``
with the chart's ``load_balancing`` exporter over it (every span kept: sampling 100%). A
generator posts pre-encoded OTLP/protobuf requests (``--spans-per-request`` spans of one
service each, ``--services`` services) to the Collector's OTLP/HTTP receiver over
``--connections`` connections as fast as it answers (closed loop) for ``--duration`` s. The
rate is the spans the receivers counted (their ``/metrics``) between ``--warmup`` s and the
end, over that time; after the load the counts are read again once they stop growing, to
compare with the spans the Collector acknowledged. Also printed: each process's CPU (the
generator, the Collector and the receivers share this machine's cores, so the slowest of them
bounds the figure) and each shard's share of the spans.

Prints figures; asserts nothing.

Run: .venv/bin/python -m benchmarks.sharding [--part split|ceiling|both] [--duration 30]
     [--connections 16] [--spans-per-request 2000] [--services 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.progress import cpu_seconds, log
from hack.localplane.plane import Binaries
from hack.localplane.services import collector, loadbalancing_config
from weavergen.domain.measure.otlp import decode_protobuf
from weavergen.domain.shards import HashRing, Shards, service_routing_key
from weavergen.domain.simulation.simulator import EntropySimulator, Faults, to_otlp_protobuf

CHARTERS = 4000


def stateful_set(n: int, release: str = "weavergen-operator") -> tuple[str, ...]:
    """The chart's endpoints for ``release`` (its full name) in weavergen-system."""
    return tuple(
        f"{release}-{k}.{release}-shards.weavergen-system.svc.cluster.local:4317" for k in range(n)
    )


def larger_shares(services: list[str], releases: int = 50) -> list[float]:
    """The larger of two shards' shares of ``services``, for as many release names: the
    endpoint strings are the ring's only input, so the split depends on them."""
    shares = []
    for r in range(releases):
        endpoints = stateful_set(2, f"r{r}-weavergen-operator")
        ring = HashRing(endpoints)
        first = sum(ring.endpoint_for(service_routing_key(s)) == endpoints[0] for s in services)
        shares.append(max(first, len(services) - first) / len(services))
    return sorted(shares)


def split() -> None:
    services = [f"service-{i:04d}" for i in range(CHARTERS)]
    print(f"split: {CHARTERS:,} charters of distinct services (service-0000 ... service-3999)")
    for n in (2, 3, 4, 8):
        ring = HashRing(stateful_set(n))
        owners = Counter(ring.endpoint_for(service_routing_key(s)) for s in services)
        counts = [owners[e] for e in stateful_set(n)]
        mean = CHARTERS / n
        print(
            f"  {n} shards: {' / '.join(f'{c:,}' for c in counts)} charters; largest "
            f"{max(counts) / mean:.3f}x an even share, smallest {min(counts) / mean:.3f}x"
        )
    shares = larger_shares(services)
    print(
        f"  2 shards, 50 other release names: the larger shard holds "
        f"{statistics.median(shares):.1%} of the charters at the median, "
        f"{shares[int(0.9 * len(shares))]:.1%} at p90, {shares[-1]:.1%} at most"
    )
    two, three = HashRing(stateful_set(2)), HashRing(stateful_set(3))
    moved = sum(
        two.endpoint_for(service_routing_key(s)) != three.endpoint_for(service_routing_key(s))
        for s in services
    )
    print(f"  2 -> 3 shards: {moved:,} charters move ({moved / CHARTERS:.1%}; even: 33.3%)")
    shard = Shards(stateful_set(2), stateful_set(2)[0])
    started = time.perf_counter()
    for _ in range(10):
        for service in services:
            shard.owns(service)
    per_call = (time.perf_counter() - started) / (10 * CHARTERS)
    started = time.perf_counter()
    HashRing(stateful_set(8))
    built = time.perf_counter() - started
    print(
        f"  filter cost: {per_call * 1e6:.1f} us per ownership check (crc32 + bisect); "
        f"a ring of 8 shards builds in {built * 1e3:.1f} ms"
    )


RECEIVER = """
import asyncio
from aiohttp import web
from prometheus_client import CollectorRegistry
from weavergen.telemetry import metrics
from weavergen.telemetry.otlp_grpc import serve_grpc
from weavergen.telemetry.receiver import ReceiverConfig, serve
from weavergen.telemetry.windows import WindowStore

async def main():
    store = WindowStore()
    registry = CollectorRegistry()
    metrics.register_receiver(store, registry)

    async def scrape(_):
        return web.Response(body=metrics.exposition(registry), content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    _, http_port = await serve(app, port=0)
    server, grpc_port = await serve_grpc(store, ReceiverConfig(), port=0)
    print(grpc_port, http_port, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def payloads(services: int, spans_per_request: int) -> tuple[list[bytes], list[int]]:
    """Distinct OTLP/protobuf requests, one service each, and their span counts."""
    sim = EntropySimulator(42)
    systems = [sim.system(f"svc-{k:02d}") for k in range(services)]
    bodies, counts = [], []
    for seed in range(2 * services):
        system = systems[seed % services]
        window = spans_per_request / system.spans_per_s
        body = to_otlp_protobuf(list(sim.chunks(system, Faults(), seed, window_s=window)))
        bodies.append(body)
        counts.append(sum(len(c) for c in decode_protobuf(body)))
    return bodies, counts


async def received(session: aiohttp.ClientSession, port: int) -> float:
    async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
        text = await response.text()
    match = re.search(r"^weavergen_spans_received_total (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else float("nan")


async def push(
    url: str, bodies: list[bytes], counts: list[int], connections: int, until: float
) -> tuple[int, Counter[str]]:
    """Closed loop: each connection posts the next request as soon as the last is answered."""
    acked, statuses = 0, Counter[str]()
    headers = {"Content-Type": "application/x-protobuf"}

    async def sender(session: aiohttp.ClientSession, offset: int) -> None:
        nonlocal acked
        i = offset
        while time.monotonic() < until:
            async with session.post(url, data=bodies[i % len(bodies)], headers=headers) as answer:
                await answer.read()
                statuses[str(answer.status)] += 1
                if answer.status == 200:
                    acked += counts[i % len(bodies)]
            i += connections

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(sender(session, k) for k in range(connections)))
    return acked, statuses


async def settled_counts(ports: list[int]) -> list[float]:
    """The receivers' counts once they stop growing (the Collector's last batches in)."""
    async with aiohttp.ClientSession() as session:
        last: list[float] = []
        while True:
            now = [await received(session, port) for port in ports]
            if now == last:
                return now
            last = now
            await asyncio.sleep(3)


async def measure(
    args: argparse.Namespace, ports: list[tuple[int, int]], pids: dict[str, int]
) -> dict[str, Any]:
    bodies, counts = payloads(args.services, args.spans_per_request)
    url = f"http://127.0.0.1:{args.collector_http}/v1/traces"
    start = time.monotonic()
    load = asyncio.create_task(push(url, bodies, counts, args.connections, start + args.duration))
    metrics_ports = [http for _, http in ports]
    await asyncio.sleep(args.warmup)
    async with aiohttp.ClientSession() as session:
        first = [await received(session, p) for p in metrics_ports]
        cpu0, t0 = {k: cpu_seconds(p) for k, p in pids.items()}, time.monotonic()
        await asyncio.sleep(max(0.0, start + args.duration - time.monotonic()))
        last = [await received(session, p) for p in metrics_ports]
        cpu1, t1 = {k: cpu_seconds(p) for k, p in pids.items()}, time.monotonic()
    acked, statuses = await load
    final = await settled_counts(metrics_ports)
    return {
        "window": t1 - t0,
        "rate": (sum(last) - sum(first)) / (t1 - t0),
        "per_shard": [b - a for a, b in zip(first, last, strict=True)],
        "cpu": {k: (cpu1[k] - cpu0[k]) / (t1 - t0) for k in pids},
        "acked": acked,
        "final": final,
        "statuses": dict(statuses),
        "mean_spans": statistics.fmean(counts),
    }


def ceiling(args: argparse.Namespace) -> None:
    receivers = [
        subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        ports = []
        for process in receivers:
            assert process.stdout is not None
            grpc_port, http_port = (int(p) for p in process.stdout.readline().split())
            ports.append((grpc_port, http_port))
        endpoints = [f"127.0.0.1:{grpc}" for grpc, _ in ports]
        binaries = Binaries.from_cache()
        binaries.ensure_built()
        with tempfile.TemporaryDirectory() as workdir:
            over = loadbalancing_config(binaries.helm, endpoints, Path(workdir) / "lb.yaml")
            process, collector_ports = collector(
                Path(workdir), "http://127.0.0.1:9", sampling_percentage=100, over=[over]
            )
            with process:
                assert process.process is not None
                args.collector_http = collector_ports.otlp_http
                pids = {"collector": process.process.pid, "generator": os.getpid()}
                pids |= {f"shard {k}": p.pid for k, p in enumerate(receivers)}
                log(f"pushing for {args.duration:.0f} s through the Collector to {endpoints}")
                figures = asyncio.run(measure(args, ports, pids))
        report(args, endpoints, figures)
    finally:
        for process in receivers:
            process.terminate()
            process.wait()


def report(args: argparse.Namespace, endpoints: list[str], figures: dict[str, Any]) -> None:
    services = [f"svc-{k:02d}" for k in range(args.services)]
    ring = HashRing(endpoints)
    owned = Counter(ring.endpoint_for(service_routing_key(s)) for s in services)
    print(
        f"ceiling: 2 shards behind the Collector's load_balancing exporter (routing_key: "
        f"service, static resolver); {args.services} services, ~{figures['mean_spans']:.0f} "
        f"spans per request, {args.connections} connections, closed loop, "
        f"{args.duration:.0f} s ({args.warmup:.0f} s warm-up); machine {os.cpu_count()} cores"
    )
    print(
        f"  receivers took {figures['rate']:,.0f} spans/s together over "
        f"{figures['window']:.1f} s; per shard "
        + " / ".join(f"{n / figures['window']:,.0f}" for n in figures["per_shard"])
        + f" (services per shard {' / '.join(str(owned[e]) for e in endpoints)})"
    )
    print(
        f"  Collector answers {figures['statuses']}; spans acknowledged {figures['acked']:,}, "
        f"at the receivers once settled {sum(figures['final']):,.0f}"
    )
    print(
        "  CPU (share of one core): "
        + ", ".join(f"{k} {100 * v:.0f}%" for k, v in figures["cpu"].items())
    )
    per_core = [
        n / figures["window"] / figures["cpu"][f"shard {k}"]
        for k, n in enumerate(figures["per_shard"])
        if figures["cpu"][f"shard {k}"] > 0
    ]
    print(
        "  spans per CPU-second of a shard's receiver: "
        + " / ".join(f"{r:,.0f}" for r in per_core)
        + " (what one shard would take with a core of its own); of the Collector: "
        + f"{figures['rate'] / max(figures['cpu']['collector'], 1e-9):,.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("split", "ceiling", "both"), default="both")
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--spans-per-request", type=int, default=2000)
    parser.add_argument("--services", type=int, default=16)
    args = parser.parse_args()
    if args.part in ("split", "both"):
        split()
    if args.part in ("ceiling", "both"):
        ceiling(args)


if __name__ == "__main__":
    main()
