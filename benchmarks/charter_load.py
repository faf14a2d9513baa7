"""One operator, many charters: CPU, memory and measurement lag under load (issue 10, "Load").

Starts a local control plane and applies N charters (default 200) in observe mode (measure only,
never a cycle), each measured every ``--cadence`` seconds (default 10) from ConfigMaps of OTLP
spans: per namespace a shared baseline and current spans ConfigMap (``tests.scenario.spans``), a
Deployment scaled to 0 and its ConfigMap as the target. With ``--source receiver`` each charter
instead measures its own service's spans, which the benchmark pushes to the operator's OTLP
receiver (one request per service per second, about 60 spans each: 12,000 spans/s for 200),
over a window of one cadence. With ``--source prometheus`` the same spans go to the real
OpenTelemetry Collector instead, whose span_metrics a real Prometheus scrapes every 5 s (flush
5 s), and each charter reads its service's RED metrics from there over a 60 s window (its
baseline captured from the first whole window, as the operator does); the Collector's sample
goes nowhere, so no charter validates semantic conventions. The charters are spread over
``--namespaces`` namespaces, all watched by one operator (``--namespace`` repeated). The charters
exist before the operator starts, so it starts with all of them at once.

After every charter has its first measurement and a settle period, it measures for
``--duration`` seconds:

* the operator process's CPU (utime + stime from ``/proc/<pid>/stat``), also the API server's
  and etcd's, as a share of one core;
* its resident memory: VmRSS sampled through the run (steady: the median; at the end) and VmHWM
  (the peak since it started, start-up burst included);
* measurement lag: every ``--sample`` seconds all charters' ``status.entropy.measuredAt`` are
  listed; over all samples of all charters, the age of the latest measurement and the lag, how
  far that age is beyond the cadence (``max(0, age - cadence)``: 0 while not due yet, so its
  median is 0 whenever measurements keep up half of the time); and the interval between a
  charter's successive measurements (distinct ``measuredAt`` values), the clearest figure;
* the Kubernetes Events about the charters (measuring must not flood the API server with them);
* whether every charter was measured during the window, and the charters whose Ready condition
  is False (measurement failed), with the operator log's errors and warnings up to the end of
  the window (its shutdown is left out; the whole log is kept as
  ``$TMPDIR/charter_load-operator.log``).

``measuredAt`` has one-second resolution (truncated), so ages read up to 1 s high. The kopf timer
interval (``WEAVERGEN_TIMER_SECONDS``, 5 s by default) and the executor's workers
(``WEAVERGEN_WORKERS``, 8 by default) bound how late a due measurement runs; both are printed.
Prints figures; asserts nothing.

Run: .venv/bin/python -m benchmarks.charter_load [--charters 200] [--cadence 10]
     [--duration 120] [--settle 30] [--namespaces 4] [--timer SECONDS] [--workers N]
     [--source configMap|receiver|prometheus]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.progress import cpu_seconds, log
from hack.localplane.plane import Plane, free_port
from hack.localplane.services import collector, prometheus
from tests.scenario import (
    GOOD,
    OperatorProcess,
    SpanPusher,
    apply,
    charter_spec,
    condition,
    config_map,
    deployment,
    put,
    spans,
)
from weavergen.domain.simulation.simulator import Faults
from weavergen.k8s.client import api_client
from weavergen.k8s.rest import Rest

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def memory_kib(pid: int) -> dict[str, int]:
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


def measured_at(charter: dict[str, Any]) -> datetime | None:
    text = ((charter.get("status") or {}).get("entropy") or {}).get("measuredAt")
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC) if text else None


def charter_manifest(
    name: str, cadence: int, source: str, prometheus_url: str | None = None
) -> dict[str, Any]:
    spec = {**charter_spec(), "mode": "observe", "cadence": {"measureIntervalSeconds": cadence}}
    if source == "receiver":  # its own service, measured over the last cadence
        spec["telemetry"] = {"serviceName": name, "windowSeconds": cadence, "minSpans": 50}
    if source == "prometheus":  # its own service's RED metrics, a window of 12 flushes
        spec["telemetry"] = {
            "serviceName": name,
            "source": "prometheus",
            "prometheus": {"url": prometheus_url},
            "windowSeconds": 60,
            "minSpans": 50,
            "baseline": {"captureWindows": 1},
        }
    return {
        "apiVersion": "regeneration.weavergen.io/v1alpha1",
        "kind": "RegenerationCharter",
        "metadata": {"name": name},
        "spec": spec,
    }


class Fleet:
    """The charters: where they are, and a snapshot of all of them."""

    def __init__(self, rest: Rest, namespaces: list[str], count: int) -> None:
        self.rest = rest
        self.namespaces = namespaces
        self.names: dict[str, list[str]] = {ns: [] for ns in namespaces}
        for i in range(count):
            self.names[namespaces[i % len(namespaces)]].append(f"load-{i:04d}")
        self.count = count

    def snapshot(self) -> dict[tuple[str, str], dict[str, Any]]:
        found = {}
        for ns in self.namespaces:
            for item in self.rest.list("RegenerationCharter", ns):
                found[(ns, item["metadata"]["name"])] = item
        return found


def prepare(
    plane: Plane, rest: Rest, fleet: Fleet, args: argparse.Namespace, url: str | None
) -> None:
    cadence, source = args.cadence, args.source
    baseline = spans(Faults(), 1)
    current = spans(Faults(), 2)
    for ns in fleet.namespaces:
        plane.kubectl("create", "namespace", ns)
        idle = deployment("web")
        idle["spec"]["replicas"] = 0  # a target that exists, without pods to run
        apply(plane, ns, idle, config_map("web-config", GOOD))
        put(rest, ns, config_map("web-baseline", {"spans.json": baseline}))
        put(rest, ns, config_map("web-spans", {"spans.json": current}))
        charters = [charter_manifest(name, cadence, source, url) for name in fleet.names[ns]]
        for start in range(0, len(charters), 50):
            apply(plane, ns, *charters[start : start + 50])
    log(f"applied {fleet.count} charters in {len(fleet.namespaces)} namespaces")


def start_pusher(operator: OperatorProcess, fleet: Fleet, port: int | None = None) -> SpanPusher:
    """Every charter's spans pushed to ``port`` (the Collector's), else the operator's receiver."""
    deadline = time.monotonic() + 60
    while port is None and (port := operator.receiver_port()) is None:
        if time.monotonic() > deadline:
            raise SystemExit("the operator's OTLP receiver did not start within 60 s")
        time.sleep(0.5)
    services = [name for names in fleet.names.values() for name in names]
    pusher = SpanPusher(port, services, threads=4)
    pusher.start()
    log(f"pushing every charter's spans to OTLP/HTTP on port {port}")
    return pusher


def wait_all_measured(fleet: Fleet, timeout: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        measured = sum(1 for c in fleet.snapshot().values() if measured_at(c))
        if measured == fleet.count:
            return time.monotonic() - started
        time.sleep(2)
    return None


def pct(values: list[float]) -> str:
    if not values:
        return "(none)"
    p50, p95 = np.percentile(values, [50, 95])
    return f"p50 {p50:5.1f} s  p95 {p95:5.1f} s  max {max(values):5.1f} s  (n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--charters", type=int, default=200)
    parser.add_argument("--cadence", type=int, default=10, help="measureIntervalSeconds")
    parser.add_argument("--duration", type=float, default=120, help="measured window, seconds")
    parser.add_argument("--settle", type=float, default=30, help="after all are measured")
    parser.add_argument("--sample", type=float, default=2, help="sampling interval, seconds")
    parser.add_argument("--namespaces", type=int, default=4)
    parser.add_argument("--timer", type=float, help="WEAVERGEN_TIMER_SECONDS (default: 5)")
    parser.add_argument("--workers", type=int, help="WEAVERGEN_WORKERS (default: 8)")
    parser.add_argument(
        "--source",
        choices=("configMap", "receiver", "prometheus"),
        default="configMap",
        help="where charters read spans: shared ConfigMaps, each its own service's spans "
        "pushed to the operator's OTLP receiver, or its RED metrics in Prometheus",
    )
    args = parser.parse_args()
    namespaces = [f"load-{i}" for i in range(args.namespaces)]
    with tempfile.TemporaryDirectory() as state:
        plane = Plane(Path(state) / "plane")
        log("starting the local control plane")
        plane.up(owner_pid=os.getpid())
        plane.install_crds()
        extra = [flag for ns in namespaces[1:] for flag in ("--namespace", ns)]
        env = {}
        if args.workers:
            env["WEAVERGEN_WORKERS"] = str(args.workers)
        oplog = Path(state) / "operator.log"
        operator = OperatorProcess(
            plane, namespaces[0], oplog, plane.kubeconfig, "--standalone", *extra, env=env
        )
        if args.timer:
            operator.env["WEAVERGEN_TIMER_SECONDS"] = str(args.timer)
        else:
            operator.env.pop("WEAVERGEN_TIMER_SECONDS")  # the operator's default
        try:
            with contextlib.ExitStack() as telemetry:
                red = start_red(Path(state), telemetry) if args.source == "prometheus" else None
                run(plane, operator, args, namespaces, red)
        finally:
            operator.stop()
            plane.down()
            keep = Path(os.environ.get("TMPDIR", "/tmp")) / "charter_load-operator.log"
            keep.write_text(oplog.read_text() if oplog.exists() else "")
            log(f"operator log kept in {keep}")


def start_red(state: Path, stack: contextlib.ExitStack) -> tuple[str, int]:
    """The Collector and a Prometheus scraping its span_metrics: (Prometheus URL, OTLP port)."""
    col, ports = collector(state / "red", f"http://127.0.0.1:{free_port()}", flush_interval="5s")
    target = [f"127.0.0.1:{ports.prometheus}"]
    prom, url = prometheus(state / "red" / "prometheus", target, scrape_interval="5s")
    stack.enter_context(col)
    stack.enter_context(prom)
    log(f"Collector and Prometheus up: {url}")
    return url, ports.otlp_http


def run(
    plane: Plane,
    operator: OperatorProcess,
    args: argparse.Namespace,
    namespaces: list[str],
    red: tuple[str, int] | None = None,
) -> None:
    rest = Rest(api_client(str(plane.kubeconfig)))
    fleet = Fleet(rest, namespaces, args.charters)
    prepare(plane, rest, fleet, args, red[0] if red else None)
    started = time.monotonic()
    operator.start()
    assert operator.process is not None
    pid = operator.process.pid
    port = red[1] if red else None
    pusher = start_pusher(operator, fleet, port) if args.source != "configMap" else None
    log(f"operator pid {pid}; waiting for every charter's first measurement")
    first_all = wait_all_measured(fleet, timeout=max(300, args.charters * 3))
    startup = time.monotonic() - started
    log(f"settling {args.settle:.0f}s")
    time.sleep(args.settle)

    others = {name: plane.pid(name) for name in ("kube-apiserver", "etcd")}
    cpu0 = cpu_seconds(pid)
    pushed0 = pusher.spans if pusher else 0
    others0 = {name: cpu_seconds(p) for name, p in others.items() if p}
    wall0 = time.monotonic()
    lags: list[float] = []
    ages: list[float] = []
    last_seen: dict[tuple[str, str], datetime] = {}
    intervals: list[float] = []
    measured_in_window: set[tuple[str, str]] = set()
    rss: list[int] = []
    samples = 0
    log(f"measuring for {args.duration:.0f}s")
    while time.monotonic() - wall0 < args.duration:
        tick = time.monotonic()
        charters = fleet.snapshot()
        now = datetime.now(UTC)
        samples += 1
        for key, charter in charters.items():
            at = measured_at(charter)
            if at is None:
                lags.append(float("inf"))
                continue
            ages.append((now - at).total_seconds())
            lags.append(max(0.0, ages[-1] - args.cadence))
            before = last_seen.get(key)
            if before is not None and at != before:
                intervals.append((at - before).total_seconds())
                measured_in_window.add(key)
            last_seen[key] = at
        rss.append(memory_kib(pid)["VmRSS"])
        time.sleep(max(0.0, args.sample - (time.monotonic() - tick)))
    wall = time.monotonic() - wall0
    results = Results(
        startup=startup if first_all is not None else None,
        wall=wall,
        samples=samples,
        cpu=cpu_seconds(pid) - cpu0,
        others_cpu={name: cpu_seconds(p) - others0[name] for name, p in others.items() if p},
        rss=rss,
        memory=memory_kib(pid),
        lags=lags,
        ages=ages,
        intervals=intervals,
        measured_in_window=len(measured_in_window),
        final=fleet.snapshot(),
        events=Counter(
            f"{e.get('type')}/{e.get('reason')}"
            for ns in namespaces
            for e in rest.list("Event", ns)
            if (e.get("involvedObject") or {}).get("kind") == "RegenerationCharter"
            for _ in range(e.get("count") or 1)
        ),
        uptime=time.monotonic() - started,
        pushed=(pusher.spans - pushed0, len(pusher.failures)) if pusher else None,
    )
    if pusher:
        pusher.stop()
    report(args, operator, fleet, results)


@dataclass
class Results:
    startup: float | None  # seconds until every charter had a measurement
    wall: float
    samples: int
    cpu: float
    others_cpu: dict[str, float]
    rss: list[int]
    memory: dict[str, int]
    lags: list[float]
    ages: list[float]
    intervals: list[float]
    measured_in_window: int
    final: dict[tuple[str, str], dict[str, Any]]
    events: Counter[str]  # the charters' Kubernetes Events at the end, by type/reason
    uptime: float  # seconds since the operator started
    pushed: tuple[int, int] | None  # spans pushed in the window, failed requests in all


def ready_message(status: dict[str, Any]) -> str:
    ready = [c for c in status.get("conditions", []) if c["type"] == "Ready"]
    return str(ready[0].get("message", "")) if ready else ""


def report(args: argparse.Namespace, operator: OperatorProcess, fleet: Fleet, v: Results) -> None:
    finite = [lag for lag in v.lags if lag != float("inf")]
    unmeasured = len(v.lags) - len(finite)
    not_ready = {
        key: ready_message(ch.get("status") or {})
        for key, ch in v.final.items()
        if condition(ch.get("status") or {}, "Ready") == "False"
    }
    timer = operator.env.get("WEAVERGEN_TIMER_SECONDS", "5 (default)")
    workers = operator.env.get("WEAVERGEN_WORKERS", "8 (default)")
    rate = fleet.count / args.cadence
    print(
        f"charters {fleet.count} in {len(fleet.namespaces)} namespaces, observe mode, cadence "
        f"{args.cadence} s (~{rate:.0f} measurements/s due); timer {timer} s; workers {workers}; "
        f"machine {os.cpu_count()} cores"
    )
    print(
        "start-up: "
        + (
            f"every charter measured {v.startup:.0f} s after the operator started"
            if v.startup is not None
            else "NOT every charter was measured before the timeout"
        )
    )
    print(f"window {v.wall:.0f} s, {v.samples} samples of all charters every {args.sample} s")
    if v.pushed is not None:
        print(
            f"  spans pushed        {v.pushed[0] / v.wall:7.0f}/s to the {args.source} path "
            f"({fleet.count} services, one request each per second; {v.pushed[1]} failed)"
        )
    print(f"  operator CPU        {v.cpu:7.1f} s = {100 * v.cpu / v.wall:5.1f}% of a core")
    for name, seconds in v.others_cpu.items():
        print(f"  {name:<19} {seconds:7.1f} s = {100 * seconds / v.wall:5.1f}% of a core")
    rss = np.array(v.rss) / 1024
    print(
        f"  operator RSS        steady (median) {np.median(rss):6.1f} MiB, min {rss.min():.1f}, "
        f"max {rss.max():.1f}, at the end {v.memory['VmRSS'] / 1024:.1f}; "
        f"peak since start (VmHWM) {v.memory['VmHWM'] / 1024:.1f} MiB"
    )
    print(f"  measurement age     {pct(v.ages)}")
    print(f"  lag beyond cadence  {pct(finite)}")
    if unmeasured:
        print(f"                      {unmeasured} samples of charters never measured")
    print(f"  measurement interval {pct(v.intervals)}  (cadence {args.cadence} s)")
    achieved = len(v.intervals) / v.wall
    print(f"  measurements/s      {achieved:.1f} observed (due: {rate:.1f})")
    print(
        f"  charters measured in the window: {v.measured_in_window}/{fleet.count}; "
        f"Ready=False at the end: {len(not_ready)}"
    )
    for (ns, name), message in list(not_ready.items())[:5]:
        print(f"    {ns}/{name}: {message}")
    events = ", ".join(f"{reason} {count}" for reason, count in v.events.most_common())
    print(
        f"  Kubernetes Events about the charters: {v.events.total()} in the operator's "
        f"{v.uptime:.0f} s = {v.events.total() / v.uptime:.1f}/s ({events})"
    )
    text = operator.log.read_text() if operator.log.exists() else ""
    bad = [
        line
        for line in text.splitlines()
        if re.search(r"\b(ERROR|WARNING|CRITICAL)\b|Traceback", line)
    ]
    kinds = Counter(re.sub(r"\d+", "#", line.split("]", 2)[-1])[:100] for line in bad)
    print(f"  operator log: {len(text.splitlines())} lines, {len(bad)} errors/warnings")
    for line, count in kinds.most_common(8):
        print(f"    {count:>5} x {line.strip()}")


if __name__ == "__main__":
    main()
