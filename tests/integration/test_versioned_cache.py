"""Derived values kept per object version, against the API server's metadata-only reads."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from tests.scenario import config_map, put
from weavergen.k8s.rest import Rest
from weavergen.k8s.versioned import VersionedCache


def test_a_value_is_derived_again_only_when_the_object_changes(
    api: client.ApiClient, namespace: str
) -> None:
    rest = Rest(api)
    derived: list[str] = []

    def derive(obj: dict[str, Any]) -> str:
        value = str(obj["data"]["k"])
        derived.append(value)
        return value.upper()

    cache: VersionedCache[str] = VersionedCache(limit=4)

    def read() -> str | None:
        return cache.get(rest, "ConfigMap", namespace, "spans", purpose="k", derive=derive)

    assert read() is None  # no such object: nothing derived
    put(rest, namespace, config_map("spans", {"k": "one"}))
    assert [read(), read(), read()] == ["ONE"] * 3
    assert derived == ["one"]  # derived once: the later reads only saw the same version
    put(rest, namespace, config_map("spans", {"k": "two"}))
    assert read() == "TWO"
    rest.delete("ConfigMap", namespace, "spans")
    put(rest, namespace, config_map("spans", {"k": "two"}))  # recreated: a new uid
    assert read() == "TWO"
    assert derived == ["one", "two", "two"]
    head = rest.metadata("ConfigMap", namespace, "spans")
    assert head is not None
    assert head["kind"] == "PartialObjectMetadata"
    assert "data" not in head
