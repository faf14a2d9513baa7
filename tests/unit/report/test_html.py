"""The HTML report: what the page shows, read back from its markup."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest

from tests.unit.report.markup import Node, parse
from tests.unit.report.objects import (
    CHOSEN,
    GENERATED_AT,
    PHASE_SECONDS,
    SCRIPT,
    charter,
    cycles,
)
from weavergen.reports import render_report, split_objects
from weavergen.reports.svg import BAR_WIDTH


def page(charter_obj: dict[str, Any] | None = None, cycle_objs: Any = None) -> Node:
    markup = render_report(
        charter() if charter_obj is None else charter_obj,
        cycles() if cycle_objs is None else cycle_objs,
        generated_at=GENERATED_AT,
    )
    doctype, root = parse(markup)
    assert doctype == "DOCTYPE html"
    assert root.find("meta").attrs == {"charset": "utf-8"}
    return root


def chart_data() -> dict[str, Any]:
    return {k: v for k, v in charter()["status"]["controlCharts"].items() if isinstance(v, dict)}


def charts(root: Node) -> dict[str, Node]:
    return {svg.attrs["data-chart"]: svg for svg in root.find_all("svg", "control-chart")}


def ys(svg: Node, css: str) -> list[float]:
    return [float(line.attrs["y1"]) for line in svg.find_all("line", css)]


def in_window(chart: dict[str, Any]) -> int:
    """Signals whose time lies within the chart's history, counted from the data."""

    def at(text: str) -> datetime:
        return datetime.fromisoformat(text)

    first, last = at(chart["history"][0]["at"]), at(chart["history"][-1]["at"])
    return sum(first <= at(s["at"]) <= last for s in chart["signals"])


def test_one_svg_per_chart_with_a_polyline_through_every_point() -> None:
    root = page()
    drawn = charts(root)
    data = chart_data()
    assert list(drawn) == ["entropy", "health", "cycleDuration"]
    for key, svg in drawn.items():
        (polyline,) = svg.find_all("polyline", "series")
        coords = polyline.attrs["points"].split()
        assert len(coords) == len(data[key]["history"])
        assert len(svg.find_all("circle", "point")) == len(data[key]["history"])
        xs = [float(c.split(",")[0]) for c in coords]
        assert xs == sorted(xs)


def test_signals_in_the_history_window_are_red_points_naming_their_rule() -> None:
    drawn = charts(page())
    data = chart_data()
    for key, svg in drawn.items():
        markers = svg.find_all("circle", "signal")
        assert len(markers) == in_window(data[key])
    markers = drawn["entropy"].find_all("circle", "signal")
    tips = [m.find("title").text() for m in markers]
    assert len(tips) == 4  # the first signal is older than the history
    assert [" ".join(tip.split()[:2]) for tip in tips] == [
        "WE2 (individuals)",
        "WE4 (individuals)",
        "WE1 (individuals)",
        "WE1 (movingRange)",
    ]
    assert tips[2] == f"WE1 (individuals) at 10:59:00 UTC: a point beyond 3 sigma {SCRIPT}"
    # Both signals of the last point mark the point itself, not the moving range's value.
    points = drawn["entropy"].find_all("circle", "point")
    assert {(m.attrs["cx"], m.attrs["cy"]) for m in markers[2:]} == {
        (points[-1].attrs["cx"], points[-1].attrs["cy"])
    }


def test_entropy_chart_has_limits_dashed_and_the_three_threshold_lines_in_order() -> None:
    drawn = charts(page())
    entropy, health = drawn["entropy"], drawn["health"]
    assert len(entropy.find_all("line", "limit")) == 2
    assert len(entropy.find_all("line", "center")) == 1
    assert len(entropy.find_all("line", "ewma-limit")) == 2
    assert len(entropy.find_all("path", "ewma")) == 1
    medium, high, critical = (
        ys(entropy, f"threshold-{lvl}") for lvl in ("medium", "high", "critical")
    )
    assert len(medium) == len(high) == len(critical) == 1
    assert critical[0] < high[0] < medium[0]  # higher score, higher up
    (ucl,), (cl,) = ys(entropy, "limit")[:1], ys(entropy, "center")
    assert ucl < cl
    assert not health.find_all("line", "threshold")
    labels = [t.text() for t in entropy.find_all("text", "line-label")]
    assert {"medium 0.30", "high 0.60", "critical 0.80", "UCL 0.31"} <= set(labels)
    caption = " ".join(page().find("figcaption").text().split())
    assert caption.startswith(
        "phase monitoring · 72 points · limits since 2026-11-25 09:59:00 UTC, 60 points judged by"
        " them · CL 0.220 · sigma 0.030 · UCL 0.310 · LCL 0.130 · MR UCL 0.110 · EWMA 0.410"
    )
    ticks = [t.text() for t in entropy.find_all("text", "tick")]
    assert "10:00" in ticks
    assert "10:59" in ticks


def test_a_baseline_chart_says_so_and_draws_no_limits() -> None:
    root = page()
    svg = charts(root)["cycleDuration"]
    assert "collecting baseline (3/12)" in svg.text()  # spec.spc.baselinePoints
    assert not svg.find_all("line", "limit")
    assert not svg.find_all("line", "center")
    assert "relearning limits after a change (5/16)" in charts(root)["health"].text()
    assert "relearned after cycle checkout-1" in root.text()


def test_baseline_size_defaults_to_the_api_default_when_spec_spc_is_left_out() -> None:
    obj = charter()
    del obj["spec"]["spc"]
    assert "collecting baseline (3/20)" in charts(page(obj))["cycleDuration"].text()


def test_summary_shows_level_thresholds_breaker_forecast_and_conditions() -> None:
    summary = page().find("section", "summary")
    text = " ".join(summary.text().split())
    assert "medium 0.55" in text
    assert "health 0.84" in text
    assert "medium 0.30 · high 0.60 · critical 0.80" in text
    assert "Closed" in text
    assert "3 cycle starts in the window" in text
    assert "entropy predicted to reach high (0.60) in 12 min (trend +0.012 per point)" in text
    rows = summary.find_all("table")[1].find("tbody").find_all("tr")
    assert [r.find("td").text() for r in rows] == ["Ready", "Degraded"]


def test_cycle_rows_are_in_start_order_with_outcome_and_entropy() -> None:
    root = page(cycle_objs=list(reversed(cycles())))
    rows = root.find("table", "cycles").find("tbody").find_all("tr")
    cells = [[td.text() for td in row.find_all("td")] for row in rows]
    assert [c[0] for c in cells] == ["checkout-1", "checkout-2", "checkout-3"]
    assert [c[2] for c in cells] == ["Succeeded", "RolledBack", "NotNeeded"]
    assert cells[0][4] == "4 min"
    assert cells[0][5] == "0.64 (high) → 0.21 (low)"
    assert cells[0][6] == "0.78 → 0.97"
    assert cells[2][5] == "0.24 (low) → —"
    assert cells[0][7] == CHOSEN
    assert cells[0][8] == "4bf92f3577b34da6a3ce929d0e0e4736"
    articles = [a.attrs["id"] for a in root.find_all("article", "cycle")]
    assert articles == ["cycle-checkout-1", "cycle-checkout-2", "cycle-checkout-3"]


def test_phase_bars_are_proportional_to_durations() -> None:
    article = page().find_all("article", "cycle")[0]
    bars = article.find("svg", "phase-bars").find_all("rect", "bar")
    widths = [float(b.attrs["width"]) for b in bars]
    durations = list(PHASE_SECONDS.values())
    assert len(widths) == len(durations)
    assert max(widths) == BAR_WIDTH
    for width, seconds in zip(widths, durations, strict=True):
        assert width == pytest.approx(seconds / max(durations) * BAR_WIDTH, abs=0.01)
    labels = [t.text() for t in article.find_all("text", "bar-text")]
    assert labels[1].startswith("31.5 s · Succeeded · 2 attempts")
    assert labels[4].startswith("1 min 35 s")


def test_decision_ranks_options_highlights_the_chosen_and_lists_the_excluded() -> None:
    article = page().find_all("article", "cycle")[0]
    table = article.find("table", "options")
    headers = [th.text() for th in table.find_all("th")]
    assert headers == [
        "#",
        "strategy",
        "score",
        "success",
        "recovery (s)",
        "risk",
        "resources",
        "reasons",
    ]
    rows = table.find("tbody").find_all("tr")
    assert [r.find_all("td")[1].text().split()[0] for r in rows] == [
        CHOSEN,
        "full-regeneration",
        "semantic-refresh",
    ]
    chosen = table.find_all("tr", "chosen")
    assert len(chosen) == 1
    assert chosen[0] is rows[0]
    assert "chosen" in chosen[0].find_all("td")[1].text()
    assert "ranked 1: highest weighted score" in chosen[0].text()
    excluded = article.find("ul", "excluded").text()
    assert "clean-slate-rebuild: in the charter's deny list" in excluded
    diff = article.find("table", "plan").find("pre").text()
    assert "+  replicas: 3" in diff


def test_missing_option_fields_are_left_out_other_ones_shown_and_the_rollback_recorded() -> None:
    objs = cycles()
    objs[1]["status"]["options"][0]["cooldownSeconds"] = 30
    article = page(cycle_objs=objs).find_all("article", "cycle")[1]
    table = article.find("table", "options")
    assert [th.text() for th in table.find_all("th")] == [
        "#",
        "strategy",
        "score",
        "cooldownSeconds",
        "reasons",
    ]
    row = table.find("tbody").find("tr")
    assert [td.text() for td in row.find_all("td")][:4] == [
        "1",
        "emergency-rollback chosen",
        "0.660",
        "30",
    ]
    rollback = " ".join(article.find("p", "rollback").text().split())
    assert "success criteria not met after 180 s" in rollback
    assert "live state verified against the snapshot" in rollback
    assert f"from snapshot checkout-2-snapshot (sha256 {'5f' * 32})" in rollback
    assert "restored: ConfigMap/shop/checkout-config, Deployment/shop/checkout" in rollback


def test_strategy_history_table() -> None:
    tables = [t for t in page().find_all("table", "strategies")]
    rows = tables[0].find("tbody").find_all("tr")
    assert [[td.text() for td in r.find_all("td")][:4] for r in rows] == [
        [CHOSEN, "latency_degradation", "1", "0"],
        ["emergency-rollback", "error_rate_increase", "0", "1"],
    ]


def test_user_text_is_escaped_everywhere() -> None:
    markup = render_report(charter(), cycles(), generated_at=GENERATED_AT)
    assert "<script" not in markup
    assert "&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt;" in markup
    _, root = parse(markup)
    assert not root.find_all("script")
    message = root.find_all("article", "cycle")[0].find("p", "message").text()
    assert message.endswith(SCRIPT)


def test_a_charter_with_no_status_gets_empty_states() -> None:
    bare = {
        "kind": "RegenerationCharter",
        "metadata": {"name": "new", "namespace": "shop"},
        "spec": {"systemId": "new", "systemType": "worker"},
    }
    root = page(bare, [])
    text = " ".join(root.text().split())
    for empty in (
        "not measured yet",
        "not resolved yet",
        "no forecast",
        "no conditions yet",
        "no control charts yet",
        "no cycles yet",
        "no strategy history yet",
    ):
        assert empty in text
    assert root.find("title").text() == "RegenerationCharter shop/new"
    assert not root.find_all("svg")


def test_a_cycle_with_no_status_and_a_chart_with_no_points() -> None:
    obj = charter()
    obj["status"]["controlCharts"] = {"entropy": {"phase": "baseline", "history": []}}
    pending = {"kind": "RegenerationCycle", "metadata": {"name": "p"}, "spec": {"reason": "x"}}
    root = page(obj, [pending, *cycles()])
    svg = charts(root)["entropy"]
    assert not svg.find_all("polyline")
    assert "collecting baseline (0/12)" in svg.text()
    rows = root.find("table", "cycles").find("tbody").find_all("tr")
    assert rows[-1].find("td").text() == "p"  # not started yet: last
    assert "no phase has run yet" in root.find_all("article", "cycle")[-1].text()


def listing(*items: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "items": list(items)}


def test_split_objects_takes_the_one_charter_and_its_cycles_by_start() -> None:
    other_charter = cycles()[0]
    other_charter["metadata"]["name"] = "other-charter"
    other_charter["spec"]["charterRef"]["name"] = "payments"
    other_namespace = cycles()[1]
    other_namespace["metadata"]["namespace"] = "staging"
    first, second, third = cycles()
    found, mine = split_objects(
        listing(third, other_charter, charter(), first, other_namespace, second)
    )
    assert found["metadata"]["name"] == "checkout"
    assert [c["metadata"]["name"] for c in mine] == ["checkout-1", "checkout-2", "checkout-3"]
    assert split_objects(charter()) == (charter(), [])


def test_split_objects_refuses_zero_or_two_charters() -> None:
    with pytest.raises(ValueError, match="holds no RegenerationCharter"):
        split_objects(listing(*cycles()))
    second = charter()
    second["metadata"]["name"] = "payments"
    with pytest.raises(ValueError, match=re.escape("holds 2 RegenerationCharters (shop/checkout")):
        split_objects(listing(charter(), second, *cycles()))


def test_an_open_incident_shows_its_attempts_the_escalation_and_the_suspects() -> None:
    obj = charter()
    obj["status"]["incident"] = {
        "openedAt": "2026-12-03T12:00:00Z",
        "because": "entropy reached the trigger",
        "indicators": ["latency_degradation", "recent_rollout"],
        "worstLevel": "high",
        "attempts": [
            {"cycle": "api-1", "strategy": "semantic-refresh", "outcome": "RolledBack"},
            {"cycle": "api-2", "strategy": "observe-escalate", "outcome": "Escalated"},
        ],
        "escalated": {"since": "2026-12-03T12:04:00Z", "cycle": "api-2", "reason": "1 fix failed"},
        "suspects": [
            "ConfigMap api-runtime (envFrom of Deployment/api), changed 2026-12-03T11:59:00Z"
        ],
    }
    section = page(obj).find("section", "incident")
    text = " ".join(section.text().split())
    assert "escalated" in text and "by api-2" in text and "1 fix failed" in text
    assert [li.text() for li in section.find("ul", "suspects").find_all("li")] == obj["status"][
        "incident"
    ]["suspects"]
    rows = section.find("table", "attempts").find("tbody").find_all("tr")
    assert [r.find_all("td")[1].text() for r in rows] == ["semantic-refresh", "observe-escalate"]
    assert page().find_all("section", "incident") == []  # none open: no section
