"""A phase Job's pod runs as the chart runs the operator: restricted, read-only, non-root."""

from __future__ import annotations

from typing import Any

import yaml

from tests.helpers import REPO
from weavergen.api.keys import TURN_ANNOTATION
from weavergen.api.profiles import profile_for
from weavergen.config import OperatorConfig
from weavergen.k8s.jobs import job_manifest, job_pods_ended

POLICY = profile_for("web-service").phase_policy


def manifest(
    phase: str,
    *,
    receiver_url: str | None = None,
    config: OperatorConfig | None = None,
    ahead_of: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The Job of a web-service charter's phase."""
    assert POLICY is not None
    return job_manifest(
        namespace="shop",
        cycle="web-20261203-101500",
        owner={},
        phase=phase,
        policy=POLICY,
        receiver_url=receiver_url,
        config=config or OperatorConfig(),
        ahead_of=ahead_of,
    )


def test_a_phase_job_pod_has_the_charts_restricted_security_context_and_a_writable_tmp() -> None:
    values = yaml.safe_load((REPO / "charts" / "weavergen-operator" / "values.yaml").read_text())
    job = manifest("implement", receiver_url="http://10.244.1.7:4318")
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["securityContext"] == values["securityContext"]
    wanted = {k: v for k, v in values["podSecurityContext"].items() if k != "fsGroup"}
    assert pod["securityContext"] == wanted
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["WEAVERGEN_RECEIVER_URL"] == "http://10.244.1.7:4318"


def test_a_phase_jobs_image_pull_policy_account_and_resources_come_from_the_configuration() -> None:
    resources = {"requests": {"cpu": "50m"}, "limits": {"memory": "1Gi"}}
    config = OperatorConfig(
        image="registry.local/weavergen:2",
        image_pull_policy="Always",
        phase_service_account="sa",
        phase_resources=resources,
    )
    job = manifest("measure", config=config)
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert (container["image"], container["imagePullPolicy"]) == (
        "registry.local/weavergen:2",
        "Always",
    )
    assert pod["serviceAccountName"] == "sa"
    assert container["resources"] == resources
    # The chart's default is the operator's own.
    values = yaml.safe_load((REPO / "charts" / "weavergen-operator" / "values.yaml").read_text())
    assert values["phase"]["resources"] == OperatorConfig().phase_resources


def test_a_job_started_ahead_waits_for_its_turn_within_the_deadlines_before_it() -> None:
    """Started with Define and Measure, Explore's Job may wait out both their deadlines and
    still have its own; a Job started in its turn neither waits nor carries a turn."""
    assert POLICY is not None
    ahead = manifest("explore", ahead_of=("define", "measure"))
    in_turn = manifest("explore")
    assert ahead["metadata"]["annotations"] == {TURN_ANNOTATION: "waiting"}
    assert ahead["spec"]["activeDeadlineSeconds"] == sum(
        POLICY.deadline_seconds(p) for p in ("define", "measure", "explore")
    )
    assert ahead["spec"]["template"]["spec"]["containers"][0]["command"][-1] == "--wait-turn"
    assert "annotations" not in in_turn["metadata"]
    assert in_turn["spec"]["activeDeadlineSeconds"] == POLICY.deadline_seconds("explore")
    assert "--wait-turn" not in in_turn["spec"]["template"]["spec"]["containers"][0]["command"]


def _pod(owner_uid: str, phase: str | None) -> dict[str, object]:
    return {
        "metadata": {"ownerReferences": [{"kind": "Job", "uid": owner_uid}]},
        "status": {"phase": phase} if phase else {},
    }


def test_a_job_has_ended_once_its_pod_succeeded_and_none_of_its_pods_still_runs() -> None:
    job = {"metadata": {"uid": "u1"}}
    other = _pod("u2", "Running")
    assert job_pods_ended(job, [_pod("u1", "Succeeded"), other])
    assert not job_pods_ended(job, [other])  # no pod of its own yet
    assert not job_pods_ended(job, [_pod("u1", "Failed")])  # the Job may retry
    for still in ("Running", "Pending", None):
        assert not job_pods_ended(job, [_pod("u1", "Succeeded"), _pod("u1", still)])
