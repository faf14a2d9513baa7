"""The target as the Implement phase sees it: an interface two worlds implement.

The Kubernetes layer implements it against the API server; the simulation twin implements it in
memory. Workflow operators are written once against this interface.
"""

from __future__ import annotations

from typing import Any, Protocol

from weavergen.domain.measure.measure import Measurement
from weavergen.domain.measure.sequential import Evidence
from weavergen.domain.remedy.actions import Manifest
from weavergen.domain.remedy.gitops import Reverting
from weavergen.domain.remedy.snapshot import Snapshot, Writes


class TargetPort(Protocol):
    def objects(self) -> dict[str, Manifest]:
        """The target objects now, by ``Kind/namespace/name``."""

    def golden(self) -> dict[str, Manifest]:
        """The known-good snapshot's objects (the baseline's)."""

    def previous_templates(self) -> dict[str, Manifest]:
        """Each workload's previous pod template (for rollout undo)."""

    def reverted(self, objects: dict[str, Manifest] | None = None) -> dict[str, Reverting]:
        """The target objects (``objects`` if already read) a GitOps controller reverts
        changes to, by key."""

    def apply(self, changed: dict[str, Manifest]) -> None:
        """Write changed objects (already planned by ``actions``)."""

    def record_writes(self, prints: dict[str, str]) -> None:
        """Remember, durably where the target can, object states this cycle writes: before a
        write (a process may die before it knows it landed) and after (as stored)."""

    def recorded_writes(self) -> Writes:
        """Every state recorded by ``record_writes`` in this cycle, also after a restart."""

    def recreate_pods(self) -> None: ...

    def wait_rollout(self, timeout_seconds: int) -> bool: ...

    def begin_settling(self) -> float:
        """From now on, what the target serves is the change's result; returns when that
        is (seconds since the epoch)."""

    def request_evidence(self, threshold_ms: float) -> Evidence | None:
        """The requests served since ``begin_settling``, and how many failed or were slower
        than ``threshold_ms``; None when the telemetry cannot tell requests since a moment."""

    def pause(self, seconds: float) -> None:
        """Let ``seconds`` pass (a settle's wait between two looks at the evidence)."""

    def settled_seconds(self) -> float:
        """Seconds since ``begin_settling``, by the target's clock."""

    def measure(self) -> Measurement:
        """A fresh measurement (``as_dict`` is its DESIGN.md 5 JSON form)."""

    def snapshot(self) -> Snapshot:
        """Take (and keep, where the target can) a snapshot of the target objects."""

    def saved_snapshot(self) -> Snapshot | None:
        """The snapshot this cycle took earlier, also after a restart; None if none."""

    def restore(self, snapshot: Snapshot) -> None: ...

    def escalate(self, reason: str) -> None: ...

    def check_dependencies(self) -> dict[str, Any]: ...

    def rebaseline_validation(self) -> None: ...

    def now(self) -> str: ...
