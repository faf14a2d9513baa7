"""RegenerationCycle: one DMEDI run (Define, Measure, Explore, Develop, Implement) for a charter."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import Field

from weavergen.api.charter import (
    EntropyLevel,
    NotificationRecord,
    StrategyName,
    notification_records_field,
)
from weavergen.api.common import (
    API_VERSION,
    FROM_JSON_STRING,
    Condition,
    Fraction,
    ObjectMeta,
    ObjectName,
    StatusModel,
    Timestamp,
    WireModel,
    cel,
    cel_rules,
    condition_list_field,
)

KIND: Final = "RegenerationCycle"
PLURAL = "regenerationcycles"

PhaseName = Literal["define", "measure", "explore", "develop", "implement"]
CyclePhase = Literal[
    "Pending",
    "Defining",
    "Measuring",
    "Exploring",
    "Developing",
    "AwaitingApproval",
    "Implementing",
    "RollingBack",
    "Succeeded",
    "NotNeeded",
    "Escalated",
    "RolledBack",
    "Failed",
    "Aborted",
    "Rejected",
]
FINAL_PHASES: frozenset[str] = frozenset(
    {"Succeeded", "NotNeeded", "Escalated", "RolledBack", "Failed", "Aborted", "Rejected"}
)
# What a person may retry: a cycle that did not heal (``Rejected`` was a person's decision).
RETRYABLE_PHASES: frozenset[str] = frozenset({"Failed", "RolledBack", "Aborted"})


class CharterRef(WireModel):
    """The charter a cycle runs for, in the cycle's namespace."""

    name: ObjectName = Field(description="Name of the RegenerationCharter.")


class RegenerationCycleSpec(WireModel):
    """One DMEDI run; immutable once created, the record of what was asked."""

    model_config = WireModel.model_config | {
        "json_schema_extra": cel_rules(cel("self == oldSelf", "spec is immutable"))
    }

    charter_ref: CharterRef = Field(description="The charter this cycle regenerates.")
    reason: str = Field(
        default="manual",
        max_length=1024,
        description="Why the cycle was started, for example 'entropy high (0.71)' or a ticket.",
    )
    dry_run: bool = Field(
        default=False,
        description="Plan the regeneration and report its diff without changing any object.",
    )
    strategy: StrategyName | None = Field(
        default=None,
        description="Use this strategy instead of the top-ranked one (must be allowed).",
    )
    retry_of: ObjectName | None = Field(
        default=None,
        description="The cycle this one retries (set by the operator on a person's retry).",
    )


class PhaseStatus(StatusModel):
    """Execution record of one phase."""

    name: PhaseName = Field(description="define, measure, explore, develop or implement.")
    job: str | None = Field(default=None, description="Name of the phase's Job, if any.")
    attempts: int = Field(default=0, ge=0, description="Job attempts so far.")
    started_at: Timestamp | None = Field(default=None, description="When the phase started.")
    finished_at: Timestamp | None = Field(default=None, description="When it finished.")
    duration_seconds: float | None = Field(default=None, ge=0.0, description="Its wall time.")
    outcome: Literal["Running", "Succeeded", "Failed", "Skipped"] | None = Field(
        default=None, description="Outcome of the phase."
    )
    message: str = Field(default="", description="What happened, in a sentence.")


class EntropySnapshot(StatusModel):
    """Entropy of the target at one moment of the cycle."""

    score: Fraction = Field(description="Entropy score, 0 to 1.")
    level: Annotated[EntropyLevel, FROM_JSON_STRING] = Field(description="Entropy level.")
    health_score: Fraction = Field(description="Health score, 0 to 1.")


class RankedOption(StatusModel):
    """A remediation option as ranked by Explore, with the reasons for its place."""

    rank: int = Field(ge=1, description="1 is the best option.")
    strategy: str = Field(description="Strategy name.")
    score: Fraction = Field(
        description="Weighted score: 0.4 success, 0.3 recovery time, 0.2 risk, 0.1 resources."
    )
    success_probability: Fraction = Field(description="Estimated probability of success.")
    recovery_time_seconds: float = Field(ge=0.0, description="Estimated recovery time.")
    risk: Fraction = Field(description="Estimated risk, 0 (none) to 1.")
    resource_cost: Fraction = Field(description="Estimated resource cost, 0 to 1.")
    reasons: list[str] = Field(default_factory=list, description="Why it ranked where it did.")


class PlannedChange(StatusModel):
    """One object change of the Develop plan, as a unified diff (cut at 4 KiB)."""

    action: str = Field(description="The workflow action that makes the change.")
    object: str = Field(description="Kind/namespace/name of the object.")
    diff: str = Field(default="", max_length=4096, description="Unified diff, now -> planned.")


class GitOpsDrift(StatusModel):
    """A planned change a GitOps controller would revert: the fix holds once it is in Git."""

    object: str = Field(description="Kind/namespace/name of the object.")
    tracker: str = Field(description="What tracks it: an Argo CD Application, a Flux object.")
    why: str = Field(description="Why the operator expects that tracker to revert the change.")
    paths: list[str] = Field(
        default_factory=list, max_length=64, description="Fields the plan changes that Git holds."
    )


class SnapshotRef(StatusModel):
    """Where the pre-change snapshot of the targets lives."""

    config_map: str = Field(description="First ConfigMap of the snapshot (chunks follow it).")
    sha256: str = Field(description="SHA-256 of the normalised manifests, in order.")
    objects: int = Field(ge=0, description="Number of objects snapshotted.")
    chunks: int = Field(ge=1, description="ConfigMaps the snapshot is split over.")


class RollbackRecord(StatusModel):
    """What a rollback did and whether live state matched the snapshot afterwards."""

    reason: str = Field(description="Why the cycle rolled back.")
    started_at: Timestamp | None = Field(default=None, description="When the rollback started.")
    finished_at: Timestamp | None = Field(default=None, description="When it finished.")
    snapshot: str | None = Field(
        default=None, description="First ConfigMap of the snapshot the objects came back from."
    )
    sha256: str | None = Field(
        default=None, description="SHA-256 of that snapshot, checked before restoring."
    )
    restored_objects: list[str] = Field(
        default_factory=list,
        description="The objects written back, as Kind/namespace/name.",
    )
    verified: bool = Field(
        default=False,
        description="Live objects equalled the snapshot when the rollback finished.",
    )


class VerificationRecord(StatusModel):
    """How the settle after the fix ended: the sequential test on the requests since it."""

    decision: Literal["Pass", "Fail", "Continue"] | None = Field(
        default=None,
        description=(
            "Pass: the requests since the fix were healthy and a measurement met the success "
            "criteria, so the settle stopped early; Fail: they were clearly unhealthy, so it "
            "stopped early and the cycle rolls back; Continue: the settle ran to settleSeconds "
            "(the requests were neither, or passed while no measurement met the criteria) and "
            "the measurement after it judged; unset: no request evidence (spans from a "
            "ConfigMap, no latency threshold, the receiver unreachable), the whole "
            "settleSeconds was waited."
        ),
    )
    seconds: float = Field(
        ge=0.0, description="How long the settle waited for the evidence, by the clock."
    )
    since: float | None = Field(
        default=None, description="When the change began to settle (seconds since the epoch)."
    )
    requests: int | None = Field(default=None, ge=0, description="Requests since the fix.")
    bad: int | None = Field(
        default=None, ge=0, description="Of them, failed or slower than the latency threshold."
    )
    summary: str = Field(default="", max_length=1024, description="The test's finding in words.")


class AbortRecord(StatusModel):
    """Who stopped the cycle (abort, or reject of its plan), when, why, and what was undone."""

    requested_by: str = Field(
        description="The regeneration.weavergen.io/requested-by annotation, else 'unknown'."
    )
    requested_at: Timestamp = Field(description="When the operator first saw the request.")
    reason: str = Field(
        default="", max_length=1024, description="The annotation's value, unless it was 'true'."
    )
    restored: bool = Field(
        default=False, description="Whether the pre-change snapshot was restored (and verified)."
    )


class RegenerationCycleStatus(StatusModel):
    """Observed state of the cycle, written by the operator."""

    observed_generation: int | None = Field(
        default=None, description="The .metadata.generation this status describes."
    )
    phase: CyclePhase = Field(default="Pending", description="Where the cycle is now.")
    conditions: list[Condition] = condition_list_field(
        "Defined, Measured, Explored, Developed, Implemented, Succeeded, RolledBack and Failed."
    )
    phases: list[PhaseStatus] = Field(default_factory=list, description="Per-phase records.")
    entropy_before: EntropySnapshot | None = Field(default=None, description="Before the fix.")
    entropy_after: EntropySnapshot | None = Field(default=None, description="After the fix.")
    options: list[RankedOption] = Field(default_factory=list, description="Ranked options.")
    chosen_strategy: str | None = Field(default=None, description="The strategy carried out.")
    plan: list[PlannedChange] = Field(
        default_factory=list,
        description="Object changes Develop planned (propose mode: to approve).",
    )
    git_ops: list[GitOpsDrift] = Field(
        default_factory=list,
        description=(
            "Planned changes to objects a GitOps controller reverts (Argo CD self-heal, Flux): "
            "commit them to Git. In enforce mode such a plan waits for approval."
        ),
    )
    predicted_entropy: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Entropy Develop expects after the fix."
    )
    snapshot: SnapshotRef | None = Field(default=None, description="The pre-change snapshot.")
    verification: VerificationRecord | None = Field(
        default=None, description="How verifying the fix ended, once Implement ran."
    )
    rollback: RollbackRecord | None = Field(default=None, description="Rollback, if one ran.")
    abort: AbortRecord | None = Field(
        default=None, description="The person's abort or reject that stopped the cycle, if any."
    )
    retried_by: str | None = Field(
        default=None, description="The cycle that retries this one, once a person asked."
    )
    trace_id: str | None = Field(default=None, description="W3C trace id of the cycle's trace.")
    workflow_state: str | None = Field(
        default=None, description="ConfigMap holding the cycle's serialised BPMN workflow state."
    )
    started_at: Timestamp | None = Field(default=None, description="When the cycle started.")
    finished_at: Timestamp | None = Field(default=None, description="When it finished.")
    message: str = Field(default="", description="Outcome in a sentence.")
    notifications: dict[str, NotificationRecord] = notification_records_field()


class RegenerationCycle(WireModel):
    """A RegenerationCycle object as stored in Kubernetes."""

    model_config = WireModel.model_config | {"extra": "ignore"}

    api_version: Literal["regeneration.weavergen.io/v1alpha1"] = API_VERSION
    kind: Literal["RegenerationCycle"] = KIND
    metadata: ObjectMeta
    spec: RegenerationCycleSpec
    status: RegenerationCycleStatus | None = None
