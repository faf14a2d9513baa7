"""What stopping a cycle does on the cluster: find and stop its Jobs, find its snapshot, restore.

The order is the point (``domain.decide.cycle_requests``): a phase pod still running could write
after a restore, so its Job is deleted with ``Foreground`` propagation (the Job stays until its
pods are gone) and the restore waits until no Job of the cycle is left running.
"""

from __future__ import annotations

from typing import Any

from weavergen.api.keys import CHUNKS_ANNOTATION, CYCLE_LABEL, SHA_ANNOTATION
from weavergen.domain.names import label_value
from weavergen.domain.remedy.snapshot import SnapshotIntegrityError, TargetEdited
from weavergen.k8s.jobs import job_finished, snapshot_name
from weavergen.k8s.rest import Rest
from weavergen.phases.operators import Operators, RollbackFailed


def running_jobs(rest: Rest, namespace: str, cycle: str) -> tuple[str, ...]:
    """The cycle's Jobs whose pods may still run: not finished, or being deleted."""
    return tuple(
        sorted(
            job["metadata"]["name"]
            for job in rest.list("Job", namespace, {CYCLE_LABEL: label_value(cycle)})
            if job["metadata"].get("deletionTimestamp") or not job_finished(job)
        )
    )


def stop_jobs(rest: Rest, namespace: str, names: tuple[str, ...]) -> None:
    """Delete the Jobs; each stays (being deleted) until its pods are gone."""
    for name in names:
        rest.delete("Job", namespace, name, propagation="Foreground")


def snapshot_ref(rest: Rest, namespace: str, cycle: str) -> dict[str, Any] | None:
    """The cycle's stored snapshot (its first chunk is written last: present means whole)."""
    stored = rest.get("ConfigMap", namespace, snapshot_name(cycle))
    if stored is None:
        return None
    annotations = stored["metadata"].get("annotations") or {}
    return {
        "configMap": snapshot_name(cycle),
        "sha256": annotations.get(SHA_ANNOTATION, ""),
        "chunks": int(annotations.get(CHUNKS_ANNOTATION, "1")),
    }


def restore(operators: Operators) -> tuple[dict[str, Any] | None, str | None]:
    """The cycle's own rollback (``restore_snapshot``, then ``verify_restored``) without the
    workflow: (the rollback record, None), or (None, why it failed).

    No Implement result reached the workflow, so the stored snapshot is the one restored (its
    integrity checked), and only what it holds or what the cycle journaled may be overwritten.
    """
    data: dict[str, Any] = {}
    try:
        data.update(operators.restore_snapshot({}, data))
        data.update(operators.verify_restored({}, data))
    except (SnapshotIntegrityError, TargetEdited, RollbackFailed) as err:
        return None, str(err)
    return data.get("rollback"), None
