"""Phase Jobs in a namespace whose ResourceQuota admits only pods that declare resources."""

from __future__ import annotations

import json
from typing import Any

from hack.localplane.plane import Plane
from tests.integration.conftest import wait_for
from weavergen.api.profiles import profile_for
from weavergen.config import OperatorConfig
from weavergen.k8s.jobs import job_manifest
from weavergen.k8s.rest import Rest


def quota_enforced(plane: Plane, namespace: str) -> bool:
    got = plane.kubectl("get", "resourcequota", "compute", "-n", namespace, "-o", "json")
    return bool((json.loads(got.stdout).get("status") or {}).get("hard"))


def phase_job(namespace: str, owner: dict[str, Any], cycle: str) -> dict[str, Any]:
    policy = profile_for("web-service").phase_policy
    assert policy is not None
    return job_manifest(
        namespace=namespace,
        cycle=cycle,
        owner=owner,
        phase="define",
        policy=policy,
        receiver_url=None,
        config=OperatorConfig(phase_service_account="default"),
    )


def test_a_phase_job_is_admitted_where_a_quota_asks_every_pod_for_its_resources(
    plane: Plane, rest: Rest, namespace: str
) -> None:
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "compute"},
        "spec": {"hard": {"requests.cpu": "2", "requests.memory": "2Gi", "limits.memory": "4Gi"}},
    }
    plane.apply(namespace, quota)
    wait_for(lambda: quota_enforced(plane, namespace), 60, what="the quota to be enforced")
    holder = rest.create(
        "ConfigMap", namespace, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "o"}}
    )
    owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": holder["metadata"]["uid"]}
    admitted = phase_job(namespace, owner, "web-1")
    bare = phase_job(namespace, owner, "web-2")
    del bare["spec"]["template"]["spec"]["containers"][0]["resources"]
    for job in (admitted, bare):
        rest.create("Job", namespace, job)

    def pods_of(job: dict[str, Any]) -> list[dict[str, Any]]:
        name = job["metadata"]["name"]
        return rest.list("Pod", namespace, {"job-name": name})

    wait_for(lambda: pods_of(admitted), 60, what="the phase Job's pod to be admitted")

    def refused() -> bool:
        events = rest.list("Event", namespace)
        return any(
            e.get("reason") == "FailedCreate"
            and e["involvedObject"]["name"] == bare["metadata"]["name"]
            and "must specify" in e.get("message", "")
            for e in events
        )

    # The same Job without requests and limits: the quota refuses its pod.
    wait_for(refused, 60, what="the quota to refuse a pod without resources")
    assert not pods_of(bare)
