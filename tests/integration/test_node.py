"""The real node: a kubelet and containerd run pods from the locally built image, confined as
their security context says; pods resolve and reach Services as on a cluster; the host reaches
Services through kube-proxy; and a plane whose owner dies leaves no container, mount, cgroup or
network namespace behind."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from hack.localplane import node
from hack.localplane.plane import Plane, versions
from tests.helpers import REPO
from tests.integration.conftest import wait_for
from tests.integration.test_plane_lifetime import running
from weavergen.demo.manifests import CONTAINER_SECURITY, IMAGE, POD_SECURITY

# Run in a pod: what the kernel says the container may do, and whether cluster names resolve.
# /tmp is writable by anyone on a writable root, so a refusal there is the read-only root's;
# the bounding set, no_new_privs and the seccomp mode are what the security context asked for.
PROBE = """
import errno, json, os, socket
try:
    open("/tmp/probe", "w")
    tmp = "writable"
except OSError as refused:
    tmp = errno.errorcode[refused.errno]
with open("/proc/self/status") as lines:
    status = dict(line.rstrip("\\n").split(":\\t", 1) for line in lines if ":\\t" in line)
print(json.dumps({
    "uid": os.getuid(),
    "tmp": tmp,
    "bounding": status["CapBnd"],
    "no_new_privs": status["NoNewPrivs"],
    "seccomp": status["Seccomp"],
    "kubernetes": socket.gethostbyname("kubernetes.default.svc.cluster.local"),
}))
"""


def pod(name: str, command: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": POD_SECURITY,
            "containers": [
                {
                    "name": "main",
                    "image": IMAGE,
                    "command": command,
                    "securityContext": CONTAINER_SECURITY,
                    "ports": [{"name": "http", "containerPort": 8080}],
                }
            ],
        },
    }


@pytest.mark.real_node
def test_the_node_is_a_real_kubelet_on_containerd(plane: Plane) -> None:
    (found,) = json.loads(plane.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    info = found["status"]["nodeInfo"]
    assert info["kubeletVersion"] == versions()["KUBE_VERSION"]
    assert info["containerRuntimeVersion"].startswith("containerd://")
    images = {n for image in found["status"]["images"] for n in image["names"]}
    assert f"docker.io/library/{IMAGE}" in images
    assert node.PAUSE_IMAGE in images


@pytest.mark.real_node
def test_a_pod_runs_confined_and_resolves_cluster_names(plane: Plane, namespace: str) -> None:
    plane.kubectl(
        "apply", "-n", namespace, "-f", "-",
        stdin=json.dumps(pod("probe", ["python", "-c", PROBE])),
    )  # fmt: skip
    wait_for(
        lambda: _phase(plane, namespace, "probe") in ("Succeeded", "Failed"),
        120,
        what="the probe pod to finish",
    )
    log = plane.kubectl("logs", "probe", "-n", namespace).stdout
    assert _phase(plane, namespace, "probe") == "Succeeded", log
    seen = json.loads(log.strip().splitlines()[-1])
    service = json.loads(plane.kubectl("get", "svc", "kubernetes", "-o", "json").stdout)
    assert seen == {
        "uid": 65532,
        "tmp": "EROFS",  # readOnlyRootFilesystem
        "bounding": "0000000000000000",  # capabilities: drop ALL
        "no_new_privs": "1",  # allowPrivilegeEscalation: false
        "seccomp": "2",  # a filter: RuntimeDefault
        "kubernetes": service["spec"]["clusterIP"],  # CoreDNS answers cluster names
    }


@pytest.mark.real_node
def test_the_host_reaches_a_service_through_kube_proxy(plane: Plane, namespace: str) -> None:
    server = ["python", "-m", "http.server", "8080", "--directory", "/opt/weavergen"]
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "files"},
        "spec": {"selector": {"app": "files"}, "ports": [{"port": 80, "targetPort": "http"}]},
    }
    items = [pod("files", server), service]
    document = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=document)
    plane.kubectl("wait", "pod/files", "-n", namespace, "--for=condition=Ready", "--timeout=120s")
    url = plane.service_url(namespace, "files")

    def listing() -> str | None:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return str(answer.read().decode())
        except OSError:
            return None

    assert "bpmn" in str(wait_for(listing, 60, what=f"{url} to answer"))


OWNER = """
import os, sys
from pathlib import Path
from hack.localplane.plane import Plane
plane = Plane(Path(sys.argv[1]))
plane.up(node_kind="kubelet", owner_pid=os.getpid())
plane.kubectl("wait", "--for=create", "serviceaccount/default", "--timeout=60s")
plane.kubectl("run", "sleeper", "--image", sys.argv[2], "--restart=Never",
              "--command", "--", "python", "-c", "import time; time.sleep(3600)")
plane.kubectl("wait", "pod/sleeper", "--for=condition=Ready", "--timeout=120s")
print("up", flush=True)
sys.stdin.read()
"""


def test_a_real_node_leaves_nothing_behind_when_its_owner_is_killed(tmp_path: Path) -> None:
    """Containers outlive containerd (their shims are separate processes): stopping the plane
    must kill them, unmount their root filesystems, and remove cgroups and namespaces."""
    state = tmp_path / "plane"
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(state), IMAGE],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    real = node.Node(Plane(state))
    try:
        assert owner.stdout is not None
        assert owner.stdout.readline() == "up\n"
        cgroups = [d for d in real.cgroup_dirs() if d.is_dir()]
        sleeping = real.cgroup_pids()
        assert sleeping, "the sleeper's processes in the plane's cgroups"
        assert Path(f"/run/netns/{real.netns}").exists()

        watchdog = int((state / "run" / "watchdog.pid").read_text())
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        wait_for(
            lambda: not running(watchdog),
            120,
            what="the watchdog to stop the plane and its node, then exit",
        )
        assert not Path(f"/run/netns/{real.netns}").exists()
        assert not any(d.exists() for d in cgroups)
        assert not any(running(pid) for pid in sleeping)
        mounts = Path("/proc/mounts").read_text()
        assert str(state) not in mounts and str(real.run_dir) not in mounts
        assert not (node.SUBNETS / (state / "subnet").read_text()).is_symlink()
    finally:
        owner.kill()
        owner.wait()
        Plane(state).down()


def _phase(plane: Plane, namespace: str, name: str) -> str:
    found = plane.kubectl("get", "pod", name, "-n", namespace, "-o", "json", check=False)
    return str(json.loads(found.stdout or "{}").get("status", {}).get("phase", ""))
