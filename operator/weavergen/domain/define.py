"""Define phase: turn a system id, its type, its targets and its stakeholders into a charter."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from weavergen.api.charter import (
    WORKLOAD_KINDS,
    ObjectivesSpec,
    RegenerationCharter,
    RegenerationCharterSpec,
    Stakeholder,
    SuccessCriteriaSpec,
    TargetSpec,
    TelemetrySpec,
    WorkloadRef,
)
from weavergen.api.common import DNS_LABEL_PATTERN, DNS_SUBDOMAIN_PATTERN, ObjectMeta
from weavergen.api.keys import SYSTEM_ID_LABEL, SYSTEM_TYPE_LABEL
from weavergen.api.profiles import ResolvedCharterSpec, profile_for, resolve_spec

_TARGET_KINDS = {
    "deployment": "Deployment",
    "deploy": "Deployment",
    "statefulset": "StatefulSet",
    "sts": "StatefulSet",
    "rollout": "Rollout",
    "ro": "Rollout",
    "configmap": "ConfigMap",
    "cm": "ConfigMap",
    "secret": "Secret",
}
_NAME = re.compile(DNS_SUBDOMAIN_PATTERN)
_LABEL = re.compile(DNS_LABEL_PATTERN)


class InvalidName(ValueError):
    """A system id or namespace that is not a DNS-1123 label."""


def check_dns_label(what: str, value: str) -> None:
    """Raise ``InvalidName`` unless ``value`` is a DNS-1123 label."""
    if len(value) > 63 or not _LABEL.fullmatch(value):
        raise InvalidName(
            f"{what} {value!r} is not a DNS label (lowercase letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters)"
        )


class InvalidTarget(ValueError):
    """A ``KIND/NAME`` target that cannot be parsed."""


@dataclass(frozen=True)
class TargetRef:
    """One object named on the command line: a workload, a ConfigMap or a Secret."""

    kind: str
    name: str


def parse_target(text: str) -> TargetRef:
    """Parse ``KIND/NAME`` (kind case-insensitive, short names accepted: deploy, sts, ro, cm)."""
    kind, sep, name = text.partition("/")
    known = "Deployment, StatefulSet, Rollout, ConfigMap, Secret"
    if not sep or not kind or not name:
        raise InvalidTarget(f"target {text!r}: expected KIND/NAME with KIND one of {known}")
    canonical = _TARGET_KINDS.get(kind.lower())
    if canonical is None:
        raise InvalidTarget(f"target {text!r}: unknown kind {kind!r} (expected one of {known})")
    if len(name) > 253 or not _NAME.fullmatch(name):
        raise InvalidTarget(
            f"target {text!r}: {name!r} is not a valid object name (lowercase letters, digits, "
            "'-' and '.', at most 253 characters)"
        )
    return TargetRef(canonical, name)


def build_target(system_id: str, refs: Sequence[TargetRef]) -> TargetSpec:
    """The charter's target; without any workload named, the Deployment named like the system."""
    workloads = [
        WorkloadRef.model_validate({"kind": r.kind, "name": r.name})
        for r in refs
        if r.kind in WORKLOAD_KINDS
    ] or [WorkloadRef(kind="Deployment", name=system_id)]
    return TargetSpec(
        workloads=workloads,
        config_maps=_unique(r.name for r in refs if r.kind == "ConfigMap"),
        secrets=_unique(r.name for r in refs if r.kind == "Secret"),
    )


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


def _strictest(
    current: float | None,
    wanted: Iterable[float | None],
    pick: Callable[[list[float]], float],
) -> float | None:
    values = [v for v in (current, *wanted) if v is not None]
    return pick(values) if values else None


def merge_stakeholders(
    spec: ResolvedCharterSpec, stakeholders: Sequence[Stakeholder]
) -> ResolvedCharterSpec:
    """Add stakeholders to a resolved spec; their requirements only ever tighten it.

    Each criterion takes the strictest of the charter's value and every stakeholder's: the
    highest minimum health, the lowest maximum entropy, error rate, latency and recovery time.
    A stakeholder who requires approval turns ``enforce`` into ``propose``.
    """
    criteria = spec.success_criteria
    reqs = [s.requirements for s in stakeholders]
    recovery = min(
        [criteria.max_recovery_seconds, *(r.max_recovery_seconds or 86_400 for r in reqs)]
    )
    tightened = SuccessCriteriaSpec.model_validate(
        {
            **criteria.model_dump(),
            "min_health_score": _strictest(
                criteria.min_health_score, (r.min_health_score for r in reqs), max
            ),
            "max_entropy_score": _strictest(
                criteria.max_entropy_score, (r.max_entropy_score for r in reqs), min
            ),
            "max_error_rate": _strictest(
                criteria.max_error_rate, (r.max_error_rate for r in reqs), min
            ),
            "max_p99_latency_ms": _strictest(
                criteria.max_p99_latency_ms, (r.max_p99_latency_ms for r in reqs), min
            ),
            "max_recovery_seconds": recovery,
            "settle_seconds": min(criteria.settle_seconds, max(1, recovery - 1)),
        }
    )
    mode = spec.mode
    if mode == "enforce" and any(r.approval_required for r in reqs):
        mode = "propose"
    return spec.model_copy(
        update={
            "success_criteria": tightened,
            "stakeholders": [*spec.stakeholders, *stakeholders],
            "mode": mode,
        }
    )


def define_charter(
    system_id: str,
    system_type: str,
    *,
    namespace: str | None = None,
    targets: Sequence[TargetRef] = (),
    stakeholders: Sequence[Stakeholder] = (),
) -> RegenerationCharter:
    """A complete charter: every system-type default written out, stakeholders merged in.

    Raises ``InvalidName`` or, for an unknown system type, ``ValueError``.
    """
    check_dns_label("system id", system_id)
    if namespace is not None:
        check_dns_label("namespace", namespace)
    profile = profile_for(system_type)
    spec = RegenerationCharterSpec(
        system_id=system_id,
        system_type=profile.system_type,
        target=build_target(system_id, targets),
        telemetry=TelemetrySpec(service_name=system_id),
        objectives=ObjectivesSpec(
            availability=1.0 - (profile.success_criteria.max_error_rate or 0.01)
        ),
    )
    spec = merge_stakeholders(resolve_spec(spec), stakeholders)
    return RegenerationCharter(
        metadata=ObjectMeta(
            name=system_id,
            namespace=namespace,
            labels={
                SYSTEM_ID_LABEL: system_id,
                SYSTEM_TYPE_LABEL: profile.system_type.value,
            },
        ),
        spec=spec,
    )
