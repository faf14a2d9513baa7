"""Incidents: failures are evidence, an escalation holds until the evidence changes or a person
asks, and the hold ends when the workload is healthy again."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from weavergen.api.charter import EntropyLevel, RegenerationCharterSpec
from weavergen.domain.decide.incident import Attempt, Evidence, held, record_attempt, track
from weavergen.domain.decide.reconcile import decide, merge_patch, record_outcome
from weavergen.domain.times import stamp

NOW = datetime(2026, 12, 3, 12, 0, 0)
WINDOW = 60
SPEC = RegenerationCharterSpec.model_validate(
    {
        "systemId": "api",
        "systemType": "web-service",
        "target": {"workloads": [{"name": "api"}]},
        "telemetry": {"serviceName": "api", "windowSeconds": WINDOW},
        "trigger": {"mode": "auto", "level": "medium"},
        "circuitBreaker": {"maxCycles": 100},
    }
)


def evidence(level: str = "high", *indicators: str, inputs: str | None = "a") -> Evidence:
    return Evidence(EntropyLevel(level), frozenset(indicators or {"error_rate_increase"}), inputs)


def step(incident: dict[str, Any] | None, seen: Evidence, at: float, **kw: Any) -> Any:
    return track(
        incident,
        seen,
        degraded=kw.pop("degraded", True),
        cycle_running=kw.pop("cycle_running", False),
        now=NOW + timedelta(seconds=at),
        recovery_seconds=WINDOW,
        last_good_at=None,
    )


def test_an_incident_opens_at_the_trigger_and_stays_while_the_evidence_does() -> None:
    first = step(None, evidence(), 0)
    assert first.opened and first.incident["worstLevel"] == "high"
    again = step(first.incident, evidence(), 3)
    assert again.opened is None and again.closed is None
    assert again.incident["openedAt"] == first.incident["openedAt"]


@pytest.mark.parametrize(
    ("changed", "why"),
    [
        (evidence("high", "error_rate_increase", "latency_degradation"), "new indicators"),
        (evidence("critical"), "entropy rose to critical"),
    ],
)
def test_new_evidence_counts_once_it_is_seen_twice_in_a_row(changed: Evidence, why: str) -> None:
    incident = step(None, evidence(), 0).incident
    once = step(incident, changed, 3)
    assert once.opened is None  # one noisy window is not news
    back = step(once.incident, evidence(), 6)
    assert back.opened is None and back.incident["novel"] == []
    twice = step(step(back.incident, changed, 9).incident, changed, 12)
    assert twice.opened is not None and twice.opened.startswith(why)
    assert twice.incident["attempts"] == [] and twice.incident["escalated"] is None


def test_a_lower_level_or_fewer_indicators_are_no_news() -> None:
    incident = step(None, evidence("critical", "error_rate_increase", "throughput_drop"), 0)
    calmer = evidence("medium", "error_rate_increase")
    later = step(step(incident.incident, calmer, 3).incident, calmer, 6)
    assert later.opened is None


def test_an_edit_of_the_targets_or_their_inputs_is_news_at_once() -> None:
    incident = step(None, evidence(inputs="a"), 0).incident
    edited = step(incident, evidence(inputs="b"), 3)
    assert edited.opened == "the targets or what they consume were edited"


def test_while_a_cycle_runs_what_it_causes_is_absorbed() -> None:
    incident = step(None, evidence(inputs="a"), 0).incident
    during = evidence("critical", "error_rate_increase", "pods_not_ready", inputs="b")
    absorbed = step(
        step(incident, during, 3, cycle_running=True).incident, during, 6, cycle_running=True
    )
    assert absorbed.opened is None
    assert absorbed.incident["worstLevel"] == "critical"
    assert "pods_not_ready" in absorbed.incident["indicators"]
    after = step(absorbed.incident, during, 9)
    assert after.opened is not None  # the inputs were left edited: that is news


def test_recovery_closes_the_incident_only_once_it_lasts_a_window() -> None:
    incident = step(None, evidence(), 0).incident
    dip = step(incident, evidence("low"), 10, degraded=False)
    assert dip.incident is not None and dip.incident["healthySince"] == stamp(
        NOW + timedelta(seconds=10)
    )
    relapse = step(dip.incident, evidence(), 20)
    assert relapse.opened is None and relapse.incident["healthySince"] is None
    healthy = step(relapse.incident, evidence("low"), 30, degraded=False)
    closed = step(healthy.incident, evidence("low"), 30 + WINDOW, degraded=False)
    assert closed.incident is None and closed.closed is not None


def test_outcomes_are_recorded_and_a_verified_fix_closes_the_incident() -> None:
    incident = step(None, evidence(), 0).incident
    failed = record_attempt(
        incident, Attempt("c1", "semantic-refresh", "RolledBack"), evidence=None, now=NOW
    )
    assert failed is not None and failed["attempts"][0]["outcome"] == "RolledBack"
    assert held(failed) is None
    escalated = record_attempt(
        failed,
        Attempt("c2", "observe-escalate", "Escalated", stamp(NOW)),
        evidence=None,
        now=NOW,
        escalation={"reason": "tried semantic-refresh", "suspects": ["ConfigMap x"]},
    )
    assert escalated is not None and escalated["suspects"] == ["ConfigMap x"]
    assert "tried semantic-refresh" in str(held(escalated))
    assert (
        record_attempt(escalated, Attempt("c3", "agent-reset", "Succeeded"), evidence=None, now=NOW)
        is None
    )
    # A cycle that ends badly with no incident open (a person's) opens one from its evidence.
    opened = record_attempt(
        None, Attempt("c4", "agent-reset", "RolledBack"), evidence=evidence(), now=NOW
    )
    assert opened is not None and len(opened["attempts"]) == 1


def measurement(level: str = "high", *indicators: str) -> dict[str, Any]:
    return {
        "status": "ok",
        "entropy_level": level,
        "entropy_score": {"low": 0.1, "medium": 0.4, "high": 0.65, "critical": 0.9}[level],
        "health_score": 0.3,
        "drift_indicators": [
            {"type": t, "severity": 0.5, "evidence": {}}
            for t in (indicators or ("error_rate_increase",))
        ],
        "validation_errors": [],
        "span_count": 900,
    }


class Charter:
    """A charter's status through measurements and cycles, as the API server keeps it."""

    def __init__(self) -> None:
        self.status: dict[str, Any] = {}
        self.now = NOW
        self.started: list[str] = []

    def measure(self, m: dict[str, Any], *, requested: str | None = None, inputs: str = "a") -> Any:
        decision = decide(
            SPEC,
            generation=1,
            status=self.status,
            measurement=m,
            problem=None,
            now=self.now,
            requested=requested,
            inputs=inputs,
        )
        self.status = merge_patch(self.status, decision.status)
        if decision.start_cycle:
            self.started.append(decision.start_cycle)
            self.status["activeCycle"] = f"c{len(self.started)}"
        self.now += timedelta(seconds=3)
        return decision

    def finish(self, strategy: str, phase: str, m: dict[str, Any]) -> None:
        cycle = self.status["activeCycle"]
        data = {
            "exploration": {
                "signature": "error_rate_increase",
                "escalation": {"reason": f"nothing fixes it ({cycle})", "suspects": []},
            },
            "chosen": {"strategy": strategy},
            "measurement_before": m,
        }
        final = {"phase": phase, "startedAt": stamp(self.now), "finishedAt": stamp(self.now)}
        self.status = merge_patch(
            self.status,
            record_outcome(self.status, cycle=cycle, final=final, data=data, now=self.now),
        )


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == kind)


def test_an_escalation_holds_until_a_person_asks_and_clears_when_healthy() -> None:
    charter, failing = Charter(), measurement()
    charter.measure(failing)
    assert len(charter.started) == 1
    charter.finish("observe-escalate", "Escalated", failing)
    for _ in range(80):  # four minutes of the same evidence: no second cycle
        charter.measure(failing)
    assert len(charter.started) == 1
    escalated = condition(charter.status, "Escalated")
    assert escalated["status"] == "True" and "nothing fixes it (c1)" in escalated["message"]
    assert escalated["lastTransitionTime"] == stamp(NOW + timedelta(seconds=3))
    charter.measure(failing, requested="2026-12-03T12:10:00Z")  # a person asks
    assert len(charter.started) == 2
    charter.finish("observe-escalate", "Escalated", failing)
    for _ in range(WINDOW // 3 + 1):
        charter.measure(measurement("low", "error_rate_increase"))
    assert "incident" not in charter.status
    assert condition(charter.status, "Escalated")["status"] == "False"
    charter.measure(failing)  # a relapse after the recovery is a new incident
    assert len(charter.started) == 3


def test_an_escalation_ends_when_the_inputs_are_edited() -> None:
    charter, failing = Charter(), measurement()
    charter.measure(failing)
    charter.finish("observe-escalate", "Escalated", failing)
    charter.measure(failing)
    charter.measure(failing)
    assert len(charter.started) == 1
    charter.measure(failing, inputs="b")  # someone edited the ConfigMap the pods read
    assert len(charter.started) == 2
    assert condition(charter.status, "Escalated")["reason"] == "EvidenceChanged"


def test_a_measurement_read_before_a_cycle_ended_does_not_write_its_record_back() -> None:
    charter, failing = Charter(), measurement()
    charter.measure(failing)
    stale = dict(charter.status)  # a measurement reads the status while the cycle runs...
    charter.finish("semantic-refresh", "RolledBack", failing)  # ...the cycle ends meanwhile
    decision = decide(
        SPEC,
        generation=1,
        status=stale,
        measurement=failing,
        problem=None,
        now=charter.now,
        inputs="a",
    )
    charter.status = merge_patch(charter.status, decision.status)
    assert [a["cycle"] for a in charter.status["incident"]["attempts"]] == ["c1"]


def test_a_fault_growing_symptoms_of_the_same_cause_is_no_news() -> None:
    """A failing dependency whose errors soon also shift attributes: still the dependency."""
    charter = Charter()
    failing = measurement("high", "error_rate_increase")
    failing["drift_indicators"][0]["evidence"] = {"on_dependency_calls": True}
    grown = {
        **failing,
        "drift_indicators": [
            *failing["drift_indicators"],
            {"type": "semantic_drift", "severity": 0.4, "evidence": {}},
        ],
    }
    charter.measure(failing)
    charter.finish("observe-escalate", "Escalated", failing)
    for _ in range(5):
        charter.measure(grown)
    assert len(charter.started) == 1
    assert condition(charter.status, "Escalated")["status"] == "True"
    # Symptoms that point elsewhere are news: its pods now crash.
    for _ in range(2):
        charter.measure(
            {
                **grown,
                "drift_indicators": [
                    {"type": "crash_loop", "severity": 1.0, "evidence": {}},
                    *grown["drift_indicators"],
                ],
            }
        )
    assert len(charter.started) == 2
