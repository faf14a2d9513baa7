"""Measure-path throughput and memory. Prints figures; asserts nothing.

(a) OTLP/protobuf decode + summarise, one core, 1 M spans
(b) summarising already-decoded columns, 1 M spans
(c) peak RSS of the receiver process streaming 10 M spans over OTLP/HTTP on loopback, against
    the same for 1 M spans

Run: .venv/bin/python benchmarks/measure_throughput.py [--spans 1000000] [--stream 10000000]

``--against REF`` instead compares the measure path of this tree with a git ref's in one run:
(a) decode + summarise and one ``measure()`` of a faulted window against its baseline, each tree
in its own process, alternated three times so that machine load hits both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np

from weavergen.domain.measure.otlp import SpanChunk, decode_protobuf
from weavergen.domain.measure.summary import ServiceSummary
from weavergen.domain.simulation.simulator import EntropySimulator, Faults, to_otlp_protobuf

SPANS_PER_REQUEST = 1000
DISTINCT_REQUESTS = 20


def requests() -> list[bytes]:
    """Distinct OTLP/protobuf requests of ~1000 spans, 5-7 attributes each, several operations."""
    sim = EntropySimulator(42)
    system = sim.system("bench")
    out = []
    for seed in range(DISTINCT_REQUESTS):
        chunks = list(sim.chunks(system, Faults(), seed, window_s=SPANS_PER_REQUEST / 60))
        out.append(to_otlp_protobuf(chunks))
    return out


def bench_decode(payloads: list[bytes], spans: int) -> None:
    summary = ServiceSummary("bench")
    done, index = 0, 0
    started = time.process_time()
    while done < spans:
        for chunk in decode_protobuf(payloads[index % len(payloads)]):
            summary.add_chunk(chunk)
            done += len(chunk)
        index += 1
    elapsed = time.process_time() - started
    print(
        f"(a) protobuf decode + summarise: {done:,} spans in {elapsed:.2f}s CPU "
        f"= {done / elapsed:,.0f} spans/s on one core"
    )


def bench_columns(payloads: list[bytes], spans: int) -> None:
    """The same spans, already decoded into columns, summarised in batches of several sizes."""
    decoded = [c for p in payloads for c in decode_protobuf(p)]
    names = sorted({n for c in decoded for n in c.name_table})
    recoded = [np.array([names.index(n) for n in c.name_table])[c.name_codes] for c in decoded]
    rounds = -(-spans // sum(len(c) for c in decoded))
    first = decoded[0]
    whole = SpanChunk(
        service="bench",
        name_codes=np.concatenate(recoded * rounds).astype(np.int32),
        name_table=names,
        name_kinds=[2] * len(names),
        durations_ns=np.concatenate([c.durations_ns for c in decoded] * rounds),
        errors=np.concatenate([c.errors for c in decoded] * rounds),
        trace_hashes=np.concatenate([c.trace_hashes for c in decoded] * rounds),
        entries=np.concatenate([c.entries for c in decoded] * rounds),
        adjusted=np.concatenate([c.adjusted for c in decoded] * rounds),
        start_ns=0,
        end_ns=10**9,
        attributes=lambda i: first.attributes(i % len(first)),
    )
    total = len(whole)
    for batch in (1_000, 10_000, 100_000):
        summary = ServiceSummary("bench")
        started = time.process_time()
        for start in range(0, total, batch):
            summary.add_chunk(whole.slice(start, start + batch))
        elapsed = time.process_time() - started
        inspected = sum(op.inspected for op in summary.operations.values())
        print(
            f"(b) summarise decoded columns, batches of {batch:>7,}: {total:,} spans in "
            f"{elapsed:.2f}s CPU = {total / elapsed:,.0f} spans/s "
            f"({inspected:,} spans' attributes inspected)"
        )


SERVER = """
import asyncio
from weavergen.telemetry.receiver import ReceiverConfig, build_app, serve
from weavergen.telemetry.windows import WindowStore

async def main():
    store = WindowStore()
    runner, port = await serve(build_app(store, ReceiverConfig()), port=0)
    print(port, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


async def post_all(port: int, payloads: list[bytes], spans: int, concurrency: int = 4) -> float:
    url = f"http://127.0.0.1:{port}/v1/traces"
    headers = {"Content-Type": "application/x-protobuf"}
    total = -(-spans // SPANS_PER_REQUEST)
    counter = iter(range(total))
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            for i in counter:
                async with session.post(
                    url, data=payloads[i % len(payloads)], headers=headers
                ) as response:
                    if response.status != 200:
                        raise RuntimeError(await response.text())

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started


def bench_stream(payloads: list[bytes], spans: int) -> int:
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        elapsed = asyncio.run(post_all(port, payloads, spans))
        rss = peak_rss_kib(server.pid)
    finally:
        server.terminate()
        server.wait()
    print(
        f"(c) receiver over HTTP:          {spans:,} spans in {elapsed:.1f}s "
        f"= {spans / elapsed:,.0f} spans/s; receiver peak RSS {rss / 1024:.1f} MiB"
    )
    return rss


# Runs in either tree: only APIs both have.
MEASURE_PATH = """
import sys, time
from weavergen.domain.measure.measure import measure
from weavergen.domain.measure.otlp import decode_protobuf
from weavergen.domain.simulation.simulator import EntropySimulator, Faults, to_otlp_protobuf
from weavergen.domain.measure.summary import ServiceSummary
sim = EntropySimulator(42)
system = sim.system("bench")
payloads = [to_otlp_protobuf(list(sim.chunks(system, Faults(), s, window_s=1000 / 60)))
            for s in range(20)]
spans, done, i = int(sys.argv[1]), 0, 0
summary = ServiceSummary("bench")
started = time.process_time()
while done < spans:
    for chunk in decode_protobuf(payloads[i % len(payloads)]):
        summary.add_chunk(chunk)
        done += len(chunk)
    i += 1
decode = done / (time.process_time() - started)
baseline = sim.summary(system, Faults(), 1)
current = sim.summary(system, Faults(error_rate=0.2, latency_factor=3.0), 2)
started = time.process_time()
for _ in range(50):
    measure(current, baseline)
print(decode, (time.process_time() - started) / 50 * 1000)
"""


def compare(ref: str, spans: int) -> None:
    """The measure path of ``ref`` and of this tree, alternated in one run."""
    repo = Path(__file__).resolve().parent.parent
    worktree = Path(tempfile.mkdtemp(prefix="measure-ref-"))
    subprocess.run(["git", "worktree", "add", "--detach", str(worktree), ref], cwd=repo, check=True)
    figures: dict[str, list[tuple[float, float]]] = {ref: [], "this tree": []}
    try:
        for _ in range(3):
            for name, tree in ((ref, worktree), ("this tree", repo)):
                env = {**os.environ, "PYTHONPATH": f"{tree / 'operator'}:{tree}"}
                out = subprocess.run(
                    [sys.executable, "-c", MEASURE_PATH, str(spans)],
                    env=env, cwd=tree, capture_output=True, text=True, check=True,
                ).stdout.split()  # fmt: skip
                figures[name].append((float(out[0]), float(out[1])))
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(worktree)], cwd=repo, check=True
        )
    for name, runs in figures.items():
        decode = sorted(r[0] for r in runs)[1]
        per_measure = sorted(r[1] for r in runs)[1]
        print(
            f"{name:>12}: decode + summarise {decode:,.0f} spans/s; measure() {per_measure:.2f} ms"
        )
    before, after = (sorted(r[0] for r in figures[k])[1] for k in (ref, "this tree"))
    print(f"throughput this tree / {ref}: {after / before:.3f} (medians of 3 alternated runs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--stream", type=int, default=10_000_000)
    parser.add_argument("--against", metavar="REF", help="compare the measure path with REF")
    args = parser.parse_args()
    if args.against:
        compare(args.against, args.spans)
        return
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    payloads = requests()
    bench_decode(payloads, args.spans)
    bench_columns(payloads, args.spans)
    small = bench_stream(payloads, args.spans)
    large = bench_stream(payloads, args.stream)
    print(f"(c) peak RSS {args.stream:,} vs {args.spans:,} spans: {large / small:.2f}x")


if __name__ == "__main__":
    main()
