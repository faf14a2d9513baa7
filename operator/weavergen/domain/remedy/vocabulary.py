"""The action vocabulary: every operator a shipped or generated workflow may name.

Each operator takes the parameters listed (all required in the BPMN, each a Python expression).
The workflows, the strategy catalog, the Develop planners and the operator implementations all
read these names from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from weavergen.api.charter import PHASES

ACTIONS: Mapping[str, Mapping[str, type]] = MappingProxyType(
    {
        "snapshot_targets": {},
        "verify_snapshot": {},
        "rollout_restart": {},
        "reset_config_from_baseline": {},
        "scale_workloads": {"replicas_delta": int},
        "rollout_undo": {},
        "reapply_golden_manifests": {},
        "recreate_pods": {},
        "bump_cache_epoch": {},
        "tune_sampling": {"ratio": float},
        "rebaseline_validation": {},
        "wait_rollout": {"timeout_seconds": int},
        "settle": {"seconds": int},
        "remeasure": {},
        "verify_success_criteria": {},
        "check_dependencies": {},
        "escalate": {"reason": str},
        "restore_snapshot": {},
        "verify_restored": {},
        "scale_to_zero": {},
        "restore_replicas": {},
    }
)
# The operators of dmedi_cycle.bpmn's five phase tasks.
PHASE_OPERATORS: tuple[str, ...] = tuple(f"{phase}_phase" for phase in PHASES)
VOCABULARY: Mapping[str, Mapping[str, type]] = MappingProxyType(
    {**ACTIONS, **{operator: {} for operator in PHASE_OPERATORS}}
)
"""Every operator name of the project: the strategy actions and the five DMEDI phases."""

MUTATING_ACTIONS: frozenset[str] = frozenset(
    {
        "rollout_restart",
        "reset_config_from_baseline",
        "scale_workloads",
        "rollout_undo",
        "reapply_golden_manifests",
        "recreate_pods",
        "bump_cache_epoch",
        "tune_sampling",
        "scale_to_zero",
        "restore_replicas",
    }
)
"""Actions that change target objects: a workflow snapshots before the first of them."""

DRIFTING_ACTIONS: frozenset[str] = MUTATING_ACTIONS - {
    "rollout_restart",
    "recreate_pods",
    "bump_cache_epoch",
}
"""Mutating actions that change what Git holds (a restart's annotations and deleted pods do
not): a GitOps controller with self-heal would revert them."""

ROLLBACK_ACTIONS: tuple[str, ...] = ("restore_snapshot", "verify_restored")
