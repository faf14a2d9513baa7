"""Objects a GitOps controller keeps as Git says: detected, judged, and planned around."""

from __future__ import annotations

from typing import Any

import pytest

from weavergen.domain.decide.cycle_plan import approval_needed
from weavergen.domain.decide.explore import TargetContext, explore
from weavergen.domain.remedy.actions import key_of
from weavergen.domain.remedy.develop import develop
from weavergen.domain.remedy.gitops import Tracker, inferred, reverting, tracker_of

NS = "shop"


def deployment(labels: dict[str, str] | None = None, **annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": NS,
            "labels": labels or {},
            "annotations": annotations,
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "web:2"}]},
            },
        },
    }


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (
            deployment(**{"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:shop/web"}),
            Tracker("Argo CD", "Application", "argocd", "shop"),
        ),
        (
            deployment(**{"argocd.argoproj.io/tracking-id": "team_shop:apps/Deployment:shop/web"}),
            Tracker("Argo CD", "Application", "team", "shop"),
        ),
        (
            deployment({"app.kubernetes.io/instance": "shop"}),
            Tracker("Argo CD", "Application", "argocd", "shop"),
        ),
        (
            deployment(
                {
                    "kustomize.toolkit.fluxcd.io/name": "apps",
                    "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
                }
            ),
            Tracker("Flux", "Kustomization", "flux-system", "apps"),
        ),
        (
            deployment({"helm.toolkit.fluxcd.io/name": "web"}),
            Tracker("Flux", "HelmRelease", NS, "web"),
        ),
        (
            deployment(
                {"kustomize.toolkit.fluxcd.io/name": "apps"},
                **{"kustomize.toolkit.fluxcd.io/reconcile": "disabled"},
            ),
            None,
        ),
        (deployment(), None),
    ],
)
def test_the_tracker_is_read_from_the_objects_metadata(
    obj: dict[str, Any], expected: Tracker | None
) -> None:
    assert tracker_of(obj, "argocd") == expected


APP = Tracker("Argo CD", "Application", "argocd", "shop")


@pytest.mark.parametrize(
    ("tracker", "found", "readable", "guessed", "reverts"),
    [
        (APP, {"spec": {"syncPolicy": {"automated": {"selfHeal": True}}}}, True, False, True),
        (APP, {"spec": {"syncPolicy": {"automated": {"prune": True}}}}, True, False, False),
        (
            APP,
            {"spec": {"syncPolicy": {"automated": {"selfHeal": True, "enabled": False}}}},
            True,
            False,
            False,
        ),
        (APP, {"spec": {}}, True, False, False),
        # Fail closed: what cannot be read, or is tracked from elsewhere, is assumed to revert.
        (APP, None, False, False, True),
        (APP, None, True, False, True),
        # Helm's instance label with no such Application: not Argo CD's.
        (APP, None, True, True, False),
        (
            Tracker("Flux", "Kustomization", "f", "apps"),
            {"spec": {"interval": "5m"}},
            True,
            False,
            True,
        ),
        (
            Tracker("Flux", "Kustomization", "f", "apps"),
            {"spec": {"suspend": True}},
            True,
            False,
            False,
        ),
        (
            Tracker("Flux", "HelmRelease", "f", "web"),
            {"spec": {"driftDetection": {"mode": "enabled"}}},
            True,
            False,
            True,
        ),
        (
            Tracker("Flux", "HelmRelease", "f", "web"),
            {"spec": {"driftDetection": {"mode": "warn"}}},
            True,
            False,
            False,
        ),
    ],
)
def test_whether_a_tracker_reverts_changes_made_in_the_cluster(
    tracker: Tracker, found: dict[str, Any] | None, readable: bool, guessed: bool, reverts: bool
) -> None:
    verdict = reverting(tracker, found, readable=readable, guessed=guessed)
    assert (verdict is not None) is reverts
    if verdict is not None:
        assert tracker.describe() in verdict.why


def test_only_the_instance_label_is_a_guess() -> None:
    labelled = deployment({"app.kubernetes.io/instance": "shop"})
    annotated = deployment(**{"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:shop/web"})
    assert inferred(labelled, APP) and not inferred(annotated, APP)


def option(strategy: str) -> dict[str, Any]:
    return {"strategy": strategy, "successProbability": 0.8, "reasons": []}


def test_the_plan_names_what_self_heal_would_revert_and_a_restart_is_not_drift() -> None:
    web = deployment(**{"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:shop/web"})
    objects = {key_of(web): web}
    healed = reverting(
        APP,
        {"spec": {"syncPolicy": {"automated": {"selfHeal": True}}}},
        readable=True,
        guessed=False,
    )
    assert healed is not None
    reverted = {key_of(web): healed}
    restart = develop(option("agent-reset"), entropy_before=0.5, objects=objects, reverted=reverted)
    assert restart.gitops == []
    scale = develop(
        option("workflow-optimization"), entropy_before=0.5, objects=objects, reverted=reverted
    )
    assert scale.gitops == [
        {
            "object": f"Deployment/{NS}/web",
            "tracker": "Argo CD Application argocd/shop",
            "why": "Argo CD Application argocd/shop syncs automatically with self-heal on",
            "paths": ["spec.replicas"],
        }
    ]
    # The same change to an object nothing reverts is no drift.
    assert (
        develop(option("workflow-optimization"), entropy_before=0.5, objects=objects).gitops == []
    )
    # Nor are the replicas of a workload an HPA scales: Git leaves them to the autoscaler.
    scaler = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 4},
    }
    autoscaled = {**objects, key_of(scaler): scaler}
    undo = develop(
        option("clean-slate-rebuild"),
        entropy_before=0.5,
        objects=autoscaled,
        golden=autoscaled,
        reverted=reverted,
    )
    assert all("spec.replicas" not in note["paths"] for note in undo.gitops)


def test_enforce_waits_for_a_person_only_when_the_plan_drifts_from_git() -> None:
    drifting = {
        "gitops": [
            {
                "object": "Deployment/shop/web",
                "tracker": "Argo CD Application argocd/shop",
                "why": "",
                "paths": ["spec.replicas"],
            }
        ]
    }
    assert approval_needed("enforce", {"gitops": []}, dry_run=False) is None
    why = approval_needed("enforce", drifting, dry_run=False)
    assert why is not None and "Argo CD Application argocd/shop" in why and "status.gitOps" in why
    assert approval_needed("propose", {"gitops": []}, dry_run=False) == "propose mode"
    assert approval_needed("enforce", drifting, dry_run=True) is None
    assert approval_needed("observe", drifting, dry_run=False) is None


def test_explore_prefers_fixes_git_does_not_hold_and_skips_refused_actions() -> None:
    measurement = {
        "entropy_level": "high",
        "entropy_score": 0.7,
        "drift_indicators": [{"type": "error_rate", "severity": 0.8}],
    }
    plain = explore(measurement, TargetContext(config_changed=True))
    gitops = explore(
        measurement,
        TargetContext(
            config_changed=True,
            reverted_by=("Argo CD Application argocd/shop syncs automatically with self-heal on",),
        ),
    )
    risk = {o.strategy: o.risk for o in plain.options}
    risk_gitops = {o.strategy: o.risk for o in gitops.options}
    assert risk_gitops["partial-regeneration"] > risk["partial-regeneration"]
    assert risk_gitops["agent-reset"] == risk["agent-reset"]
    refused = explore(measurement, TargetContext(refused={"scale_to_zero": "no claim deleted"}))
    assert refused.excluded["clean-slate-rebuild"] == "not here: no claim deleted"
