"""A container's process: started from its command (or its image's mapped entrypoint) in a session
of its own, logging to the pod's directory; reaped into a terminated state; killed with grace."""

from __future__ import annotations

import contextlib
import fnmatch
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from hack.localplane.nodeagent import LOG, now
from hack.localplane.nodeagent.environment import expand
from hack.localplane.nodeagent.pods import Container, PodRunner

TERMINATION_MESSAGE_BYTES = 4096


def argv(
    runner: PodRunner, container: Container, entrypoints: dict[str, list[str]]
) -> list[str] | None:
    """The command and args, $(VAR) expanded; None when there is no command and no entrypoint
    is mapped for the image."""
    spec, env = container.spec, runner.env.get(container.name, {})
    command = list(spec.get("command") or [])
    if not command:
        image = spec.get("image", "")
        for pattern, entrypoint in entrypoints.items():
            if fnmatch.fnmatch(image, pattern):
                command = list(entrypoint)
                break
        else:
            return None
    return [expand(part, env) for part in [*command, *(spec.get("args") or [])]]


def launch(runner: PodRunner, container: Container, entrypoints: dict[str, list[str]]) -> None:
    """Start the container's process in its working directory if that exists here (else the
    pod's directory), its output appended to ``<container>.log`` in the pod's directory; a
    container that cannot start is terminated at once."""
    command = argv(runner, container, entrypoints)
    if command is None:
        message = (
            "the local node agent runs containers that have a command; "
            f"image {container.spec.get('image')!r} has no entrypoint mapping"
        )
        cannot_start(container, 128, "ContainerCannotRun", message)
        return
    workdir = container.spec.get("workingDir")
    cwd = workdir if workdir and Path(workdir).is_dir() else runner.directory
    with (runner.directory / f"{container.name}.log").open("ab") as log:
        try:
            container.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=runner.env[container.name],
                start_new_session=True,  # a process group of its own, for kill()
            )
        except OSError as err:
            message = f"cannot start {command[0]!r}: {err.strerror}"
            cannot_start(container, 127, "StartError", message)
            return
    container.started_at = now()
    container.waiting = None
    container.terminated = None
    LOG.info(
        "started container=%s pod=%s/%s pid=%d",
        container.name, runner.namespace, runner.name, container.process.pid,
    )  # fmt: skip


def cannot_start(container: Container, code: int, reason: str, message: str) -> None:
    """Terminate a container that never ran, with the exit code a runtime would report."""
    container.waiting = None
    container.terminated = terminated(code, reason, message, now())


def terminated(code: int, reason: str, message: str, started_at: str | None) -> dict[str, Any]:
    """A container's terminated state, finished now."""
    return {
        "exitCode": code,
        "reason": reason,
        "message": message,
        "startedAt": started_at,
        "finishedAt": now(),
    }


def reap(runner: PodRunner, container: Container) -> int | None:
    """If the container's process has exited, record it as terminated and return its exit
    code; None while it runs (or when there is no process)."""
    process = container.process
    if process is None or process.poll() is None:
        return None
    code = process.returncode
    if code < 0:
        code = 128 - code  # killed by a signal: 128 + signal number, as a runtime reports
    container.process = None
    reason = "Completed" if code == 0 else "Error"
    message = termination_message(runner, container, code)
    container.terminated = terminated(code, reason, message, container.started_at)
    LOG.info(
        "container exited container=%s pod=%s/%s code=%d",
        container.name, runner.namespace, runner.name, code,
    )  # fmt: skip
    return code


def termination_message(runner: PodRunner, container: Container, code: int) -> str:
    """Kubernetes' FallbackToLogsOnError: the log's tail when the container failed."""
    if code == 0:
        return ""
    try:
        with (runner.directory / f"{container.name}.log").open("rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - TERMINATION_MESSAGE_BYTES))
            return log.read().decode(errors="replace").strip()
    except OSError:
        return ""


def kill(runner: PodRunner, grace: float) -> None:
    """SIGTERM every process group of the pod, SIGKILL what is left after ``grace`` seconds,
    and wait up to five more for them to go."""
    processes = [c.process for c in runner.all_containers() if c.process]
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        alive = [p for p in processes if p.poll() is None]
        for process in alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
        deadline = time.monotonic() + wait
        while alive and time.monotonic() < deadline:
            alive = [p for p in alive if p.poll() is None]
            time.sleep(0.05)
        if not alive:
            break
