"""A plane started for an owner dies with it: a test run killed with SIGKILL leaves no etcd,
kube-apiserver, controller-manager or node agent behind."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from hack.localplane.plane import Plane
from tests.helpers import REPO
from tests.integration.conftest import wait_for

OWNER = """
import os, sys
from pathlib import Path
from hack.localplane.plane import Plane
Plane(Path(sys.argv[1])).up(owner_pid=os.getpid())
print("up", flush=True)
sys.stdin.read()
"""


def running(pid: int) -> bool:
    """Whether ``pid`` exists and has not exited (a zombie nobody reaps has exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_plane_stops_when_its_owner_is_killed(tmp_path: Path) -> None:
    state = tmp_path / "plane"
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(state)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        assert owner.stdout.readline() == "up\n"
        pids = {p.stem: int(p.read_text()) for p in (state / "run").glob("*.pid")}
        assert set(pids) == {*Plane(state).processes(), "watchdog"}
        assert all(running(pid) for pid in pids.values())

        owner.send_signal(signal.SIGKILL)
        owner.wait()
        wait_for(
            lambda: not any(running(pid) for pid in pids.values()),
            timeout=60,
            what=f"every plane process to exit after its owner: {pids}",
        )
    finally:
        owner.kill()
        owner.wait()
        Plane(state).down()
