"""Judge a regeneration against the charter's success criteria (pure: figures in, verdict out)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from weavergen.api.charter import SuccessCriteriaSpec


@dataclass(frozen=True)
class Verdict:
    met: bool
    reasons: list[str] = field(default_factory=list)


def judge(
    after: Mapping[str, Any], entropy_before: float, criteria: SuccessCriteriaSpec
) -> Verdict:
    """Every criterion is checked; the verdict lists each failed one in words."""
    if after.get("status") != "ok" or after.get("entropy_score") is None:
        return Verdict(False, [f"no measurement after the fix: {after.get('reason', 'unknown')}"])
    entropy, health = float(after["entropy_score"]), float(after["health_score"])
    failed = []
    if entropy > criteria.max_entropy_score:
        failed.append(f"entropy {entropy:.3f} > {criteria.max_entropy_score}")
    if health < criteria.min_health_score:
        failed.append(f"health {health:.3f} < {criteria.min_health_score}")
    if entropy_before - entropy < criteria.min_entropy_reduction:
        failed.append(
            f"entropy fell by {entropy_before - entropy:.3f} < {criteria.min_entropy_reduction}"
        )
    return Verdict(not failed, failed or ["every success criterion met"])
