"""RegenerationCharter: what to keep healthy, by which thresholds, criteria and budgets.

Fields whose defaults depend on ``spec.systemType`` (thresholds, success criteria, cadence and the
phase policy) are optional on the wire; ``profiles.resolve_spec`` fills them from the system type's
profile, and ``weavergen regeneration define`` writes them out in full.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, get_args

from pydantic import Field, StringConstraints, field_validator, model_validator

from weavergen.api.common import (
    API_VERSION,
    FROM_JSON_STRING,
    Condition,
    ConfigMapKeyRef,
    DnsLabel,
    Fraction,
    ObjectMeta,
    ObjectName,
    StatusModel,
    Timestamp,
    WireModel,
    cel,
    cel_rules,
    condition_list_field,
    defaulted,
)

KIND: Final = "RegenerationCharter"
PLURAL = "regenerationcharters"


class SystemType(StrEnum):
    """The kinds of system a charter can describe; each has its own default profile."""

    WEB_SERVICE = "web-service"
    API_GATEWAY = "api-gateway"
    WORKER = "worker"
    BATCH_JOB = "batch-job"
    STREAM_PROCESSOR = "stream-processor"
    DATABASE_PROXY = "database-proxy"
    ML_INFERENCE = "ml-inference"
    AGENT = "agent"
    CACHE = "cache"
    SCHEDULER = "scheduler"


class EntropyLevel(StrEnum):
    """Entropy levels, from healthy (low) to in need of full regeneration (critical).

    Ordered by severity (``LOW < MEDIUM``), not alphabetically as their strings would be.
    """

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def severity(self) -> int:
        """0 for LOW up to 3 for CRITICAL."""
        return list(EntropyLevel).index(self)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, EntropyLevel):
            return NotImplemented
        return self.severity < other.severity

    def __le__(self, other: object) -> bool:
        if not isinstance(other, EntropyLevel):
            return NotImplemented
        return self.severity <= other.severity

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, EntropyLevel):
            return NotImplemented
        return self.severity > other.severity

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, EntropyLevel):
            return NotImplemented
        return self.severity >= other.severity


Seconds = Annotated[int, Field(ge=1, le=86_400)]
StrategyName = Annotated[
    str, StringConstraints(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-_a-z0-9]*[a-z0-9])?$")
]


class LabelSelector(WireModel):
    """Selects objects by labels (equality only)."""

    match_labels: dict[str, str] = Field(
        min_length=1,
        description="Labels an object must carry, all of them, to be selected.",
    )


WorkloadKind = Literal["Deployment", "StatefulSet", "Rollout"]
WORKLOAD_KINDS: tuple[str, ...] = get_args(WorkloadKind)


class WorkloadRef(WireModel):
    """A workload to keep healthy, by name or by label selector (exactly one of the two)."""

    model_config = WireModel.model_config | {
        "json_schema_extra": cel_rules(
            cel(
                "has(self.name) != has(self.selector)",
                "set exactly one of name and selector",
            )
        )
    }

    kind: WorkloadKind = Field(
        default="Deployment",
        description=(
            "Kind of the workload. Deployment (apps/v1): every strategy; undo to the previous "
            "ReplicaSet. StatefulSet (apps/v1): every strategy, rolled by its controller in "
            "ordinal order within rollingUpdate.partition, pods replaced one at a time by the "
            "operator under updateStrategy OnDelete, undo to the previous ControllerRevision; "
            "no PersistentVolumeClaim is ever deleted (no scale-to-zero when whenScaled is "
            "Delete). Rollout (argoproj.io/v1alpha1, Argo Rollouts): restart by spec.restartAt, "
            "undo to the stable ReplicaSet, rolled out when its status is Healthy. A "
            "HorizontalPodAutoscaler that scales the workload is part of the target: scaling "
            "changes its bounds, a rollback restores them."
        ),
    )
    name: ObjectName | None = Field(default=None, description="Name of the workload.")
    selector: LabelSelector | None = Field(
        default=None, description="Selects every workload of this kind whose labels match."
    )

    @model_validator(mode="after")
    def _name_xor_selector(self) -> WorkloadRef:
        if (self.name is None) == (self.selector is None):
            raise ValueError("set exactly one of name and selector")
        return self


class TargetSpec(WireModel):
    """The workloads to keep healthy and the configuration they depend on."""

    workloads: list[WorkloadRef] = Field(
        min_length=1,
        max_length=32,
        description="Deployments, StatefulSets and Argo Rollouts the charter keeps healthy.",
    )
    config_maps: list[ObjectName] = Field(
        default_factory=list,
        max_length=64,
        description="ConfigMaps the workloads depend on; snapshotted and restorable.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    secrets: list[ObjectName] = Field(
        default_factory=list,
        max_length=64,
        description=(
            "Secrets the workloads depend on. Referenced and hashed only: their values are never "
            "copied into snapshots, status, logs or spans."
        ),
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


class BaselineSpec(WireModel):
    """Where the healthy reference behaviour comes from."""

    config_map: ConfigMapKeyRef | None = Field(
        default=None,
        description=(
            "OTLP/JSON spans of a known-healthy period. When unset, the baseline is captured from "
            "the first windows measured."
        ),
    )
    capture_windows: int = Field(
        default=3,
        ge=1,
        le=100,
        description=(
            "Number of consecutive windows captured as the baseline when none is given. With "
            "source prometheus the baseline is read as one range of this many windows, once "
            "Prometheus has watched the service over that range and one window before it."
        ),
    )


PROMQL_PLACEHOLDERS: Final = ("window", "service")
PLACEHOLDER = re.compile(r"\{\{([^{}]*)\}\}")
PromQL = Annotated[str, StringConstraints(min_length=1, max_length=4096)]


def _placeholder_problem(query: str) -> str | None:
    """What is wrong with a query template's placeholders, or None."""
    unknown = sorted({name for name in PLACEHOLDER.findall(query)} - set(PROMQL_PLACEHOLDERS))
    if unknown:
        return (
            f"unknown placeholder {{{{{unknown[0]}}}}}: the placeholders are {{{{window}}}} "
            "and {{service}}"
        )
    if "{{window}}" not in query:
        return "the query must read its range from {{window}}, e.g. [{{window}}]"
    return None


def _query_rules(field: str) -> list[dict[str, str]]:
    """The CEL twins of ``_placeholder_problem`` for one query field."""
    stripped = f"self.{field}.replace('{{{{window}}}}', '').replace('{{{{service}}}}', '')"
    return [
        cel(
            f"!has(self.{field}) || !{stripped}.contains('{{{{')",
            "unknown placeholder: the placeholders are {{window}} and {{service}}",
            f".{field}",
        ),
        cel(
            f"!has(self.{field}) || self.{field}.contains('{{{{window}}}}')",
            "the query must read its range from {{window}}, e.g. [{{window}}]",
            f".{field}",
        ),
    ]


class PrometheusSpec(WireModel):
    """A Prometheus HTTP API to read the workload's RED metrics (requests, errors, durations)
    from, and optionally the PromQL that reads them.

    Every query is evaluated for all services at once and shared by the charters that use the
    same query, so it should return one series per service, labelled with serviceLabel (the
    latency query one per service and bucket, labelled le too). Placeholders: {{window}} is the
    range, a duration such as 60s (the telemetry window, or the baseline's range); {{service}}
    is serviceName. A query that names {{service}} is the charter's own (not shared) and may
    return series without serviceLabel. Unset queries read the OpenTelemetry Collector's
    span_metrics connector: requests are calls of SERVER and CONSUMER spans, errors those with
    status STATUS_CODE_ERROR, latency their duration histogram in milliseconds.
    """

    model_config = WireModel.model_config | {
        "json_schema_extra": cel_rules(
            *(rule for field in ("requests", "errors", "latency") for rule in _query_rules(field))
        )
    }

    url: Annotated[
        str, StringConstraints(min_length=1, max_length=2048, pattern=r"^https?://[^\s/?#]+")
    ] = Field(
        description=(
            "Base URL of the Prometheus HTTP API, e.g. http://prometheus.monitoring:9090 (the "
            "operator calls <url>/api/v1/query). Credentials from the operator's chart values "
            "(prometheus.auth) are sent only to the URL given there."
        )
    )
    service_label: Annotated[
        str, StringConstraints(min_length=1, max_length=128, pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")
    ] = Field(
        default="service_name",
        description="The label that carries the service's name in the queries' results.",
    )
    requests: PromQL | None = Field(
        default=None,
        description=(
            "PromQL of the requests per service over {{window}}, e.g. sum by (service_name) "
            "(increase(http_server_requests_total[{{window}}])). Unset: span_metrics calls of "
            "SERVER and CONSUMER spans."
        ),
    )
    errors: PromQL | None = Field(
        default=None,
        description=(
            "PromQL of the failed requests per service over {{window}}. Unset: span_metrics "
            "calls of SERVER and CONSUMER spans with status_code STATUS_CODE_ERROR."
        ),
    )
    latency: PromQL | None = Field(
        default=None,
        description=(
            "PromQL of the requests' duration histogram per service and le over {{window}} "
            "(cumulative bucket counts, as increase() of a _bucket series gives). Unset: the "
            "span_metrics duration histogram of SERVER and CONSUMER spans."
        ),
    )
    latency_unit: Literal["milliseconds", "seconds"] = Field(
        default="milliseconds",
        description="Unit of the latency histogram's le bounds (span_metrics: milliseconds).",
    )

    @field_validator("requests", "errors", "latency")
    @classmethod
    def _placeholders(cls, query: str | None) -> str | None:
        problem = None if query is None else _placeholder_problem(query)
        if problem:
            raise ValueError(problem)
        return query


PROMETHEUS_WINDOW_RULE: Final = (
    "windowSeconds must be at least 10 with source prometheus: a shorter window cannot tell "
    "a silent service from a pause between scrapes"
)


class TelemetrySpec(WireModel):
    """Where the workload's telemetry comes from and how it is windowed."""

    model_config = WireModel.model_config | {
        "json_schema_extra": cel_rules(
            cel(
                "self.source != 'configMap' || has(self.configMap)",
                "configMap is required when source is configMap",
                ".configMap",
            ),
            cel(
                "self.source != 'prometheus' || has(self.prometheus)",
                "prometheus is required when source is prometheus",
                ".prometheus",
            ),
            cel(
                "self.source != 'prometheus' || self.windowSeconds >= 10",
                PROMETHEUS_WINDOW_RULE,
                ".windowSeconds",
            ),
            cel(
                "self.source != 'prometheus' || !has(self.baseline.configMap)",
                "baseline.configMap holds spans: a charter with source prometheus captures its "
                "baseline from Prometheus",
                ".baseline.configMap",
            ),
        )
    }

    service_name: Annotated[str, StringConstraints(min_length=1, max_length=253)] = Field(
        description="The service.name resource attribute of the workload's spans."
    )
    source: Literal["otlp", "configMap", "prometheus"] = Field(
        default="otlp",
        description=(
            "otlp: spans pushed to the operator's OTLP/HTTP receiver; configMap: OTLP/JSON read "
            "from the ConfigMap key in configMap; prometheus: RED metrics (requests, errors, "
            "durations) queried from the Prometheus in prometheus, with semantic conventions "
            "still validated from the spans the receiver gets, if any."
        ),
    )
    config_map: ConfigMapKeyRef | None = Field(
        default=None, description="The OTLP/JSON spans to measure when source is configMap."
    )
    prometheus: PrometheusSpec | None = Field(
        default=None,
        description=(
            "Where the RED metrics come from when source is prometheus. Each query is evaluated "
            "for all services at once and shared by the charters using the same query, so it "
            "returns one series per service, labelled serviceLabel (latency: per service and "
            "le). Placeholders: {{window}} is the range, e.g. 60s; {{service}} is serviceName "
            "(a query naming it is this charter's own and may return series without "
            "serviceLabel). Unset queries read the OpenTelemetry Collector's span_metrics."
        ),
    )
    window_seconds: int = Field(
        default=60,
        ge=5,
        le=3600,
        description=(
            "Length of one measurement window. With source prometheus, make it several "
            "scrape and span_metrics flush intervals long: counts rise once per flush, so a "
            "window of four flushes holds 3 or 4 of them."
        ),
    )
    min_spans: int = Field(
        default=100,
        ge=1,
        le=10_000_000,
        description=(
            "Fewer spans than this in a window gives InsufficientData, not a score (requests, "
            "with source prometheus)."
        ),
    )
    export_delay_seconds: float = Field(
        default=5.0,
        ge=0.0,
        le=300.0,
        description=(
            "How long a span takes to reach the operator after its request ended: the SDK's "
            "batch delay (5 s by default) plus a Collector's. Verifying a change, the operator "
            "counts only requests that started long enough ago (latency threshold plus this) "
            "to have reported if they were fast, so the slow ones still running cannot be "
            "outnumbered by fast ones that reported first. Too small biases toward a pass; too "
            "large only makes verification slower."
        ),
    )
    sampling_ratio: float = Field(
        default=1.0,
        gt=0.0,
        le=1.0,
        description=(
            "The share of traces a sampler upstream keeps (an OpenTelemetry Collector's "
            "probabilistic sampler, say), for spans that do not say so themselves: a span's own "
            "sampling probability is read from its tracestate th (ot=th:...) where present. "
            "Request rates are scaled up by it; the tests and minSpans judge the spans received. "
            "A baseline the operator captured keeps the ratio in force when it was captured."
        ),
    )
    baseline: BaselineSpec = defaulted(
        BaselineSpec, "The healthy reference the current window is compared with."
    )
    registry: ConfigMapKeyRef | None = Field(
        default=None,
        description=(
            "A semantic-convention registry (OpenTelemetry Weaver YAML) extending the built-in "
            "one, for the workload's own attributes."
        ),
    )

    @model_validator(mode="after")
    def _source_settings(self) -> TelemetrySpec:
        if self.source == "configMap" and self.config_map is None:
            raise ValueError("configMap is required when source is configMap")
        if self.source == "prometheus":
            if self.prometheus is None:
                raise ValueError("prometheus is required when source is prometheus")
            if self.window_seconds < 10:
                raise ValueError(PROMETHEUS_WINDOW_RULE)
            if self.baseline.config_map is not None:
                raise ValueError(
                    "baseline.configMap holds spans: a charter with source prometheus captures "
                    "its baseline from Prometheus"
                )
        return self


class ObjectivesSpec(WireModel):
    """Service-level objectives the health score is measured against."""

    availability: float = Field(
        default=0.99,
        gt=0.0,
        lt=1.0,
        description="Target share of spans without error status, e.g. 0.99.",
    )
    latency_threshold_ms: float | None = Field(
        default=None,
        gt=0.0,
        description=(
            "A request (entry span) slower than this breaks the latency objective. Unset: the "
            "baseline requests' 99th percentile, at most twice their 95th."
        ),
    )
    latency_target: float = Field(
        default=0.99,
        gt=0.0,
        lt=1.0,
        description="Target share of requests (entry spans) faster than latencyThresholdMs.",
    )


class ThresholdsSpec(WireModel):
    """Entropy scores at which each level starts (score >= threshold)."""

    model_config = WireModel.model_config | {
        "json_schema_extra": cel_rules(
            cel(
                "self.medium < self.high && self.high < self.critical",
                "thresholds must increase strictly: medium < high < critical",
            )
        )
    }

    mode: Literal["fixed", "computed"] = Field(
        default="fixed",
        description=(
            "fixed: use the values below; computed: derive them from the baseline's own noise "
            "and the system's complexity, never below the values below."
        ),
    )
    medium: Fraction = Field(description="Entropy score where MEDIUM starts.")
    high: Fraction = Field(description="Entropy score where HIGH starts.")
    critical: Fraction = Field(description="Entropy score where CRITICAL starts.")

    @model_validator(mode="after")
    def _strictly_increasing(self) -> ThresholdsSpec:
        if not self.medium < self.high < self.critical:
            raise ValueError("thresholds must increase strictly: medium < high < critical")
        return self


class SuccessCriteriaSpec(WireModel):
    """What a finished regeneration must show for the cycle to count as Succeeded."""

    model_config = WireModel.model_config | {
        "json_schema_extra": cel_rules(
            cel(
                "self.settleSeconds < self.maxRecoverySeconds",
                "settleSeconds must be shorter than maxRecoverySeconds",
                ".settleSeconds",
            )
        )
    }

    max_entropy_score: Fraction = Field(
        description="Entropy score after regeneration must be at most this."
    )
    min_health_score: Fraction = Field(
        description="Health score after regeneration must be at least this."
    )
    min_entropy_reduction: Fraction = Field(
        description="Entropy score must fall by at least this much (before minus after)."
    )
    max_error_rate: Fraction | None = Field(
        default=None, description="Share of error spans after regeneration must be at most this."
    )
    max_p99_latency_ms: float | None = Field(
        default=None, gt=0.0, description="99th percentile span latency after regeneration."
    )
    max_recovery_seconds: Seconds = Field(
        description="From the start of Implement to verified health; slower counts as failed."
    )
    settle_seconds: Seconds = Field(
        description="Wait after the rollout finishes before measuring the result."
    )
    verify_windows: int = Field(
        ge=1, le=20, description="Consecutive windows that must meet the criteria."
    )

    @model_validator(mode="after")
    def _settle_within_recovery(self) -> SuccessCriteriaSpec:
        if self.settle_seconds >= self.max_recovery_seconds:
            raise ValueError("settleSeconds must be shorter than maxRecoverySeconds")
        return self


class CadenceSpec(WireModel):
    """How often the charter is measured."""

    measure_interval_seconds: int = Field(
        ge=2,
        le=86_400,
        description="Time between two measurements of the target; detection takes up to this "
        "long plus the operator's timer (1-5 s).",
    )
    baseline_refresh_seconds: int = Field(
        default=0,
        ge=0,
        le=30 * 86_400,
        description="Recapture the baseline this often while healthy; 0 keeps it until changed.",
    )


PHASES = ("define", "measure", "explore", "develop", "implement")


class PhasePolicySpec(WireModel):
    """Deadlines and retries of the phase Jobs."""

    model_config = WireModel.model_config | {
        "json_schema_extra": cel_rules(
            *(
                cel(
                    f"self.{phase}DeadlineSeconds <= self.cycleDeadlineSeconds",
                    f"{phase}DeadlineSeconds cannot exceed cycleDeadlineSeconds",
                    f".{phase}DeadlineSeconds",
                )
                for phase in PHASES
            )
        )
    }

    define_deadline_seconds: Seconds = Field(description="Deadline of the Define Job.")
    measure_deadline_seconds: Seconds = Field(description="Deadline of the Measure Job.")
    explore_deadline_seconds: Seconds = Field(description="Deadline of the Explore Job.")
    develop_deadline_seconds: Seconds = Field(description="Deadline of the Develop Job.")
    implement_deadline_seconds: Seconds = Field(description="Deadline of the Implement Job.")
    cycle_deadline_seconds: Seconds = Field(
        description="Deadline of a whole cycle; past it the cycle fails (and rolls back)."
    )
    backoff_limit: int = Field(
        default=2, ge=0, le=10, description="Retries of a failed phase Job before the cycle fails."
    )
    phases_ahead: int = Field(
        default=2,
        ge=0,
        le=len(PHASES) - 1,
        description=(
            "How many phases' Jobs start ahead of their turn, while the phases before them run: "
            "their pods start and load the operator's code, then wait until the operator gives "
            "them their turn (about 1 s saved a phase, for as many more pods at a time; 4 starts "
            "every Job with the cycle, which pays where nodes have cores to spare). A Job whose "
            "turn never comes is cancelled and exits without running. Implement starts ahead "
            "only when the charter needs no person's approval to implement (mode enforce). "
            "0: each Job starts in its turn."
        ),
    )

    def deadline_seconds(self, phase: str) -> int:
        """The deadline of one phase, by its lowercase name."""
        value: int = getattr(self, f"{phase}_deadline_seconds")
        return value

    @model_validator(mode="after")
    def _phases_fit_cycle(self) -> PhasePolicySpec:
        for phase in PHASES:
            if self.deadline_seconds(phase) > self.cycle_deadline_seconds:
                raise ValueError(f"{phase}DeadlineSeconds cannot exceed cycleDeadlineSeconds")
        return self


class TriggerSpec(WireModel):
    """When the operator starts a cycle on its own."""

    mode: Literal["auto", "manual"] = Field(
        default="auto",
        description="auto: start a cycle at or above level; manual: only cycles people create.",
    )
    level: Literal["medium", "high", "critical"] = Field(
        default="high", description="Lowest entropy level that starts a cycle in auto mode."
    )


class CircuitBreakerSpec(WireModel):
    """Limits on how often the operator acts, so a fault it cannot fix does not make it thrash."""

    model_config = WireModel.model_config | {
        "json_schema_extra": cel_rules(
            cel(
                "self.cooldownSeconds <= self.maxCooldownSeconds",
                "cooldownSeconds must not exceed maxCooldownSeconds",
                ".cooldownSeconds",
            )
        )
    }

    max_cycles: int = Field(
        default=3, ge=1, le=100, description="Most cycles allowed within windowSeconds."
    )
    window_seconds: int = Field(
        default=3600, ge=60, le=7 * 86_400, description="Window in which maxCycles are counted."
    )
    cooldown_seconds: int = Field(
        default=300, ge=0, le=86_400, description="Pause after the breaker opens, doubling."
    )
    max_cooldown_seconds: int = Field(
        default=3600, ge=0, le=7 * 86_400, description="Cap of the doubling cooldown."
    )
    max_strategy_failures: int = Field(
        default=2,
        ge=1,
        le=10,
        description=(
            "A strategy that failed this often for the same symptom signature is not tried "
            "again; the charter escalates instead."
        ),
    )
    max_failed_fixes: int = Field(
        default=2,
        ge=1,
        le=10,
        description=(
            "Failed mutating cycles (rolled back or failed) within one incident after which "
            "the next cycle escalates instead of changing anything, with the history as its "
            "reason. An escalated incident starts no new cycle until the evidence changes "
            "(new indicator types, a higher level, the targets or their inputs edited, a "
            "recovery then relapse) or a person asks."
        ),
    )

    @model_validator(mode="after")
    def _cooldown_within_cap(self) -> CircuitBreakerSpec:
        if self.cooldown_seconds > self.max_cooldown_seconds:
            raise ValueError("cooldownSeconds must not exceed maxCooldownSeconds")
        return self


class ProactiveSpec(WireModel):
    """Cycles started ahead of a predicted threshold crossing."""

    enabled: bool = Field(
        default=False,
        description="Start a cycle when the entropy trend is predicted to reach the trigger "
        "level within horizonSeconds.",
    )
    horizon_seconds: int = Field(
        default=900, ge=60, le=86_400, description="How far ahead a predicted crossing counts."
    )


class SpcSpec(WireModel):
    """Statistical process control of entropy, health and cycle duration."""

    baseline_points: int = Field(
        default=20,
        ge=8,
        le=500,
        description="Measurements in the phase-I baseline the control limits are computed from.",
    )
    hold_down_points: int = Field(
        default=20,
        ge=8,
        le=500,
        description="Stable points needed after a successful cycle before limits are relearned.",
    )
    trigger_cycles: bool = Field(
        default=False,
        description="Start a cycle when the entropy chart signals an upward shift (any Western "
        "Electric rule), even below the trigger level.",
    )
    proactive: ProactiveSpec = defaulted(ProactiveSpec, "Cycles ahead of a predicted crossing.")


class StrategyPolicySpec(WireModel):
    """Which remediation strategies the operator may choose from."""

    model_config = WireModel.model_config | {
        "json_schema_extra": cel_rules(
            cel(
                "!has(self.allow) || !has(self.deny) || self.allow.all(s, !(s in self.deny))",
                "a strategy cannot be both allowed and denied",
                ".deny",
            )
        )
    }

    allow: list[StrategyName] = Field(
        default_factory=list,
        max_length=32,
        description="Only these strategies may be chosen; empty allows every strategy.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    deny: list[StrategyName] = Field(
        default_factory=list,
        max_length=32,
        description="These strategies are never chosen.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )

    @model_validator(mode="after")
    def _disjoint(self) -> StrategyPolicySpec:
        both = sorted(set(self.allow) & set(self.deny))
        if both:
            raise ValueError(f"a strategy cannot be both allowed and denied: {', '.join(both)}")
        return self


class StakeholderRequirements(WireModel):
    """A stakeholder's requirements; merging them into a charter only ever tightens it."""

    min_health_score: Fraction | None = Field(
        default=None, description="Health score the stakeholder needs after regeneration."
    )
    max_entropy_score: Fraction | None = Field(
        default=None, description="Entropy score the stakeholder accepts after regeneration."
    )
    max_recovery_seconds: Seconds | None = Field(
        default=None, description="Longest recovery the stakeholder accepts."
    )
    max_error_rate: Fraction | None = Field(
        default=None, description="Highest share of error spans the stakeholder accepts."
    )
    max_p99_latency_ms: float | None = Field(
        default=None, gt=0.0, description="Highest 99th percentile latency the stakeholder accepts."
    )
    approval_required: bool = Field(
        default=False,
        description="The stakeholder approves each regeneration: the charter runs in propose mode.",
    )
    notes: list[Annotated[str, StringConstraints(max_length=1024)]] = Field(
        default_factory=list, max_length=32, description="Requirements in words."
    )


class Stakeholder(WireModel):
    """Someone with a stake in the system's health."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=253)] = Field(
        description="Person, team or on-call rotation."
    )
    role: Annotated[str, StringConstraints(min_length=1, max_length=253)] = Field(
        description="Their role, for example owner, sre or product."
    )
    requirements: StakeholderRequirements = defaulted(
        StakeholderRequirements, "What they require of the system and of its regeneration."
    )


NotificationEvent = Literal[
    "CycleStarted",
    "AwaitingApproval",
    "Succeeded",
    "RolledBack",
    "Failed",
    "Escalated",
    "Aborted",
    "Rejected",
    "CircuitOpened",
]
NOTIFICATION_EVENTS: Final[tuple[str, ...]] = get_args(NotificationEvent)


class NotificationsSpec(WireModel):
    """Where the charter's notifications go and which events it wants told."""

    sinks: list[DnsLabel] | None = Field(
        default=None,
        max_length=16,
        description=(
            "Names of sinks configured in the operator (the chart's notifications.sinks); "
            "unset: the operator's notifications.defaultSinks; empty: no notifications."
        ),
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    events: list[NotificationEvent] = Field(
        default_factory=list,
        max_length=len(NOTIFICATION_EVENTS),
        description=(
            "Events to notify: CycleStarted, AwaitingApproval, Succeeded, RolledBack, Failed, "
            "Escalated, Aborted, Rejected, CircuitOpened; empty: all of them."
        ),
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


class NotificationRecord(StatusModel):
    """One message owed to one sink: written Pending with the transition that owes it, then
    marked by the operator once the sink has answered (at least once: see README)."""

    due_at: Timestamp | None = Field(default=None, description="When the transition happened.")
    result: Literal["Pending", "Delivered", "Summarised", "Failed"] = Field(
        default="Pending",
        description="Pending; Delivered; Summarised (held back by the rate limit, then told in "
        "a summary); Failed (a refusal, or every attempt failed).",
    )
    attempts: int = Field(default=0, ge=0, description="Attempts made to deliver it.")
    updated_at: Timestamp | None = Field(default=None, description="When the result was set.")
    message: str = Field(default="", max_length=1024, description="The sink's last answer.")


def notification_records_field() -> Any:
    """The status field of the messages an object owes, keyed ``<sink>/<event>``."""
    return Field(
        default_factory=dict,
        description="Notifications owed and their delivery, keyed <sink>/<event>.",
    )


class RegenerationCharterSpec(WireModel):
    """What to keep healthy, by which thresholds, criteria and budgets."""

    system_id: DnsLabel = Field(
        description="Identity of the system; immutable, it keys the charter's history.",
        json_schema_extra=cel_rules(cel("self == oldSelf", "systemId is immutable")),
    )
    system_type: Annotated[SystemType, FROM_JSON_STRING] = Field(
        description="Kind of system; chooses the defaults of thresholds, criteria and cadence."
    )
    target: TargetSpec = Field(description="The workloads to keep healthy and their config.")
    telemetry: TelemetrySpec = Field(description="Where the spans come from.")
    objectives: ObjectivesSpec = defaulted(
        ObjectivesSpec, "Service-level objectives behind the health score."
    )
    thresholds: ThresholdsSpec | None = Field(
        default=None, description="Entropy level thresholds; unset uses the system type's."
    )
    success_criteria: SuccessCriteriaSpec | None = Field(
        default=None, description="What a regeneration must achieve; unset uses the system type's."
    )
    cadence: CadenceSpec | None = Field(
        default=None, description="Measurement cadence; unset uses the system type's."
    )
    phase_policy: PhasePolicySpec | None = Field(
        default=None, description="Phase Job deadlines and retries; unset uses the system type's."
    )
    trigger: TriggerSpec = defaulted(TriggerSpec, "When the operator starts cycles on its own.")
    circuit_breaker: CircuitBreakerSpec = defaulted(
        CircuitBreakerSpec, "Limits on how often the operator acts."
    )
    strategies: StrategyPolicySpec = defaulted(
        StrategyPolicySpec, "Which remediation strategies may be chosen."
    )
    spc: SpcSpec = defaulted(
        SpcSpec, "Control charts of entropy, health and cycle duration, and what they may trigger."
    )
    stakeholders: list[Stakeholder] = Field(
        default_factory=list, max_length=64, description="People with a stake in the system."
    )
    mode: Literal["observe", "propose", "enforce"] = Field(
        default="enforce",
        description=(
            "observe: measure and report only; propose: stop each cycle after Develop until the "
            "regeneration.weavergen.io/approve annotation approves it; enforce: act."
        ),
    )
    executor: Literal["job", "inline"] = Field(
        default="job",
        description="job: each phase runs as a Kubernetes Job; inline: in the operator process.",
    )
    notifications: NotificationsSpec | None = Field(
        default=None,
        description="Messages to sinks the operator knows (Slack, webhooks, CloudEvents) on cycle "
        "transitions; unset: the operator's default sinks, every event.",
    )


class EntropyIndicator(StatusModel):
    """One drift indicator of the latest measurement, in short."""

    type: str = Field(description="Indicator type, for example latency_degradation.")
    severity: Fraction = Field(description="How strong the drift is, 0 to 1.")
    summary: str = Field(default="", description="The evidence in one sentence.")


class MeasurementSources(StatusModel):
    """What each part of the latest measurement was read from."""

    red: Literal["otlp", "configMap", "prometheus"] = Field(
        description="Requests, errors and durations: spans from the operator's receiver (otlp) "
        "or a ConfigMap, or RED metrics from Prometheus."
    )
    semantic_conventions: Literal["otlp", "configMap", "none"] = Field(
        description="Attributes validated against the semantic conventions: from spans (the "
        "receiver's or a ConfigMap's), or none (Prometheus alone carries no attributes)."
    )


class EntropyStatus(StatusModel):
    """The latest measurement of the target."""

    score: Fraction | None = Field(default=None, description="Entropy score, 0 to 1.")
    level: Annotated[EntropyLevel, FROM_JSON_STRING] | None = Field(
        default=None, description="Entropy level of the score."
    )
    health_score: Fraction | None = Field(default=None, description="Health score, 0 to 1.")
    indicators: list[EntropyIndicator] = Field(
        default_factory=list, description="Drift indicators found."
    )
    validation_error_count: int = Field(
        default=0, ge=0, description="Distinct semantic-convention validation errors."
    )
    span_count: int = Field(
        default=0,
        ge=0,
        description="Spans in the measured window (requests, when measured from Prometheus).",
    )
    sampling_ratio: Fraction = Field(
        default=1.0,
        description=(
            "The share of the window's spans that reached the operator: below 1 when a sampler "
            "upstream keeps only some traces (from the spans' tracestate th, else "
            "spec.telemetry.samplingRatio)."
        ),
    )
    represented_spans: int = Field(
        default=0,
        ge=0,
        description="The spans the window stands for: spanCount scaled up by samplingRatio.",
    )
    sources: MeasurementSources | None = Field(
        default=None, description="What each part of the measurement was read from."
    )
    measured_at: Timestamp | None = Field(default=None, description="End of the measured window.")


class EffectiveThresholds(StatusModel):
    """The thresholds in force, after defaults and computation."""

    medium: Fraction = Field(description="Entropy score where MEDIUM starts.")
    high: Fraction = Field(description="Entropy score where HIGH starts.")
    critical: Fraction = Field(description="Entropy score where CRITICAL starts.")
    source: Literal["systemType", "charter", "computed"] = Field(
        description="Where the values come from."
    )


class StrategyOutcomeHistory(StatusModel):
    """Outcomes of one strategy for one symptom signature; feeds the success-probability model."""

    strategy: str = Field(description="Strategy name.")
    signature: str = Field(description="Symptom signature it was used for.")
    successes: int = Field(default=0, ge=0, description="Cycles that succeeded with it.")
    failures: int = Field(default=0, ge=0, description="Cycles that failed or rolled back with it.")
    last_outcome: Literal["Succeeded", "RolledBack", "Failed"] | None = Field(
        default=None, description="Outcome of the latest cycle that used it."
    )
    last_used_at: Timestamp | None = Field(default=None, description="When it was last used.")


class CircuitBreakerStatus(StatusModel):
    """State of the charter's circuit breaker, kept in status so it survives restarts."""

    state: Literal["Closed", "Open"] = Field(default="Closed", description="Closed or Open.")
    recent_cycle_starts: list[Timestamp] = Field(
        default_factory=list, max_length=100, description="Start times of cycles in the window."
    )
    open_until: Timestamp | None = Field(default=None, description="When an open breaker closes.")
    consecutive_openings: int = Field(
        default=0, ge=0, description="Openings in a row; the cooldown doubles with each."
    )


class ChartPoint(StatusModel):
    """One charted value."""

    at: str = Field(description="When it was measured.")
    value: float = Field(description="The value.")


class ChartSignal(StatusModel):
    """A control-chart signal: a Western Electric rule that fired."""

    chart: Literal["individuals", "movingRange", "ewma"] = Field(description="Chart it fired on.")
    rule: Literal["WE1", "WE2", "WE3", "WE4"] = Field(
        description="WE1 one point beyond 3 sigma; WE2 2 of 3 beyond 2 sigma; WE3 4 of 5 beyond "
        "1 sigma; WE4 8 in a row on one side (same side of the center line for WE2-WE4)."
    )
    at: str = Field(description="Time of the point that completed the pattern.")
    value: float = Field(description="The point, moving range or EWMA value.")
    side: Literal["upper", "lower"] = Field(description="Side of the center line.")
    message: str = Field(description="The signal in one sentence.")


class Rebaseline(StatusModel):
    """Points collected to relearn the limits after a deliberate change."""

    candidates: list[float] = Field(default_factory=list, description="Candidate baseline.")


class HoltState(StatusModel):
    """Holt linear-trend smoothing state behind the forecast."""

    level: float = Field(description="Smoothed level.")
    trend: float = Field(description="Smoothed change per point.")


class CycleWindow(StatusModel):
    """A chart's points around one cycle, kept after its rolling history has moved on."""

    cycle: str = Field(description="Name of the RegenerationCycle.")
    started_at: Timestamp = Field(description="When the cycle started.")
    finished_at: Timestamp = Field(description="When it finished.")
    points: list[ChartPoint] = Field(
        default_factory=list,
        description="Points before, during and after the cycle, a bounded number (a long cycle "
        "keeps its first and last ones).",
    )


class ControlChartStatus(StatusModel):
    """Individuals, moving-range and EWMA control chart of one metric."""

    phase: Literal["baseline", "monitoring"] = Field(
        default="baseline",
        description="baseline: collecting phase-I points; monitoring: limits frozen, rules on.",
    )
    center_line: float | None = Field(default=None, description="Center line (baseline mean).")
    sigma: float | None = Field(default=None, description="Sigma estimate, MR-bar / 1.128.")
    upper_control_limit: float | None = Field(default=None, description="Center + 3 sigma.")
    lower_control_limit: float | None = Field(default=None, description="Center - 3 sigma.")
    moving_range_upper_limit: float | None = Field(
        default=None, description="Moving-range chart limit, 3.267 MR-bar."
    )
    ewma: float | None = Field(default=None, description="Current EWMA value.")
    ewma_upper_limit: float | None = Field(default=None, description="EWMA upper limit.")
    ewma_lower_limit: float | None = Field(default=None, description="EWMA lower limit.")
    points: int = Field(default=0, ge=0, description="Points charted so far.")
    monitored_points: int = Field(default=0, ge=0, description="Points judged by these limits.")
    limits_since: str | None = Field(default=None, description="When these limits were set.")
    baseline_values: list[float] = Field(
        default_factory=list, description="Phase-I points collected so far."
    )
    history: list[ChartPoint] = Field(default_factory=list, description="Latest points.")
    signals: list[ChartSignal] = Field(default_factory=list, description="Latest signals.")
    last_signal: str | None = Field(default=None, description="The latest signal's message.")
    rebaseline: Rebaseline | None = Field(
        default=None, description="Set while relearning limits after a successful cycle."
    )
    holt: HoltState | None = Field(default=None, description="Trend state of the forecast.")
    cycle_windows: list[CycleWindow] = Field(
        default_factory=list,
        description="The points around each of the latest few cycles, oldest first (entropy and "
        "health charts).",
    )


class ControlCharts(StatusModel):
    """The charter's control charts."""

    entropy: ControlChartStatus | None = Field(default=None, description="Entropy score.")
    health: ControlChartStatus | None = Field(default=None, description="Health score.")
    cycle_duration: ControlChartStatus | None = Field(
        default=None, description="Duration of finished cycles, seconds."
    )
    rebaselined_after: str | None = Field(
        default=None, description="The successful cycle after which limits are being relearned."
    )


class EntropyForecast(StatusModel):
    """When the entropy trend is predicted to reach the next threshold."""

    level: str = Field(description="The threshold's level.")
    threshold: float = Field(description="The threshold's entropy score.")
    seconds: float = Field(description="Predicted seconds from the latest measurement.")
    trend_per_point: float = Field(description="Entropy change per measurement.")


class CycleRef(StatusModel):
    """A pointer to a cycle of this charter."""

    name: str = Field(description="Name of the RegenerationCycle.")
    outcome: str | None = Field(default=None, description="Its outcome once finished.")
    started_at: Timestamp | None = Field(default=None, description="When it started.")
    finished_at: Timestamp | None = Field(default=None, description="When it finished.")
    changed_since: float | None = Field(
        default=None,
        description=(
            "When its change began to settle (seconds since the epoch): until a whole window has "
            "passed since, the charter measures only what the receiver got from then on."
        ),
    )


class IncidentAttempt(StatusModel):
    """One finished cycle of an incident."""

    cycle: str = Field(description="Name of the RegenerationCycle.")
    strategy: str = Field(description="The strategy it ran.")
    outcome: Literal["Succeeded", "RolledBack", "Failed", "Escalated"] = Field(
        description="How it ended."
    )
    finished_at: Timestamp | None = Field(default=None, description="When it finished.")


class IncidentEscalation(StatusModel):
    """The incident was handed to people: no cycle starts until the evidence changes."""

    since: Timestamp = Field(description="When the escalating cycle finished.")
    cycle: str = Field(description="The cycle that escalated.")
    reason: str = Field(
        description="Why nothing here can fix it: symptoms, likely causes, what was tried and "
        "what changed outside the charter's targets."
    )


class IncidentStatus(StatusModel):
    """The open incident: one degradation, from the first measurement at the trigger until
    the workload has been healthy for a telemetry window (or a fix is verified)."""

    opened_at: Timestamp = Field(description="When the incident opened.")
    because: str = Field(description="Why it opened (or what changed from the one before).")
    last_good_at: Timestamp | None = Field(
        default=None, description="The last measurement below the trigger before it opened."
    )
    indicators: list[str] = Field(
        default_factory=list, description="Indicator types seen during the incident."
    )
    worst_level: Literal["low", "medium", "high", "critical"] = Field(
        description="Highest entropy level seen during the incident."
    )
    novel: list[str] = Field(
        default_factory=list,
        description="New evidence seen once; seen again in the next measurement, it reopens.",
    )
    inputs: str | None = Field(
        default=None,
        description="Fingerprint of the targets and what their workloads consume; an edit "
        "changes it and ends an escalation's hold.",
    )
    attempts: list[IncidentAttempt] = Field(
        default_factory=list, max_length=20, description="The incident's finished cycles."
    )
    escalated: IncidentEscalation | None = Field(
        default=None, description="Set once a cycle escalated: the charter holds."
    )
    suspects: list[str] = Field(
        default_factory=list,
        description="Inputs of the workloads outside the targets that changed since they were "
        "last healthy (ConfigMaps, Secrets, images): the likely cause when fixes fail.",
    )
    healthy_since: Timestamp | None = Field(
        default=None, description="First healthy measurement since the last degraded one."
    )


class RegenerationCharterStatus(StatusModel):
    """Observed state of the charter, written by the operator."""

    observed_generation: int | None = Field(
        default=None, description="The .metadata.generation this status describes."
    )
    conditions: list[Condition] = condition_list_field(
        "Ready, Degraded, InsufficientData, CircuitOpen and Escalated."
    )
    entropy: EntropyStatus | None = Field(default=None, description="Latest measurement.")
    effective_thresholds: EffectiveThresholds | None = Field(
        default=None, description="Thresholds in force."
    )
    control_charts: ControlCharts | None = Field(
        default=None, description="Control charts of entropy, health and cycle duration."
    )
    forecast: EntropyForecast | None = Field(
        default=None, description="Predicted crossing of the next entropy threshold, if rising."
    )
    handled_request: str | None = Field(
        default=None,
        description="The latest regeneration.weavergen.io/requested-at annotation handled.",
    )
    strategy_history: list[StrategyOutcomeHistory] = Field(
        default_factory=list, description="Per-strategy outcome history."
    )
    circuit_breaker: CircuitBreakerStatus | None = Field(
        default=None, description="Circuit breaker state."
    )
    active_cycle: str | None = Field(default=None, description="The cycle running now, if any.")
    last_cycle: CycleRef | None = Field(default=None, description="The latest finished cycle.")
    incident: IncidentStatus | None = Field(
        default=None, description="The open incident, if the workload is degraded."
    )
    notifications: dict[str, NotificationRecord] = notification_records_field()
    shard: str | None = Field(
        default=None,
        description="The operator shard that measures the charter (its OTLP/gRPC endpoint), "
        "when charters are sharded across replicas.",
    )


class RegenerationCharter(WireModel):
    """A RegenerationCharter object as stored in Kubernetes."""

    model_config = WireModel.model_config | {"extra": "ignore"}

    api_version: Literal["regeneration.weavergen.io/v1alpha1"] = API_VERSION
    kind: Literal["RegenerationCharter"] = KIND
    metadata: ObjectMeta
    spec: RegenerationCharterSpec
    status: RegenerationCharterStatus | None = None
