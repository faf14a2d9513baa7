"""Charters that break one rule each, shared by the model tests and the admission tests.

Every invariant is enforced twice — by the pydantic models (CLI, operator) and by the CRD schema
and CEL rules (API server) — so each case states what both must say.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

BASE_SPEC: dict[str, Any] = {
    "systemId": "checkout",
    "systemType": "web-service",
    "target": {"workloads": [{"kind": "Deployment", "name": "checkout"}]},
    "telemetry": {"serviceName": "checkout"},
}

CRITERIA = {
    "maxEntropyScore": 0.3,
    "minHealthScore": 0.9,
    "minEntropyReduction": 0.2,
    "maxRecoverySeconds": 240,
    "settleSeconds": 30,
    "verifyWindows": 1,
}
POLICY = {
    "defineDeadlineSeconds": 30,
    "measureDeadlineSeconds": 60,
    "exploreDeadlineSeconds": 120,
    "developDeadlineSeconds": 180,
    "implementDeadlineSeconds": 300,
    "cycleDeadlineSeconds": 600,
}


def with_change(path: str, value: Any) -> dict[str, Any]:
    """BASE_SPEC with the dotted ``path`` set to ``value``."""
    spec = copy.deepcopy(BASE_SPEC)
    *parents, leaf = path.split(".")
    node = spec
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value
    return spec


@dataclass(frozen=True)
class InvalidCase:
    """One broken rule: the change, the field blamed, and the words each validator uses."""

    path: str
    value: Any
    field: str  # as the API server writes it, under spec: "target.workloads[0]"
    model_words: str
    server_words: str

    @property
    def spec(self) -> dict[str, Any]:
        return with_change(self.path, self.value)

    @property
    def model_location(self) -> str:
        """The field as pydantic's error location, dotted: ``target.workloads.0``."""
        return self.field.replace("[", ".").replace("]", "")

    @property
    def id(self) -> str:
        return f"{self.field}:{self.server_words or self.model_words}"[:60]


INVALID_SPECS = [
    InvalidCase("systemId", "Checkout_1", "systemId", "should match pattern", "should match"),
    InvalidCase("systemType", "mainframe", "systemType", "Input should be", "Unsupported value"),
    InvalidCase("target.workloads", [], "target.workloads", "at least 1 item", "at least 1 items"),
    InvalidCase(
        "target.workloads",
        [{"kind": "Deployment"}],
        "target.workloads[0]",
        "exactly one of",
        "set exactly one of name and selector",
    ),
    InvalidCase(
        "target.workloads",
        [{"name": "a", "selector": {"matchLabels": {"app": "a"}}}],
        "target.workloads[0]",
        "exactly one of",
        "set exactly one of name and selector",
    ),
    InvalidCase(
        "target.workloads",
        [{"kind": "DaemonSet", "name": "a"}],
        "target.workloads[0].kind",
        "Input should be",
        "Unsupported value",
    ),
    InvalidCase(
        "telemetry.source",
        "configMap",
        "telemetry.configMap",
        "configMap is required",
        "configMap is required when source is configMap",
    ),
    InvalidCase(
        "telemetry.source",
        "prometheus",
        "telemetry.prometheus",
        "prometheus is required",
        "prometheus is required when source is prometheus",
    ),
    InvalidCase(
        "telemetry",
        {
            "serviceName": "c",
            "source": "prometheus",
            "prometheus": {"url": "http://p:9090"},
            "windowSeconds": 5,
        },
        "telemetry.windowSeconds",
        "at least 10 with source prometheus",
        "windowSeconds must be at least 10 with source prometheus",
    ),
    InvalidCase(
        "telemetry.prometheus",
        {"url": "http://prometheus:9090", "errors": "sum(rate(x[5m]))"},
        "telemetry.prometheus.errors",
        "must read its range from {{window}}",
        "the query must read its range from {{window}}",
    ),
    InvalidCase(
        "telemetry.prometheus",
        {"url": "http://prometheus:9090", "latency": "sum(x{a='{{svc}}'}[{{window}}])"},
        "telemetry.prometheus.latency",
        "unknown placeholder {{svc}}",
        "unknown placeholder: the placeholders are {{window}} and {{service}}",
    ),
    InvalidCase(
        "telemetry.windowSeconds",
        1,
        "telemetry.windowSeconds",
        "greater than or equal to 5",
        "greater than or equal to 5",
    ),
    InvalidCase(
        "telemetry.samplingRatio",
        0,
        "telemetry.samplingRatio",
        "greater than 0",
        "greater than 0",
    ),
    InvalidCase(
        "thresholds",
        {"medium": 0.6, "high": 0.6, "critical": 0.8},
        "thresholds",
        "medium < high < critical",
        "thresholds must increase strictly: medium < high < critical",
    ),
    InvalidCase(
        "thresholds",
        {"medium": 0.3, "high": 0.9, "critical": 0.8},
        "thresholds",
        "medium < high < critical",
        "thresholds must increase strictly: medium < high < critical",
    ),
    InvalidCase(
        "thresholds",
        {"medium": 0.3, "high": 0.6, "critical": 1.2},
        "thresholds.critical",
        "less than or equal to 1",
        "less than or equal to 1",
    ),
    InvalidCase(
        "strategies",
        {"allow": ["agent-reset", "cache-refresh"], "deny": ["agent-reset"]},
        "strategies.deny",
        "both allowed and denied: agent-reset",
        "a strategy cannot be both allowed and denied",
    ),
    InvalidCase(
        "circuitBreaker",
        {"cooldownSeconds": 7200, "maxCooldownSeconds": 3600},
        "circuitBreaker.cooldownSeconds",
        "cooldownSeconds must not exceed",
        "cooldownSeconds must not exceed maxCooldownSeconds",
    ),
    InvalidCase(
        "successCriteria",
        {**CRITERIA, "maxRecoverySeconds": 60, "settleSeconds": 60},
        "successCriteria.settleSeconds",
        "settleSeconds must be shorter",
        "settleSeconds must be shorter than maxRecoverySeconds",
    ),
    *(
        InvalidCase(
            "phasePolicy",
            {**POLICY, f"{phase}DeadlineSeconds": 900},
            f"phasePolicy.{phase}DeadlineSeconds",
            f"{phase}DeadlineSeconds cannot exceed",
            f"{phase}DeadlineSeconds cannot exceed cycleDeadlineSeconds",
        )
        for phase in ("define", "measure", "explore", "develop", "implement")
    ),
    InvalidCase("mode", "yolo", "mode", "'observe', 'propose' or 'enforce'", "Unsupported value"),
    InvalidCase("thresholdz", {}, "thresholdz", "Extra inputs are not permitted", "thresholdz"),
]
