"""Under xdist the run's plane is owned by the controller, not by the worker that starts it: a
worker may exit or be replaced while the others still use the plane."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO

RECORD_OWNER = """
import os
from pathlib import Path
from tests.conftest import run_owner

def test_record_owner(request):
    Path(os.environ["OWNER_FILE"]).write_text(f"{run_owner(request.config)} {os.getpid()}")
"""


def test_an_xdist_worker_names_the_controller_as_the_plane_owner(tmp_path: Path) -> None:
    (tmp_path / "test_record.py").write_text(RECORD_OWNER)
    owner_file = tmp_path / "owner"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OWNER_FILE": str(owner_file)}
    controller = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-n", "1", "-p", "tests.conftest",
         "-p", "no:randomly", "-p", "no:cacheprovider", str(tmp_path / "test_record.py")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    output = controller.communicate(timeout=120)[0]
    assert controller.returncode == 0, output
    owner, worker = map(int, owner_file.read_text().split())
    assert worker != controller.pid
    assert owner == controller.pid
