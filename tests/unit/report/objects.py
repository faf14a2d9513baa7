"""A charter an hour into its life and three of its cycles, as ``kubectl get -o json`` has them."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

START = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
GENERATED_AT = datetime(2026, 11, 25, 11, 5, 30, tzinfo=UTC)
SCRIPT = '<script>alert("owned")</script>'
PHASE_SECONDS = {
    "define": 2.0,
    "measure": 31.5,
    "explore": 8.25,
    "develop": 12.0,
    "implement": 95.0,
}
CHOSEN = "partial-regeneration"


def ts(minutes: float) -> str:
    """The RFC 3339 time ``minutes`` after START, as the API server writes it."""
    return (START + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def history(count: int, base: float, rise: float) -> list[dict[str, Any]]:
    """One point a minute: a wobble around ``base`` that climbs by ``rise`` over the last third."""
    points = []
    for i in range(count):
        climb = rise * max(0.0, (i - count * 2 / 3) / (count / 3))
        points.append({"at": ts(i), "value": round(base + 0.02 * math.sin(i) + climb, 4)})
    return points


def charter() -> dict[str, Any]:
    entropy_history = history(60, 0.22, 0.33)
    health_history = history(60, 0.93, -0.1)
    return {
        "apiVersion": "regeneration.weavergen.io/v1alpha1",
        "kind": "RegenerationCharter",
        "metadata": {"name": "checkout", "namespace": "shop"},
        "spec": {
            "systemId": "checkout",
            "systemType": "web-service",
            "mode": "enforce",
            "spc": {"baselinePoints": 12, "holdDownPoints": 16},
        },
        "status": {
            "entropy": {
                "score": 0.55,
                "level": "medium",
                "healthScore": 0.84,
                "indicators": [
                    {
                        "type": "latency_degradation",
                        "severity": 0.7,
                        "summary": "p99 latency 910 ms against 420 ms in the baseline",
                    }
                ],
                "validationErrorCount": 2,
                "spanCount": 5210,
                "measuredAt": ts(59),
            },
            "effectiveThresholds": {
                "medium": 0.3,
                "high": 0.6,
                "critical": 0.8,
                "source": "charter",
            },
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Measured",
                    "message": "entropy measured",
                    "lastTransitionTime": ts(0),
                },
                {
                    "type": "Degraded",
                    "status": "True",
                    "reason": "EntropyMedium",
                    "message": f"entropy 0.55 is medium {SCRIPT}",
                    "lastTransitionTime": ts(48),
                },
            ],
            "controlCharts": {
                "entropy": {
                    "phase": "monitoring",
                    "centerLine": 0.22,
                    "sigma": 0.03,
                    "upperControlLimit": 0.31,
                    "lowerControlLimit": 0.13,
                    "movingRangeUpperLimit": 0.11,
                    "ewma": 0.41,
                    "ewmaUpperLimit": 0.26,
                    "ewmaLowerLimit": 0.18,
                    "points": 72,
                    "monitoredPoints": 60,
                    "limitsSince": ts(-1),
                    "history": entropy_history,
                    "signals": [
                        {
                            "chart": "individuals",
                            "rule": "WE1",
                            "at": ts(-30),
                            "value": 0.35,
                            "side": "upper",
                            "message": "a point beyond 3 sigma, before the history window",
                        },
                        {
                            "chart": "individuals",
                            "rule": "WE2",
                            "at": ts(50),
                            "value": entropy_history[50]["value"],
                            "side": "upper",
                            "message": "2 of 3 points beyond 2 sigma",
                        },
                        {
                            "chart": "individuals",
                            "rule": "WE4",
                            "at": ts(55),
                            "value": entropy_history[55]["value"],
                            "side": "upper",
                            "message": "8 points in a row above the center line",
                        },
                        {
                            "chart": "individuals",
                            "rule": "WE1",
                            "at": ts(59),
                            "value": entropy_history[59]["value"],
                            "side": "upper",
                            "message": f"a point beyond 3 sigma {SCRIPT}",
                        },
                        {
                            "chart": "movingRange",
                            "rule": "WE1",
                            "at": ts(59),
                            "value": 0.09,
                            "side": "upper",
                            "message": "entropy moving range WE1: a jump of 0.09",
                        },
                    ],
                    "lastSignal": "entropy moving range WE1: a jump of 0.09",
                },
                "health": {
                    "phase": "monitoring",
                    "centerLine": 0.93,
                    "sigma": 0.015,
                    "upperControlLimit": 0.975,
                    "lowerControlLimit": 0.885,
                    "points": 60,
                    "history": health_history,
                    "signals": [
                        {
                            "chart": "individuals",
                            "rule": "WE1",
                            "at": ts(58),
                            "value": health_history[58]["value"],
                            "side": "lower",
                            "message": "a point beyond 3 sigma",
                        }
                    ],
                    "lastSignal": "health WE1: 1 point beyond 3 sigma below the center line",
                    "rebaseline": {"candidates": [0.86, 0.85, 0.87, 0.86, 0.85]},
                },
                "cycleDuration": {
                    "phase": "baseline",
                    "centerLine": None,
                    "sigma": None,
                    "upperControlLimit": None,
                    "lowerControlLimit": None,
                    "points": 3,
                    "baselineValues": [148.75, 92.0, 40.0],
                    "history": [
                        {"at": ts(9), "value": 148.75},
                        {"at": ts(34), "value": 92.0},
                        {"at": ts(51), "value": 40.0},
                    ],
                    "signals": [],
                    "lastSignal": None,
                },
                "rebaselinedAfter": "checkout-1",
            },
            "forecast": {"level": "high", "threshold": 0.6, "seconds": 720, "trendPerPoint": 0.012},
            "circuitBreaker": {
                "state": "Closed",
                "openUntil": None,
                "recentCycleStarts": [ts(5), ts(30), ts(50)],
            },
            "strategyHistory": [
                {
                    "strategy": CHOSEN,
                    "signature": "latency_degradation",
                    "successes": 1,
                    "failures": 0,
                    "lastOutcome": "Succeeded",
                    "lastUsedAt": ts(9),
                },
                {
                    "strategy": "emergency-rollback",
                    "signature": "error_rate_increase",
                    "successes": 0,
                    "failures": 1,
                    "lastOutcome": "RolledBack",
                    "lastUsedAt": ts(34),
                },
            ],
            "lastCycle": {"name": "checkout-3", "outcome": "NotNeeded", "finishedAt": ts(51)},
            "activeCycle": None,
        },
    }


def _phases(minute: float, names: list[str], outcome: str = "Succeeded") -> list[dict[str, Any]]:
    phases, at = [], START + timedelta(minutes=minute)
    for i, name in enumerate(names):
        seconds = PHASE_SECONDS[name]
        end = at + timedelta(seconds=seconds)
        phases.append(
            {
                "name": name,
                "job": f"checkout-{name}-{i}",
                "attempts": 2 if name == "measure" else 1,
                "startedAt": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "finishedAt": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "durationSeconds": seconds,
                "outcome": outcome if name == names[-1] else "Succeeded",
            }
        )
        at = end
    return phases


def _cycle(name: str, reason: str, status: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "regeneration.weavergen.io/v1alpha1",
        "kind": "RegenerationCycle",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"charterRef": {"name": "checkout"}, "reason": reason},
        "status": status,
    }


def cycles() -> list[dict[str, Any]]:
    """Succeeded, RolledBack and NotNeeded, in order of start."""
    succeeded = _cycle(
        "checkout-1",
        "entropy high (0.64)",
        {
            "phase": "Succeeded",
            "message": f"entropy 0.64 -> 0.21 with {CHOSEN} {SCRIPT}",
            "startedAt": ts(5),
            "finishedAt": ts(9),
            "entropyBefore": {"score": 0.64, "level": "high", "healthScore": 0.78},
            "entropyAfter": {"score": 0.21, "level": "low", "healthScore": 0.97},
            "chosenStrategy": CHOSEN,
            "options": [
                {
                    "rank": 2,
                    "strategy": "full-regeneration",
                    "score": 0.612,
                    "successProbability": 0.81,
                    "recoveryTimeSeconds": 240,
                    "risk": 0.35,
                    "resourceCost": 0.6,
                    "reasons": ["ranked 2: -0.091 against partial-regeneration"],
                },
                {
                    "rank": 1,
                    "strategy": CHOSEN,
                    "score": 0.703,
                    "successProbability": 0.77,
                    "recoveryTimeSeconds": 90,
                    "risk": 0.2,
                    "resourceCost": 0.3,
                    "reasons": [
                        "success 0.77 from 1 earlier cycle",
                        "ranked 1: highest weighted score",
                    ],
                },
                {
                    "rank": 3,
                    "strategy": "semantic-refresh",
                    "score": 0.41,
                    "successProbability": 0.35,
                    "recoveryTimeSeconds": 30,
                    "risk": 0.05,
                    "resourceCost": 0.1,
                    "reasons": ["not viable: success 0.35 < 0.50, ranked after the viable options"],
                },
                {"strategy": "clean-slate-rebuild", "excluded": "in the charter's deny list"},
            ],
            "phases": _phases(5, ["define", "measure", "explore", "develop", "implement"]),
            "plan": [
                {
                    "action": "patch_deployment",
                    "object": "Deployment/shop/checkout",
                    "diff": "--- now\n+++ planned\n-  replicas: 2\n+  replicas: 3\n",
                }
            ],
            "snapshot": {"configMap": "checkout-1-snapshot-0", "sha256": "ab" * 32, "objects": 2},
            "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
        },
    )
    rolled_back = _cycle(
        "checkout-2",
        "INC-1234: error rate",
        {
            "phase": "RolledBack",
            "message": "error rate did not recover; rolled back",
            "startedAt": ts(30),
            "finishedAt": ts(34),
            "entropyBefore": {"score": 0.66, "level": "high", "healthScore": 0.7},
            "entropyAfter": {"score": 0.66, "level": "high", "healthScore": 0.7},
            "chosenStrategy": "emergency-rollback",
            "options": [
                {
                    "rank": 1,
                    "strategy": "emergency-rollback",
                    "score": 0.66,
                    "reasons": ["ranked 1: highest weighted score"],
                }
            ],
            "phases": _phases(
                30, ["define", "measure", "explore", "develop", "implement"], "Failed"
            ),
            "plan": [],
            "rollback": {
                "reason": "success criteria not met after 180 s",
                "startedAt": ts(33),
                "finishedAt": ts(34),
                "snapshot": "checkout-2-snapshot",
                "sha256": "5f" * 32,
                "restoredObjects": ["ConfigMap/shop/checkout-config", "Deployment/shop/checkout"],
                "verified": True,
            },
            "traceId": "0af7651916cd43dd8448eb211c80319c",
        },
    )
    not_needed = _cycle(
        "checkout-3",
        "manual",
        {
            "phase": "NotNeeded",
            "message": "entropy back to low (0.24): nothing to do",
            "startedAt": ts(50),
            "finishedAt": ts(51),
            "entropyBefore": {"score": 0.24, "level": "low", "healthScore": 0.95},
            "phases": _phases(50, ["define", "measure"]),
        },
    )
    return [succeeded, rolled_back, not_needed]
