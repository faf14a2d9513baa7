"""A digital twin of a target system for the simulation engine (pure, in memory).

The twin holds the target's Kubernetes objects (a Deployment and its ConfigMap) and an underlying
cause; the faults its spans show are derived from its state each time it is measured, so the
strategies' real actions (applied to the twin's manifests through ``actions``) change what the
next measurement sees. A changed ConfigMap is config corruption until reset; a bad image until
the template is rolled back or re-applied; a memory leak until the pods restart; a retry storm
from a slow dependency until a replica is added; a failing downstream dependency never heals,
nor does a change to the runtime ConfigMap the pods read through ``envFrom``, which is not one
of the charter's targets (no strategy touches it). The operator sees that change in two of
three twins; in the third it is as hidden as a Secret the operator may not read.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any

from weavergen.domain.measure.measure import Measurement, measure
from weavergen.domain.measure.sequential import Evidence, summary_evidence
from weavergen.domain.measure.summary import ServiceSummary
from weavergen.domain.remedy.actions import RESTARTED_AT, Manifest, key_of
from weavergen.domain.remedy.gitops import Reverting
from weavergen.domain.remedy.inputs import fingerprint
from weavergen.domain.remedy.snapshot import Snapshot, Writes, with_writes
from weavergen.domain.remedy.strategies import CAUSES
from weavergen.domain.simulation.simulator import (
    RENAMES,
    TEMPLATES,
    EntropySimulator,
    Faults,
    SyntheticSystem,
)

GOOD_IMAGE = "registry.local/app:1.4.2"
BAD_IMAGE = "registry.local/app:1.5.0-rc1"
UPGRADE_IMAGE = "registry.local/app:1.5.0-otel2"
GOOD_RUNTIME = {"worker_threads": "16", "log_level": "info"}


class ActionFailed(RuntimeError):
    """A simulated API failure injected into one action."""


@dataclass
class Twin:
    system: SyntheticSystem
    simulator: EntropySimulator
    cause: str | None
    namespace: str = "sim"
    fail_action: str | None = None
    seed: int = 0
    manifests: dict[str, Manifest] = field(default_factory=dict)
    golden_objects: dict[str, Manifest] = field(default_factory=dict)
    history: list[Manifest] = field(default_factory=list)
    leak_active: bool = False
    replicas_at_start: int = 2
    escalations: list[str] = field(default_factory=list)
    measurements: int = 0
    baseline: ServiceSummary | None = None
    # The spans since the last change began to settle, and how many pauses made them.
    settled: ServiceSummary | None = None
    pauses: int = 0
    settled_for: float = 0.0  # simulated seconds since the change began to settle
    # False: the twin tells no request evidence, so a settle waits its whole time (to compare).
    tells_evidence: bool = True
    last_snapshot: Snapshot | None = None
    writes: Writes = field(default_factory=dict)
    # The runtime ConfigMap the pods consume through envFrom: not a target, so not in manifests.
    runtime: dict[str, str] = field(default_factory=lambda: dict(GOOD_RUNTIME))

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        simulator: EntropySimulator,
        cause: str | None,
        seed: int,
        fail_action: str | None = None,
    ) -> Twin:
        if cause is not None and cause not in CAUSES:
            raise ValueError(f"unknown cause {cause!r} (known: {', '.join(CAUSES)})")
        system = simulator.system()
        twin = cls(system, simulator, cause, fail_action=fail_action, seed=seed)
        name = system.service
        deployment = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": twin.namespace},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "containers": [
                            {
                                "name": "app",
                                "image": GOOD_IMAGE,
                                "env": [],
                                "envFrom": [{"configMapRef": {"name": f"{name}-runtime"}}],
                            }
                        ]
                    },
                },
            },
        }
        config = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{name}-config", "namespace": twin.namespace},
            "data": {"timeout_ms": "800", "pool_size": "20", "feature_flags": "checkout_v2"},
        }
        for obj in (deployment, config):
            twin.manifests[key_of(obj)] = obj
        twin.golden_objects = copy.deepcopy(twin.manifests)
        twin.baseline = simulator.summary(system, Faults(), seed)
        twin._inject()
        return twin

    def _inject(self) -> None:
        if self.cause == "config_corruption":
            self.manifests[self._config_key()]["data"]["timeout_ms"] = "1"
        elif self.cause in ("bad_deploy", "semantic_drift_upgrade"):
            image = BAD_IMAGE if self.cause == "bad_deploy" else UPGRADE_IMAGE
            deployment = self.manifests[self._deployment_key()]
            self.history.append(copy.deepcopy(deployment["spec"]["template"]))
            deployment["spec"]["template"]["spec"]["containers"][0]["image"] = image
        elif self.cause == "memory_leak":
            self.leak_active = True
        elif self.cause == "untracked_input_change":
            # Someone edits the runtime ConfigMap and restarts the pods to pick it up.
            self.runtime = {**GOOD_RUNTIME, "worker_threads": "1"}
            deployment = self.manifests[self._deployment_key()]
            self.history.append(copy.deepcopy(deployment["spec"]["template"]))
            template = deployment["spec"]["template"]
            template["metadata"]["annotations"] = {RESTARTED_AT: "2026-11-24T23:59:00Z"}

    def _deployment_key(self) -> str:
        return f"Deployment/{self.namespace}/{self.system.service}"

    def _config_key(self) -> str:
        return f"ConfigMap/{self.namespace}/{self.system.service}-config"

    # -- what the spans show --------------------------------------------------------------

    def faults(self) -> Faults:
        deployment = self.manifests[self._deployment_key()]
        image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        config = self.manifests[self._config_key()]["data"]
        faults = Faults()
        if config != self.golden_objects[self._config_key()]["data"]:
            faults = replace(faults, error_rate=0.3, latency_factor=1.5)
        if image == BAD_IMAGE:
            faults = replace(faults, error_rate=0.35, latency_factor=2.0)
        if image == UPGRADE_IMAGE:
            present = {k for op in self.system.operations for k, _, _ in TEMPLATES[op.kind]}
            renamed = tuple(sorted(present & set(RENAMES)))[:6]
            faults = replace(faults, renamed=renamed, server_error_rate=0.1)
        if self.leak_active:
            faults = replace(
                faults,
                latency_factor=max(faults.latency_factor, 3.0),
                server_error_rate=max(faults.server_error_rate or 0, 0.08),
            )
        if (
            self.cause == "retry_storm_slow_dependency"
            and self._replicas() <= self.replicas_at_start
        ):
            # Callers time out while the slow dependency is retried.
            faults = replace(
                faults,
                retry_share=0.35,
                dependency_latency_factor=3.0,
                dependency_error_rate=0.15,
                server_error_rate=0.08,
            )
        if self.runtime != GOOD_RUNTIME:
            # Latency alone in some twins, errors with it in the others.
            faults = replace(
                faults,
                latency_factor=max(faults.latency_factor, 3.0),
                server_error_rate=0.2 if self.seed % 2 else faults.server_error_rate,
            )
        if self.cause == "failing_downstream_dependency":
            faults = replace(
                faults,
                dependency_error_rate=0.6,
                server_error_rate=max(faults.server_error_rate or 0, 0.3),
            )
        return faults

    def _replicas(self) -> int:
        return int(self.manifests[self._deployment_key()]["spec"]["replicas"])

    def context_flags(self) -> dict[str, Any]:
        """What a gatherer would see in Kubernetes: recent rollout, changed config, restarts,
        and changed inputs outside the targets (hidden in one twin of three)."""
        visible = self.runtime != GOOD_RUNTIME and self.seed % 3 != 0
        return {
            "recent_rollout": bool(self.history),
            "config_changed": self.cause == "config_corruption",
            "restarts": self.leak_active,
            "changed_inputs": (
                (f"ConfigMap {self.system.service}-runtime (envFrom of the Deployment)",)
                if visible
                else ()
            ),
        }

    # -- TargetPort ----------------------------------------------------------------------

    def objects(self) -> dict[str, Manifest]:
        return copy.deepcopy(self.manifests)

    def fingerprint(self) -> str:
        """What ``ClusterTarget.inputs_fingerprint`` would say: the targets and the runtime
        ConfigMap the pods consume."""
        runtime = {
            "kind": "ConfigMap",
            "metadata": {"name": f"{self.system.service}-runtime"},
            "data": self.runtime,
        }
        return fingerprint([*self.manifests.values(), runtime])

    def golden(self) -> dict[str, Manifest]:
        return copy.deepcopy(self.golden_objects)

    def previous_templates(self) -> dict[str, Manifest]:
        return {self._deployment_key(): copy.deepcopy(self.history[-1])} if self.history else {}

    def reverted(self, objects: dict[str, Manifest] | None = None) -> dict[str, Reverting]:
        """The twin is not tracked by any GitOps controller."""
        return {}

    def _maybe_fail(self, action: str) -> None:
        if self.fail_action == action:
            raise ActionFailed(f"simulated API failure during {action}")

    def apply(self, changed: dict[str, Manifest]) -> None:
        self._maybe_fail("apply")
        for key, obj in changed.items():
            before = self.manifests.get(key)
            if before is not None and obj["kind"] == "Deployment":
                old, new = before["spec"]["template"], obj["spec"]["template"]
                if old != new:
                    self.history.append(copy.deepcopy(old))
                    self.leak_active = False  # new pods: the leak starts over
                restarted = (new.get("metadata") or {}).get("annotations", {}) or {}
                if RESTARTED_AT in restarted or obj["spec"].get("replicas") == 0:
                    self.leak_active = False
            self.manifests[key] = copy.deepcopy(obj)

    def recreate_pods(self) -> None:
        self._maybe_fail("recreate_pods")
        self.leak_active = False

    def wait_rollout(self, timeout_seconds: int) -> bool:
        return True

    def begin_settling(self) -> float:
        self.settled = ServiceSummary(self.system.service)
        self.settled_for = 0.0
        return float(self.measurements)  # the twin's clock counts measurements

    def pause(self, seconds: float) -> None:
        """Simulated time: the spans of ``seconds`` of the system as it is now."""
        if self.settled is not None and seconds > 0:
            self.pauses += 1
            self.settled_for += seconds
            self.settled.merge(
                self.simulator.summary(
                    self.system, self.faults(), self.seed + 7919 * self.pauses, window_s=seconds
                )
            )

    def settled_seconds(self) -> float:
        return self.settled_for

    def request_evidence(self, threshold_ms: float) -> Evidence | None:
        if self.settled is None or not self.tells_evidence:
            return None
        return summary_evidence(self.settled, threshold_ms)

    def measure(self) -> Measurement:
        assert self.baseline is not None
        self.measurements += 1
        current = self.simulator.summary(self.system, self.faults(), self.seed + self.measurements)
        objectives = self.simulator.objectives(self.system)
        return measure(current, self.baseline, objectives=objectives)

    def snapshot(self) -> Snapshot:
        self._maybe_fail("snapshot")
        self.last_snapshot = Snapshot.take(self.manifests)
        return self.last_snapshot

    def saved_snapshot(self) -> Snapshot | None:
        return self.last_snapshot

    def record_writes(self, prints: dict[str, str]) -> None:
        self.writes = with_writes(self.writes, prints)

    def recorded_writes(self) -> Writes:
        return self.writes

    def restore(self, snapshot: Snapshot) -> None:
        snapshot.verify()
        for key, obj in snapshot.objects.items():
            self.manifests[key] = copy.deepcopy(obj)

    def escalate(self, reason: str) -> None:
        self.escalations.append(reason)

    def check_dependencies(self) -> dict[str, Any]:
        return {"failing": self.cause == "failing_downstream_dependency"}

    def rebaseline_validation(self) -> None:
        return None

    def now(self) -> str:
        return f"2026-11-25T00:00:{self.measurements:02d}Z"
