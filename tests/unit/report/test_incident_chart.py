"""The report after an incident: its charts show the measurements around the cycle, marked.

The charter's status comes from the operator's own decisions over the demo's measurements
(``incident``), so what is charted is what the operator keeps, not what a fixture says it keeps.
"""

from __future__ import annotations

from datetime import UTC, datetime

from tests.unit.report.incident import CYCLE, DURING, Incident, incident
from tests.unit.report.markup import Node, parse
from tests.unit.report.objects import GENERATED_AT
from weavergen.domain.decide.control import MARGIN_POINTS
from weavergen.domain.decide.spc import SpcSettings
from weavergen.reports import render_report

HISTORY_POINTS = SpcSettings().history_points


def chart(run: Incident, key: str = "entropy", *, with_cycles: bool = True) -> tuple[Node, Node]:
    """The chart's SVG and its figure, from the report on the incident."""
    charter, cycles = run.objects()
    _, root = parse(
        render_report(charter, cycles if with_cycles else [], generated_at=GENERATED_AT)
    )
    for figure in root.find_all("figure"):
        svgs = figure.find_all("svg", "control-chart")
        if svgs and svgs[0].attrs["data-chart"] == key:
            return svgs[0], figure
    raise AssertionError(f"no {key} chart")


def points(svg: Node) -> list[tuple[float, datetime]]:
    """Each drawn point's x and time, read from its tooltip."""
    drawn = []
    for circle in svg.find_all("circle", "point"):
        when = circle.find("title").text().split(" UTC:")[0]
        at = datetime.strptime(when, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        drawn.append((float(circle.attrs["cx"]), at))
    return drawn


def marked_x(svg: Node, css: str) -> float:
    (line,) = svg.find("g", "cycle").find_all("line", css)
    assert line.attrs["x1"] == line.attrs["x2"]
    return float(line.attrs["x1"])


def utc(moment: datetime | None) -> datetime:
    assert moment is not None
    return moment.replace(tzinfo=UTC)


def test_the_entropy_chart_shows_the_measurements_before_during_and_after_the_cycle() -> None:
    run = incident(points_after=3)
    svg, figure = chart(run)
    drawn = points(svg)
    assert [at for _, at in drawn] == [utc(m) for m in run.measured]  # every one, in order
    started, finished = utc(run.started), utc(run.finished)
    before = [x for x, at in drawn if at < started]
    during = [x for x, at in drawn if started <= at <= finished]
    after = [x for x, at in drawn if at > finished]
    assert (len(before), len(during), len(after)) == (3, len(DURING), 3)
    # The cycle's start and end are marked between the points measured either side of them.
    assert before[-1] < marked_x(svg, "cycle-start") < during[0]
    assert during[-1] < marked_x(svg, "cycle-end") < after[0]
    (group,) = svg.find_all("g", "cycle")
    assert group.attrs["data-cycle"] == CYCLE
    band = group.find("rect", "cycle-band")
    assert float(band.attrs["x"]) == marked_x(svg, "cycle-start")
    assert float(band.attrs["x"]) + float(band.attrs["width"]) == marked_x(svg, "cycle-end")
    (shaded,) = figure.find("ul", "cycles").find_all("li")
    assert " ".join(shaded.text().split()) == (
        f"shaded: cycle {CYCLE}, started {started:%Y-%m-%d %H:%M:%S} UTC, "
        f"finished {finished:%Y-%m-%d %H:%M:%S} UTC"
    )
    # The incident lasts a minute: the time ticks tell its points apart to the second.
    ticks = [t.text() for t in svg.find_all("text", "tick") if ":" in t.text()]
    assert len(ticks) == len(set(ticks)) > 1
    assert ticks[0] == f"{utc(run.measured[0]):%H:%M:%S}"
    health, _ = chart(run, "health")
    assert len(points(health)) == len(run.measured)
    assert health.find_all("g", "cycle")


def test_the_cycle_stays_on_the_chart_after_the_rolling_history_has_moved_on() -> None:
    run = incident(points_after=HISTORY_POINTS + 30)
    svg, _ = chart(run)
    drawn = [at for _, at in points(svg)]
    started, finished = utc(run.started), utc(run.finished)
    assert len([at for at in drawn if started <= at <= finished]) == len(DURING)
    assert len([at for at in drawn if at < started]) == 3  # all there were (fewer than the margin)
    # MARGIN_POINTS after the cycle, then the gap to the rolling history of the latest points.
    latest = [utc(m) for m in run.measured[-HISTORY_POINTS:]]
    kept_after = [at for at in drawn if finished < at < latest[0]]
    assert kept_after == [utc(m) for m in run.measured if utc(m) > finished][:MARGIN_POINTS]
    assert drawn[-HISTORY_POINTS:] == latest
    assert len(svg.find_all("polyline", "series")) == 2
    assert len(svg.find_all("line", "gap")) == 1
    assert marked_x(svg, "cycle-start") < marked_x(svg, "cycle-end")
    # The chart itself knows the cycle: a report from the charter alone still marks it.
    alone, _ = chart(run, with_cycles=False)
    assert alone.find("g", "cycle").attrs["data-cycle"] == CYCLE


def test_a_running_cycle_is_shaded_from_its_start_to_the_last_point() -> None:
    run = incident(points_after=2, finish=False)
    svg, figure = chart(run)
    drawn = points(svg)
    assert len(drawn) == len(run.measured)
    band = svg.find("rect", "cycle-band")
    assert float(band.attrs["x"]) + float(band.attrs["width"]) == drawn[-1][0]
    assert not svg.find_all("line", "cycle-end")
    assert figure.find("ul", "cycles").text().endswith("still running")
