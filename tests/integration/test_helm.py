"""The Helm chart on the real API server: it lints, its objects pass a server-side dry run, and
an installed release's operator — a container of the locally built image, run by a real kubelet
under the chart's ServiceAccount token and security context — heals a workload through phase
Jobs under the chart's phase RBAC, which proves the chart's RBAC is enough; and what it must
not do is denied."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from kubernetes import client

from hack.localplane.plane import Plane, versions
from hack.localplane.release import CHART, Release
from tests.helpers import REPO
from tests.integration.conftest import await_status, wait_for
from tests.integration.test_operator import charter, corrupt_and_wait_for_the_cycle
from tests.scenario import GOOD, apply, config_map, deployment, put, spans
from weavergen.demo.manifests import IMAGE
from weavergen.domain.simulation.simulator import Faults
from weavergen.k8s.rest import Rest


def test_the_chart_lints_and_its_objects_pass_a_server_side_dry_run(
    plane: Plane, namespace: str
) -> None:
    plane.helm("lint", "--strict", str(CHART))
    rendered = plane.helm(
        "template",
        "dry",
        str(CHART),
        "--namespace",
        namespace,
        "--kube-version",
        versions()["KUBE_VERSION"],
        "--set",
        f"watchNamespaces={{{namespace}}}",
        "--set",
        "podDisruptionBudget.enabled=true",
    )
    kinds = sorted(d["kind"] for d in yaml.safe_load_all(rendered) if d)
    assert {"Deployment", "Service", "ServiceAccount", "Role", "RoleBinding"} <= set(kinds)
    dry = plane.kubectl("apply", "--dry-run=server", "-f", "-", stdin=rendered, check=False)
    assert dry.returncode == 0, dry.stderr
    # The GitOps example's PreSync hook Job and charter are admitted too.
    gitops = REPO / "deploy" / "argocd" / "gitops"
    for path in (gitops / "presync-gate.yaml", gitops / "charters" / "checkout.yaml"):
        (obj,) = [d for d in yaml.safe_load_all(path.read_text()) if d]
        obj["metadata"]["namespace"] = namespace
        done = plane.kubectl(
            "create", "--dry-run=server", "-f", "-", stdin=json.dumps(obj), check=False
        )
        assert done.returncode == 0, (path.name, done.stderr)


def test_the_sharded_chart_passes_a_server_side_dry_run(plane: Plane, namespace: str) -> None:
    """A StatefulSet of shards, its headless Service, the Collector's ConfigMap and the chart's
    Collector running it are what the API server admits."""
    rendered = plane.helm(
        "template", "shards", str(CHART), "--namespace", namespace,
        "--kube-version", versions()["KUBE_VERSION"],
        "--set", f"watchNamespaces={{{namespace}}}", "--set", "sharding.shards=3",
        "--set", "collector.enabled=true",
    )  # fmt: skip
    objects = [d for d in yaml.safe_load_all(rendered) if d]
    kinds = {d["kind"] for d in objects}
    assert {"StatefulSet", "Service", "ConfigMap"} <= kinds
    assert [d["metadata"]["name"] for d in objects if d["kind"] == "Deployment"] == [
        "shards-weavergen-operator-collector"
    ]
    dry = plane.kubectl("apply", "--dry-run=server", "-f", "-", stdin=rendered, check=False)
    assert dry.returncode == 0, dry.stderr


@pytest.mark.real_node
def test_an_installed_release_heals_a_workload_under_its_own_rbac(
    plane: Plane, api: client.ApiClient, namespace: str
) -> None:
    """On the real node: the operator's container (liveness probe, restricted security context,
    read-only root) and the phase Jobs' containers run from the image built from the
    Dockerfile."""
    rest = Rest(api)
    release = Release.beside(plane, namespace)
    try:
        release.install([namespace])
        account = f"system:serviceaccount:{release.namespace}:{release.fullname}"
        assert_denied_outside_its_scope(plane, account, namespace, release.namespace)
        heal_through_the_release(plane, rest, namespace, release)
    finally:
        release.remove()


def assert_denied_outside_its_scope(
    plane: Plane, account: str, namespace: str, system: str
) -> None:
    """The API server itself refuses what the chart does not grant."""

    def can(*args: str) -> str:
        done = plane.kubectl("auth", "can-i", "--as", account, *args, check=False)
        return done.stdout.strip()

    assert can("patch", "regenerationcharters/status", "-n", namespace) == "yes"
    assert can("create", "jobs", "-n", namespace) == "yes"
    assert can("get", "secrets", "-n", namespace) == "no"
    assert can("list", "secrets", "--all-namespaces") == "no"
    assert can("create", "deployments", "-n", namespace) == "no"
    assert can("delete", "deployments", "-n", namespace) == "no"
    assert can("patch", "configmaps", "-n", "default") == "no"  # not a watched namespace
    assert can("create", "rolebindings", "-n", namespace) == "no"
    refused = plane.kubectl("get", "secrets", "-n", namespace, "--as", account, check=False)
    assert refused.returncode != 0 and "forbidden" in refused.stderr.lower()
    phase = f"system:serviceaccount:{namespace}:weavergen-phase"
    assert plane.kubectl("auth", "can-i", "--as", phase, "get", "secrets", "-n", namespace,
                         check=False).stdout.strip() == "no"  # fmt: skip
    assert plane.kubectl("auth", "can-i", "--as", phase, "update", "deployments", "-n", system,
                         check=False).stdout.strip() == "no"  # fmt: skip


def heal_through_the_release(plane: Plane, rest: Rest, namespace: str, release: Release) -> None:
    (pod,) = release.pods()
    assert pod["status"]["phase"] == "Running"
    assert pod["spec"]["serviceAccountName"] == release.fullname
    assert_confined(pod)
    apply(plane, namespace, deployment("web", IMAGE), config_map("web-config", GOOD))
    put(rest, namespace, config_map("web-baseline", {"spans.json": spans(Faults(), 1)}))
    put(rest, namespace, config_map("web-spans", {"spans.json": spans(Faults(), 2)}))
    plane.kubectl("rollout", "status", "deploy/web", "-n", namespace, "--timeout=60s")
    plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(charter(executor="job")))
    where = f"the release's operator pod (kubectl logs -n {release.namespace} {pod_name(pod)})"
    await_status(
        rest,
        namespace,
        "RegenerationCharter",
        "web",
        lambda s: s.get("entropy", {}).get("level") == "low",
        timeout=90,
        what=f"a first measurement by {where}",
    )
    wait_for(lambda: rest.get("ConfigMap", namespace, "web-golden"), 60, what="golden snapshot")
    name, final = corrupt_and_wait_for_the_cycle(rest, namespace, Where(where))
    assert final["phase"] == "Succeeded", final.get("message")
    jobs = rest.list("Job", namespace)
    assert {j["spec"]["template"]["spec"]["serviceAccountName"] for j in jobs} == {
        "weavergen-phase"
    }
    assert {j["spec"]["template"]["spec"]["containers"][0]["image"] for j in jobs} == {IMAGE}
    assert len(jobs) == 5 and name
    job_pods = rest.list("Pod", namespace, {"app.kubernetes.io/name": "weavergen-phase"})
    assert job_pods
    for job_pod in job_pods:
        assert_confined(job_pod)


def pod_name(pod: dict[str, Any]) -> str:
    return str(pod["metadata"]["name"])


def assert_confined(pod: dict[str, Any]) -> None:
    """containerd ran the pod's first container from a local image, and the pod asked to be
    confined: non-root, read-only root, no capabilities (that the kernel holds a container
    to this is test_node's)."""
    container = pod["spec"]["containers"][0]
    status = pod["status"]["containerStatuses"][0]
    assert status["imageID"].startswith("sha256:") or "@sha256:" in status["imageID"], status
    assert status["containerID"].startswith("containerd://"), status
    confined = {**pod["spec"]["securityContext"], **container["securityContext"]}
    assert confined["runAsNonRoot"] and confined["readOnlyRootFilesystem"], confined
    assert confined["capabilities"] == {"drop": ["ALL"]}, confined


class Where:
    """Stands in for an OperatorProcess in failure messages: where the pod's logs are."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text
