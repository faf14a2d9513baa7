"""Condition types, their reasons, and Event reasons: the operator's vocabulary for people and
alerting rules, in one place (a reason once shipped is an interface; rename none in passing).

Cycle outcomes (``Succeeded``, ``RolledBack``, ...) are the ``CyclePhase`` values of
``api.cycle``; a finished cycle's Event and outcome condition carry its phase as their reason.
"""

from __future__ import annotations

from typing import Final

# Charter condition types.
READY: Final = "Ready"
DEGRADED: Final = "Degraded"
INSUFFICIENT_DATA: Final = "InsufficientData"
CIRCUIT_OPEN: Final = "CircuitOpen"
ESCALATED: Final = "Escalated"

# Cycle condition types: one per finished phase, and one per outcome.
PHASE_CONDITIONS: Final = {
    "define": "Defined",
    "measure": "Measured",
    "explore": "Explored",
    "develop": "Developed",
    "implement": "Implemented",
}
OUTCOME_CONDITIONS: Final = ("Succeeded", "RolledBack", "Failed")

# Condition reasons.
MEASURED: Final = "Measured"
MEASURING: Final = "Measuring"
UNKNOWN_STRATEGY: Final = "UnknownStrategy"
UNKNOWN_SINK: Final = "UnknownNotificationSink"
ENOUGH_SPANS: Final = "EnoughSpans"
MEASURED_FROM_WORKLOADS: Final = "MeasuredFromWorkloads"
BASELINE_TOO_SMALL: Final = "BaselineTooSmall"
TOO_FEW_SPANS: Final = "TooFewSpans"
AT_OR_ABOVE_TRIGGER: Final = "EntropyAtOrAboveTrigger"
BELOW_TRIGGER: Final = "EntropyBelowTrigger"
CIRCUIT_BREAKER: Final = "CircuitBreaker"
NO_REMEDY_HERE: Final = "NoRemedyHere"
EVIDENCE_CHANGED: Final = "EvidenceChanged"
HEALTHY: Final = "Healthy"
ACTING: Final = "Acting"
PHASE_COMPLETED: Final = "PhaseCompleted"
ROLLBACK_FAILED: Final = "RollbackFailed"

# Event reasons (besides a phase's condition type and a cycle's outcome).
CYCLE_STARTED: Final = "CycleStarted"
INCIDENT_OPENED: Final = "IncidentOpened"
INCIDENT_CHANGED: Final = "IncidentChanged"
INCIDENT_RESOLVED: Final = "IncidentResolved"
SHARD_CHANGED: Final = "ShardChanged"  # another operator replica measures the charter now
# A person's request on a cycle (``Aborted`` and ``Rejected`` are outcomes, as above).
ABORT_REQUESTED: Final = "AbortRequested"  # first seen: the cycle stops at the next safe point
REJECT_REQUESTED: Final = "RejectRequested"
RETRIED: Final = "Retried"  # on the retried cycle, naming the new one
REQUEST_IGNORED: Final = {  # a request the cycle cannot act on (the annotation is removed)
    "abort": "AbortIgnored",
    "reject": "RejectIgnored",
    "retry": "RetryIgnored",
}


def control_chart_signal(rule: str) -> str:
    """The Event reason of a control-chart signal: ``ControlChartWE1`` ... ``ControlChartWE4``."""
    return f"ControlChart{rule}"
