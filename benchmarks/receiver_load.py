"""The OTLP receiver under a sustained load (issue 10, "Load"): target 100,000 spans/s for 60 s.

The receiver runs as the operator runs it (``build_app`` + ``serve`` from
``weavergen.telemetry.receiver``, a ``WindowStore``, no token) in a process of its own, so the
load generator does not share its interpreter. Its counters are read the way a scraper reads the
operator's: the operator's ``/metrics`` collector for the receiver (``register_receiver``) is
mounted on the bare receiver's app, and ``weavergen_spans_received_total``,
``weavergen_spans_dropped_total`` and ``weavergen_receiver_requests_total`` are read before and
after the run.

The generator pre-encodes OTLP/protobuf requests of about ``--spans-per-request`` spans (from
``weavergen.domain.simulation.simulator``, several services) and sends them open loop: request
``i`` is due at ``start + i / rate`` (rate = ``--rate`` / spans per request, 100 requests/s by
default) over at most
``--connections`` keep-alive connections. A due request waits for a free connection; when
``--backlog`` requests are already waiting, it is skipped and counted as not sent (so a receiver
that cannot keep up shows as a lower sustained rate, not as an ever-growing queue). Latency is
from the request's due time to its response (queueing at the client included) and from its send
to its response.

Also printed: the receiver's CPU (its event loop thread and its other threads, the
``asyncio.to_thread`` decode workers, from ``/proc/<pid>/task/*/stat``), its RSS at 10 s and at
the end and its peak (VmHWM), and the generator's own CPU (both share this machine's cores).
Prints figures; asserts nothing.

Run: .venv/bin/python -m benchmarks.receiver_load [--rate 100000] [--duration 60]
     [--spans-per-request 1000] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import numpy as np

from benchmarks.progress import log, stat_cpu_seconds
from weavergen.domain.measure.otlp import decode_protobuf
from weavergen.domain.simulation.simulator import EntropySimulator, Faults, to_otlp_protobuf

DISTINCT_REQUESTS = 40
SERVICES = 8

SERVER = """
import asyncio
from aiohttp import web
from prometheus_client import CollectorRegistry
from weavergen.telemetry import metrics
from weavergen.telemetry.receiver import ReceiverConfig, build_app, serve
from weavergen.telemetry.windows import WindowStore

async def main():
    store = WindowStore()
    app = build_app(store, ReceiverConfig())
    registry = CollectorRegistry()
    metrics.register_receiver(store, registry)

    async def scrape(_):
        return web.Response(body=metrics.exposition(registry), content_type="text/plain")

    app.router.add_get("/metrics", scrape)
    runner, port = await serve(app, port=0)
    print(port, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def payloads(spans_per_request: int) -> tuple[list[bytes], float]:
    """Distinct OTLP/protobuf requests, one service each; and their mean span count."""
    sim = EntropySimulator(42)
    systems = [sim.system(f"svc-{k}") for k in range(SERVICES)]
    out, counts = [], []
    for seed in range(DISTINCT_REQUESTS):
        system = systems[seed % SERVICES]
        window = spans_per_request / system.spans_per_s
        body = to_otlp_protobuf(list(sim.chunks(system, Faults(), seed, window_s=window)))
        out.append(body)
        counts.append(sum(len(c) for c in decode_protobuf(body)))
    return out, float(np.mean(counts))


def thread_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds of the main thread (the event loop) and of all other threads."""
    main = others = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            seconds = stat_cpu_seconds(task / "stat")
        except OSError:
            continue  # a thread that just ended
        if int(task.name) == pid:
            main += seconds
        else:
            others += seconds
    return main, others


def memory_kib(pid: int) -> dict[str, int]:
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


async def counters(session: aiohttp.ClientSession, base: str) -> dict[str, float]:
    async with session.get(f"{base}/metrics") as response:
        text = await response.text()
    found = {}
    for name in ("weavergen_spans_received_total", "weavergen_spans_dropped_total"):
        match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
        found[name] = float(match.group(1)) if match else float("nan")
    for result in ("accepted", "rejected"):
        match = re.search(
            rf'^weavergen_receiver_requests_total{{result="{result}"}} (\S+)$', text, re.MULTILINE
        )
        found[result] = float(match.group(1)) if match else float("nan")
    return found


@dataclass
class Load:
    sent: int = 0
    skipped: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    from_due: list[float] = field(default_factory=list)
    from_send: list[float] = field(default_factory=list)
    rss: list[tuple[float, int]] = field(default_factory=list)
    first_send: float = 0.0
    last_response: float = 0.0


async def generate(
    base: str,
    bodies: list[bytes],
    pid: int,
    load: Load,
    *,
    rate: float,
    duration: float,
    connections: int,
    backlog: int,
) -> None:
    url = f"{base}/v1/traces"
    headers = {"Content-Type": "application/x-protobuf"}
    slots = asyncio.Semaphore(connections)
    waiting = 0
    connector = aiohttp.TCPConnector(limit=connections)

    async def one(session: aiohttp.ClientSession, body: bytes, due: float) -> None:
        nonlocal waiting
        async with slots:
            waiting -= 1
            sent = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    load.statuses[str(response.status)] += 1
            except aiohttp.ClientError as err:
                load.statuses[type(err).__name__] += 1
            done = time.perf_counter()
        load.from_due.append(done - due)
        load.from_send.append(done - sent)
        load.last_response = max(load.last_response, done)

    async def sample_rss(started: float) -> None:
        while True:
            load.rss.append((time.perf_counter() - started, memory_kib(pid)["VmRSS"]))
            await asyncio.sleep(1)

    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks = set()
        started = load.first_send = time.perf_counter()
        sampler = asyncio.create_task(sample_rss(started))
        total = int(rate * duration)
        for i in range(total):
            due = started + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if waiting >= backlog:
                load.skipped += 1
                continue
            load.sent += 1
            waiting += 1  # until the request has a connection
            task = asyncio.create_task(one(session, bodies[i % len(bodies)], due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        sampler.cancel()


def pct(seconds: list[float]) -> str:
    if not seconds:
        return "(none)"
    ms = np.array(seconds) * 1000
    p50, p99 = np.percentile(ms, [50, 99])
    return f"p50 {p50:8.1f} ms  p99 {p99:8.1f} ms  max {ms.max():8.1f} ms"


def rss_at(load: Load, second: float) -> float:
    before = [kib for at, kib in load.rss if at <= second]
    return (before[-1] if before else load.rss[0][1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=100_000, help="target spans/s")
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--spans-per-request", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--backlog", type=int, default=64, help="due requests waiting, at most")
    args = parser.parse_args()
    bodies, mean_spans = payloads(args.spans_per_request)
    size = float(np.mean([len(b) for b in bodies]))
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        base = f"http://127.0.0.1:{port}"
        asyncio.run(run(args, base, server.pid, bodies=bodies, mean_spans=mean_spans, size=size))
    finally:
        server.terminate()
        server.wait()


async def run(
    args: argparse.Namespace,
    base: str,
    pid: int,
    *,
    bodies: list[bytes],
    mean_spans: float,
    size: float,
) -> None:
    requests_per_s = args.rate / mean_spans
    async with aiohttp.ClientSession() as session:
        before = await counters(session, base)
    idle = memory_kib(pid)["VmRSS"] / 1024
    cpu0, own0 = thread_cpu(pid), os.times()
    load = Load()
    log(f"sending {requests_per_s:.0f} requests/s of ~{mean_spans:.0f} spans for {args.duration}s")
    await generate(
        base,
        bodies,
        pid,
        load,
        rate=requests_per_s,
        duration=args.duration,
        connections=args.connections,
        backlog=args.backlog,
    )
    cpu1, own1 = thread_cpu(pid), os.times()
    memory = memory_kib(pid)
    async with aiohttp.ClientSession() as session:
        after = await counters(session, base)
    wall = load.last_response - load.first_send
    accepted = after["weavergen_spans_received_total"] - before["weavergen_spans_received_total"]
    dropped = after["weavergen_spans_dropped_total"] - before["weavergen_spans_dropped_total"]
    refused = after["rejected"] - before["rejected"]
    loop_cpu, other_cpu = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
    own = (own1.user + own1.system) - (own0.user + own0.system)
    print(
        f"target {args.rate:,.0f} spans/s = {requests_per_s:.0f} requests/s of ~{mean_spans:.0f} "
        f"spans ({size / 1024:.0f} KiB OTLP/protobuf, {SERVICES} services) for "
        f"{args.duration:.0f} s; {args.connections} connections; machine {os.cpu_count()} cores"
    )
    print(
        f"  requests sent {load.sent:,}, skipped (client backlog of {args.backlog} full) "
        f"{load.skipped:,}; responses {dict(load.statuses)}"
    )
    print(
        f"  receiver counters (/metrics): spans accepted {accepted:,.0f} in {wall:.1f} s = "
        f"{accepted / wall:,.0f} spans/s; spans dropped {dropped:,.0f}; requests refused "
        f"{refused:,.0f}"
    )
    print(f"  latency from due time  {pct(load.from_due)}")
    print(f"  latency from send      {pct(load.from_send)}")
    print(
        f"  receiver CPU: event loop thread {loop_cpu:.1f} s ({100 * loop_cpu / wall:.0f}% of a "
        f"core), decode threads {other_cpu:.1f} s ({100 * other_cpu / wall:.0f}%), total "
        f"{100 * (loop_cpu + other_cpu) / wall:.0f}%; load generator {100 * own / wall:.0f}%"
    )
    print(
        f"  receiver RSS: idle {idle:.1f} MiB, at 10 s {rss_at(load, 10):.1f} MiB, at "
        f"{args.duration:.0f} s {rss_at(load, args.duration):.1f} MiB, at the end "
        f"{memory['VmRSS'] / 1024:.1f} MiB, peak (VmHWM) {memory['VmHWM'] / 1024:.1f} MiB"
    )


if __name__ == "__main__":
    main()
