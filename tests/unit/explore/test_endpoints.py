"""Which endpoints still route to pods going away (pure)."""

from __future__ import annotations

from typing import Any

from weavergen.domain.remedy.endpoints import selects, stale_endpoints


def service(selector: dict[str, str] | None) -> dict[str, Any]:
    return {"spec": {"selector": selector} if selector is not None else {}}


def test_a_service_routes_to_a_template_only_when_its_whole_selector_matches() -> None:
    labels = {"app": "shop", "tier": "web"}
    assert selects(service({"app": "shop"}), labels)
    assert not selects(service({"app": "shop", "track": "canary"}), labels)
    assert not selects(service({"app": "cart"}), labels)
    assert not selects(service(None), labels), "no selector: someone else lists its endpoints"


def endpoint(pod: str, ready: bool | None) -> dict[str, Any]:
    conditions = {} if ready is None else {"ready": ready}
    return {"conditions": conditions, "targetRef": {"kind": "Pod", "name": pod}}


def pod(name: str, *, terminating: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
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
