"""Paths and loaders shared by the tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "config" / "samples"


def manifests(path: Path) -> list[dict[str, Any]]:
    """Every Kubernetes object in a YAML file (a list of stakeholders is not one)."""
    docs = [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
    return [d for d in docs if "kind" in d]


def sample_objects(kind: str) -> list[tuple[str, dict[str, Any]]]:
    """(file name, object) for every sample of a kind under config/samples."""
    return [
        (p.name, obj)
        for p in sorted(SAMPLES.glob("*.yaml"))
        for obj in manifests(p)
        if obj["kind"] == kind
    ]
