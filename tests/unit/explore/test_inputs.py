"""What workloads consume, and which of it changed outside the charter's targets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from weavergen.domain.remedy.inputs import (
    ConsumedInput,
    changed_inputs,
    consumed_inputs,
    fingerprint,
    image_drift,
)

SINCE = datetime(2026, 12, 3, 12, 0, 0)


def deployment(**pod: Any) -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {"name": "api"},
        "spec": {"replicas": 2, "template": {"metadata": {}, "spec": pod}},
        "status": {"readyReplicas": 2},
    }


API = deployment(
    initContainers=[{"name": "init", "envFrom": [{"secretRef": {"name": "db-credentials"}}]}],
    containers=[
        {
            "name": "app",
            "image": "api:1.2",
            "envFrom": [{"configMapRef": {"name": "api-runtime"}}],
            "env": [
                {"name": "PLAIN", "value": "1"},
                {"name": "FLAG", "valueFrom": {"configMapKeyRef": {"name": "flags", "key": "x"}}},
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "token", "key": "t"}}},
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            ],
        }
    ],
    volumes=[
        {"name": "conf", "configMap": {"name": "api-config"}},
        {"name": "tls", "secret": {"secretName": "api-tls"}},
        {"name": "empty", "emptyDir": {}},
        {
            "name": "bundle",
            "projected": {
                "sources": [
                    {"configMap": {"name": "ca-bundle"}},
                    {"secret": {"name": "extra"}},
                    {"serviceAccountToken": {"path": "token"}},
                ]
            },
        },
    ],
)


def test_every_way_a_pod_consumes_a_config_map_or_secret_is_found() -> None:
    found = {(i.kind, i.name): i.via for i in consumed_inputs([API])}
    assert found == {
        ("ConfigMap", "api-runtime"): "envFrom of Deployment/api",
        ("ConfigMap", "flags"): "env FLAG of Deployment/api",
        ("ConfigMap", "api-config"): "volume conf of Deployment/api",
        ("ConfigMap", "ca-bundle"): "volume bundle of Deployment/api",
        ("Secret", "db-credentials"): "envFrom of Deployment/api",
        ("Secret", "token"): "env TOKEN of Deployment/api",
        ("Secret", "api-tls"): "volume tls of Deployment/api",
        ("Secret", "extra"): "volume bundle of Deployment/api",
    }


def written(at: str, created: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    return {
        "metadata": {
            "creationTimestamp": created,
            "managedFields": [{"manager": "kubectl", "time": "2026-02-01T00:00:00Z"}, {"time": at}],
        }
    }


def test_changed_inputs_are_those_written_since_outside_the_targets() -> None:
    consumed = [
        ConsumedInput("ConfigMap", "api-config", "volume conf of Deployment/api"),
        ConsumedInput("ConfigMap", "api-runtime", "envFrom of Deployment/api"),
        ConsumedInput("ConfigMap", "flags", "env FLAG of Deployment/api"),
        ConsumedInput("ConfigMap", "gone", "envFrom of Deployment/api"),
        ConsumedInput("Secret", "token", "env TOKEN of Deployment/api"),
    ]
    metadata = {
        ("ConfigMap", "api-config"): written("2026-12-03T12:05:00Z"),  # a target: its own
        ("ConfigMap", "api-runtime"): written("2026-12-03T12:01:00Z"),
        ("ConfigMap", "flags"): written("2026-12-03T11:00:00Z"),  # before: not news
        ("ConfigMap", "gone"): None,
    }
    assert changed_inputs(consumed, metadata, targets=["api-config"], since=SINCE) == [
        "ConfigMap api-runtime (envFrom of Deployment/api), changed 2026-12-03T12:01:00Z",
        "ConfigMap gone (envFrom of Deployment/api), missing",
        "Secret token (env TOKEN of Deployment/api), not inspected: no permission to read "
        "its metadata",
    ]


def test_an_image_re_pushed_under_its_tag_shows_as_two_digests() -> None:
    def pod(digest: str, image: str = "api:1.2") -> dict[str, Any]:
        return {
            "status": {
                "containerStatuses": [{"image": image, "imageID": f"docker.io/api@sha256:{digest}"}]
            }
        }

    assert image_drift([pod("aa"), pod("aa")]) == []
    assert image_drift([pod("aa"), pod("bb")]) == [
        "image api:1.2 (its tag runs as 2 digests: re-pushed)"
    ]
    pinned = "api@sha256:aa"  # an image pinned by digest cannot drift
    assert image_drift([pod("aa", pinned), pod("bb", pinned)]) == []


def test_the_fingerprint_changes_with_an_edit_not_with_what_controllers_write() -> None:
    config = {"kind": "ConfigMap", "metadata": {"name": "api-runtime"}, "data": {"THREADS": "8"}}
    base = fingerprint([API, config])
    assert base == fingerprint([config, API])
    controllers = {
        **API,
        "status": {"readyReplicas": 1},
        "metadata": {"name": "api", "resourceVersion": "9"},
    }
    scaled = {**controllers, "spec": {**API["spec"], "replicas": 5}}  # an autoscaler's
    assert fingerprint([scaled, config]) == base
    edited = {**config, "data": {"THREADS": "1"}}
    assert fingerprint([API, edited]) != base
    template = deployment(containers=[{"name": "app", "image": "api:1.3"}])
    assert fingerprint([template, config]) != base
