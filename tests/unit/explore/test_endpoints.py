"""Which endpoints still route to pods going away (pure)."""

from __future__ import annotations

from typing import Any

from weavergen.domain.remedy.endpoints import selects, stale_endpoints


def service(selector: dict[str, str] | None, cluster_ip: str = "10.96.0.7") -> dict[str, Any]:
    spec: dict[str, Any] = {"clusterIP": cluster_ip}
    if selector is not None:
        spec["selector"] = selector
    return {"spec": spec}


def test_a_service_routes_to_a_pod_only_when_its_whole_selector_matches() -> None:
    labels = {"app": "shop", "tier": "web", "rollouts-pod-template-hash": "5d8f"}
    assert selects(service({"app": "shop"}), labels)
    assert selects(service({"app": "shop", "rollouts-pod-template-hash": "5d8f"}), labels)
    assert not selects(service({"app": "shop", "rollouts-pod-template-hash": "77c9"}), labels)
    assert not selects(service({"app": "cart"}), labels)
    assert not selects(service(None), labels), "no selector: someone else lists its endpoints"
    assert not selects(service({"app": "shop"}, "None"), labels), "headless: no proxy"


def endpoint(pod: str, ready: bool | None) -> dict[str, Any]:
    conditions = {} if ready is None else {"ready": ready}
    return {"conditions": conditions, "targetRef": {"kind": "Pod", "name": pod}}


def pod(name: str, *, terminating: bool = False, uid: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "uid": uid or f"uid-{name}"}
    if terminating:
        meta["deletionTimestamp"] = "2026-12-04T19:00:00Z"
    return {"metadata": meta}


def test_ready_endpoints_on_terminating_or_gone_pods_are_stale() -> None:
    slices = [
        {
            "metadata": {"name": "shop-abc"},
            "endpoints": [
                endpoint("new", True),
                endpoint("old", True),  # terminating, not yet marked
                endpoint("older", False),  # terminating, marked not ready
                endpoint("gone", None),  # unset ready means ready
                {"conditions": {"ready": True}},  # no pod behind it: not a workload's
            ],
        }
    ]
    pods = [pod("new"), pod("old", terminating=True), pod("older", terminating=True)]
    assert stale_endpoints(slices, pods) == ["shop-abc/gone", "shop-abc/old"]
    assert stale_endpoints(slices, [*pods, pod("gone")]) == ["shop-abc/old"]
    assert stale_endpoints([], pods) == []


def test_an_endpoint_on_a_pod_replaced_under_the_same_name_is_stale_by_its_uid() -> None:
    on_old = {"conditions": {"ready": True}, "targetRef": {"kind": "Pod", "name": "db-0"}}
    on_old["targetRef"]["uid"] = "uid-before"
    slices = [{"metadata": {"name": "db-x"}, "endpoints": [on_old]}]
    assert stale_endpoints(slices, [pod("db-0", uid="uid-after")]) == ["db-x/db-0"]
    assert stale_endpoints(slices, [pod("db-0", uid="uid-before")]) == []
