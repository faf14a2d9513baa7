"""Snapshot integrity and Secret confidentiality on the local plane (issue 10, items 5 and 7).

A snapshot is the only way back after a failed fix, so a restore must use exactly the snapshot
the cycle took, whole, or nothing: a chunk edited, missing or replaced is refused before any
target is written, and the refusal is visible (cycle condition, Event). Secrets a charter names
are referenced only: their values never reach snapshots, status, Events, logs or spans.
"""

from __future__ import annotations

import base64
import gzip
import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from hack.localplane.plane import Plane
from tests.integration.conftest import await_status, wait_for
from tests.integration.test_observability import SpanSink, traced_operator
from tests.integration.test_operator import charter, corrupt_and_wait_for_the_cycle
from tests.scenario import (
    BROKEN,
    GOOD,
    OperatorProcess,
    apply,
    condition,
    config_map,
    deployment,
    put,
    spans,
    status,
)
from weavergen.api import keys
from weavergen.api.charter import RegenerationCharterSpec
from weavergen.api.profiles import profile_for
from weavergen.domain.decide.cycle_plan import CycleDecision
from weavergen.domain.remedy.actions import key_of
from weavergen.domain.remedy.snapshot import Snapshot, SnapshotIntegrityError, fingerprints
from weavergen.domain.simulation.simulator import Faults
from weavergen.k8s import cycles, snapshots
from weavergen.k8s.cluster_target import ClusterTarget
from weavergen.k8s.jobs import journal_name, snapshot_name
from weavergen.k8s.rest import Rest
from weavergen.k8s.targets import Targets
from weavergen.phases.operators import Operators

CYCLE = "web-c1"


def criteria() -> Any:
    found = profile_for("web-service").success_criteria
    assert found is not None
    return found


def versions(rest: Rest, namespace: str, objects: dict[str, Any]) -> dict[str, str]:
    """What a write of an object's content changes: a workload's generation (its controller's
    status updates leave that alone), a ConfigMap's resourceVersion."""
    out = {}
    for key in objects:
        kind, _, name = key.split("/")
        meta = (rest.get(kind, namespace, name) or {})["metadata"]
        out[key] = str(meta.get("generation") or meta["resourceVersion"])
    return out


def recreate(rest: Rest, namespace: str, chunk: dict[str, Any], data: dict[str, str]) -> None:
    """Stored chunks are immutable: an edit is a delete and a create with the same metadata."""
    meta = chunk["metadata"]
    rest.delete("ConfigMap", namespace, meta["name"])
    rest.create(
        "ConfigMap",
        namespace,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "immutable": True,
            "metadata": {
                k: meta[k]
                for k in ("name", "namespace", "labels", "annotations", "ownerReferences")
                if k in meta
            },
            "data": data,
        },
    )


# ---------------------------------------------------------------------------------------------
# A tampered snapshot is refused for the rollback, visibly
# ---------------------------------------------------------------------------------------------


def degraded_target_with_a_cycle(
    plane: Plane, rest: Rest, namespace: str
) -> RegenerationCharterSpec:
    """A healthy target with its known-good snapshot, then corrupted for good (nothing heals the
    spans, so a fix cannot meet the success criteria), its charter, and a cycle for it."""
    apply(plane, namespace, deployment("web"), config_map("web-config", GOOD))
    put(rest, namespace, config_map("web-baseline", {"spans.json": spans(Faults(), 1)}))
    put(rest, namespace, config_map("web-spans", {"spans.json": spans(Faults(), 2)}))
    plane.kubectl("rollout", "status", "deploy/web", "-n", namespace, "--timeout=60s")
    body = charter()
    body["metadata"]["namespace"] = namespace
    rest.create("RegenerationCharter", namespace, body)
    spec = RegenerationCharterSpec.model_validate(body["spec"])
    ClusterTarget(rest, namespace, "web", spec).store_golden()
    put(rest, namespace, config_map("web-config", BROKEN))
    put(rest, namespace, config_map("web-spans", {"spans.json": spans(Faults(error_rate=0.3), 3)}))
    rest.create(
        "RegenerationCycle",
        namespace,
        {
            "apiVersion": "regeneration.weavergen.io/v1alpha1",
            "kind": "RegenerationCycle",
            "metadata": {"name": CYCLE, "namespace": namespace},
            "spec": {"charterRef": {"name": "web"}, "reason": "snapshot integrity test"},
        },
    )
    return spec


def test_a_tampered_snapshot_is_refused_for_the_cycles_rollback(
    plane: Plane, rest: Rest, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator dies right after Implement (which did not meet the criteria); meanwhile
    someone edits the stored snapshot. The restarted operator's rollback reads the snapshot back,
    finds that it no longer hashes to its recorded SHA-256, and refuses it: no target is written,
    the cycle ends Failed with a condition and a Warning Event naming the integrity failure."""
    spec = degraded_target_with_a_cycle(plane, rest, namespace)

    class OperatorDied(Exception):
        pass

    real_post_event = cycles.post_event

    def dies_after_implement(*args: Any, **kwargs: Any) -> None:
        real_post_event(*args, **kwargs)
        if args[2] == "Implemented":  # the step is saved: the next operator resumes after it
            raise OperatorDied

    def reconcile() -> CycleDecision | None:
        obj = rest.get("RegenerationCycle", namespace, CYCLE) or {}
        return cycles.CycleReconciler(rest).reconcile(
            namespace, CYCLE, obj["metadata"], obj["spec"], obj.get("status") or {}
        )

    with monkeypatch.context() as patched:
        patched.setattr(cycles, "post_event", dies_after_implement)
        with pytest.raises(OperatorDied):
            reconcile()

    # Someone makes the stored snapshot say that the corrupted value was the good one.
    stored = rest.get("ConfigMap", namespace, snapshot_name(CYCLE))
    assert stored is not None, "Implement stored no snapshot"
    objects = json.loads(stored["data"][snapshots.DATA_KEY])
    config_key = f"ConfigMap/{namespace}/web-config"
    assert config_key in objects
    objects[config_key]["data"]["timeout_ms"] = "999999"
    recreate(rest, namespace, stored, {snapshots.DATA_KEY: json.dumps(objects)})
    with pytest.raises(SnapshotIntegrityError, match="refused for restore"):
        snapshots.load(rest, namespace, snapshot_name(CYCLE))

    targets = ClusterTarget(rest, namespace, "web", spec).objects()
    before = versions(rest, namespace, targets)
    writes: list[str] = []
    real_write = Targets.write

    def recorded_write(self: Targets, obj: dict[str, Any], attempts: int = 5) -> None:
        writes.append(key_of(obj))
        real_write(self, obj, attempts)

    with monkeypatch.context() as patched:
        patched.setattr(Targets, "write", recorded_write)
        final = reconcile()
    assert final is not None, "the cycle did not finish after the rollback"

    # Nothing was written to the targets, and the forged value is nowhere.
    assert writes == []
    assert versions(rest, namespace, targets) == before
    assert (rest.get("ConfigMap", namespace, "web-config") or {})["data"] == BROKEN

    # The cycle says why, in its phase, message and Failed condition.
    recorded = status(rest, namespace, "RegenerationCycle", CYCLE)
    assert recorded["phase"] == "Failed", recorded.get("message")
    for text in (
        recorded["message"],
        next(c["message"] for c in recorded["conditions"] if c["type"] == "Failed"),
    ):
        assert "SnapshotIntegrityError" in text and "refused for restore" in text, text
    assert condition(recorded, "Failed") == "True"
    failed = next(c for c in recorded["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "RollbackFailed"

    # A Warning Event on the cycle says the same to `kubectl describe`.
    events = [
        e
        for e in rest.list("Event", namespace)
        if e["involvedObject"]["name"] == CYCLE and e["type"] == "Warning"
    ]
    assert any("refused for restore" in e["message"] for e in events), events
    charter_status = await_status(
        rest,
        namespace,
        "RegenerationCharter",
        "web",
        lambda s: s.get("lastCycle"),
        timeout=10,
        what="the charter to record the cycle",
    )
    assert charter_status["lastCycle"]["outcome"] == "Failed"


# ---------------------------------------------------------------------------------------------
# Snapshots over 1 MiB: chunked, restored whole, refused whole
# ---------------------------------------------------------------------------------------------


def big_data(seed: int) -> tuple[dict[str, str], dict[str, str]]:
    """About 880 kB of data and binaryData: one ConfigMap stays under the 1 MiB object limit."""
    rng = random.Random(seed)
    text = base64.b64encode(rng.randbytes(300_000)).decode()  # 400 000 characters
    data = {
        "config.txt": text,
        "unicode.txt": ("ünïcødé ✓ 日本語\n" * 4_000)[:60_000],
        "small": str(seed),
    }
    binary = {"blob.bin": base64.b64encode(rng.randbytes(300_000)).decode()}
    return data, binary


@pytest.fixture
def big_target(plane: Plane, rest: Rest, namespace: str) -> ClusterTarget:
    """A Deployment (no replicas: nothing to run) and three ConfigMaps of ~880 kB each."""
    web = deployment("web")
    web["spec"]["replicas"] = 0
    apply(plane, namespace, web)
    names = [f"big-{i}" for i in range(3)]
    for i, name in enumerate(names):
        data, binary = big_data(i)
        # Not kubectl apply: its last-applied annotation would double the object past 1 MiB.
        rest.create(
            "ConfigMap",
            namespace,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name},
                "data": data,
                "binaryData": binary,
            },
        )
    spec = RegenerationCharterSpec.model_validate(
        {
            "systemId": "big",
            "systemType": "web-service",
            "target": {"workloads": [{"name": "web"}], "configMaps": names},
            "telemetry": {
                "serviceName": "web",
                "source": "configMap",
                "configMap": {"name": "web-spans", "key": "spans.json"},
            },
        }
    )
    return ClusterTarget(
        rest,
        namespace,
        "big",
        spec,
        snapshot_name=snapshot_name(CYCLE),
        journal_name=journal_name(CYCLE),
        sleep=lambda _: None,
    )


def change_every_target(rest: Rest, target: ClusterTarget, round_: int) -> None:
    """Changes as a cycle's own actions make them: recorded in its journal."""
    for live in target.objects().values():
        if live["kind"] == "ConfigMap":
            data = dict(live["data"])
            data["config.txt"] = f"changed {round_}"
            data.pop("unicode.txt", None)
            data[f"added-{round_}"] = "x"
            target.targets.write({**live, "data": data, "binaryData": {"blob.bin": "AAAA"}})
        else:
            live["spec"]["template"]["spec"]["containers"][0]["image"] = f"app:changed-{round_}"
            target.targets.write(live)
    target.record_writes(fingerprints(target.objects()))


def config_maps(target: ClusterTarget) -> dict[str, tuple[Any, Any]]:
    return {
        key: (obj.get("data"), obj.get("binaryData"))
        for key, obj in target.objects().items()
        if obj["kind"] == "ConfigMap"
    }


def test_a_snapshot_over_1_mib_is_chunked_and_restored_whole_or_refused_whole(
    rest: Rest, namespace: str, big_target: ClusterTarget
) -> None:
    target = big_target
    original = config_maps(target)
    taking = Operators(target, criteria())
    taken = taking.snapshot_targets({}, {})
    assert taken["snapshot_objects"] == 4
    sha = taken["snapshot_sha256"]
    name = snapshot_name(CYCLE)
    chunks = rest.list("ConfigMap", namespace, {keys.SNAPSHOT_LABEL: name})
    assert taking.snapshot is not None
    size = len(json.dumps(taking.snapshot.objects, sort_keys=True, separators=(",", ":")))
    assert size > int(2.5 * 1024 * 1024)
    assert len(chunks) == -(-size // snapshots.CHUNK_BYTES) >= 3
    for chunk in chunks:
        annotations = chunk["metadata"]["annotations"]
        assert annotations[keys.SHA_ANNOTATION] == sha
        assert annotations[keys.CHUNKS_ANNOTATION] == str(len(chunks))
        assert chunk["immutable"] is True
        assert len(json.dumps(chunk)) < 1024 * 1024

    # Every target changed, then restored by an operator that has only the stored chunks.
    change_every_target(rest, target, 1)
    assert Snapshot.take(target.objects()).sha256 != sha
    data = {"snapshot_sha256": sha, "snapshot_objects": 4}
    restarted = Operators(target, criteria())
    restored = restarted.restore_snapshot({}, data)
    assert restored["restored"] is True
    assert restored["rollback"]["sha256"] == sha and restored["rollback"]["verified"] is True
    assert len(restored["rollback"]["restoredObjects"]) == 4
    assert restarted.verify_restored({}, {**data, **restored})["restore_verified"] is True
    assert restarted.snapshot is not None and restarted.snapshot.matches(target.objects())
    assert config_maps(target) == original  # byte-identical data and binaryData
    live = target.objects()[f"Deployment/{namespace}/web"]
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "app:1"

    # One chunk missing: refused whole, nothing restored, not even the objects in other chunks.
    change_every_target(rest, target, 2)
    changed = target.objects()
    before = versions(rest, namespace, changed)
    rest.delete("ConfigMap", namespace, f"{name}-1")
    with pytest.raises(SnapshotIntegrityError, match=f"missing chunk 1 of {len(chunks)}"):
        Operators(target, criteria()).restore_snapshot({}, data)
    assert versions(rest, namespace, changed) == before

    # The first chunk missing too: that is not "no snapshot was taken", the data says one was.
    rest.delete("ConfigMap", namespace, name)
    refusing = Operators(target, criteria())
    with pytest.raises(SnapshotIntegrityError, match=sha[:12]):
        refusing.restore_snapshot({}, data)
    with pytest.raises(SnapshotIntegrityError, match=sha[:12]):
        refusing.verify_restored({}, data)
    assert versions(rest, namespace, changed) == before


def test_a_snapshot_replaced_whole_is_not_the_one_the_cycle_took(
    rest: Rest, namespace: str
) -> None:
    """Chunks rewritten consistently, with a SHA-256 annotation that matches their new content,
    pass the chunk's own check; the hash the workflow recorded when the snapshot was taken
    still tells them apart."""
    put(rest, namespace, config_map("web-config", GOOD))
    spec = RegenerationCharterSpec.model_validate(
        {
            "systemId": "web",
            "systemType": "web-service",
            "target": {"workloads": [{"name": "web"}], "configMaps": ["web-config"]},
            "telemetry": {
                "serviceName": "web",
                "source": "configMap",
                "configMap": {"name": "web-spans", "key": "spans.json"},
            },
        }
    )
    name = snapshot_name(CYCLE)
    target = ClusterTarget(rest, namespace, "web", spec, snapshot_name=name)
    taken = Operators(target, criteria()).snapshot_targets({}, {})
    put(rest, namespace, config_map("web-config", BROKEN))
    changed = target.objects()
    before = versions(rest, namespace, changed)

    forged = Snapshot.take(changed)  # "the broken config was the good one"
    rest.delete("ConfigMap", namespace, name)
    snapshots.store(rest, namespace, name, forged)
    assert snapshots.load(rest, namespace, name).sha256 == forged.sha256  # self-consistent

    data = {"snapshot": {"sha256": taken["snapshot_sha256"], "objects": 1}}  # the cycle's data
    with pytest.raises(SnapshotIntegrityError, match="not the one"):
        Operators(target, criteria()).restore_snapshot({}, data)
    assert versions(rest, namespace, changed) == before


# ---------------------------------------------------------------------------------------------
# Secrets: referenced, never copied
# ---------------------------------------------------------------------------------------------


def test_a_secret_in_a_snapshot_is_only_its_hash(
    api: client.ApiClient, rest: Rest, namespace: str
) -> None:
    """Were a Secret ever among the snapshotted objects (read with a cluster admin's rights,
    which the operator has not), the stored chunks would hold a hash of its data only."""
    value = f"pw-{uuid.uuid4().hex}"
    core = client.CoreV1Api(api)
    core.create_namespaced_secret(
        namespace,
        {"metadata": {"name": "web-db"}, "stringData": {"password": value}},
    )
    live = api.sanitize_for_serialization(core.read_namespaced_secret("web-db", namespace))
    live = {**live, "apiVersion": "v1", "kind": "Secret"}
    assert live["data"]["password"] == base64.b64encode(value.encode()).decode()
    snapshot = Snapshot.take({key_of(live): live})
    snapshots.store(rest, namespace, "secret-snap", snapshot)
    stored = json.dumps(rest.get("ConfigMap", namespace, "secret-snap"))
    assert value not in stored and base64.b64encode(value.encode()).decode() not in stored
    assert '\\"dataSha256\\"' in stored and '\\"data\\"' not in stored


@dataclass
class Traced:
    """The operator as a process, exporting its spans to ``sink``, under its own RBAC."""

    operator: OperatorProcess
    sink: SpanSink
    kubeconfig: Path


@pytest.fixture
def traced(
    plane: Plane, namespace: str, tmp_path: Path, operator_kubeconfig: Path
) -> Iterator[Traced]:
    sink = SpanSink()
    sink.thread.start()
    operator = traced_operator(
        plane, namespace, tmp_path / "operator.log", operator_kubeconfig, sink
    )
    try:
        yield Traced(operator, sink, operator_kubeconfig)
    finally:
        operator.stop()
        sink.server.shutdown()


def encodings(value: str) -> list[str]:
    raw = value.encode()
    return [value, base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()]


def readable(obj: Any) -> str:
    """JSON of an object, with every binaryData value decoded (and gunzipped) as well."""
    parts = [json.dumps(obj)]
    for item in obj.get("items", [obj]) if isinstance(obj, dict) else []:
        for blob in (item.get("binaryData") or {}).values():
            raw = base64.b64decode(blob)
            if raw[:2] == b"\x1f\x8b":
                raw = gzip.decompress(raw)
            parts.append(raw.decode(errors="replace"))
    return "\n".join(parts)


def test_secret_values_never_reach_snapshots_status_logs_or_spans(
    plane: Plane, api: client.ApiClient, rest: Rest, namespace: str, traced: Traced
) -> None:
    """A charter whose workload reads a Secret names it in ``target.secrets``; a whole cycle
    runs (snapshot, fix, verification) under the operator's own RBAC. The Secret's value, plain
    or base64, is in no ConfigMap (snapshots, workflow state, golden), in no status or Event, in
    the operator's log nowhere, and in no exported span."""
    operator, sink = traced.operator, traced.sink
    value = f"hunter2-{uuid.uuid4().hex}"
    core = client.CoreV1Api(api)
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "web-db"}, "stringData": {"password": value}}
    )
    # The operator's service account may not read it at all (the chart tests check the rules).
    operator_api = config.new_client_from_config(config_file=str(traced.kubeconfig))
    with pytest.raises(ApiException) as refused:
        client.CoreV1Api(operator_api).read_namespaced_secret("web-db", namespace)
    assert refused.value.status == 403

    operator.start()
    try:
        web = deployment("web")
        web["spec"]["template"]["spec"]["containers"][0]["env"] = [
            {
                "name": "DB_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": "web-db", "key": "password"}},
            }
        ]
        apply(plane, namespace, web, config_map("web-config", GOOD))
        put(rest, namespace, config_map("web-baseline", {"spans.json": spans(Faults(), 1)}))
        put(rest, namespace, config_map("web-spans", {"spans.json": spans(Faults(), 2)}))
        plane.kubectl("rollout", "status", "deploy/web", "-n", namespace, "--timeout=60s")
        body = charter()
        body["spec"]["target"]["secrets"] = ["web-db"]
        plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(body))
        wait_for(
            lambda: rest.get("ConfigMap", namespace, "web-golden"),
            60,
            what=f"the known-good snapshot (operator log: {operator})",
        )
        name, final = corrupt_and_wait_for_the_cycle(rest, namespace, operator)
        assert final["phase"] == "Succeeded", final.get("message")
        trace_id = final["traceId"]
        wait_for(
            lambda: "dmedi_cycle" in sink.span_names(trace_id),
            30,
            what="the cycle's root span to be exported",
        )
    finally:
        operator.stop()

    # The snapshot holds the workloads and ConfigMaps; the Secret is not among its objects.
    stored = snapshots.load(rest, namespace, snapshot_name(name))
    assert sorted(k.split("/")[0] for k in stored.objects) == ["ConfigMap", "Deployment"]
    assert final["snapshot"]["objects"] == 2
    haystacks = {
        "ConfigMaps": readable(
            {"items": rest.list("ConfigMap", namespace)},
        ),
        "cycle": json.dumps(rest.get("RegenerationCycle", namespace, name)),
        "charter": json.dumps(rest.get("RegenerationCharter", namespace, "web")),
        "Events": json.dumps(rest.list("Event", namespace)),
        "operator log": operator.log.read_text(),
    }
    with sink.lock:
        exported = list(sink.requests)
    assert exported, "no spans were exported"
    for text in encodings(value):
        for where, haystack in haystacks.items():
            assert text not in haystack, f"the Secret's value is in the {where}"
        assert not any(text.encode() in body for body in exported), "the value is in a span"
    # The name is there (the Deployment references it), so the search did look at the objects.
    assert "web-db" in haystacks["ConfigMaps"]
