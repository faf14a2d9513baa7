"""The workflow operators (BPMN service tasks), written once against a ``TargetPort``.

Bound to the Kubernetes target they act on a cluster; bound to the simulation twin, on its
in-memory objects. Workflow data stays JSON (it is serialised after every step), so the
snapshot itself stays with the target's caller and only its hash travels in the data.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from weavergen.api.charter import SuccessCriteriaSpec
from weavergen.domain.measure.health import DEFAULT_OBJECTIVES, Objectives
from weavergen.domain.measure.judge import judge
from weavergen.domain.measure.measure import DEFAULT_MIN_SPANS
from weavergen.domain.measure.sequential import Decision, Evidence, SequentialTest
from weavergen.domain.remedy.actions import PLANNERS, ActionInput, plan_action
from weavergen.domain.remedy.kinds import autoscaled_as
from weavergen.domain.remedy.port import TargetPort
from weavergen.domain.remedy.snapshot import (
    Snapshot,
    SnapshotIntegrityError,
    TargetEdited,
    edits_by_others,
    fingerprints,
)
from weavergen.domain.remedy.vocabulary import ACTIONS
from weavergen.workflows.registry import ServiceRegistry

log = logging.getLogger(__name__)


def validation_registry() -> ServiceRegistry:
    """Every operator name with its parameters, for validating workflows; none may run."""

    def refuse(params: dict[str, Any], data: dict[str, Any]) -> None:
        raise RuntimeError("a validation registry does not run workflows")

    registry = ServiceRegistry()
    for name in ACTIONS:
        registry.register(name, refuse)
    return registry


def _verification(
    test: SequentialTest,
    evidence: Evidence,
    since: float,
    seconds: float,
    measured: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """How a sequential settle ended (workflow data: JSON): ``Pass`` with the measurement that
    met the criteria, ``Fail``, or ``Continue`` when it ran to its end."""
    decision = test.decide(evidence)
    if decision is Decision.PASS and measured is None:
        decision = Decision.CONTINUE  # the requests passed, the measurement did not
    record = {
        "seconds": round(seconds, 1),
        "since": since,
        "decision": decision.value,
        **evidence.as_dict(),
        "measured": measured is not None,
        "summary": test.describe(evidence) + f" after {seconds:.1f} s",
    }
    return {"verification": record, **({"measurement_after": measured} if measured else {})}


# Between two looks at the requests since a fix (benchmarks.verification: every 0.5 s and every
# 1 s heal and roll back the same scenarios; every 0.25 s, 5 fewer good fixes in 300 on one seed).
POLL_SECONDS = 0.5
# Between two measurements of a settle whose requests passed but whose measurement did not
# meet the criteria yet (each reads the receiver, the baseline, the objects and the pods); at
# least MEASURE_SOON_SECONDS while the window since the fix is still too small to measure.
MEASURE_AGAIN_SECONDS = 3.0
MEASURE_SOON_SECONDS = 1.0


class RollbackFailed(RuntimeError):
    """Live objects still differ from the snapshot after restoring it."""


class Operators:
    """Operator implementations for one cycle; holds the cycle's snapshot."""

    def __init__(
        self,
        target: TargetPort,
        criteria: SuccessCriteriaSpec,
        objectives: Objectives = DEFAULT_OBJECTIVES,
        min_spans: int = DEFAULT_MIN_SPANS,
    ) -> None:
        self.target = target
        self.criteria = criteria
        self.objectives = objectives
        self.min_spans = min_spans  # the fewest spans a window is measured on
        self.snapshot: Snapshot | None = None
        self.calls: list[str] = []

    def registry(self) -> ServiceRegistry:
        """Every operator bound to this cycle's target."""
        registry = ServiceRegistry()
        for name in ACTIONS:
            fn = self._planned(name) if name in PLANNERS else getattr(self, name)
            registry.register(name, self._timed(name, fn))
        return registry

    def _timed(self, name: str, fn: Any) -> Any:
        """``fn``, logging how long it took (wall clock): where Implement's time goes."""

        def run(params: dict[str, Any], data: dict[str, Any]) -> Any:
            started = time.monotonic()
            try:
                return fn(params, data)
            finally:
                log.info("%s took %.2f s", name, time.monotonic() - started)

        return run

    def _planned(self, action: str) -> Any:
        def run(params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
            self.calls.append(action)
            g = self.target
            changed = plan_action(
                action,
                ActionInput(g.objects(), g.golden(), g.previous_templates(), params, g.now()),
            )
            # What the operator itself writes, so a rollback can tell its own changes from
            # others': recorded before the write and again as the API server stored it.
            g.record_writes(fingerprints(changed))
            g.apply(changed)
            after = g.objects()
            g.record_writes(fingerprints({k: after[k] for k in changed if k in after}))
            return {f"changed_by_{action}": sorted(changed)}

        return run

    def snapshot_targets(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        self.calls.append("snapshot_targets")
        # A resumed Implement (its Job's pod died) finds its first snapshot: the target may carry
        # this cycle's own partial changes, so only a first run holds it to the plan's basis.
        if self.target.saved_snapshot() is None:
            edited = edits_by_others(data.get("basis") or {}, self.target.objects(), {})
            if edited:
                raise TargetEdited(
                    f"{'; '.join(edited)} since the plan was made (someone else's edit): "
                    "the cycle stops without changing anything"
                )
        self.snapshot = self.target.snapshot()
        return {
            "snapshot_sha256": self.snapshot.sha256,
            "snapshot_objects": len(self.snapshot.objects),
        }

    def _taken(self) -> Snapshot | None:
        """This cycle's snapshot, from memory or, after a restart, from the target."""
        if self.snapshot is None:
            self.snapshot = self.target.saved_snapshot()
        return self.snapshot

    def _to_restore(self, data: dict[str, Any]) -> Snapshot | None:
        """The snapshot to roll back to: refused unless it is the one this cycle took.

        The workflow data keeps the SHA-256 of the snapshot taken before the changes
        (``snapshot_sha256`` in a strategy, ``snapshot.sha256`` in the cycle). A stored snapshot
        that is gone, or was replaced whole by another self-consistent one, is an integrity
        failure, not "nothing to restore".
        """
        snapshot = self._taken()
        recorded = data.get("snapshot")
        taken = data.get("snapshot_sha256") or (
            recorded.get("sha256") if isinstance(recorded, dict) else None
        )
        if taken and snapshot is None:
            raise SnapshotIntegrityError(
                f"the snapshot taken before the changes ({str(taken)[:12]}) is gone: "
                "refused for restore, nothing was restored"
            )
        if taken and snapshot is not None and snapshot.sha256 != taken:
            raise SnapshotIntegrityError(
                f"the stored snapshot {snapshot.sha256[:12]} is not the one the cycle took "
                f"({str(taken)[:12]}): refused for restore, nothing was restored"
            )
        return snapshot

    def verify_snapshot(self, params: dict[str, Any], data: dict[str, Any]) -> None:
        self.calls.append("verify_snapshot")
        snapshot = self._taken()
        if snapshot is None:
            raise RuntimeError("no snapshot was taken")
        snapshot.verify()

    def recreate_pods(self, params: dict[str, Any], data: dict[str, Any]) -> None:
        self.calls.append("recreate_pods")
        self.target.recreate_pods()

    def wait_rollout(self, params: dict[str, Any], data: dict[str, Any]) -> None:
        self.calls.append("wait_rollout")
        timeout = int(params.get("timeout_seconds", 300))
        if not self.target.wait_rollout(timeout):
            raise TimeoutError(f"rollout not complete after {timeout}s")

    def settle(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        """Wait at most ``seconds`` (by the target's clock) for the change's result, looking
        at the requests served since it every ``POLL_SECONDS``: stop once the sequential test
        fails them, or passes them and a measurement meets the success criteria (see
        `sequential`). Without request evidence (spans from a ConfigMap) or a latency
        threshold, wait the whole time."""
        self.calls.append("settle")
        seconds = float(params.get("seconds", 30))
        since = self.target.begin_settling()
        threshold = data.get("latency_threshold_ms") or self.objectives.latency_threshold_ms
        test = SequentialTest.for_objectives(self.objectives)
        next_at, wanted = 0.0, 0
        while threshold:
            evidence = self.target.request_evidence(float(threshold))
            if evidence is None:
                break
            decision = test.decide(evidence)
            settled = self.target.settled_seconds()
            if decision is Decision.PASS and evidence.requests >= wanted and settled >= next_at:
                measurement = self.target.measure()
                after = measurement.as_dict()
                verdict = judge(after, float(data.get("entropy_before", 1.0)), self.criteria)
                if verdict.met:
                    return _verification(test, evidence, since, settled, after)
                # Why verification goes on although the requests pass, in the phase's log.
                log.info(
                    "%.1f s after the change, %d requests pass; the measurement does not: %s",
                    settled,
                    evidence.requests,
                    "; ".join(verdict.reasons),
                )
                next_at, wanted = settled + MEASURE_AGAIN_SECONDS, 0
                if measurement.insufficient == "window" and measurement.span_count:
                    # Too few spans since the fix: measured again once the requests would make
                    # enough of them at the spans per request seen (an overestimate: the
                    # window holds spans newer than the evidence), a second later at the soonest.
                    next_at = settled + MEASURE_SOON_SECONDS
                    wanted = max(
                        evidence.requests + 1,
                        math.ceil(evidence.requests * self.min_spans / measurement.span_count),
                    )
            if decision is Decision.FAIL or settled >= seconds:
                return _verification(test, evidence, since, settled)
            self.target.pause(min(POLL_SECONDS, seconds - settled))
        self.target.pause(max(0.0, seconds - self.target.settled_seconds()))
        return {"verification": {"seconds": seconds, "since": since, "decision": None}}

    def remeasure(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        """A fresh measurement, unless the settle just took the one it passed on."""
        self.calls.append("remeasure")
        if (data.get("verification") or {}).get("measured"):
            return {}
        return {"measurement_after": self.target.measure().as_dict()}

    def verify_success_criteria(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        """The success criteria on the measurement after; a sequential test that failed the
        requests since the fix fails them whatever that measurement says."""
        self.calls.append("verify_success_criteria")
        verdict = judge(
            data.get("measurement_after") or {},
            float(data.get("entropy_before", 1.0)),
            self.criteria,
        )
        verification = data.get("verification") or {}
        if verification.get("decision") == Decision.FAIL:
            return {"criteria_met": False, "verdict": [verification["summary"]]}
        if verification.get("decision") == Decision.PASS and verdict.met:
            return {"criteria_met": True, "verdict": [*verdict.reasons, verification["summary"]]}
        return {"criteria_met": verdict.met, "verdict": verdict.reasons}

    def check_dependencies(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        self.calls.append("check_dependencies")
        return {"dependencies": self.target.check_dependencies()}

    def escalate(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        self.calls.append("escalate")
        reason = str(params.get("reason") or "no safe remedy for the observed symptoms")
        self.target.escalate(reason)
        return {"escalated": reason}

    def rebaseline_validation(self, params: dict[str, Any], data: dict[str, Any]) -> None:
        self.calls.append("rebaseline_validation")
        self.target.rebaseline_validation()

    def restore_snapshot(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        self.calls.append("restore_snapshot")
        started = self.target.now()
        snapshot = self._to_restore(data)
        if snapshot is None:
            return {"restored": False}
        # Only what the snapshot held or what this cycle wrote may be overwritten; anything
        # else is a person's edit during the cycle, and restoring would undo it blindly.
        live = autoscaled_as(snapshot.objects, self.target.objects())
        edited = edits_by_others(
            fingerprints(snapshot.objects), live, self.target.recorded_writes()
        )
        if edited:
            raise TargetEdited(
                f"{'; '.join(edited)} by someone else during the cycle: nothing was "
                "restored, so that edit stands; check the target and restore by hand if needed"
            )
        self.target.restore(snapshot)
        return {"restored": True, "rollback": self._rollback_record(snapshot, data, started)}

    def verify_restored(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        self.calls.append("verify_restored")
        snapshot = self._to_restore(data)
        if snapshot is None:
            return {"restore_verified": True}
        record = self._rollback_record(snapshot, data, self.target.now())
        if not record["verified"]:
            raise RollbackFailed("live objects differ from the snapshot after the restore")
        return {"restore_verified": True, "rollback": record}

    def _rollback_record(
        self, snapshot: Snapshot, data: dict[str, Any], started: str
    ) -> dict[str, Any]:
        """What was restored, from which snapshot, when, and whether live state matches it."""
        return {
            "startedAt": (data.get("rollback") or {}).get("startedAt") or started,
            "finishedAt": self.target.now(),
            "sha256": snapshot.sha256,
            "restoredObjects": sorted(snapshot.objects),
            "verified": snapshot.matches(autoscaled_as(snapshot.objects, self.target.objects())),
        }
