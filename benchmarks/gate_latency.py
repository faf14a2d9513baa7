"""Latency of the entropy gate on loopback: the operator's ``GET /gate/<namespace>/<charter>``.

Starts a local control plane and the operator, applies a measured charter, then asks the gate:
sequentially on one keep-alive connection (answers mostly from the 1 s charter cache), with 16
concurrent clients, and "cold" (each request after the cache expired, so the operator reads the
charter from the API server), and times the `weavergen gate` command end to end (a new Python
process per call, as a CI step or Argo CD hook runs it). Prints p50/p90/p99/max; asserts
nothing. Target (issue 7): p99 < 20 ms on loopback; the seed allows 2 s.

Run: .venv/bin/python -m benchmarks.gate_latency [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np

from benchmarks.progress import log
from hack.localplane.plane import Plane
from tests.scenario import (
    OperatorProcess,
    apply,
    charter_spec,
    config_map,
    deployment,
    put,
    spans,
    status,
)
from weavergen.domain.simulation.simulator import Faults
from weavergen.k8s.client import api_client
from weavergen.k8s.rest import Rest

NAMESPACE = "bench"


def percentiles(name: str, seconds: list[float]) -> None:
    ms = np.array(seconds) * 1000
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    print(
        f"{name:<44} n={len(ms):>5}  p50 {p50:7.2f} ms  p90 {p90:7.2f} ms  "
        f"p99 {p99:7.2f} ms  max {ms.max():7.2f} ms"
    )


async def sequential(url: str, count: int) -> list[float]:
    timings = []
    async with aiohttp.ClientSession() as session:
        for _ in range(count):
            started = time.perf_counter()
            async with session.get(url) as response:
                await response.read()
            timings.append(time.perf_counter() - started)
    return timings


async def concurrent(url: str, clients: int, each: int) -> tuple[list[float], float]:
    timings: list[float] = []

    async def client(session: aiohttp.ClientSession) -> None:
        for _ in range(each):
            started = time.perf_counter()
            async with session.get(url) as response:
                await response.read()
            timings.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return timings, elapsed


async def cold(url: str, count: int) -> list[float]:
    timings = []
    async with aiohttp.ClientSession() as session:
        for _ in range(count):
            await asyncio.sleep(1.1)  # past the gate's 1 s cache
            started = time.perf_counter()
            async with session.get(url) as response:
                await response.read()
            timings.append(time.perf_counter() - started)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state:
        plane = Plane(Path(state) / "plane")
        log("starting the local control plane")
        plane.up(owner_pid=os.getpid())
        plane.install_crds()
        operator = OperatorProcess(plane, NAMESPACE, Path(state) / "operator.log", plane.kubeconfig)
        try:
            run(plane, operator, args.requests)
        finally:
            operator.stop()
            plane.down()


def run(plane: Plane, operator: OperatorProcess, requests: int) -> None:
    rest = Rest(api_client(str(plane.kubeconfig)))
    plane.kubectl("create", "namespace", NAMESPACE)
    apply(plane, NAMESPACE, deployment("web"))
    put(rest, NAMESPACE, config_map("web-baseline", {"spans.json": spans(Faults(), 1)}))
    put(rest, NAMESPACE, config_map("web-spans", {"spans.json": spans(Faults(), 2)}))
    charter = {
        "apiVersion": "regeneration.weavergen.io/v1alpha1",
        "kind": "RegenerationCharter",
        "metadata": {"name": "web"},
        "spec": {**charter_spec(), "mode": "observe"},
    }
    operator.start()
    plane.kubectl("apply", "-n", NAMESPACE, "-f", "-", stdin=json.dumps(charter))
    log("waiting for the charter's first measurement")
    deadline = time.monotonic() + 120
    while not status(rest, NAMESPACE, "RegenerationCharter", "web").get("entropy", {}).get("level"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no measurement; operator log: {operator}")
        time.sleep(0.5)
    port = operator.receiver_port()
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/gate/{NAMESPACE}/web"
    log(f"asking {url}")
    asyncio.run(sequential(url, 200))  # warm-up
    percentiles("sequential, one keep-alive connection", asyncio.run(sequential(url, requests)))
    timings, elapsed = asyncio.run(concurrent(url, 16, requests // 16))
    percentiles("16 concurrent clients", timings)
    print(f"{'':<44} throughput {len(timings) / elapsed:,.0f} answers/s")
    percentiles("cold: charter read from the API server", asyncio.run(cold(url, 50)))
    command = [
        sys.executable, "-m", "weavergen.cli", "gate", "--charter", f"{NAMESPACE}/web",
        "--url", base,
    ]  # fmt: skip
    runs = []
    for _ in range(10):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        runs.append(time.perf_counter() - started)
    percentiles("`weavergen gate` command (new process)", runs)


if __name__ == "__main__":
    main()
