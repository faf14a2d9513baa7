"""Entropy and levels exactly as DESIGN.md section 5, boundaries included; health formula."""

from __future__ import annotations

import pytest

from weavergen.domain.entropy import DEFAULT_THRESHOLDS, Thresholds, entropy_score
from weavergen.domain.health import Objectives, burn_health, combine, health_of
from weavergen.domain.measure import measure
from weavergen.domain.summary import ServiceSummary


@pytest.mark.parametrize(
    ("score", "level"),
    [
        (0.0, "low"),
        (0.299999, "low"),
        (0.3, "medium"),
        (0.599999, "medium"),
        (0.6, "high"),
        (0.7999999999999999, "critical"),  # a float artefact of 0.8, not HIGH
        (0.799999, "high"),
        (0.8, "critical"),
        (1.0, "critical"),
    ],
)
def test_levels_at_the_boundaries(score: float, level: str) -> None:
    assert DEFAULT_THRESHOLDS.level(score).value == level


def test_entropy_formula() -> None:
    assert entropy_score(1.0, 0, 0) == 0.0
    assert entropy_score(0.0, 5, 10) == 1.0
    assert entropy_score(0.0, 9, 30) == 1.0  # both counts saturate
    assert entropy_score(0.5, 1, 2) == pytest.approx(0.2 + 0.06 + 0.06)
    # 0.4*(1-0.25) + 0.3*(1/5) + 0.3*(4/10) sums to 0.47999999999999993 in floating point
    assert entropy_score(0.25, 1, 4) == 0.48


def test_exact_boundaries_from_the_formula() -> None:
    assert DEFAULT_THRESHOLDS.level(entropy_score(1.0, 5, 0)).value == "medium"  # 0.3
    assert DEFAULT_THRESHOLDS.level(entropy_score(0.25, 5, 0)).value == "high"  # 0.6
    assert DEFAULT_THRESHOLDS.level(entropy_score(0.25, 5, 10)).value == "critical"  # 0.9
    assert DEFAULT_THRESHOLDS.level(entropy_score(0.5, 5, 10)).value == "critical"  # 0.8


def test_charter_thresholds_are_used_and_checked() -> None:
    strict = Thresholds(0.2, 0.4, 0.6)
    assert strict.level(0.45).value == "high"
    with pytest.raises(ValueError, match="medium < high < critical"):
        Thresholds(0.5, 0.5, 0.8)


def service(spans: int, errors: int, seconds: float = 60.0) -> ServiceSummary:
    summary = ServiceSummary("svc", start_ns=0, end_ns=int(seconds * 1e9))
    op = summary._operation("GET /")
    op.count, op.errors = spans, errors
    op.histogram[40] = spans  # every span ~ 1 ms
    return summary


def test_a_35_percent_error_rate_against_a_half_percent_baseline_is_sick() -> None:
    health = health_of(service(10_000, 3_500), service(10_000, 50), Objectives())
    assert health.error_burn == pytest.approx(35.0)
    assert health.score == 0.0


def test_health_components_and_burn() -> None:
    assert burn_health(0.5) == 1.0 and burn_health(1.0) == 1.0
    assert burn_health(14.4) == pytest.approx(0.0)
    assert 0 < burn_health(3.0) < 1
    assert combine(1, 1, 1) == 1.0
    assert combine(0.0, 1.0, 1.0) == 0.0  # one exhausted objective dominates
    assert combine(1.0, 1.0, 0.5) == pytest.approx(0.9)


def test_too_few_spans_is_insufficient_data_not_a_score() -> None:
    result = measure(service(40, 0), service(5_000, 5))
    assert result.status == "insufficient_data"
    assert result.entropy_score is None and result.entropy_level is None
    assert "40 spans" in result.reason
    assert measure(service(500, 0), service(50, 0)).status == "insufficient_data"
