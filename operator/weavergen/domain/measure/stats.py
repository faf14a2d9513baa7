"""The few statistical tests the drift detectors need, on counts (no SciPy dependency).

Each returns a z score (or p-value); detectors pair it with a minimum effect size, so that a
large sample cannot turn a practically meaningless wobble into an alarm.
"""

from __future__ import annotations

import math


def two_proportion_z(hits_a: float, n_a: float, hits_b: float, n_b: float) -> float:
    """z of the difference p_b - p_a under a pooled null (positive when b is higher)."""
    if n_a <= 0 or n_b <= 0:
        return 0.0
    pooled = (hits_a + hits_b) / (n_a + n_b)
    variance = pooled * (1 - pooled) * (1 / n_a + 1 / n_b)
    if variance <= 0:
        return 0.0
    return (hits_b / n_b - hits_a / n_a) / math.sqrt(variance)


def poisson_rate_z(count_a: float, time_a: float, count_b: float, time_b: float) -> float:
    """z of rate b against rate a, conditioning on the total count (binomial split test)."""
    total = count_a + count_b
    if total <= 0 or time_a <= 0 or time_b <= 0:
        return 0.0
    share = time_b / (time_a + time_b)
    variance = total * share * (1 - share)
    return (count_b - total * share) / math.sqrt(variance) if variance > 0 else 0.0


def chi2_sf(statistic: float, dof: int) -> float:
    """Upper tail of the chi-square distribution (Wilson-Hilferty; good for dof >= 1)."""
    if dof <= 0 or statistic <= 0:
        return 1.0
    k = float(dof)
    z = ((statistic / k) ** (1 / 3) - (1 - 2 / (9 * k))) / math.sqrt(2 / (9 * k))
    return 0.5 * math.erfc(z / math.sqrt(2))


def g_test(counts_a: list[float], counts_b: list[float]) -> tuple[float, int]:
    """G statistic and degrees of freedom of a 2 x K contingency table of category counts."""
    total_a, total_b = sum(counts_a), sum(counts_b)
    total = total_a + total_b
    g, used = 0.0, 0
    for a, b in zip(counts_a, counts_b, strict=True):
        column = a + b
        if column == 0:
            continue
        used += 1
        for observed, row in ((a, total_a), (b, total_b)):
            expected = row * column / total
            if observed > 0:
                g += 2 * observed * math.log(observed / expected)
    return g, max(used - 1, 0)
