"""The local control plane behaves as a cluster: Jobs, Deployments, garbage collection, RBAC."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from hack.localplane.plane import Plane
from tests.integration.conftest import wait_for
from tests.scenario import deployment

PYTHON = os.path.basename(sys.executable)


def apply(plane: Plane, namespace: str, *objects: dict[str, Any]) -> None:
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)})
    plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=body)


def get(plane: Plane, namespace: str, *what: str) -> Any:
    return json.loads(plane.kubectl("get", *what, "-n", namespace, "-o", "json").stdout)


def job(name: str, code: str, *, backoff: int = 0, sa: str | None = None) -> dict[str, Any]:
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [{"name": "main", "image": "python", "command": [PYTHON, "-c", code]}],
    }
    if sa:
        pod_spec["serviceAccountName"] = sa
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"backoffLimit": backoff, "template": {"spec": pod_spec}},
    }


def job_conditions(plane: Plane, namespace: str, name: str) -> set[str]:
    status = get(plane, namespace, "job", name).get("status", {})
    return {c["type"] for c in status.get("conditions", []) if c["status"] == "True"}


def pods(plane: Plane, namespace: str, selector: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get(plane, namespace, "pods", "-l", selector)["items"]
    return items


def test_a_job_runs_python_and_completes(plane: Plane, namespace: str) -> None:
    code = "import os; print('ran in', os.environ['POD_NAMESPACE'])"
    spec = job("hello", code)
    spec["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}
    ]
    apply(plane, namespace, spec)
    wait_for(lambda: "Complete" in job_conditions(plane, namespace, "hello"), what="Complete")
    assert "SuccessCriteriaMet" in job_conditions(plane, namespace, "hello")
    (pod,) = pods(plane, namespace, "job-name=hello")
    assert pod["status"]["phase"] == "Succeeded"
    state = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert state["exitCode"] == 0 and state["reason"] == "Completed"


def test_a_failing_job_fails_after_its_backoff_limit(plane: Plane, namespace: str) -> None:
    apply(plane, namespace, job("boom", "import sys; print('boom'); sys.exit(3)", backoff=1))
    wait_for(lambda: "Failed" in job_conditions(plane, namespace, "boom"), 90, what="Failed")
    failed = pods(plane, namespace, "job-name=boom")
    assert len(failed) == 2  # the first attempt and one retry
    for pod in failed:
        terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
        assert terminated["exitCode"] == 3
        assert terminated["message"] == "boom"  # the log's tail, as FallbackToLogsOnError


def running_pids(plane: Plane, namespace: str, selector: str) -> dict[str, int]:
    """Pod name -> pid of its process, for ready pods not being deleted."""
    out = {}
    for pod in pods(plane, namespace, selector):
        statuses = pod["status"].get("containerStatuses") or []
        if pod["metadata"].get("deletionTimestamp") or not statuses or not statuses[0]["ready"]:
            continue
        out[pod["metadata"]["name"]] = int(statuses[0]["containerID"].removeprefix("process://"))
    return out


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_deployment_pods_run_as_processes_and_rollout_restart_replaces_them(
    plane: Plane, namespace: str
) -> None:
    apply(plane, namespace, deployment("web"))
    plane.kubectl("rollout", "status", "deploy/web", "-n", namespace, "--timeout=60s")
    before = running_pids(plane, namespace, "app=web")
    assert len(before) == 2 and all(alive(pid) for pid in before.values())

    plane.kubectl("rollout", "restart", "deploy/web", "-n", namespace)
    plane.kubectl("rollout", "status", "deploy/web", "-n", namespace, "--timeout=60s")
    after = wait_for(
        lambda: (p := running_pids(plane, namespace, "app=web")) and len(p) == 2 and p,
        what="two new ready pods",
    )
    assert isinstance(after, dict)
    assert not set(after) & set(before)
    wait_for(lambda: not any(alive(pid) for pid in before.values()), what="old processes gone")
    assert all(alive(pid) for pid in after.values())


def test_deleting_the_owner_garbage_collects_its_children(plane: Plane, namespace: str) -> None:
    apply(plane, namespace, deployment("gc"))
    plane.kubectl("rollout", "status", "deploy/gc", "-n", namespace, "--timeout=60s")
    pids = running_pids(plane, namespace, "app=gc")
    plane.kubectl("delete", "deploy", "gc", "-n", namespace, "--wait=false")
    wait_for(
        lambda: (
            not get(plane, namespace, "rs", "-l", "app=gc")["items"]
            and not pods(plane, namespace, "app=gc")
        ),
        what="ReplicaSet and pods collected",
    )
    wait_for(lambda: not any(alive(pid) for pid in pids.values()), what="processes stopped")


def test_a_process_without_permission_gets_403(plane: Plane, namespace: str) -> None:
    code = (
        "from kubernetes import client, config\n"
        "config.load_kube_config()\n"
        "api = client.CoreV1Api()\n"
        "print('configmaps', len(api.list_namespaced_config_map(NS).items))\n"
        "try:\n"
        "    api.list_namespaced_secret(NS)\n"
        "except client.ApiException as err:\n"
        "    print('secrets', err.status)\n"
        "    raise SystemExit(0 if err.status == 403 else 1)\n"
        "raise SystemExit(2)\n"
    ).replace("NS", repr(namespace))
    reader = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reader"}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "configmap-reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "reader"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "configmap-reader",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
    ]
    apply(plane, namespace, *reader, job("rbac", code, sa="reader"))
    wait_for(
        lambda: job_conditions(plane, namespace, "rbac") & {"Complete", "Failed"},
        what="the RBAC job to finish",
    )
    (pod,) = pods(plane, namespace, "job-name=rbac")
    log = (plane.state / "node" / "pods").glob(f"{namespace}_{pod['metadata']['name']}_*/main.log")
    output = next(log).read_text()
    assert "configmaps" in output and "secrets 403" in output
    assert "Complete" in job_conditions(plane, namespace, "rbac")
