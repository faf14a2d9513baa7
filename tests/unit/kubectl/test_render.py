"""What `kubectl weavergen` prints: the get tables, the watch screens and `why`, from status
shapes built with the API models."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.unit.kubectl.samples import NOW, at, charter, cycle, wire
from weavergen.api.cycle import AbortRecord
from weavergen.cli.kubectl.render import (
    age,
    charter_screen,
    cycle_screen,
    get_table,
    phase_lines,
    sparkline,
    table,
)
from weavergen.cli.kubectl.why import plan_steps, why_text


def rows(text: str) -> list[list[str]]:
    """A table's lines split on its column gaps (three spaces or more)."""
    return [[c.strip() for c in line.split("   ") if c.strip()] for line in text.splitlines()]


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (5, "5s"),
        (119, "119s"),
        (200, "3m20s"),
        (600, "10m"),
        (7200, "120m"),
        (4 * 3600, "4h"),
        (3 * 86400 + 4 * 3600, "3d4h"),
        (40 * 86400, "40d"),
    ],
)
def test_age_reads_as_kubectl_prints_it(seconds: int, shown: str) -> None:
    assert age(NOW - timedelta(seconds=seconds), NOW) == shown
    assert age(None, NOW) == "<none>"


def test_table_aligns_columns_three_spaces_apart() -> None:
    assert table(("A", "LONG"), [["xyz", "1"]]) == "A     LONG\nxyz   1\n"


def test_get_lists_charters_with_level_entropy_outcome_and_breaker() -> None:
    text = get_table([charter()], None, NOW)
    assert rows(text) == [
        ["NAME", "MODE", "LEVEL", "ENTROPY", "HEALTH", "LAST OUTCOME", "BREAKER", "AGE"],
        ["checkout", "propose", "high", "0.71", "0.52", "Succeeded", "Closed", "3d"],
    ]


def test_an_open_breaker_shows_the_time_it_has_left_and_wide_adds_the_details() -> None:
    text = get_table([charter(breaker="Open", active="checkout-7f3c9")], None, NOW, wide=True)
    header, row = rows(text)
    found = dict(zip(header, row, strict=True))
    assert found["BREAKER"] == "Open (12m left)"
    assert found["ACTIVE CYCLE"] == "checkout-7f3c9"
    assert found["LAST CYCLE"] == "checkout-1a2b3c"
    assert found["MEASURED"] == "15s ago"
    assert found["INDICATORS"] == "error_rate_increase,latency_degradation"


def test_get_lists_cycles_with_entropy_before_and_after_and_all_namespaces() -> None:
    text = get_table(None, [cycle(), cycle("Succeeded")], NOW, all_namespaces=True)
    assert rows(text) == [
        ["NAMESPACE", "NAME", "CHARTER", "PHASE", "STRATEGY", "LEVEL", "ENTROPY", "AGE"],
        [
            "shop",
            "checkout-7f3c9",
            "checkout",
            "Implementing",
            "partial-regeneration",
            "high",
            "0.71",
            "5m",
        ],
        [
            "shop",
            "checkout-7f3c9",
            "checkout",
            "Succeeded",
            "partial-regeneration",
            "high->low",
            "0.71->0.12",
            "5m",
        ],
    ]


def test_get_both_prints_the_charter_table_then_the_cycle_table() -> None:
    text = get_table([charter()], [cycle()], NOW, wide=True)
    charters, cycles = text.split("\n\n")
    assert charters.startswith("NAME   ") and "SYSTEM TYPE" in charters
    assert cycles.startswith("NAME ") and cycles.splitlines()[0].endswith("TRACE ID")
    assert "4bf92f3577b34da6a3ce929d0e0e4736" in cycles and "5 min" in cycles


def test_the_cycle_screen_shows_every_phase_with_the_ones_not_reached_as_pending() -> None:
    early = cycle()
    assert early.status is not None
    early.status.phases = early.status.phases[:2]
    lines = phase_lines(early.status, NOW)
    assert [line[:2] for line in lines] == [
        ["define", "✔ Succeeded"],
        ["measure", "✔ Succeeded"],
        ["explore", "· Pending"],
        ["develop", "· Pending"],
        ["implement", "· Pending"],
    ]


def test_a_running_phase_shows_how_long_it_has_run() -> None:
    screen = cycle_screen(cycle(), NOW)
    (implement,) = [line for line in screen.splitlines() if line.startswith("implement")]
    assert "◌ Running" in implement and "1 min" in implement
    assert "Status:    ◌ Implementing" in screen
    assert "before 0.71 high (health 0.52), predicted 0.15" in screen
    assert "approve" not in screen


def test_a_cycle_awaiting_approval_says_how_to_read_and_approve_the_plan() -> None:
    screen = cycle_screen(cycle("AwaitingApproval"), NOW)
    assert "Status:    ॥ AwaitingApproval" in screen
    assert "kubectl weavergen why checkout-7f3c9" in screen
    assert "kubectl weavergen approve checkout-7f3c9" in screen


def test_a_rolled_back_or_aborted_cycle_says_so_on_its_screen() -> None:
    rolled = cycle_screen(cycle("RolledBack"), NOW)
    assert "Rollback: partial-regeneration did not meet" in rolled
    assert "restored 2 objects, verified" in rolled
    aborted = cycle("Aborted")
    assert aborted.status is not None
    aborted.status.abort = AbortRecord(
        requested_by="alice", requested_at=NOW, reason="wrong fix", restored=True
    )
    screen = cycle_screen(aborted, NOW)
    assert "Status:    ✖ Aborted" in screen
    assert "Stopped by alice: wrong fix, targets restored from the snapshot" in screen


def test_the_charter_screen_shows_the_latest_measurement_indicators_and_trend() -> None:
    screen = charter_screen(charter(active="checkout-7f3c9"), NOW)
    assert "Entropy:      0.71 high, health 0.52, 1200 spans, measured 15s ago" in screen
    assert "Thresholds:   medium 0.30, high 0.60, critical 0.80 (systemType)" in screen
    assert "Active cycle: checkout-7f3c9" in screen
    assert "error_rate_increase   0.80       30.0% errors against 1.0% in the baseline" in screen
    assert "Entropy, last 12: ▂▃▂▃▃▃▃▄▅▅▆▆  0.21 -> 0.71  (control limit 0.29)" in screen
    assert "Signal: WE1" in screen


def test_a_charter_not_measured_yet_says_so() -> None:
    fresh = charter()
    fresh.status = None
    screen = charter_screen(fresh, NOW)
    assert "Entropy:   not measured yet" in screen and "No drift indicators." in screen


def test_sparkline_maps_zero_to_one_onto_eight_blocks() -> None:
    assert sparkline([0.0, 0.5, 1.0, 1.5]) == "▁▅██"


def test_why_ranks_the_options_marks_the_chosen_one_and_gives_each_ones_reasons() -> None:
    text = why_text(cycle("Succeeded"))
    table_rows = rows(text.split("Ranked options\n")[1].split("\n\n")[0])
    assert table_rows == [
        ["RANK", "STRATEGY", "SCORE", "SUCCESS", "RECOVERY", "RISK", "RESOURCES"],
        ["* 1", "partial-regeneration", "0.82", "0.90", "45s", "0.20", "0.10"],
        ["2", "restart-rollout", "0.61", "0.55", "60s", "0.25", "0.20"],
    ]
    assert "1. partial-regeneration (chosen)\n   - config drift found" in text
    assert "2. restart-rollout\n   - restarts do not undo a config change" in text
    assert "Entropy before: 0.71 high\nEntropy after: 0.12 low" in text
    assert "Rollback: none." in text


def test_why_shows_the_plan_step_by_step_with_its_diffs_and_the_rollback() -> None:
    text = why_text(cycle("RolledBack"))
    plan = text.split("Chosen plan: ")[1]
    assert plan.startswith("partial-regeneration, predicted entropy 0.15")
    assert "Step 1: reset_config_from_baseline\n  ConfigMap/shop/checkout-config\n" in plan
    assert "    -  timeout_ms: '1'\n    +  timeout_ms: '800'" in plan
    assert "Step 2: restart_rollout\n  Deployment/shop/checkout\n    (no diff)" in plan
    assert "restored ConfigMap/shop/checkout-config" in plan
    assert "live objects equal the snapshot" in plan


def test_why_prefers_the_phase_results_whole_diffs_reasons_and_symptoms() -> None:
    long_diff = "\n".join(f"+  key{i}: value" for i in range(600))  # past the 4 KiB in status
    solution = {
        "strategy": "partial-regeneration",
        "reasons": ["checkout-config drifted from the known-good snapshot"],
        "plan": [
            {
                "action": "reset_config_from_baseline",
                "changes": [{"object": "ConfigMap/shop/checkout-config", "diff": long_diff}],
            },
            {"action": "wait_for_rollout", "changes": []},
        ],
    }
    exploration = {
        "signature": "error_rate_increase",
        "causes": {"config_regression": 0.2, "bad_config": 0.72},
        "excluded": {"scale-out": "denied by spec.strategies.deny"},
        "escalation": {"reason": ""},
    }
    text = why_text(cycle("Succeeded"), exploration, solution)
    assert "Likely causes: bad_config 0.72, config_regression 0.20" in text
    assert "Excluded scale-out: denied by spec.strategies.deny" in text
    assert "   - checkout-config drifted from the known-good snapshot" in text
    assert "+  key599: value" in text
    assert "Step 2: wait_for_rollout\n" in text and "restart_rollout" not in text


def test_the_status_plan_groups_consecutive_changes_of_one_action() -> None:
    status = cycle().status
    assert status is not None
    steps = plan_steps(status.plan, None)
    assert [(action, [o for o, _ in changes]) for action, changes in steps] == [
        ("reset_config_from_baseline", ["ConfigMap/shop/checkout-config"]),
        ("restart_rollout", ["Deployment/shop/checkout"]),
    ]


def test_why_of_a_cycle_still_measuring_says_what_is_not_there_yet() -> None:
    early = cycle("Measuring")
    assert early.status is not None
    early.status.options, early.status.plan, early.status.chosen_strategy = [], [], None
    text = why_text(early)
    assert "Ranked options: none yet (Explore has not finished)." in text
    assert "Chosen plan: none yet." in text


def test_the_samples_are_what_the_api_server_would_return() -> None:
    body = wire(cycle())
    assert body["status"]["entropyBefore"] == {"score": 0.71, "level": "high", "healthScore": 0.52}
    assert body["metadata"]["creationTimestamp"] == "2026-11-25T10:55:00Z"
    assert at(0) == NOW
