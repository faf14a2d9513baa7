"""Paths and loaders shared by the tests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "config" / "samples"
# `../shared` exists on the project's own machines and in CI, not in a clone elsewhere.
SHARED = Path(os.environ.get("WEAVERGEN_SHARED", REPO.parent / "shared"))
REQUIRE_SHARED = "WEAVERGEN_REQUIRE_SHARED"


def shared_path(*parts: str) -> Path:
    """A path under ``../shared``: skips the test where it is absent, fails it where it is
    required (CI sets WEAVERGEN_REQUIRE_SHARED, so a missing copy is never a silent skip)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        message = f"{path} is absent: it exists only beside the project's own checkout and in CI"
        if os.environ.get(REQUIRE_SHARED):
            pytest.fail(f"{message}, and {REQUIRE_SHARED} is set")
        pytest.skip(message)
    return path


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
