"""Every label and annotation key the operator sets or reads, in one place: people select by
them with kubectl, and other tools (dashboards, GitOps ignore rules) depend on them."""

from __future__ import annotations

from typing import Final

from weavergen.api.common import GROUP

# Labels: what belongs to what (label values are names cut to 63 characters, see domain/names).
CHARTER_LABEL: Final = f"{GROUP}/charter"  # a charter's cycles and captured baseline
CYCLE_LABEL: Final = f"{GROUP}/cycle"  # a cycle's Jobs, results and workflow state
PHASE_LABEL: Final = f"{GROUP}/phase"  # which phase a Job or result is
SNAPSHOT_LABEL: Final = f"{GROUP}/snapshot"  # the chunks of one snapshot
SYSTEM_ID_LABEL: Final = f"{GROUP}/system-id"  # on a defined charter
SYSTEM_TYPE_LABEL: Final = f"{GROUP}/system-type"  # on a defined charter

# Annotations people write.
APPROVAL_ANNOTATION: Final = f"{GROUP}/approve"  # "true" on a cycle: carry out its plan
ABORT_ANNOTATION: Final = f"{GROUP}/abort"  # "true" or a reason, on a running cycle: stop it
REJECT_ANNOTATION: Final = f"{GROUP}/reject"  # "true" or a reason: do not carry out the plan
RETRY_ANNOTATION: Final = f"{GROUP}/retry"  # "true" on a failed cycle: run it again
REQUESTED_BY_ANNOTATION: Final = f"{GROUP}/requested-by"  # who asked (optional)
REQUEST_ANNOTATION: Final = f"{GROUP}/requested-at"  # on a charter: a cycle was asked for

# Annotations the operator writes.
SHA_ANNOTATION: Final = f"{GROUP}/sha256"  # a snapshot's SHA-256
INDEX_ANNOTATION: Final = f"{GROUP}/chunk"  # a snapshot chunk's index
CHUNKS_ANNOTATION: Final = f"{GROUP}/chunks"  # how many chunks the snapshot has
CACHE_EPOCH: Final = f"{GROUP}/cache-epoch"  # bumped on a pod template to refresh caches
TURN_ANNOTATION: Final = f"{GROUP}/turn"  # a phase Job started ahead: waiting, go or cancelled
NUDGED_ANNOTATION: Final = f"{GROUP}/nudged-at"  # a workload whose controller lagged: requeued
REPLICAS_BEFORE: Final = f"{GROUP}/replicas-before"  # replicas before a scale-out
BOUNDS_BEFORE: Final = f"{GROUP}/bounds-before"  # an HPA's min-max before a scale-out through it
