"""End to end with the real demo shop on a real node: the operator installed by its Helm chart
and the shop, an OTel-instrumented service under load, both containers of the image built from
the repository's Dockerfile, run by a kubelet under a restricted security context. The shop
exports its spans to the operator's Service; the load reaches the shop through its Service
(kube-proxy); faults are injected the way they happen in production."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from hack.localplane.plane import Plane
from hack.localplane.release import Release
from tests.integration.conftest import await_status, measured_again, one_of, wait_for
from tests.scenario import condition
from weavergen.api.charter import RegenerationCharterSpec
from weavergen.demo.manifests import (
    APP,
    BAD_RELEASE_PATCH,
    CONFIG,
    CORRUPT_CONFIG,
    GOOD_CONFIG,
    PAYMENTS,
    RUNTIME,
    charter,
    shop_manifests,
)
from weavergen.domain.remedy.snapshot import Snapshot
from weavergen.domain.remedy.strategies import strategy
from weavergen.domain.times import parse_time
from weavergen.k8s.jobs import journal_name
from weavergen.k8s.rest import Rest
from weavergen.k8s.targets import Targets

FINAL = ("Succeeded", "RolledBack", "Failed", "Escalated", "NotNeeded")
pytestmark = pytest.mark.real_node


@dataclass(frozen=True)
class OperatorLog:
    """Where the operator's log is saved when the test ends (for failure messages)."""

    release: Release
    path: Path

    def save(self) -> None:
        self.path.write_text(self.release.logs())

    def __str__(self) -> str:
        return f"operator log: {self.path}, saved when the test ends"


@dataclass
class Shop:
    plane: Plane
    rest: Rest
    namespace: str
    operator: OperatorLog
    load: subprocess.Popen[str] | None = None
    load_lines: list[dict[str, Any]] = field(default_factory=list)

    def apply(self, *objects: dict[str, Any]) -> None:
        self.plane.apply(self.namespace, *objects)

    def patch_config(self, name: str, data: dict[str, str]) -> None:
        self.plane.kubectl(
            "patch", "configmap", name, "-n", self.namespace, "--type=merge",
            "-p", json.dumps({"data": data}),
        )  # fmt: skip

    def healthy(self, **charter_options: Any) -> dict[str, Any]:
        """Apply the charter; wait for a LOW measurement and the known-good snapshot."""
        applied = charter(self.namespace, **charter_options)
        self.apply(applied)
        await_status(
            self.rest,
            self.namespace,
            "RegenerationCharter",
            APP,
            lambda s: s.get("entropy", {}).get("level") == "low",
            timeout=90,
            what=f"a healthy measurement (operator log: {self.operator})",
        )
        wait_for(
            lambda: self.rest.get("ConfigMap", self.namespace, f"{APP}-golden"),
            60,
            what="the known-good snapshot",
        )
        return applied

    def final_cycles(self, count: int, timeout: float = 240) -> list[dict[str, Any]]:
        def finished() -> list[dict[str, Any]] | None:
            cycles = self.rest.list("RegenerationCycle", self.namespace)
            done = [c for c in cycles if (c.get("status") or {}).get("phase") in FINAL]
            return done if len(done) >= count else None

        found = wait_for(finished, timeout, what=f"{count} finished cycle(s) ({self.operator})")
        assert isinstance(found, list)
        return sorted(found, key=lambda c: c["metadata"]["creationTimestamp"])

    def pod_events(self, since: float) -> list[str]:
        """The shop's pods' events from ``since`` (wall clock) on, in seconds after it."""
        found = []
        for event in self.rest.list("Event", self.namespace):
            stamp = parse_time(event.get("lastTimestamp"))
            at = stamp.replace(tzinfo=UTC).timestamp() if stamp else None
            involved = event.get("involvedObject") or {}
            if at is not None and at >= since - 1 and involved.get("kind") == "Pod":
                found.append((at - since, f"{event.get('reason')} {involved.get('name')}"))
        return [f"{what} at {at:+.0f} s" for at, what in sorted(found)]

    def targets(self, spec: dict[str, Any]) -> Targets:
        target = RegenerationCharterSpec.model_validate(spec["spec"]).target
        return Targets(self.rest, self.namespace, target)


# Shops running at once, across the session's workers: each is an operator, a shop and 30
# requests/s of load on the one node; four at once on 2 cores make every request slow, and a
# latency objective judges that for what it is.
SHOPS_AT_ONCE = 2


COLLECTOR_SAMPLING_PERCENTAGE = 25
# Indirect parameter of ``shop``: the chart's OpenTelemetry Collector (the image of the
# distribution built from Go modules) between them; the shop exports to the Collector, which
# forwards a consistent 25% sample of its traces to the operator.
BEHIND_A_COLLECTOR = (
    "--set", "collector.enabled=true",
    "--set", f"collector.samplingPercentage={COLLECTOR_SAMPLING_PERCENTAGE}",
    "--set", "collector.image.pullPolicy=Never",
)  # fmt: skip


@pytest.fixture
def shop(
    request: pytest.FixtureRequest,
    plane: Plane,
    api: client.ApiClient,
    namespace: str,
    tmp_path: Path,
    *,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Shop]:
    """The operator (a release of the chart of its own, watching the test's namespace), the
    shop exporting spans to it, and 30 requests/s of load; an indirect parameter gives the
    release more chart values (``BEHIND_A_COLLECTOR``)."""
    values: tuple[str, ...] = getattr(request, "param", ())
    with one_of(SHOPS_AT_ONCE, tmp_path_factory.getbasetemp().parent, "shop"):
        release = Release.beside(plane, namespace)
        operator = OperatorLog(release, tmp_path / "operator.log")
        running = Shop(plane, Rest(api), namespace, operator)
        try:
            release.install([namespace], *values)
            collector = "collector.enabled=true" in values
            endpoint = release.collector_url() if collector else release.url()
            running.apply(*shop_manifests(namespace=namespace, otlp_endpoint=endpoint))
            plane.kubectl("rollout", "status", f"deploy/{APP}", "-n", namespace, "--timeout=120s")
            yield from _under_load(running, plane.service_url(namespace, APP))
        finally:
            operator.save()
            release.remove()


def _under_load(running: Shop, url: str) -> Iterator[Shop]:
    running.load = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "weavergen.cli",
            "demo",
            "load",
            "--url",
            url,
            "--rps",
            "30",
            "--report-every",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )

    def read() -> None:
        assert running.load is not None and running.load.stdout is not None
        for line in running.load.stdout:
            running.load_lines.append({**json.loads(line), "at": time.monotonic()})

    threading.Thread(target=read, daemon=True).start()
    try:
        yield running
    finally:
        running.load.terminate()
        running.load.wait(10)


def test_a_corrupted_config_is_healed_and_the_shop_stays_reachable(shop: Shop) -> None:
    shop.healthy()
    faulted, faulted_at = time.monotonic(), time.time()
    shop.patch_config(CONFIG, CORRUPT_CONFIG)
    (cycle,) = shop.final_cycles(1)
    status = cycle["status"]
    assert status["phase"] == "Succeeded", (status.get("message"), str(shop.operator))
    assert status["chosenStrategy"] in ("partial-regeneration", "semantic-refresh")
    assert status["entropyBefore"]["level"] in ("medium", "high", "critical")
    assert status["entropyAfter"]["level"] == "low"
    assert (shop.rest.get("ConfigMap", shop.namespace, CONFIG) or {})["data"] == GOOD_CONFIG
    # From the fault on: the cycle's restarts never take the shop away. Before it, the load
    # began as the shop's Service was new, which kube-proxy on a busy node may not yet route.
    since_fault = [e for e in shop.load_lines if e["at"] > faulted]
    sent = sum(e["sent"] for e in since_fault)
    unanswered = sum(e["unanswered"] for e in since_fault)
    gaps = [
        f"{e['unanswered']} of {e['sent']} ({e.get('unanswered_by')}) at {e['at'] - faulted:+.1f} s"
        for e in since_fault
        if e["unanswered"]
    ]
    assert sent > 0 and unanswered / sent <= 0.01, "\n".join(
        ["unanswered after the fault:", *gaps, "the pods:", *shop.pod_events(since=faulted_at)]
    )


@pytest.mark.parametrize("shop", [BEHIND_A_COLLECTOR], indirect=True, ids=["collector"])
def test_a_corrupted_config_is_healed_through_a_collector_forwarding_a_quarter_of_traces(
    shop: Shop,
) -> None:
    """The telemetry pipeline users run: the shop exports to an OpenTelemetry Collector whose
    probabilistic sampler forwards a quarter of the traces. The operator measures the sample
    for what it represents (the sampler's threshold on each span), and heals the fault."""
    shop.healthy()
    healthy = measured_again(shop.rest, shop.namespace, APP)
    sampled = healthy["entropy"]
    assert sampled["samplingRatio"] == pytest.approx(COLLECTOR_SAMPLING_PERCENTAGE / 100, rel=0.01)
    shop.patch_config(CONFIG, CORRUPT_CONFIG)
    (cycle,) = shop.final_cycles(1)
    status = cycle["status"]
    charter = shop.rest.get("RegenerationCharter", shop.namespace, APP) or {}
    assert status["phase"] == "Succeeded", (
        status.get("message"),
        cycle["spec"].get("reason"),
        status.get("entropyBefore"),
        (charter.get("status") or {}).get("incident"),
        str(shop.operator),
    )
    assert status["entropyAfter"]["level"] == "low"
    assert (shop.rest.get("ConfigMap", shop.namespace, CONFIG) or {})["data"] == GOOD_CONFIG


def test_a_bad_deploy_is_healed_by_rolling_it_back(shop: Shop) -> None:
    """Half the requests of the bad release fail and it renames attributes: whichever remedy
    ranks first, the release running afterwards is the good one."""
    shop.healthy()
    shop.plane.kubectl(
        "patch", "deployment", APP, "-n", shop.namespace, "--type=json",
        "-p", json.dumps(BAD_RELEASE_PATCH),
    )  # fmt: skip
    (cycle,) = shop.final_cycles(1)
    status = cycle["status"]
    assert status["phase"] == "Succeeded", (status.get("message"), str(shop.operator))
    # Rolled back to the release before, or to the known-good manifests: either undoes it.
    undoes = {"rollout_undo", "reapply_golden_manifests"}
    assert undoes & set(strategy(status["chosenStrategy"]).actions), status["chosenStrategy"]
    deployment = shop.rest.get("Deployment", shop.namespace, APP) or {}
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--version=1.0.0" in args


def test_a_failing_dependency_is_escalated_once_and_the_charter_holds(shop: Shop) -> None:
    """The payments dependency fails for four minutes: nothing in the shop can fix that. One
    cycle escalates without changing anything; then the charter holds, Escalated, for as long
    as the evidence stays the same, and starts no other cycle."""
    spec = shop.healthy(executor="inline")
    before = Snapshot.take(shop.targets(spec).objects())
    shop.patch_config(PAYMENTS, {"errorRate": "0.9"})
    faulted = time.monotonic()
    (cycle,) = shop.final_cycles(1)
    assert cycle["status"]["phase"] == "Escalated", cycle["status"].get("message")
    assert cycle["status"]["chosenStrategy"] == "observe-escalate"
    held = await_status(
        shop.rest,
        shop.namespace,
        "RegenerationCharter",
        APP,
        lambda s: condition(s, "Escalated") == "True",
        timeout=60,
        what=f"the charter to say it is Escalated ({shop.operator})",
    )
    assert held["incident"]["escalated"]["cycle"] == cycle["metadata"]["name"]
    time.sleep(max(0.0, 240 - (time.monotonic() - faulted)))  # four minutes of the same fault
    still = measured_again(shop.rest, shop.namespace, APP)
    assert condition(still, "Degraded") == "True" and condition(still, "Escalated") == "True"
    assert len(shop.rest.list("RegenerationCycle", shop.namespace)) == 1
    assert condition(still, "CircuitOpen") == "False"  # held by the incident, not the breaker
    assert Snapshot.take(shop.targets(spec).objects()).sha256 == before.sha256  # untouched
    events = json.loads(
        shop.plane.kubectl("get", "events", "-n", shop.namespace, "-o", "json").stdout
    )
    on_charter = [
        e
        for e in events["items"]
        if e["reason"] == "Escalated" and e["involvedObject"]["kind"] == "RegenerationCharter"
    ]
    assert len(on_charter) == 1, on_charter  # and one on the cycle, when it ended


def test_a_fault_outside_the_targets_is_escalated_naming_the_changed_config_map(
    shop: Shop,
) -> None:
    """Someone slows the shop down past its latency objective through its runtime ConfigMap,
    which the charter does not list, and rolls it out. No fix of the targets can hold: at most
    two are tried, each rolled back, then one cycle escalates naming that ConfigMap, and the
    charter holds."""
    shop.healthy(executor="inline")
    shop.patch_config(RUNTIME, {"EXTRA_LATENCY_MS": "400"})  # past the 250 ms objective
    shop.plane.kubectl("rollout", "restart", f"deployment/{APP}", "-n", shop.namespace)
    escalated = await_status(
        shop.rest,
        shop.namespace,
        "RegenerationCharter",
        APP,
        lambda s: bool((s.get("incident") or {}).get("escalated")) and not s.get("activeCycle"),
        timeout=420,
        what=f"the incident to be escalated ({shop.operator})",
    )
    still = measured_again(shop.rest, shop.namespace, APP, times=3)
    cycles = sorted(
        shop.rest.list("RegenerationCycle", shop.namespace),
        key=lambda c: c["metadata"]["creationTimestamp"],
    )
    phases = [(c["status"]["chosenStrategy"], c["status"]["phase"]) for c in cycles]
    assert sum(strategy(name).mutating for name, _ in phases) <= 2, phases
    assert [phase for _, phase in phases].count("Escalated") == 1, phases
    assert phases[-1] == ("observe-escalate", "Escalated"), phases
    assert all(phase in ("RolledBack", "Escalated") for _, phase in phases), phases
    message = cycles[-1]["status"]["message"]
    assert f"ConfigMap {RUNTIME} (envFrom of Deployment/{APP})" in message, message
    assert any(RUNTIME in suspect for suspect in escalated["incident"]["suspects"])
    assert condition(still, "Escalated") == "True"
    assert len(shop.rest.list("RegenerationCycle", shop.namespace)) == len(cycles)


def test_a_fix_that_fails_verification_is_rolled_back_byte_identical(shop: Shop) -> None:
    """A person forces a restart onto a corrupted config: it cannot hold, so the cycle rolls
    back, and every target object is exactly as it was before the cycle."""
    spec = shop.healthy(trigger_mode="manual")
    shop.patch_config(CONFIG, CORRUPT_CONFIG)
    await_status(
        shop.rest,
        shop.namespace,
        "RegenerationCharter",
        APP,
        lambda s: s.get("entropy", {}).get("level") in ("medium", "high", "critical"),
        timeout=60,
        what="the fault measured",
    )
    pre_cycle = Snapshot.take(shop.targets(spec).objects())
    shop.apply(
        {
            "apiVersion": "regeneration.weavergen.io/v1alpha1",
            "kind": "RegenerationCycle",
            "metadata": {"name": "forced-restart"},
            "spec": {
                "charterRef": {"name": APP},
                "reason": "trying a restart",
                "strategy": "agent-reset",
            },
        }
    )
    (cycle,) = shop.final_cycles(1)
    status = cycle["status"]
    assert status["phase"] == "RolledBack", (status.get("message"), str(shop.operator))
    assert "did not meet the success criteria" in status["message"]
    assert status["snapshot"]["sha256"] == pre_cycle.sha256
    assert Snapshot.take(shop.targets(spec).objects()).sha256 == pre_cycle.sha256
    assert (shop.rest.get("ConfigMap", shop.namespace, CONFIG) or {})["data"] == CORRUPT_CONFIG


def test_a_persons_edit_during_the_cycle_is_detected_and_never_overwritten(shop: Shop) -> None:
    """While a forced restart settles, someone fixes the ConfigMap by hand. The restart does
    not meet the criteria within its window, and the rollback would undo that person's edit:
    the operator restores nothing and fails the cycle, naming the edited object."""
    shop.healthy(trigger_mode="manual")
    shop.patch_config(CONFIG, CORRUPT_CONFIG)
    await_status(
        shop.rest,
        shop.namespace,
        "RegenerationCharter",
        APP,
        lambda s: s.get("entropy", {}).get("level") in ("medium", "high", "critical"),
        timeout=60,
        what="the fault measured",
    )
    shop.apply(
        {
            "apiVersion": "regeneration.weavergen.io/v1alpha1",
            "kind": "RegenerationCycle",
            "metadata": {"name": "forced-restart"},
            "spec": {
                "charterRef": {"name": APP},
                "reason": "try a restart",
                "strategy": "agent-reset",
            },
        }
    )
    wait_for(
        lambda: any(
            r["name"] == "implement"
            for r in (shop.rest.get("RegenerationCycle", shop.namespace, "forced-restart") or {})
            .get("status", {})
            .get("phases", [])
        ),
        120,
        what="Implement to start",
    )
    wait_for(  # the restart is written (journaled after the write): the cycle is settling
        lambda: (
            shop.rest.get("ConfigMap", shop.namespace, journal_name("forced-restart")) or {}
        ).get("data"),
        120,
        what="the restart to be written",
    )
    by_hand = {**CORRUPT_CONFIG, "errorRate": "0.3", "note": "fixed by hand"}
    shop.patch_config(CONFIG, by_hand)
    (cycle,) = shop.final_cycles(1)
    status = cycle["status"]
    assert status["phase"] == "Failed", (status.get("message"), str(shop.operator))
    assert f"ConfigMap/{shop.namespace}/{CONFIG} was changed by someone else" in status["message"]
    assert (shop.rest.get("ConfigMap", shop.namespace, CONFIG) or {})["data"] == by_hand


def test_a_shop_scaled_to_zero_by_hand_goes_silent_and_a_cycle_starts(shop: Shop) -> None:
    """Silence is evidence: the shop stops answering (scaled to zero, so no pod is even
    failing); its spans stop. The charter is Degraded by a silent throughput drop at HIGH or
    worse, not InsufficientData, and a cycle starts that names the drop."""
    shop.healthy()
    shop.plane.kubectl("scale", "deployment", APP, "-n", shop.namespace, "--replicas=0")
    silent = await_status(
        shop.rest,
        shop.namespace,
        "RegenerationCharter",
        APP,
        lambda s: any(
            i["type"] == "throughput_drop" and "silent=True" in i["summary"]
            for i in (s.get("entropy") or {}).get("indicators") or []
        ),
        timeout=120,
        what=f"the silence to be measured ({shop.operator})",
    )
    assert silent["entropy"]["level"] in ("high", "critical"), silent["entropy"]
    assert condition(silent, "InsufficientData") == "False"
    cycles = wait_for(
        lambda: shop.rest.list("RegenerationCycle", shop.namespace),
        60,
        what=f"a cycle for the silent shop ({shop.operator})",
    )
    assert isinstance(cycles, list)
    first = cycles[0]
    if "throughput_drop" not in first["spec"]["reason"]:
        # The shop degraded on its way down (slow answers as it stopped) and a cycle started
        # on that before the silence filled the window; a charter runs one cycle at a time.
        started = parse_time(first["metadata"]["creationTimestamp"])
        measured = parse_time(silent["entropy"]["measuredAt"])
        assert started is not None and measured is not None
        assert started <= measured, (first["spec"], silent["entropy"])
