"""Where a phase Job's seconds go, on a real node: the demo's cycle, phase by phase.

Runs the demo (`hack/demo.py`: a local control plane with a real kubelet, the operator from its
Helm chart, the shop under load) up to the end of the cycle its fault causes, watching the
cycle's Jobs and pods. Each event is timed as it arrives (the API's own stamps have whole
seconds); each phase process logs its own marks (``phase timings``: process start, imports
done, turn given, phase done, traces flushed). Prints, per phase: the gap between phases (the
previous phase's result written to this phase's work beginning), the operator's reaction (the
previous result to this Job: negative for a Job started ahead of its turn), Job to pod, pod to
process start (scheduling, sandbox, container), interpreter and imports, the wait for its turn
(a Job started ahead), the phase's own work (API reads and writes, computing), the trace flush,
and exit to the Job's completion. Asserts nothing.

Run: .venv/bin/python -m benchmarks.phase_jobs [--scenario config-corruption]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from kubernetes import client, watch

from hack.demo import SCENARIOS, SHOP, Demo
from weavergen.api.charter import PHASES
from weavergen.api.keys import CYCLE_LABEL, PHASE_LABEL
from weavergen.k8s.jobs import job_finished

COLUMNS = (
    ("gap", "previous result -> work"),
    ("operator", "previous result -> Job"),
    ("job->pod", "Job -> pod"),
    ("pod->proc", "pod -> process"),
    ("imports", "interpreter, imports"),
    ("turn", "waiting for its turn"),
    ("work", "phase work"),
    ("flush", "trace flush"),
    ("exit->done", "exit -> Job complete"),
    ("total", "Job -> complete"),
)


class Watcher:
    """Arrival times of the cycle's Job and pod events, by phase (a thread per kind)."""

    def __init__(self, demo: Demo) -> None:
        assert demo.rest is not None
        self.api = demo.rest.api
        self.seen: dict[tuple[str, str], float] = {}
        self.stop = threading.Event()
        for kind in ("jobs", "pods"):
            threading.Thread(target=self._watch, args=(kind,), daemon=True).start()

    def _watch(self, kind: str) -> None:
        batch, core = client.BatchV1Api(self.api), client.CoreV1Api(self.api)
        list_fn = batch.list_namespaced_job if kind == "jobs" else core.list_namespaced_pod
        stream = watch.Watch().stream(list_fn, SHOP, label_selector=CYCLE_LABEL)
        for event in stream:
            if self.stop.is_set():
                return
            now, obj = time.time(), self.api.sanitize_for_serialization(event["object"])
            phase = (obj["metadata"].get("labels") or {}).get(PHASE_LABEL)
            if not phase:
                continue
            self._mark(phase, f"{kind}:added", now)
            if kind == "jobs" and job_finished(obj):
                self._mark(phase, "jobs:finished", now)
            if kind == "pods" and (obj.get("status") or {}).get("phase") == "Succeeded":
                self._mark(phase, "pods:succeeded", now)

    def _mark(self, phase: str, what: str, at: float) -> None:
        self.seen.setdefault((phase, what), at)


def process_marks(demo: Demo) -> dict[str, dict[str, float]]:
    """Each phase pod's ``phase timings`` line."""
    marks = {}
    for pod in demo.plane.pods(SHOP, CYCLE_LABEL):
        phase = pod["metadata"]["labels"].get(PHASE_LABEL)
        logs = demo.plane.kubectl("logs", "-n", SHOP, pod["metadata"]["name"], check=False)
        for line in logs.stdout.splitlines() + logs.stderr.splitlines():
            if line.startswith("phase timings: ") and phase:
                marks[phase] = json.loads(line.removeprefix("phase timings: "))
    return marks


def breakdown(seen: dict[tuple[str, str], float], marks: dict[str, dict[str, float]]) -> str:
    rows = [
        "| phase | " + " | ".join(title for _, title in COLUMNS) + " |",
        "|---" * (len(COLUMNS) + 1) + "|",
    ]
    previous_result = None
    for phase in PHASES:
        job, pod = seen.get((phase, "jobs:added")), seen.get((phase, "pods:added"))
        done = seen.get((phase, "jobs:finished"))
        mark = marks.get(phase) or {}

        def span(start: float | None, end: float | None) -> str:
            return "?" if start is None or end is None else f"{end - start:.2f}"

        working = mark.get("turn", mark.get("imported"))
        cells = [
            span(previous_result, working),
            span(previous_result, job),
            span(job, pod),
            span(pod, mark.get("started")),
            span(mark.get("started"), mark.get("imported")),
            span(mark.get("imported"), mark.get("turn")) if "turn" in mark else "-",
            span(working, mark.get("ran")),
            span(mark.get("ran"), mark.get("flushed")),
            span(mark.get("flushed"), done),
            span(job, done),
        ]
        rows.append(f"| {phase} | " + " | ".join(cells) + " |")
        previous_result = mark.get("ran")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=SCENARIOS, default="config-corruption")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="weavergen-phase-jobs-") as state:
        demo = Demo(args.scenario, Path(state), Path(state) / "report.html", sys.stderr)
        try:
            demo.start_plane()
            demo.install_operator()
            demo.deploy_shop()
            demo.apply_charter()
            watcher = Watcher(demo)
            final: dict[str, Any] = demo.follow(demo.inject())
            watcher.stop.set()
            marks = process_marks(demo)
        finally:
            demo.stop()
    print(f"cycle {final['name']}: {final.get('phase')} (seconds, events timed on arrival)")
    print(f"verification: {final.get('verification')}")
    print(breakdown(watcher.seen, marks))


if __name__ == "__main__":
    main()
