"""Wire models of the CRDs (the single source of their schemas) and the CRD generator."""

from weavergen.api.charter import (
    EntropyLevel,
    RegenerationCharter,
    RegenerationCharterSpec,
    RegenerationCharterStatus,
    SystemType,
)
from weavergen.api.common import API_VERSION, GROUP, VERSION
from weavergen.api.cycle import RegenerationCycle, RegenerationCycleSpec, RegenerationCycleStatus

__all__ = [
    "API_VERSION",
    "GROUP",
    "VERSION",
    "EntropyLevel",
    "RegenerationCharter",
    "RegenerationCharterSpec",
    "RegenerationCharterStatus",
    "RegenerationCycle",
    "RegenerationCycleSpec",
    "RegenerationCycleStatus",
    "SystemType",
]
