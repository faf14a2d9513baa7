"""What each phase Job must write into its result ConfigMap; the operator checks it on read.

The models name the keys the next phases and the status rely on and let everything else pass
(a phase may add evidence), so a result from an older or newer Job still reads. The keys it
names are checked strictly, as the CRD models are: the result is decoded JSON, so a value of the
wrong JSON type ("true" for a boolean, a string for a number) is a malformed result.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class _Result(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class DefineResult(_Result):
    define: dict[str, Any]


class MeasurementRecord(_Result):
    """A measurement as a phase result carries it (``domain.measure.Measurement.as_dict``)."""

    status: str
    entropy_score: float | None
    entropy_level: str | None
    health_score: float | None
    drift_indicators: list[dict[str, Any]]
    validation_errors: list[dict[str, Any]]
    span_count: int


class MeasureResult(_Result):
    measurement_before: MeasurementRecord
    entropy_before: float
    regeneration_needed: bool


class ExploreResult(_Result):
    exploration: dict[str, Any]
    chosen: dict[str, Any]


class DevelopResult(_Result):
    solution: dict[str, Any]


class ImplementResult(_Result):
    implementation: dict[str, Any]
    implementation_succeeded: bool
    implementation_escalated: bool = False


PHASE_RESULTS: dict[str, type[_Result]] = {
    "define": DefineResult,
    "measure": MeasureResult,
    "explore": ExploreResult,
    "develop": DevelopResult,
    "implement": ImplementResult,
}
