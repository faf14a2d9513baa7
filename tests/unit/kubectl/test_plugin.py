"""The plugin's arguments, its refusals, the annotations it writes, its kubeconfig handling and
the watch loop."""

from __future__ import annotations

import io
import json
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO
from tests.unit.kubectl.samples import cycle, wire
from weavergen.api.keys import (
    ABORT_ANNOTATION,
    APPROVAL_ANNOTATION,
    REJECT_ANNOTATION,
    REQUESTED_BY_ANNOTATION,
)
from weavergen.cli.common import UsageError
from weavergen.cli.kubectl import main, parse_args
from weavergen.cli.kubectl.actions import ACTIONS, already, annotation_patch, refusal
from weavergen.cli.kubectl.cluster import Kube, forbidden_message, resource_name
from weavergen.cli.kubectl.commands import CLEAR, show_changes


def test_kubectls_flags_are_taken_before_or_after_the_command() -> None:
    before = parse_args(["-n", "shop", "--context", "prod", "get", "cycles", "-o", "wide"])
    after = parse_args(["get", "rcy", "-n", "shop", "--context", "prod", "-A"])
    assert (before.namespace, before.context, before.kind, before.output) == (
        "shop",
        "prod",
        "cycles",
        "wide",
    )
    assert (after.namespace, after.context, after.kind, after.all_namespaces) == (
        "shop",
        "prod",
        "rcy",
        True,
    )
    plain = parse_args(["why", "c1"])
    assert (plain.namespace, plain.context, plain.kubeconfig, plain.cycle) == (
        None,
        None,
        None,
        "c1",
    )


def test_only_reject_and_abort_take_a_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_args(["abort", "c1", "--reason", "wrong fix"]).reason == "wrong fix"
    assert parse_args(["reject", "c1", "--reason", "not now"]).reason == "not now"
    with pytest.raises(SystemExit) as exited:
        parse_args(["approve", "c1", "--reason", "x"])
    assert exited.value.code == 2
    assert "unrecognized arguments: --reason" in capsys.readouterr().err


def test_a_bad_output_format_or_kind_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["get", "-o", "xml"], ["get", "pods"], ["watch"]):
        with pytest.raises(SystemExit):
            parse_args(argv)
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("verb", "phase", "message"),
    [
        (
            "approve",
            "Succeeded",
            "cannot approve cycle checkout-7f3c9: it is Succeeded: it has finished; there is "
            "nothing to approve",
        ),
        (
            "approve",
            "Measuring",
            "cannot approve cycle checkout-7f3c9: it is Measuring: it has no plan to approve yet; "
            "wait for AwaitingApproval (kubectl weavergen watch) and read the plan with kubectl "
            "weavergen why",
        ),
        (
            "reject",
            "Implementing",
            "cannot reject cycle checkout-7f3c9: it is Implementing: its plan is being carried "
            "out already (abort stops it)",
        ),
        (
            "abort",
            "RollingBack",
            "cannot abort cycle checkout-7f3c9: it is RollingBack: it is rolling back already; "
            "let it restore the snapshot",
        ),
        (
            "abort",
            "Failed",
            "cannot abort cycle checkout-7f3c9: it is Failed: it has finished; there is nothing "
            "to abort",
        ),
        (
            "retry",
            "Succeeded",
            "cannot retry cycle checkout-7f3c9: it is Succeeded: only a Failed, RolledBack or "
            "Aborted cycle can be retried",
        ),
    ],
)
def test_an_action_that_means_nothing_in_the_phase_is_refused_with_why(
    verb: str, phase: str, message: str
) -> None:
    assert refusal(ACTIONS[verb], cycle(phase)) == message


@pytest.mark.parametrize(
    ("verb", "phase"),
    [
        ("approve", "AwaitingApproval"),
        ("reject", "AwaitingApproval"),
        ("abort", "Implementing"),
        ("abort", "Measuring"),
        ("retry", "RolledBack"),
        ("retry", "Aborted"),
        ("retry", "Failed"),
    ],
)
def test_an_action_that_means_something_is_allowed(verb: str, phase: str) -> None:
    assert refusal(ACTIONS[verb], cycle(phase)) is None


def test_an_answered_plan_cannot_get_the_other_answer_and_a_retried_cycle_no_second_retry() -> None:
    approved = cycle("AwaitingApproval", **{APPROVAL_ANNOTATION: "true"})
    assert refusal(ACTIONS["reject"], approved) == (
        "cycle checkout-7f3c9 was approved already: reject cannot undo it"
    )
    assert already(ACTIONS["approve"], approved) and not already(ACTIONS["abort"], approved)
    rejected = cycle("AwaitingApproval", **{REJECT_ANNOTATION: "no"})
    assert refusal(ACTIONS["approve"], rejected) == (
        "cycle checkout-7f3c9 was rejected already: approve cannot undo it"
    )
    retried = cycle("Failed")
    assert retried.status is not None
    retried.status.retried_by = "checkout-8a1b2"
    assert refusal(ACTIONS["retry"], retried) == (
        "cycle checkout-7f3c9 was retried already, by cycle checkout-8a1b2"
    )


def test_the_patch_sets_the_annotation_who_asked_and_the_version_judged() -> None:
    assert annotation_patch(
        ACTIONS["abort"], reason="wrong fix", user="alice", resource_version="4711"
    ) == {
        "metadata": {
            "annotations": {ABORT_ANNOTATION: "wrong fix", REQUESTED_BY_ANNOTATION: "alice"},
            "resourceVersion": "4711",
        }
    }
    assert annotation_patch(
        ACTIONS["approve"], reason="ignored", user=None, resource_version=None
    ) == {"metadata": {"annotations": {APPROVAL_ANNOTATION: "true"}}}
    assert (
        annotation_patch(ACTIONS["reject"], reason=None, user="bob", resource_version=None)[
            "metadata"
        ]["annotations"][REJECT_ANNOTATION]
        == "true"
    )


def test_a_403_names_the_verb_and_the_resource_refused() -> None:
    assert resource_name("RegenerationCycle") == "regenerationcycles.regeneration.weavergen.io"
    assert resource_name("ConfigMap") == "configmaps"
    assert resource_name("Job") == "jobs.batch"
    assert forbidden_message("patch", "RegenerationCycle", "shop", "alice") == (
        "forbidden: user 'alice' may not patch regenerationcycles.regeneration.weavergen.io in "
        "namespace 'shop' (ask for an RBAC Role granting 'patch' on it)"
    )
    assert "in all namespaces" in forbidden_message("list", "RegenerationCharter", None, None)


def kubeconfig(path: Path) -> Path:
    user = {"token": "not-a-real-token"}
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "alice", "user": user}, {"name": "bob", "user": user}],
                "contexts": [
                    {
                        "name": "dev",
                        "context": {"cluster": "c", "user": "alice", "namespace": "shop"},
                    },
                    {"name": "prod", "context": {"cluster": "c", "user": "bob"}},
                ],
                "current-context": "dev",
            }
        )
    )
    return path


def test_the_kubeconfigs_current_context_gives_the_user_and_namespace(tmp_path: Path) -> None:
    current = Kube(str(kubeconfig(tmp_path / "config")))
    assert (current.context, current.user, current.namespace) == ("dev", "alice", "shop")
    other = Kube(str(tmp_path / "config"), context="prod")
    assert (other.context, other.user, other.namespace) == ("prod", "bob", "default")
    with pytest.raises(
        UsageError, match=r"context 'staging' is not in the kubeconfig \(contexts: dev, prod\)"
    ):
        Kube(str(tmp_path / "config"), context="staging")
    with pytest.raises(UsageError, match="no usable kubeconfig"):
        Kube(str(tmp_path / "absent"))


def test_an_unreachable_api_server_is_one_line_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = kubeconfig(tmp_path / "config")
    assert main(["get", "--kubeconfig", str(config)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach the API server https://127.0.0.1:1") and (
        err.count("\n") == 1
    )


def test_watch_draws_a_fresh_screen_per_change_and_stops_at_a_final_cycle() -> None:
    versions = [wire(cycle("Implementing")), wire(cycle("RolledBack")), wire(cycle("Failed"))]
    out = io.StringIO()
    code = show_changes(
        iter(versions), lambda o: f"[{o['status']['phase']}]\n", out, clear=True, until_done=True
    )
    assert code == 1
    assert out.getvalue() == f"{CLEAR}[Implementing]\n{CLEAR}[RolledBack]\n"


def test_watch_without_until_done_keeps_going_and_a_success_exits_zero() -> None:
    versions = [wire(cycle("Implementing")), wire(cycle("Succeeded")), wire(cycle("Succeeded"))]
    out = io.StringIO()
    render = lambda o: f"{o['status']['phase']}\n"  # noqa: E731
    assert show_changes(iter(versions), render, out, clear=False, until_done=False) == 0
    # The last version shows as the one before it: no screen drawn again for nothing.
    assert out.getvalue() == "\nImplementing\n\nSucceeded\n"
    assert (
        show_changes(iter(versions), lambda o: "", io.StringIO(), clear=False, until_done=True) == 0
    )


def test_the_krew_manifest_runs_the_executable_the_package_installs() -> None:
    manifest = yaml.safe_load((REPO / "deploy" / "krew" / "weavergen.yaml").read_text())
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert manifest["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2"
    assert manifest["kind"] == "Plugin" and manifest["metadata"]["name"] == "weavergen"
    (platform,) = manifest["spec"]["platforms"]
    assert platform["bin"] == "kubectl-weavergen"
    assert scripts[platform["bin"]] == "weavergen.cli.kubectl:main"
    assert manifest["spec"]["shortDescription"] and manifest["spec"]["description"]
