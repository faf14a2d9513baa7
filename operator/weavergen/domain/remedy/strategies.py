"""The remediation strategy catalog and the causes it reasons about.

Each strategy is one BPMN workflow in ``bpmn/strategies/<name>.bpmn`` (its ``actions`` are that
workflow's service tasks, in order) and carries what Explore needs to rank it: the entropy level it
is meant for, how well it fixes each underlying cause (the prior of the success model, which the
charter's outcome history then corrects), recovery time, risk, resource cost and blast radius.
``observe-escalate`` changes nothing: it is chosen when the evidence points at a fault no action
on the target can fix, so the operator does not thrash.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from weavergen.api.charter import EntropyLevel
from weavergen.domain.remedy.vocabulary import MUTATING_ACTIONS

CAUSES = (
    "config_corruption",
    "memory_leak",
    "bad_deploy",
    "semantic_drift_upgrade",
    "retry_storm_slow_dependency",
    "failing_downstream_dependency",
    "untracked_input_change",
)
# Causes no action on the charter's targets can remove: a dependency that fails, and a change to
# something the workloads consume that the charter does not list (a ConfigMap, Secret or image
# outside its targets: restarting or rolling back the targets re-reads the same changed input).
UNFIXABLE_CAUSES = frozenset({"failing_downstream_dependency", "untracked_input_change"})
OBSERVE = "observe-escalate"


@dataclass(frozen=True)
class Strategy:
    name: str
    level: EntropyLevel
    summary: str
    actions: tuple[str, ...]
    fixes: dict[str, float]
    recovery_seconds: float
    risk: float
    resources: float
    blast_radius: str
    addresses: frozenset[str] = field(default_factory=frozenset)

    @property
    def mutating(self) -> bool:
        return any(a in MUTATING_ACTIONS for a in self.actions)

    def fix_probability(self, cause: str) -> float:
        return self.fixes.get(cause, 0.02)


_VERIFY = ("wait_rollout", "settle", "remeasure", "verify_success_criteria")
_SNAP = ("snapshot_targets", "verify_snapshot")


def _fixes(
    config: float, leak: float, deploy: float, semantic: float, retry: float
) -> dict[str, float]:
    return {
        "config_corruption": config,
        "memory_leak": leak,
        "bad_deploy": deploy,
        "semantic_drift_upgrade": semantic,
        "retry_storm_slow_dependency": retry,
        "failing_downstream_dependency": 0.0,
        "untracked_input_change": 0.0,
    }


CATALOG: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy(
            "span-optimization", EntropyLevel.LOW,
            "Lower the trace sampling ratio to cut span volume and exporter pressure.",
            (*_SNAP, "tune_sampling", *_VERIFY), _fixes(0.02, 0.05, 0.02, 0.02, 0.1),
            60, 0.05, 0.05, "pod template env of the target workloads",
            frozenset({"attribute_cardinality_explosion", "span_mix_shift"}),
        ),
        Strategy(
            "cache-refresh", EntropyLevel.LOW,
            "Bump the cache epoch annotation so pods reload their caches (a rolling restart).",
            (*_SNAP, "bump_cache_epoch", *_VERIFY), _fixes(0.05, 0.6, 0.02, 0.02, 0.1),
            90, 0.15, 0.15, "pods of the target workloads, one at a time",
            frozenset({"latency_degradation"}),
        ),
        Strategy(
            "validation-tuning", EntropyLevel.LOW,
            "Accept the current attribute set as the new validation baseline (no object change).",
            ("rebaseline_validation", "remeasure", "verify_success_criteria"),
            _fixes(0.02, 0.02, 0.02, 0.3, 0.0),
            30, 0.02, 0.02, "the charter's validation baseline only",
            frozenset({"semantic_drift"}),
        ),
        Strategy(
            "agent-reset", EntropyLevel.MEDIUM,
            "Rolling restart of the target workloads (kubectl rollout restart).",
            (*_SNAP, "rollout_restart", *_VERIFY), _fixes(0.05, 0.9, 0.05, 0.05, 0.2),
            120, 0.25, 0.3, "pods of the target workloads, rolling",
            frozenset({"latency_degradation", "error_rate_increase"}),
        ),
        Strategy(
            "partial-regeneration", EntropyLevel.MEDIUM,
            "Reset the target ConfigMaps to the known-good snapshot, then restart.",
            (*_SNAP, "reset_config_from_baseline", "rollout_restart", *_VERIFY),
            _fixes(0.9, 0.9, 0.05, 0.05, 0.2),
            150, 0.35, 0.3, "target ConfigMaps and pods, rolling",
            frozenset({"error_rate_increase", "semantic_drift"}),
        ),
        Strategy(
            "workflow-optimization", EntropyLevel.MEDIUM,
            "Add a replica to absorb a retry storm or slow dependency while it lasts.",
            (*_SNAP, "scale_workloads", *_VERIFY), _fixes(0.05, 0.3, 0.02, 0.02, 0.75),
            120, 0.2, 0.6, "one extra pod per target workload",
            frozenset({"retry_storm", "latency_degradation"}),
        ),
        Strategy(
            "semantic-refresh", EntropyLevel.HIGH,
            "Reset ConfigMaps and re-apply the known-good workload manifests.",
            (*_SNAP, "reset_config_from_baseline", "reapply_golden_manifests", *_VERIFY),
            _fixes(0.9, 0.9, 0.9, 0.9, 0.2),
            180, 0.45, 0.35, "target ConfigMaps and workload templates",
            frozenset({"semantic_drift", "error_rate_increase"}),
        ),
        Strategy(
            "agent-reconstruction", EntropyLevel.HIGH,
            "Delete every pod of the target workloads so they are recreated from scratch.",
            (*_SNAP, "recreate_pods", *_VERIFY), _fixes(0.05, 0.9, 0.05, 0.05, 0.2),
            150, 0.5, 0.35, "all pods of the target workloads at once",
            frozenset({"latency_degradation", "error_rate_increase"}),
        ),
        Strategy(
            "validation-rebuild", EntropyLevel.HIGH,
            "Re-apply the known-good workload manifests and rebuild the validation baseline.",
            (*_SNAP, "reapply_golden_manifests", "rebaseline_validation", *_VERIFY),
            _fixes(0.05, 0.9, 0.9, 0.9, 0.2),
            180, 0.45, 0.35, "workload templates",
            frozenset({"semantic_drift", "error_rate_increase"}),
        ),
        Strategy(
            "full-regeneration", EntropyLevel.CRITICAL,
            "Regenerate from the known-good snapshot: ConfigMaps, manifests, restart, verify.",
            ("check_dependencies", *_SNAP, "reset_config_from_baseline",
             "reapply_golden_manifests", "rollout_restart", *_VERIFY),
            _fixes(0.95, 0.95, 0.95, 0.95, 0.2),
            240, 0.65, 0.5, "target ConfigMaps, workload templates and pods",
            frozenset({"error_rate_increase", "semantic_drift", "latency_degradation"}),
        ),
        Strategy(
            "clean-slate-rebuild", EntropyLevel.CRITICAL,
            "Scale to zero, restore config and manifests, scale back: a full stop and start.",
            ("check_dependencies", *_SNAP, "scale_to_zero", "wait_rollout",
             "reset_config_from_baseline", "reapply_golden_manifests", "restore_replicas",
             *_VERIFY),
            _fixes(0.95, 0.95, 0.95, 0.95, 0.25),
            300, 0.85, 0.5, "everything, with downtime",
            frozenset({"error_rate_increase", "semantic_drift", "latency_degradation"}),
        ),
        Strategy(
            "emergency-rollback", EntropyLevel.CRITICAL,
            "Roll the workloads back to their previous revision (kubectl rollout undo).",
            (*_SNAP, "rollout_undo", *_VERIFY), _fixes(0.05, 0.85, 0.95, 0.95, 0.1),
            120, 0.4, 0.3, "workload templates, to the previous revision",
            frozenset({"error_rate_increase", "semantic_drift", "latency_degradation"}),
        ),
        Strategy(
            OBSERVE, EntropyLevel.LOW,
            "Change nothing: record the evidence, raise an Event and a condition, notify.",
            ("check_dependencies", "escalate"), {c: 0.0 for c in CAUSES},
            0, 0.0, 0.0, "none",
        ),
    )
}  # fmt: skip


def strategy(name: str) -> Strategy:
    """A catalog strategy by name; ``KeyError`` names the known ones."""
    try:
        return CATALOG[name]
    except KeyError:
        raise KeyError(f"unknown strategy {name!r} (known: {', '.join(CATALOG)})") from None


LEVEL_ORDER = {level: i for i, level in enumerate(EntropyLevel)}


def candidates_for(level: EntropyLevel) -> list[Strategy]:
    """Strategies meant for this level or one above it (never a bigger hammer), and observing."""
    ceiling = LEVEL_ORDER[level] + 1
    return [s for s in CATALOG.values() if LEVEL_ORDER[s.level] <= ceiling or s.name == OBSERVE]
