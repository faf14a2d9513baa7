"""`kubectl weavergen` as kubectl runs it: the installed `kubectl-weavergen` found on the PATH
by the plane's real kubectl, against a charter in propose mode and the cycle it starts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hack.localplane.plane import Plane, write_kubeconfig
from tests.integration.conftest import await_status, wait_for
from tests.integration.test_operator import corrupt_and_wait_for_the_cycle, start_healthy
from tests.scenario import OperatorProcess
from weavergen.api.keys import APPROVAL_ANNOTATION, REQUESTED_BY_ANNOTATION
from weavergen.k8s.rest import Rest

PLUGIN = Path(sys.executable).parent / "kubectl-weavergen"


def plugin_env(plane: Plane, kubeconfig: Path | None = None) -> dict[str, str]:
    """The plane's kubectl environment with the venv's bin (where the package installed
    `kubectl-weavergen`) first on the PATH, as a user who installed the package has it."""
    if not PLUGIN.exists():
        pytest.fail(f"{PLUGIN} is missing: install the package (pip install -e .) first")
    env = {**os.environ, **plane.env()}
    env["PATH"] = os.pathsep.join([str(PLUGIN.parent), env["PATH"]])
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    return env


def weavergen(
    plane: Plane, *args: str, kubeconfig: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``kubectl weavergen ARGS``: kubectl itself finds and runs the plugin."""
    return subprocess.run(
        [str(plane.binaries.kubectl), "weavergen", *args],
        env=plugin_env(plane, kubeconfig),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def read_only_kubeconfig(plane: Plane, namespace: str, path: Path) -> Path:
    """A service account's kubeconfig that may read charters and cycles but not patch them."""
    rules = {
        "apiGroups": ["regeneration.weavergen.io"],
        "resources": ["regenerationcharters", "regenerationcycles"],
        "verbs": ["get", "list", "watch"],
    }
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "cycle-reader"},
        "rules": [rules],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "cycle-reader"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "cycle-reader",
        },
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
    }
    plane.kubectl("create", "serviceaccount", "reader", "-n", namespace)
    plane.apply(namespace, role, binding)
    token = plane.kubectl("create", "token", "reader", "-n", namespace).stdout.strip()
    write_kubeconfig(path, plane.server, plane.pki, token=token)
    return path


def test_get_approve_watch_and_why_through_kubectl(
    plane: Plane,
    rest: Rest,
    namespace: str,
    operator: OperatorProcess,
    tmp_path: Path,
) -> None:
    listed = subprocess.run(
        [str(plane.binaries.kubectl), "plugin", "list"],
        env=plugin_env(plane),
        capture_output=True,
        text=True,
        check=False,
    )
    assert str(PLUGIN) in listed.stdout, listed.stderr
    start_healthy(plane, rest, namespace, operator, executor="job", mode="propose")
    shown = weavergen(plane, "get", "charters", "-n", namespace)
    assert shown.returncode == 0, shown.stderr
    (row,) = [line.split() for line in shown.stdout.splitlines() if line.startswith("web ")]
    assert row[:3] == ["web", "propose", "low"]
    reader = read_only_kubeconfig(plane, namespace, tmp_path / "reader")
    screens = tmp_path / "watch.out"
    watched: list[subprocess.Popen[str]] = []

    def approve_through_the_plugin(name: str) -> None:
        await_status(
            rest,
            namespace,
            "RegenerationCycle",
            name,
            lambda s: s.get("phase") == "AwaitingApproval",
            timeout=120,
            what=f"the cycle to wait for approval (operator log: {operator})",
        )
        both = weavergen(plane, "get", "-n", namespace, "-o", "json")
        kinds = [(o["kind"], o["metadata"]["name"]) for o in json.loads(both.stdout)["items"]]
        assert kinds == [("RegenerationCharter", "web"), ("RegenerationCycle", name)]
        cycles = weavergen(plane, "get", "cycles", "-n", namespace)
        assert f"{name}   web " in cycles.stdout and "AwaitingApproval" in cycles.stdout
        refused = weavergen(plane, "retry", name, "-n", namespace)
        assert refused.returncode == 1
        assert "it is AwaitingApproval: only a Failed, RolledBack or Aborted" in refused.stderr
        forbidden = weavergen(plane, "approve", name, "-n", namespace, kubeconfig=reader)
        assert forbidden.returncode == 1
        assert "may not patch regenerationcycles.regeneration.weavergen.io in namespace" in (
            forbidden.stderr
        )
        with screens.open("w") as out:
            watched.append(
                subprocess.Popen(
                    [
                        str(plane.binaries.kubectl),
                        "weavergen",
                        "watch",
                        name,
                        "-n",
                        namespace,
                        "--until-done",
                    ],
                    env=plugin_env(plane),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
        # Approve once the watch has drawn the waiting cycle: a plugin that starts slowly on a
        # busy machine would otherwise first see the cycle already past it.
        wait_for(
            lambda: "AwaitingApproval" in screens.read_text(),
            60,
            what="the watch's first screen",
        )
        approved = weavergen(plane, "approve", name, "-n", namespace)
        assert approved.returncode == 0, approved.stderr
        annotations = (rest.get("RegenerationCycle", namespace, name) or {})["metadata"][
            "annotations"
        ]
        assert annotations[APPROVAL_ANNOTATION] == "true"
        assert annotations[REQUESTED_BY_ANNOTATION] == "user"  # the plane kubeconfig's user

    name, final = corrupt_and_wait_for_the_cycle(
        rest, namespace, operator, approve_through_the_plugin
    )
    assert final["phase"] == "Succeeded", final.get("message")
    (watch,) = watched
    assert watch.wait(timeout=120) == 0, screens.read_text()[-3000:]
    output = screens.read_text()
    assert "Status:    ॥ AwaitingApproval" in output and "Status:    ✔ Succeeded" in output
    assert "implement   ✔ Succeeded" in output

    why = weavergen(plane, "why", name, "-n", namespace)
    assert why.returncode == 0, why.stderr
    assert "Ranked options\nRANK" in why.stdout
    assert "* 1    partial-regeneration" in why.stdout
    assert "1. partial-regeneration (chosen)\n   - " in why.stdout
    assert "Signature: " in why.stdout  # from the explore result ConfigMap
    # After the snapshot steps, the fix with the object it changes (and its diff below).
    assert re.search(r"Step \d+: reset_config_from_baseline\n  \S", why.stdout), why.stdout
    done = weavergen(plane, "abort", name, "-n", namespace)
    assert done.returncode == 1 and "it is Succeeded: it has finished" in done.stderr
