"""Charters measured from Prometheus: how many one core measures at a 10 s cadence (issue 20).

Starts the real OpenTelemetry Collector (``hack/build-collector.sh``, the chart's
``files/collector.yaml``) and Prometheus (Debian's package) scraping its span_metrics every
``--scrape`` seconds, and pushes spans of ``--services`` services to it (default 2,000: one
server operation each, ``--spans`` spans per service per second, exponential latency with a
mean of 40 ms, none failed: four requests' worth of spans are sent in rotation, so a failed span
would fail a service's every fourth second, an error rate far above any objective), one
OTLP/protobuf request per second for all of them. Once
Prometheus has every service, each charter's baseline is captured as the operator captures one
(the same queries over ``--window`` seconds, kept as a summary), then ``--charters`` charters
(one per service, cycling) are measured every ``--cadence`` seconds for ``--duration`` seconds,
each as ``RedTelemetry`` measures it: its RED window read through the shared ``Prometheus``
client (one query per question and 5 s slot, shared by all charters) and judged by
``measure()`` against its baseline.

Printed: the measuring thread's CPU per charter measurement, and from it charters per core at
a 10 s cadence; how many queries Prometheus answered per round and their answers' size; the
CPU of Prometheus and of the Collector over the run, as a share of one core. Not included:
the API server reads and writes of a measurement (the baseline ConfigMap's metadata, the status
patch: ``benchmarks/charter_load.py`` measures those), nor the receiver's sampled spans.
Prints figures; asserts nothing.

Run: .venv/bin/python -m benchmarks.prometheus_charters [--services 2000] [--charters 2000]
     [--cadence 10] [--duration 60] [--window 60] [--scrape 5] [--spans 2]
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from benchmarks.progress import cpu_seconds, log
from hack.localplane.plane import free_port
from hack.localplane.services import HostProcess, collector, prometheus
from weavergen.api.charter import PrometheusSpec
from weavergen.domain.measure.measure import measure
from weavergen.domain.measure.red import red_summary
from weavergen.domain.measure.summary import ServiceSummary
from weavergen.telemetry.prometheus import Prometheus


def payload(services: list[str], spans: int, seed: int) -> bytes:
    """One second of every service's requests as one OTLP/protobuf request."""
    rng = np.random.default_rng(seed)
    request = ExportTraceServiceRequest()
    now = time.time_ns()
    for service in services:
        resource = request.resource_spans.add()
        kv = resource.resource.attributes.add()
        kv.key, kv.value.string_value = "service.name", service
        scope = resource.scope_spans.add()
        for i in range(spans):
            span = scope.spans.add()
            span.trace_id = rng.bytes(16)
            span.span_id = (i + 1).to_bytes(8, "big")
            span.name, span.kind = "GET /", 2
            span.start_time_unix_nano = now
            span.end_time_unix_nano = now + int(rng.exponential(40e6))
    return request.SerializeToString()


def push(url: str, bodies: list[bytes], stop: threading.Event) -> None:
    """One request per second, the bodies in rotation, on a fixed schedule."""
    start = time.monotonic()
    for tick in range(10**9):
        request = urllib.request.Request(
            url, data=bodies[tick % len(bodies)], headers={"Content-Type": "application/x-protobuf"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                response.read()
        except OSError as err:
            log(f"push failed: {err}")
        if stop.wait(max(0.0, start + tick + 1 - time.monotonic())):
            return


def wait_for_services(client: Prometheus, spec: PrometheusSpec, services: list[str]) -> None:
    """Until Prometheus has watched every service for two windows (the operator's capture)."""
    while True:
        end = client.now()
        try:
            have = sum(client.red(spec, s, 10, end).requests > 0 for s in services)
        except Exception as err:
            have, _ = 0, log(f"not yet: {err}")
        if have == len(services):
            return
        log(f"Prometheus has {have} of {len(services)} services")
        time.sleep(5)


def measure_round(
    client: Prometheus,
    spec: PrometheusSpec,
    names: list[str],
    baselines: dict[str, ServiceSummary],
    window: float,
) -> tuple[float, list[str]]:
    """Every charter measured once, as the operator measures one; (thread CPU s, levels)."""
    cpu = time.thread_time()
    levels = []
    for name in names:
        end = client.now()
        current = red_summary(name, client.red(spec, name, window, end))
        levels.append(str(measure(current, baselines[name], counts="red").entropy_level))
    return time.thread_time() - cpu, levels


@dataclass
class Services:
    """The Collector and Prometheus the run measures against, and the client reading it."""

    collector: HostProcess
    prometheus: HostProcess
    spec: PrometheusSpec
    otlp_port: int
    client: Prometheus = field(default_factory=Prometheus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=2000)
    parser.add_argument("--charters", type=int, default=2000)
    parser.add_argument("--cadence", type=float, default=10)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--window", type=float, default=60, help="telemetry.windowSeconds")
    parser.add_argument("--scrape", type=float, default=5, help="scrape and flush interval, s")
    parser.add_argument("--spans", type=int, default=2, help="spans per service per second")
    args = parser.parse_args()
    # Stopped with SIGTERM, still stop the Collector and Prometheus on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    services = [f"svc-{i:05d}" for i in range(args.services)]
    with tempfile.TemporaryDirectory() as state:
        work, every = Path(state), f"{args.scrape:g}s"
        col, ports = collector(work, f"http://127.0.0.1:{free_port()}", flush_interval=every)
        target = [f"127.0.0.1:{ports.prometheus}"]
        prom, url = prometheus(work / "prometheus", target, scrape_interval=every)
        with col, prom:
            run(args, services, Services(col, prom, PrometheusSpec(url=url), ports.otlp_http))


def run(args: argparse.Namespace, services: list[str], up: Services) -> None:
    log(f"encoding {args.services} services x {args.spans} spans/s")
    bodies = [payload(services, args.spans, seed) for seed in range(4)]
    stop = threading.Event()
    pusher = threading.Thread(
        target=push,
        args=(f"http://127.0.0.1:{up.otlp_port}/v1/traces", bodies, stop),
        daemon=True,
    )
    pusher.start()
    try:
        wait_for_services(up.client, up.spec, services)
        log(f"waiting {args.window:.0f}s for a whole baseline window")
        time.sleep(args.window)
        end = up.client.now()
        baselines = {
            s: red_summary(s, up.client.red(up.spec, s, args.window, end)) for s in services
        }
        names = [services[i % len(services)] for i in range(args.charters)]
        report(args, up, names, baselines)
    finally:
        stop.set()
        pusher.join(35)


def report(
    args: argparse.Namespace, up: Services, names: list[str], baselines: dict[str, ServiceSummary]
) -> None:
    assert up.collector.process is not None and up.prometheus.process is not None
    pids = {"prometheus": up.prometheus.process.pid, "collector": up.collector.process.pid}
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started, asked = time.monotonic(), up.client.asked
    cpu, rounds, levels = 0.0, 0, []
    while time.monotonic() - started < args.duration:
        tick = time.monotonic()
        spent, levels = measure_round(up.client, up.spec, names, baselines, args.window)
        cpu, rounds = cpu + spent, rounds + 1
        log(f"round {rounds}: {len(names)} charters in {time.monotonic() - tick:.2f}s wall")
        time.sleep(max(0.0, tick + args.cadence - time.monotonic()))
    wall = time.monotonic() - started
    per = cpu / (rounds * len(names))
    print(
        f"charters {len(names)} over {args.services} services, cadence {args.cadence:g}s, "
        f"window {args.window:g}s, scrape/flush {args.scrape:g}s, {rounds} rounds in {wall:.0f}s"
    )
    print(
        f"measuring CPU: {per * 1e3:.3f} ms per charter measurement "
        f"-> {args.cadence / per:,.0f} charters per core at a {args.cadence:g}s cadence"
    )
    print(
        f"queries sent: {(up.client.asked - asked) / rounds:.1f} per round "
        "(3 questions x the 5 s slots a round spans)"
    )
    for name, pid in pids.items():
        print(f"{name} CPU: {(cpu_seconds(pid) - before[name]) / wall:.1%} of a core")
    print(f"levels of the last round: { {lv: levels.count(lv) for lv in sorted(set(levels))} }")
    print("command: .venv/bin/python -m benchmarks.prometheus_charters " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
