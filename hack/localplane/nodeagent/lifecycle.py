"""A pod's lifecycle on this node, as a kubelet runs it: init containers one by one and to
success first, then the others; exited containers restarted by the restart policy with a capped
back-off; the phase from what runs and how it exited; the active deadline enforced."""

from __future__ import annotations

import time

from hack.localplane.nodeagent.pods import Container, PodRunner
from hack.localplane.nodeagent.processes import kill, launch, reap


def advance(runner: PodRunner, entrypoints: dict[str, list[str]]) -> None:
    """One step of an unfinished pod: fail it past its activeDeadlineSeconds, else (unless its
    environment could not be prepared) reap what exited and start what should run."""
    deadline = runner.pod["spec"].get("activeDeadlineSeconds")
    if deadline and time.monotonic() - runner.started_monotonic > deadline:
        kill(runner, grace=0)
        runner.phase, runner.reason = "Failed", "DeadlineExceeded"
        runner.message = f"Pod was active on the node longer than {deadline}s."
        return
    if any(c.waiting == "CreateContainerConfigError" for c in runner.all_containers()):
        return
    for container in runner.all_containers():
        collect(runner, container)
    pending_init = next(
        (c for c in runner.init_containers if (c.terminated or {}).get("exitCode") != 0), None
    )
    if pending_init is not None:
        run_init(runner, pending_init, entrypoints)
    else:
        run_containers(runner, entrypoints)


def collect(runner: PodRunner, container: Container) -> None:
    """Reap the container's process if it exited, and schedule its restart if the pod's restart
    policy wants one."""
    code = reap(runner, container)
    if code is None:
        return
    policy = runner.restart_policy
    if not container.init and (policy == "Always" or (policy == "OnFailure" and code != 0)):
        back_off(container, "CrashLoopBackOff" if code != 0 else "Restarting")
    elif container.init and code != 0 and policy != "Never":
        back_off(container, "CrashLoopBackOff")


def back_off(container: Container, reason: str) -> None:
    """Wait in ``reason`` to restart, 1s after the first exit and doubling up to 10s; the exit
    becomes the container's last state."""
    container.last_terminated = container.terminated
    container.terminated = None
    container.waiting = reason
    container.restart_after = time.monotonic() + min(10.0, 2.0**container.restarts)
    container.restarts += 1


def run_init(runner: PodRunner, pending: Container, entrypoints: dict[str, list[str]]) -> None:
    """Start the first init container not yet succeeded, once its back-off is over; with
    restartPolicy Never its failure fails the pod."""
    if pending.terminated and runner.restart_policy == "Never":
        runner.phase = "Failed"
    elif pending.process is None and time.monotonic() >= pending.restart_after:
        launch(runner, pending, entrypoints)


def run_containers(runner: PodRunner, entrypoints: dict[str, list[str]]) -> None:
    """Start the containers due to (re)start, then set the phase: Succeeded or Failed once all
    terminated for good, Running while any runs, else Pending."""
    for container in runner.containers:
        if (
            container.process is None
            and container.terminated is None
            and time.monotonic() >= container.restart_after
        ):
            launch(runner, container, entrypoints)
    if all(c.terminated for c in runner.containers):
        codes = [c.terminated["exitCode"] for c in runner.containers if c.terminated]
        runner.phase = "Succeeded" if all(code == 0 for code in codes) else "Failed"
    else:
        runner.phase = "Running" if any(c.process for c in runner.containers) else "Pending"
