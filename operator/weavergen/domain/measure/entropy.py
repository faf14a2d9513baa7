"""Entropy score and level, exactly as DESIGN.md section 5 defines them.

    entropy = 0.4 * (1 - health) + 0.3 * min(1, indicators / 5) + 0.3 * min(1, validation / 10)

Scores are rounded to six decimals before they are binned, so 0.7999999999 (a float artefact of
the weighted sum) is 0.8, not HIGH.
"""

from __future__ import annotations

from dataclasses import dataclass

from weavergen.api.charter import EntropyLevel

ROUNDING = 6


@dataclass(frozen=True)
class Thresholds:
    """Scores where each level starts: score >= medium is MEDIUM, and so on."""

    medium: float = 0.3
    high: float = 0.6
    critical: float = 0.8

    def __post_init__(self) -> None:
        if not 0 <= self.medium < self.high < self.critical <= 1:
            raise ValueError("thresholds must satisfy 0 <= medium < high < critical <= 1")

    def level(self, score: float) -> EntropyLevel:
        score = round(score, ROUNDING)
        if score >= self.critical:
            return EntropyLevel.CRITICAL
        if score >= self.high:
            return EntropyLevel.HIGH
        if score >= self.medium:
            return EntropyLevel.MEDIUM
        return EntropyLevel.LOW


DEFAULT_THRESHOLDS = Thresholds()


def entropy_score(health: float, indicators: int, validation_errors: int) -> float:
    score = (
        0.4 * (1.0 - health)
        + 0.3 * min(1.0, indicators / 5.0)
        + 0.3 * min(1.0, validation_errors / 10.0)
    )
    return round(min(1.0, max(0.0, score)), ROUNDING)
