"""What every benchmark shares: timestamped progress on stderr, and a process's CPU time."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def stat_cpu_seconds(stat: Path) -> float:
    """utime + stime of a process or thread, in seconds (fields 14 and 15 of its stat file)."""
    text = stat.read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def cpu_seconds(pid: int) -> float:
    return stat_cpu_seconds(Path(f"/proc/{pid}/stat"))
