"""The Grafana dashboard shipped in the Helm chart queries only what the operator exports.

Metric names and labels are taken from the live ``weavergen.telemetry.metrics`` objects and the
receiver's collector, so renaming a metric or a label there fails here until the dashboard
follows; and a metric family added there fails here until some panel shows it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest
from prometheus_client.metrics import MetricWrapperBase

from tests.helpers import REPO
from weavergen.domain.measure.entropy import DEFAULT_THRESHOLDS
from weavergen.telemetry import metrics
from weavergen.telemetry.metrics import LEVEL_NUMBER, ReceiverCollector
from weavergen.telemetry.windows import WindowStore

DASHBOARD = REPO / "charts" / "weavergen-operator" / "dashboards" / "weavergen-operator.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRAFANA_VARIABLES = {"__all", "__rate_interval", "__interval", "__range"}
ANNOTATION_LIMIT = 262_144  # bytes of kubectl apply's last-applied annotation (and < 1 MiB)

METRIC = re.compile(r"\bweavergen_[a-z_]+\b")
SELECTOR = re.compile(r"\b(weavergen_[a-z_]+)\s*\{([^}]*)\}")
QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
MATCHER_LABEL = re.compile(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
COUNTER_FUNCTION = re.compile(r"\b(?:rate|irate|increase)\s*\(\s*(weavergen_[a-z_]+)")
LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")
VARIABLE = re.compile(r"\$\{?(\w+)")
LABEL_VALUES = re.compile(r"^label_values\((weavergen_[a-z_]+)(\{[^}]*\})?\s*,\s*(\w+)\)$")


@dataclass(frozen=True)
class Series:
    """One series name a scrape of the operator shows: its family, the family's type, labels."""

    family: str
    type: str
    labels: frozenset[str]


@cache
def exported() -> dict[str, Series]:
    """Every series name the operator's ``/metrics`` serves (``_created`` left out)."""
    found: dict[str, Series] = {}
    for obj in vars(metrics).values():
        if not isinstance(obj, MetricWrapperBase):
            continue
        name, kind, labels = obj._name, obj._type, frozenset(obj._labelnames)
        if kind == "counter":  # prometheus_client strips "_total" from the name and adds it back
            found[f"{name}_total"] = Series(name, kind, labels)
        elif kind == "gauge":
            found[name] = Series(name, kind, labels)
        elif kind == "histogram":
            found[f"{name}_bucket"] = Series(name, kind, labels | {"le"})
            found[f"{name}_sum"] = Series(name, kind, labels)
            found[f"{name}_count"] = Series(name, kind, labels)
        else:
            raise AssertionError(f"{name}: no dashboard rule for metric type {kind}")
    for family in ReceiverCollector(WindowStore()).collect():
        for sample in family.samples:
            found[sample.name] = Series(family.name, family.type, frozenset(sample.labels))
    return found


def families() -> set[str]:
    return {series.family for series in exported().values()}


def load() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels() -> list[dict[str, Any]]:
    return [p for p in load()["panels"] if p["type"] != "row"]


def variables() -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in load()["templating"]["list"]}


def targets() -> list[tuple[str, dict[str, Any]]]:
    return [(f"{p['title']}/{t['refId']}", t) for p in panels() for t in p["targets"]]


def exprs() -> list[tuple[str, str]]:
    return [(where, t["expr"]) for where, t in targets()]


EXPRS = exprs()
EXPR_IDS = [where for where, _ in EXPRS]


def used_metrics(expr: str) -> list[str]:
    return METRIC.findall(expr)


def test_exported_metrics_are_discovered() -> None:
    # Guards the discovery above: a wrong guess about prometheus_client would empty it.
    assert {
        "weavergen_entropy_score",
        "weavergen_cycles_total",
        "weavergen_phase_duration_seconds_bucket",
        "weavergen_spans_received_total",
        "weavergen_receiver_requests_total",
    } <= exported().keys()
    assert exported()["weavergen_receiver_requests_total"].labels == {"result"}
    assert len(families()) == 19


def test_identity() -> None:
    dashboard = load()
    assert dashboard["uid"] == "weavergen-operator"
    assert dashboard["title"] == "WeaverGen Regeneration Operator"
    assert dashboard["schemaVersion"] == 39
    assert dashboard["id"] is None  # provisioned by the sidecar, never tied to one Grafana's id


def test_fits_a_configmap() -> None:
    text = DASHBOARD.read_bytes()
    assert len(text) < ANNOTATION_LIMIT
    assert text.endswith(b"}\n")  # the chart's block scalar keeps exactly one final newline


def test_template_variables() -> None:
    found = variables()
    assert found["datasource"]["type"] == "datasource"
    assert found["datasource"]["query"] == "prometheus"
    namespace, charter = found["namespace"], found["charter"]
    assert namespace["query"]["query"] == "label_values(weavergen_entropy_score, namespace)"
    assert charter["query"]["query"] == (
        'label_values(weavergen_entropy_score{namespace=~"$namespace"}, charter)'
    )
    for variable in (namespace, charter):
        assert variable["type"] == "query"
        assert variable["datasource"] == DATASOURCE
        assert variable["multi"] is True
        assert variable["includeAll"] is True


@pytest.mark.parametrize("name", ["namespace", "charter"])
def test_variable_queries_use_exported_labels(name: str) -> None:
    query = variables()[name]["query"]["query"]
    match = LABEL_VALUES.match(query)
    assert match, query
    metric, selector, label = match.groups()
    series = exported()[metric]
    assert label in series.labels
    if selector:
        assert set(MATCHER_LABEL.findall(QUOTED.sub('""', selector))) <= series.labels


def test_every_variable_used_is_defined() -> None:
    defined = set(variables()) | GRAFANA_VARIABLES
    text = json.dumps([load()["panels"], load()["templating"]])
    assert set(VARIABLE.findall(text)) <= defined


def test_panels_have_title_datasource_position_and_targets() -> None:
    everything = load()["panels"]
    assert len({p["id"] for p in everything}) == len(everything)
    for panel in everything:
        assert panel["title"], panel
        grid = panel["gridPos"]
        assert {"h", "w", "x", "y"} <= grid.keys(), panel["title"]
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] >= 0 and grid["x"] + grid["w"] <= 24
        if panel["type"] == "row":
            assert not panel.get("targets") and not panel["collapsed"], panel["title"]
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["description"], panel["title"]
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(set(refs)) == len(refs), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert target["expr"].strip(), panel["title"]


def test_panels_do_not_overlap() -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in load()["panels"]:
        grid = panel["gridPos"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]


@pytest.mark.parametrize(("where", "expr"), EXPRS, ids=EXPR_IDS)
def test_expr_metrics_are_exported(where: str, expr: str) -> None:
    names = used_metrics(expr)
    assert names, f"{where}: no weavergen metric in {expr}"
    assert set(names) <= exported().keys(), f"{where}: {expr}"


@pytest.mark.parametrize(("where", "expr"), EXPRS, ids=EXPR_IDS)
def test_selector_labels_belong_to_their_metric(where: str, expr: str) -> None:
    for metric, body in SELECTOR.findall(expr):
        labels = set(MATCHER_LABEL.findall(QUOTED.sub('""', body)))
        assert labels <= exported()[metric].labels, f"{where}: {metric}{{{body}}}"


@pytest.mark.parametrize(("where", "expr"), EXPRS, ids=EXPR_IDS)
def test_grouping_labels_belong_to_every_metric(where: str, expr: str) -> None:
    for clause in GROUPING.findall(expr):
        labels = {label.strip() for label in clause.split(",") if label.strip()}
        for metric in used_metrics(expr):
            assert labels <= exported()[metric].labels, f"{where}: by ({clause}) on {metric}"


@pytest.mark.parametrize(("where", "target"), targets(), ids=[w for w, _ in targets()])
def test_legend_labels_survive_the_query(where: str, target: dict[str, Any]) -> None:
    expr = target["expr"]
    for label in LEGEND_LABEL.findall(target.get("legendFormat", "")):
        assert label != "le" or "histogram_quantile" not in expr, where
        for metric in used_metrics(expr):
            assert label in exported()[metric].labels, f"{where}: {{{{{label}}}}} on {metric}"
        for clause in GROUPING.findall(expr):
            assert label in {part.strip() for part in clause.split(",")}, f"{where}: {label}"


@pytest.mark.parametrize(("where", "expr"), EXPRS, ids=EXPR_IDS)
def test_rates_are_taken_of_counters(where: str, expr: str) -> None:
    for metric in COUNTER_FUNCTION.findall(expr):
        series = exported()[metric]
        assert series.type in {"counter", "histogram"}, f"{where}: rate of gauge {metric}"


@pytest.mark.parametrize(("where", "expr"), EXPRS, ids=EXPR_IDS)
def test_quantiles_come_from_buckets_by_le(where: str, expr: str) -> None:
    if "histogram_quantile" not in expr:
        return
    assert all(name.endswith("_bucket") for name in used_metrics(expr)), where
    assert any("le" in clause.replace(" ", "").split(",") for clause in GROUPING.findall(expr))


def test_every_exported_family_has_a_panel() -> None:
    shown = {exported()[name].family for _, expr in EXPRS for name in used_metrics(expr)}
    assert families() - shown == set()


def entropy_panel() -> dict[str, Any]:
    return next(p for p in panels() if p["title"] == "Entropy score with control band")


def test_entropy_panel_draws_the_level_thresholds() -> None:
    steps = entropy_panel()["fieldConfig"]["defaults"]["thresholds"]["steps"]
    expected = [DEFAULT_THRESHOLDS.medium, DEFAULT_THRESHOLDS.high, DEFAULT_THRESHOLDS.critical]
    assert [s["value"] for s in steps[1:]] == expected


def test_entropy_panel_approximates_the_control_band() -> None:
    panel = entropy_panel()
    text = " ".join(t["expr"] for t in panel["targets"])
    assert "avg_over_time(weavergen_entropy_score" in text
    assert "3 * stddev_over_time(weavergen_entropy_score" in text
    assert "[$baseline]" in text
    assert "kubectl get rch -o yaml" in panel["description"]
    assert "HTML report" in panel["description"]
    assert "approximation" in panel["description"]


def test_entropy_level_mapping_matches_the_gauge() -> None:
    panel = next(p for p in panels() if p["title"] == "Entropy level")
    [mapping] = panel["fieldConfig"]["defaults"]["mappings"]
    named = {int(value): option["text"] for value, option in mapping["options"].items()}
    assert named == {number: level for level, number in LEVEL_NUMBER.items()}
