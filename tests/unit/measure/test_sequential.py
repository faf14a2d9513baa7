"""The sequential verification test: its bounds, and its error rates measured by simulation."""

from __future__ import annotations

import numpy as np
import pytest

from weavergen.domain.measure.health import Objectives
from weavergen.domain.measure.sequential import (
    Decision,
    Evidence,
    SequentialTest,
    evidence_of,
)
from weavergen.domain.measure.sketch import NUM_BUCKETS, bucket_of

TEST = SequentialTest.for_objectives(Objectives(availability=0.99, latency_target=0.99))


def run(test: SequentialTest, bad_share: float, rng: np.random.Generator, cap: int) -> Decision:
    """Feed requests one at a time until the test decides (or ``cap`` requests)."""
    bad = rng.random(cap) < bad_share
    ratios = np.cumsum(np.where(bad, test.bad_weight, test.good_weight))
    upper, lower = (
        np.log((1 - test.false_pass) / test.false_fail),
        np.log(test.false_pass / (1 - test.false_fail)),
    )
    crossed = np.flatnonzero((ratios >= upper) | (ratios <= lower))
    if not len(crossed):
        return Decision.CONTINUE
    n = int(crossed[0]) + 1
    decision = test.decide(Evidence(n, int(bad[:n].sum())))
    assert decision is not Decision.CONTINUE  # the vectorised walk and decide() agree
    return decision


def test_the_hypotheses_come_from_the_objectives_budgets() -> None:
    assert TEST.allowed == pytest.approx(0.02)  # 1% error budget + 1% latency budget
    assert TEST.unhealthy == pytest.approx(0.10)  # burning them 5 times too fast
    strict = SequentialTest.for_objectives(Objectives(availability=0.999, latency_target=0.999))
    assert strict.allowed == pytest.approx(0.002) and strict.fewest_to_pass > TEST.fewest_to_pass


def test_a_clean_fix_passes_after_the_fewest_requests_and_not_before() -> None:
    n = TEST.fewest_to_pass
    assert 40 <= n <= 80
    assert TEST.decide(Evidence(n - 1, 0)) is Decision.CONTINUE
    assert TEST.decide(Evidence(n, 0)) is Decision.PASS


def test_silence_is_never_a_pass() -> None:
    assert TEST.decide(Evidence()) is Decision.CONTINUE


def test_a_plainly_broken_service_fails_within_a_few_requests() -> None:
    assert TEST.decide(Evidence(5, 4)) is Decision.FAIL
    assert TEST.decide(Evidence(200, 40)) is Decision.FAIL  # 20% bad: twice the unhealthy share


def test_measured_error_rates_are_within_the_stated_bounds() -> None:
    rng = np.random.default_rng(7)
    runs = 4000
    at_unhealthy = [run(TEST, TEST.unhealthy, rng, 20_000) for _ in range(runs)]
    at_healthy = [run(TEST, TEST.allowed, rng, 20_000) for _ in range(runs)]
    false_pass = at_unhealthy.count(Decision.PASS) / runs
    false_fail = at_healthy.count(Decision.FAIL) / runs
    # Wald's bounds hold up to the overshoot of the last step; 4000 runs: +-0.3% at 1%.
    assert false_pass <= TEST.false_pass + 0.005, false_pass
    assert false_fail <= TEST.false_fail + 0.01, false_fail
    # And the test does decide: a healthy service mostly passes, a broken one mostly fails.
    assert at_healthy.count(Decision.PASS) / runs > 0.9
    assert at_unhealthy.count(Decision.FAIL) / runs > 0.95


def test_evidence_must_be_consistent() -> None:
    with pytest.raises(ValueError, match=r"bad requests 3 must be within 0\.\.2"):
        Evidence(2, 3)


def test_a_request_both_failed_and_slow_counts_once() -> None:
    ok = np.bincount(bucket_of(np.array([5e6] * 8 + [500e6] * 2)), minlength=NUM_BUCKETS)
    # 10 good-status requests (2 slower than 100 ms) and 5 failed ones, slow or not.
    found = evidence_of(15, 5, ok, threshold_ms=100.0)
    assert found == Evidence(15, 7)
    assert evidence_of(0, 0, np.zeros(NUM_BUCKETS, np.int64), 100.0) == Evidence()


def test_bad_hypotheses_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"allowed \(0.2\) < unhealthy \(0.1\)"):
        SequentialTest(0.2, 0.1)
