"""Tests that compare against ``../shared`` skip in a clone without it and fail in CI without it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO, REQUIRE_SHARED

REFERENCE_TESTS = [
    "tests/unit/test_semconv.py::test_shipped_registry_agrees_with_the_reference_model",
    "tests/unit/test_semconv.py::test_every_shipped_attribute_is_in_the_reference_model",
]


def run_reference_tests(shared: Path, *, required: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != REQUIRE_SHARED}
    env["WEAVERGEN_SHARED"] = str(shared)
    if required:
        env[REQUIRE_SHARED] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", *REFERENCE_TESTS],
        check=False,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_clone_without_shared_skips_the_reference_tests_with_the_reason(tmp_path: Path) -> None:
    result = run_reference_tests(tmp_path / "no-shared", required=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 skipped" in result.stdout and "failed" not in result.stdout, result.stdout
    assert "exists only beside the project's own checkout and in CI" in result.stdout


def test_ci_without_shared_fails_the_reference_tests(tmp_path: Path) -> None:
    result = run_reference_tests(tmp_path / "no-shared", required=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 failed" in result.stdout, result.stdout
