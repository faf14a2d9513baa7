"""`make demo`: the whole self-healing loop on a local control plane, narrated.

Starts (or builds, then starts) a local control plane whose node is real (containerd, runc, a
kubelet and kube-proxy, running images built locally from the repository's Dockerfile), installs
the CRDs and the operator with Helm (its container runs under the chart's RBAC and restricted
security context), deploys the demo shop (a container of the same image) and a steady load
through its Service, applies a charter and waits until the shop measures healthy. Then it
breaks the shop — scenario ``config-corruption`` (default) corrupts its ConfigMap,
``bad-deploy`` rolls out a broken release — and shows what the operator does: entropy rising,
the cycle and each phase, the strategy it chose and why, entropy falling, and a few
measurements after the cycle. It ends with a summary and an HTML report, whose charts show the
measurements before, during and after the cycle, and stops everything it started (also on
Ctrl-C or failure).

Run: make demo [SCENARIO=bad-deploy]   (or .venv/bin/python -m hack.demo --scenario ...)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as TransportError

from hack.localplane.plane import Plane
from hack.localplane.release import Release
from weavergen.api.cycle import FINAL_PHASES
from weavergen.demo.manifests import (
    APP,
    BAD_RELEASE_PATCH,
    BAD_VERSION,
    CORRUPT_CONFIG,
    charter,
    shop_manifests,
)
from weavergen.k8s.client import api_client
from weavergen.k8s.rest import Rest

REPO = Path(__file__).resolve().parents[1]
SYSTEM = "weavergen-system"
SHOP = "shop"
SCENARIOS = ("config-corruption", "bad-deploy")
AFTER_MEASUREMENTS = 3  # shown after the cycle ends, so the report charts what followed it


@dataclass
class Figures:
    """What one demo run measured."""

    scenario: str
    final: dict[str, Any]
    detection_seconds: float
    cycle_seconds: float | None
    healed_seconds: float  # from the fault to the cycle's end (verified, or rolled back)
    sent: int
    answered: int
    gate_seconds: list[float] = field(default_factory=list)


class Narrator:
    """Prints what happens, with the time since the demo started."""

    def __init__(self, stream: TextIO = sys.stdout) -> None:
        self.started = time.monotonic()
        self.stream = stream

    def say(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {message}", file=self.stream, flush=True)

    def title(self, message: str) -> None:
        print(f"\n== {message}", file=self.stream, flush=True)

    def line(self, message: str) -> None:
        print(message, file=self.stream, flush=True)


def wait(what: str, check: Callable[[], Any], timeout: float, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"{what} did not happen within {timeout:.0f}s")


class Demo:
    def __init__(
        self, scenario: str, state: Path, report: Path, stream: TextIO = sys.stdout
    ) -> None:
        self.scenario = scenario
        self.plane = Plane(state / "plane")
        self.release = Release(self.plane, "weavergen-operator", SYSTEM)
        self.report = report
        self.out = Narrator(stream)
        self.operator_url = ""
        self.shop_url = ""
        self.load: subprocess.Popen[str] | None = None
        self.load_lines: list[dict[str, Any]] = []
        self.rest: Rest | None = None

    # -- helpers ------------------------------------------------------------------------------

    def status(self, kind: str, name: str) -> dict[str, Any]:
        assert self.rest is not None
        found = self.rest.get(kind, SHOP, name) or {}
        status: dict[str, Any] = found.get("status") or {}
        return status

    # -- steps --------------------------------------------------------------------------------

    def start_plane(self) -> None:
        self.out.title("local control plane and its node (containerd, kubelet, kube-proxy)")
        # An interrupted demo leaves no plane behind.
        self.plane.up(node_kind="kubelet", owner_pid=os.getpid())
        self.plane.install_crds()
        self.rest = Rest(api_client(str(self.plane.kubeconfig)))
        for namespace in (SYSTEM, SHOP):
            self.plane.kubectl("create", "namespace", namespace)
        wait(
            "the shop's default ServiceAccount",
            lambda: (
                self.plane.kubectl("get", "sa", "default", "-n", SHOP, check=False).returncode == 0
            ),
            60,
        )
        self.out.say(f"plane up; CRDs installed (kubeconfig {self.plane.kubeconfig})")
        for line in self.plane.kubectl("get", "nodes", "-o", "wide").stdout.splitlines():
            self.out.line(f"  {line}")

    def install_operator(self) -> None:
        self.out.title("operator (helm install: its container under the chart's RBAC)")
        self.release.install([SHOP])
        self.operator_url = self.release.url()
        (pod,) = self.release.pods()
        self.out.say(f"operator running in {SYSTEM}: {describe_container(pod)}")
        self.out.say(f"OTLP receiver, /metrics and /gate at {self.operator_url} (its Service)")

    def deploy_shop(self) -> None:
        self.out.title("demo shop and load")
        self.plane.apply(SHOP, *shop_manifests(namespace=SHOP, otlp_endpoint=self.operator_url))
        self.plane.kubectl("rollout", "status", f"deploy/{APP}", "-n", SHOP, "--timeout=90s")
        self.shop_url = self.plane.service_url(SHOP, APP)
        wait("the shop to answer", self.shop_answers, 60)
        self.load = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "weavergen.cli",
                "demo",
                "load",
                "--url",
                self.shop_url,
                "--rps",
                "40",
                "--report-every",
                "5",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        threading.Thread(target=self.read_load, daemon=True).start()
        (pod,) = self.plane.pods(SHOP, f"app={APP}")
        self.out.say(f"shop running: {describe_container(pod)}")
        self.out.say(f"shop serving at {self.shop_url} (its Service); load: 40 requests/s")

    def shop_answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.shop_url}/healthz", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def read_load(self) -> None:
        assert self.load is not None and self.load.stdout is not None
        for line in self.load.stdout:
            entry = json.loads(line)
            entry["at"] = time.monotonic()
            self.load_lines.append(entry)

    def apply_charter(self) -> None:
        self.out.title("charter: keep demo-shop healthy")
        self.plane.apply(SHOP, charter(SHOP))
        self.out.say("waiting for the baseline window and a healthy measurement")
        seen: set[str] = set()

        def healthy() -> bool:
            entropy = self.status("RegenerationCharter", APP).get("entropy") or {}
            self.show_measurement(entropy, seen)
            return entropy.get("level") == "low" and bool(
                self.rest and self.rest.get("ConfigMap", SHOP, f"{APP}-golden")
            )

        wait("a healthy measurement and the known-good snapshot", healthy, 180)
        self.out.say("healthy; known-good snapshot taken (demo-shop-golden)")

    def show_measurement(self, entropy: dict[str, Any], seen: set[str]) -> None:
        at = entropy.get("measuredAt")
        if not at or at in seen or entropy.get("score") is None:
            return
        seen.add(at)
        indicators = ", ".join(i["type"] for i in entropy.get("indicators") or []) or "none"
        self.out.say(
            f"entropy {entropy['score']:.3f} {entropy['level'].upper():<8} health "
            f"{entropy.get('healthScore', 0):.2f}  spans {entropy.get('spanCount')}  "
            f"drift: {indicators}"
        )

    def inject(self) -> float:
        assert self.rest is not None
        if self.scenario == "config-corruption":
            self.out.title("fault: the shop's ConfigMap is corrupted")
            self.plane.kubectl(
                "patch", "configmap", f"{APP}-config", "-n", SHOP, "--type=merge",
                "-p", json.dumps({"data": CORRUPT_CONFIG}),
            )  # fmt: skip
            self.out.say(f"{APP}-config now: {CORRUPT_CONFIG}")
        else:
            self.out.title("fault: a broken release (2.0.0-bad) is rolled out")
            self.plane.kubectl(
                "patch", "deployment", APP, "-n", SHOP, "--type=json",
                "-p", json.dumps(BAD_RELEASE_PATCH),
            )  # fmt: skip
            self.plane.kubectl("rollout", "status", f"deploy/{APP}", "-n", SHOP, "--timeout=90s")
            self.out.say(f"rolled out demo-shop {BAD_VERSION}")
        return time.monotonic()

    def follow(self, fault_at: float) -> dict[str, Any]:
        """Narrate until the cycle the fault caused has ended; returns its final status."""
        assert self.rest is not None
        seen: set[str] = set()
        cycle_name, cycle_seen_at, phases_seen = None, 0.0, set()
        last_phase = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            charter = self.rest.get("RegenerationCharter", SHOP, APP) or {}
            self.show_measurement((charter.get("status") or {}).get("entropy") or {}, seen)
            # The charter's status names the cycle it starts: watched until then, the cycle after.
            watched = ("RegenerationCharter", charter)
            if cycle_name is None:
                cycles = self.rest.list("RegenerationCycle", SHOP)
                if cycles:
                    cycle_name = cycles[0]["metadata"]["name"]
                    cycle_seen_at = time.monotonic()
                    self.out.say(
                        f"cycle {cycle_name} started ({cycles[0]['spec']['reason']}), "
                        f"{cycle_seen_at - fault_at:.1f}s after the fault"
                    )
            else:
                cycle = self.rest.get("RegenerationCycle", SHOP, cycle_name) or {}
                status, watched = cycle.get("status") or {}, ("RegenerationCycle", cycle)
                for record in status.get("phases") or []:
                    key = f"{record['name']}:{record.get('outcome')}"
                    if key not in phases_seen:
                        phases_seen.add(key)
                        took = record.get("durationSeconds")
                        self.out.say(
                            f"  phase {record['name']:<9} {record.get('outcome')}"
                            + (f" in {took:.1f}s" if took is not None else "")
                        )
                if status.get("chosenStrategy") and last_phase != "chosen":
                    self.show_choice(status)
                    last_phase = "chosen"
                if status.get("phase") in FINAL_PHASES:
                    return {
                        "name": cycle_name,
                        **status,
                        "_seen_at": cycle_seen_at,
                        "_ended_at": time.monotonic(),
                    }
            self.await_change(*watched)
        raise TimeoutError("the cycle did not finish within 10 minutes")

    def await_change(self, kind: str, read: dict[str, Any], seconds: int = 1) -> None:
        """Until the object ``read`` changes, or ``seconds`` pass: the narration (and the
        times it prints) follows the status as it changes, not a poll's interval later."""
        assert self.rest is not None
        since = (read.get("metadata") or {}).get("resourceVersion")
        if not since:
            time.sleep(0.5)
            return
        try:
            for _ in self.rest.watch(kind, SHOP, read["metadata"]["name"], since, seconds):
                return
        except (ApiException, TransportError):  # e.g. 410: read again
            time.sleep(0.1)

    def follow_after(self, final: dict[str, Any]) -> None:
        """Narrate the first measurements after the cycle: did the fix hold?"""
        if not final.get("finishedAt"):
            return
        self.out.title("after the cycle")
        finished, seen = _parse(final["finishedAt"]), set[str]()

        def measured_after() -> bool:
            entropy = self.status("RegenerationCharter", APP).get("entropy") or {}
            if entropy.get("measuredAt") and _parse(entropy["measuredAt"]) > finished:
                self.show_measurement(entropy, seen)
            return len(seen) >= AFTER_MEASUREMENTS

        wait(f"{AFTER_MEASUREMENTS} measurements after the cycle", measured_after, 60)

    def show_choice(self, status: dict[str, Any]) -> None:
        self.out.say(f"  chose {status['chosenStrategy']}; ranked options:")
        for option in (status.get("options") or [])[:3]:
            reasons = "; ".join(option.get("reasons") or [])[:160]
            self.out.say(
                f"    {option['strategy']:<22} score {option.get('score', 0):.3f}  {reasons}"
            )

    def summarise(self, fault_at: float, final: dict[str, Any]) -> Figures:
        self.out.title("summary")
        before, after = final.get("entropyBefore") or {}, final.get("entropyAfter") or {}
        started, finished = final.get("startedAt"), final.get("finishedAt")
        took = (
            (_parse(finished) - _parse(started)).total_seconds() if started and finished else None
        )
        during = [e for e in self.load_lines if final["_seen_at"] <= e["at"] <= final["_ended_at"]]
        sent = sum(e["sent"] for e in during)
        figures = Figures(
            scenario=self.scenario,
            final=final,
            detection_seconds=final["_seen_at"] - fault_at,
            cycle_seconds=took,
            healed_seconds=final["_ended_at"] - fault_at,
            sent=sent,
            answered=sent - sum(e["unanswered"] for e in during),
        )
        rows = [
            ("scenario", self.scenario),
            ("outcome", f"{final.get('phase')}: {final.get('message', '')}"),
            ("strategy", final.get("chosenStrategy")),
            ("detection (fault -> cycle)", f"{figures.detection_seconds:.1f}s"),
            ("cycle duration", f"{took:.0f}s" if took is not None else "?"),
            ("verification", describe_verification(final.get("verification"))),
            (f"fault -> {final.get('phase', '?').lower()}", f"{figures.healed_seconds:.1f}s"),
            ("entropy", f"{before.get('score')} ({before.get('level')}) -> "
                        f"{after.get('score')} ({after.get('level')})"),
            ("health", f"{before.get('healthScore')} -> {after.get('healthScore')}"),
            # The fault's own 5xx answers aside: did the regeneration make the shop unreachable?
            ("requests answered in the cycle", f"{figures.answered}/{sent}" if sent else "n/a"),
            ("trace id", final.get("traceId")),
            ("images running (every pod)", " ".join(sorted(set(self.images().split())))),
        ]  # fmt: skip
        for key, value in rows:
            self.out.line(f"  {key:<30} {value}")
        for entry in during:
            if entry["unanswered"]:
                self.out.say(
                    f"  {entry['unanswered']} requests unanswered in the 5 s before "
                    f"{entry['at'] - self.out.started:.0f}s"
                )
        return figures

    def images(self) -> str:
        """What `kubectl get pods -A -o jsonpath='{..image}'` says: the locally built images."""
        return self.plane.kubectl("get", "pods", "-A", "-o", "jsonpath={..image}").stdout

    def gate_latencies(self, requests: int) -> list[float]:
        """Seconds per `GET /gate/...` answer from the operator, through its Service."""
        url = f"{self.operator_url}/gate/{SHOP}/{APP}"
        timings = []
        for _ in range(requests):
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(url, timeout=5) as answer:
                    answer.read()
            except urllib.error.HTTPError as refused:  # 423: blocked or regenerating
                refused.read()
            timings.append(time.perf_counter() - started)
        return timings

    def run(self, gate_requests: int = 0) -> Figures:
        """The whole demo; the caller stops everything afterwards (``stop``)."""
        self.start_plane()
        self.install_operator()
        self.deploy_shop()
        self.apply_charter()
        fault_at = self.inject()
        final = self.follow(fault_at)
        self.follow_after(final)
        figures = self.summarise(fault_at, final)
        figures.gate_seconds = self.gate_latencies(gate_requests)
        self.write_report()
        return figures

    def write_report(self) -> None:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "weavergen.cli",
                "regeneration",
                "report",
                "--charter",
                f"{SHOP}/{APP}",
                "-o",
                str(self.report),
            ],
            check=True,
            env={**os.environ, **self.plane.env()},
            timeout=60,
        )
        self.out.say(f"report written: {self.report}")

    def stop(self) -> None:
        self.out.title("stopping everything the demo started")
        if self.load is not None and self.load.poll() is None:
            self.load.terminate()
            self.load.wait(10)
        self.plane.down()
        self.out.say("stopped")


def describe_container(pod: dict[str, Any]) -> str:
    """The first container's image (and the image ID containerd runs) and how it is confined."""
    spec, status = pod["spec"], pod.get("status") or {}
    container = spec["containers"][0]
    running = (status.get("containerStatuses") or [{}])[0]
    confined = {**spec.get("securityContext", {}), **container.get("securityContext", {})}
    return (
        f"image {container['image']} ({running.get('imageID', '?')[:26]}...), uid "
        f"{confined.get('runAsUser')}, read-only root {confined.get('readOnlyRootFilesystem')}, "
        f"seccomp {confined.get('seccompProfile', {}).get('type')}, on node {spec.get('nodeName')}"
    )


def describe_verification(found: dict[str, Any] | None) -> str:
    """How the settle after the fix ended (the cycle's status.verification)."""
    if not found:
        return "none (no fix was verified)"
    if found.get("decision") is None:
        return f"the whole settle waited ({found.get('seconds', 0):.0f}s): no request evidence"
    return (
        f"{found['decision']} after {found.get('seconds', 0):.0f}s of settle on "
        f"{found.get('requests')} requests ({found.get('bad')} bad)"
    )


def _parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@contextmanager
def state_dir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="weavergen-demo-") as tmp:
        yield Path(tmp)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=SCENARIOS, default="config-corruption")
    parser.add_argument("--report", type=Path, default=Path("demo-report.html"))
    parser.add_argument("--state", type=Path, help="keep the plane's state here (default: temp)")
    args = parser.parse_args()
    final: dict[str, Any] = {}
    with state_dir(args.state) as state:
        demo = Demo(args.scenario, state, args.report.resolve())
        try:
            final = demo.run().final
        except KeyboardInterrupt:
            demo.out.say("interrupted")
            return 130
        finally:
            demo.stop()
    return 0 if final.get("phase") in ("Succeeded", "Escalated") else 1


if __name__ == "__main__":
    sys.exit(main())
