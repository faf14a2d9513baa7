"""Time to heal: an earlier commit against this checkout, in the same run, on the same machine.

Runs the demo (`hack/demo.py`: a fresh local control plane with a real node, the operator
installed with Helm, the OTel-instrumented shop under load) for each scenario, once per commit
and run, alternating the two so a machine getting busier weighs on both alike. The earlier
commit runs from a git worktree of it (its own images, chart and demo). From each narration it
takes: fault -> cycle created, each phase's duration, and fault -> the cycle's end (verified
healthy, or rolled back) as narrated; and from the operator's container log on the demo's node,
when the operator ended the cycle: a narrator that polls (an earlier commit's) sees it late.
From the API server's own metrics (``apiserver_request_total``) it counts the requests made
from the fault to the cycle's end: the writes to the operator's
resources (the charter's and cycle's status patches: no patch storm) and every request, by every
client (the demo's own narration included, the same for both).
Prints a table per scenario with the medians and their ratios (this / earlier): on a shared
2-core machine the ratios mean more than the seconds.

Run: .venv/bin/python -m benchmarks.time_to_heal [--baseline 5056bfd] [--runs 1]
     [--scenario config-corruption --scenario bad-deploy]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from benchmarks.progress import log
from hack.demo import SCENARIOS
from hack.localplane.plane import Binaries, cache_dir
from weavergen.api.charter import PHASES
from weavergen.api.common import GROUP

REPO = Path(__file__).resolve().parents[1]
# The last commit before issue 23 (time to heal): a fixed settle and timer-driven phases.
BASELINE = "5056bfd"
STAMP = re.compile(r"^\[\s*([\d.]+)s\] (.*)$")
WRITES = {"POST", "PUT", "PATCH", "DELETE", "APPLY"}
KUBECONFIG = re.compile(r"\(kubeconfig (\S+)\)")
FAULT = re.compile(r"-config now: |rolled out demo-shop ")
DETECTED = re.compile(r"cycle \S+ started .*, ([\d.]+)s after the fault")
ENDED = re.compile(r"^== (after the cycle|summary)")
PHASE = re.compile(r"^\s+phase (\w+)\s+(\w+) in ([\d.]+)s")


@dataclass
class Run:
    """What one demo narration says about the time to heal."""

    outcome: str = "?"
    detected: float | None = None
    phases: dict[str, float] = field(default_factory=dict)
    fault_at: float | None = None
    ended_at: float | None = None
    # Epoch seconds: the fault line's arrival here, and the operator's log line ending the cycle.
    fault_epoch: float | None = None
    finished_epoch: float | None = None
    api_requests: dict[str, float] = field(default_factory=dict)  # in the cycle, by kind

    @property
    def healed(self) -> float | None:
        if self.fault_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.fault_at

    @property
    def logged(self) -> float | None:
        if self.fault_epoch is None or self.finished_epoch is None:
            return None
        return self.finished_epoch - self.fault_epoch

    def figures(self) -> dict[str, float | None]:
        return {
            "fault -> cycle created": self.detected,
            **{f"  {phase}": self.phases.get(phase) for phase in PHASES},
            "fault -> cycle ended, as narrated": self.healed,
            "fault -> cycle ended, by the operator's log": self.logged,
            **{f"API requests: {kind}": n for kind, n in sorted(self.api_requests.items())},
        }


def parse(narration: str) -> Run:
    run = Run()
    for line in narration.splitlines():
        stamped = STAMP.match(line)
        at, said = (float(stamped[1]), stamped[2]) if stamped else (None, line)
        if at is not None and run.fault_at is None and FAULT.search(said):
            run.fault_at = at
        if found := DETECTED.search(said):
            run.detected = float(found[1])
        if found := PHASE.match(said):
            run.phases[found[1]] = float(found[3])
            run.ended_at = at
        if line.strip().startswith("outcome "):
            run.outcome = line.split()[1].rstrip(":")
    return run


def worktree(revision: str) -> Path:
    """A checkout of ``revision`` beside the cache, made once."""
    sha = git("rev-parse", "--short=12", revision)
    tree = cache_dir() / "time-to-heal" / sha
    if not (tree / "hack" / "demo.py").exists():
        tree.parent.mkdir(parents=True, exist_ok=True)
        git("worktree", "add", "--force", "--detach", str(tree), sha)
    return tree


def git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def api_requests(kubeconfig: str) -> dict[str, float]:
    """The API server's request counters so far: to the operator's resources, and to all."""
    raw = subprocess.run(
        [
            str(Binaries.from_cache().kubectl),
            "--kubeconfig",
            kubeconfig,
            "get",
            "--raw",
            "/metrics",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    counts = {"writes to charters, cycles": 0.0, "all (every client)": 0.0}
    for family in text_string_to_metric_families(raw):
        if family.name != "apiserver_request":
            continue
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue
            counts["all (every client)"] += sample.value
            # Only the operator writes them (the demo reads them twice a second to narrate).
            if sample.labels.get("group") == GROUP and sample.labels.get("verb") in WRITES:
                counts["writes to charters, cycles"] += sample.value
    return counts


def demo(tree: Path, scenario: str) -> Run:
    """One demo run from ``tree``; its narration goes to stderr as it comes."""
    env = {**os.environ, "PYTHONPATH": f"{tree / 'operator'}{os.pathsep}{tree}"}
    with tempfile.TemporaryDirectory(prefix="weavergen-tth-") as tmp:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "hack.demo", "--scenario", scenario),
                *("--report", f"{tmp}/r", "--state", f"{tmp}/state"),
            ],
            cwd=tree,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        lines, kubeconfig, counted, fault_epoch = [], "", {}, None
        for line in process.stdout:
            print(line, end="", file=sys.stderr, flush=True)
            lines.append(line)
            if fault_epoch is None and FAULT.search(line):
                fault_epoch = time.time()
            if found := KUBECONFIG.search(line):
                kubeconfig = found[1]
            # From the fault to the cycle's end (its last phase), as the narration says them.
            # At the fault and once the cycle has ended (the narration's next title), not at
            # each phase: reading the API server's metrics costs CPU the cycle would share.
            if kubeconfig and "fault" not in counted and FAULT.search(line):
                counted["fault"] = api_requests(kubeconfig)
            elif "fault" in counted and "end" not in counted and ENDED.match(line):
                counted["end"] = api_requests(kubeconfig)
        if process.wait() != 0:
            raise RuntimeError(f"the demo from {tree} ({scenario}) exited {process.returncode}")
        finished_epoch = cycle_finished(Path(tmp) / "state")
    run = parse("".join(lines))
    run.fault_epoch, run.finished_epoch = fault_epoch, finished_epoch
    if "end" in counted:
        run.api_requests = {k: counted["end"][k] - v for k, v in counted["fault"].items()}
    return run


def cycle_finished(state: Path) -> float | None:
    """When the operator logged the cycle's end (epoch seconds), from its container's log on
    the demo's node: the end as the operator wrote it, whatever its narrator's way of looking
    (the narration of an earlier commit may poll)."""
    logs = state / "plane" / "node" / "pod-logs"
    for path in sorted(logs.glob("weavergen-system_*/*/*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if "finished cycle=" in line:
                stamp = line.split(" ", 1)[0]  # the runtime's RFC 3339 time, in nanoseconds
                return datetime.fromisoformat(stamp[:26].rstrip("Z") + "+00:00").timestamp()
    return None


def median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def table(scenario: str, earlier: list[Run], now: list[Run], labels: tuple[str, str]) -> str:
    rows = [f"### {scenario} ({len(now)} run(s) each; medians)", ""]
    rows += [f"| | {labels[0]} | {labels[1]} | ratio |", "|---|---:|---:|---:|"]
    outcomes = [", ".join(run.outcome for run in runs) for runs in (earlier, now)]
    rows.append(f"| outcome | {outcomes[0]} | {outcomes[1]} | |")
    for name in now[0].figures():
        before = median([run.figures()[name] for run in earlier])
        after = median([run.figures()[name] for run in now])
        ratio = f"{after / before:.2f}" if before and after is not None else "n/a"
        rows.append(f"| {name} | {_s(before, name)} | {_s(after, name)} | {ratio} |")
    return "\n".join(rows)


def _s(value: float | None, name: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:.0f}" if name.startswith("API") else f"{value:.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default=BASELINE, help="the earlier commit")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--scenario", action="append", choices=SCENARIOS)
    args = parser.parse_args()
    trees = {"earlier": worktree(args.baseline), "this": REPO}
    labels = (f"{git('rev-parse', '--short', args.baseline)}", "this checkout")
    results: dict[str, dict[str, list[Run]]] = {}
    for scenario in args.scenario or SCENARIOS:
        for n in range(args.runs):
            for which, tree in trees.items():
                log(f"{scenario} run {n + 1}/{args.runs}: {which} ({tree})")
                results.setdefault(scenario, {}).setdefault(which, []).append(demo(tree, scenario))
    for scenario, runs in results.items():
        print(table(scenario, runs["earlier"], runs["this"], labels) + "\n")


if __name__ == "__main__":
    main()
