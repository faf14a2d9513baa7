"""``TargetPort`` against the API server: the Implement phase's hands on a real cluster."""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as TransportError

from weavergen.api.charter import RegenerationCharterSpec
from weavergen.api.common import API_VERSION
from weavergen.api.keys import CHARTER_LABEL
from weavergen.config import operator_config
from weavergen.domain import reasons
from weavergen.domain.decide.explore import TargetContext
from weavergen.domain.errors import BaselinePending, MeasurementUnavailable
from weavergen.domain.measure.measure import (
    Measurement,
    MeasureSettings,
    measure,
    pick_service,
    summarise,
)
from weavergen.domain.measure.otlp import OtlpError
from weavergen.domain.measure.sequential import Evidence
from weavergen.domain.measure.summary import ServiceSummary
from weavergen.domain.measure.workload import WorkloadHealth, WorkloadState, workload_health
from weavergen.domain.names import child_name, label_value
from weavergen.domain.remedy.actions import WORKLOAD_KINDS, Manifest
from weavergen.domain.remedy.gitops import Reverting, Tracker, inferred, reverting, tracker_of
from weavergen.domain.remedy.inputs import (
    ConsumedInput,
    changed_inputs,
    consumed_inputs,
    fingerprint,
    image_drift,
)
from weavergen.domain.remedy.kinds import HPA, refused_actions, restore_order, template_of
from weavergen.domain.remedy.snapshot import Snapshot, SnapshotIntegrityError, Writes, with_writes
from weavergen.domain.times import parse_time
from weavergen.k8s import snapshots
from weavergen.k8s.events import post_event
from weavergen.k8s.red_target import Parts, RedTelemetry
from weavergen.k8s.rest import Obj, Rest
from weavergen.k8s.targets import Targets
from weavergen.k8s.versioned import VersionedCache

log = logging.getLogger(__name__)

BASELINE_KEY = "summary.json"
CHANGE_LOOKBACK = timedelta(hours=1)
WRITES_KEY = "writes.json"
# After a rollout completes, the endpoints drop the old pods (waited for, at most
# ENDPOINTS_WAIT_SECONDS), then each node's proxy stops routing to them: kube-proxy applies a
# change within its minSyncPeriod, 1 s by default. Without the right to read the endpoints
# (RBAC from before they were read), a fixed ROLLOUT_TAIL_SECONDS instead.
ENDPOINTS_WAIT_SECONDS = 30.0
PROXY_SYNC_SECONDS = 1.0
ROLLOUT_TAIL_SECONDS = 2.0
# Shared by every charter in the process: decoding spans is most of a measurement's cost.
DECODED_SPANS: VersionedCache[dict[str, ServiceSummary]] = VersionedCache()
CAPTURED_BASELINES: VersionedCache[ServiceSummary] = VersionedCache()
GOLDEN_INTACT: VersionedCache[bool] = VersionedCache()


def baseline_name(charter: str) -> str:
    """Where a charter's captured baseline summary lives."""
    return child_name(charter, "baseline")


def golden_name(charter: str) -> str:
    """Where a charter's known-good snapshot lives."""
    return child_name(charter, "golden")


def owner_reference(kind: str, name: str, uid: str) -> dict[str, Any]:
    """The controlling owner reference to one of this operator's own objects."""
    return {"apiVersion": API_VERSION, "kind": kind, "name": name, "uid": uid, "controller": True}


def charter_owner(name: str, uid: str) -> dict[str, Any]:
    """The owner reference of what a charter keeps between its cycles."""
    return owner_reference("RegenerationCharter", name, uid)


class ClusterTarget:
    """One charter's target in one namespace, as the workflow operators see it."""

    def __init__(
        self,
        rest: Rest,
        namespace: str,
        charter: str,
        spec: RegenerationCharterSpec,
        *,
        receiver_url: str | None = None,
        snapshot_name: str | None = None,
        journal_name: str | None = None,
        owner: dict[str, Any] | None = None,
        charter_uid: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rest = rest
        self.namespace = namespace
        self.charter = charter
        self.spec = spec
        self.targets = Targets(rest, namespace, spec.target)
        self.settings = MeasureSettings.from_charter(spec)
        self.receiver_url = receiver_url
        self.snapshot_name = snapshot_name
        self.journal_name = journal_name
        self._writes: Writes = {}  # without a journal ConfigMap: this process's own
        self.owner = owner
        # What outlives a cycle but not the charter (its golden snapshot and captured baseline)
        # is owned by the charter, so deleting the charter leaves nothing behind.
        self.charter_owner = charter_owner(charter, charter_uid) if charter_uid else None
        self.sleep = sleep
        self._paused = 0.0  # seconds paused since settling began
        self.events: list[str] = []
        # When the last change began to settle: spans received before it are not its result.
        self.settling_since: float | None = None
        # When the target was last measured healthy, while the requests since clearly fail.
        self.onset_since: float | None = None
        # Whether the receiver cut its slot at the onset (the charter's healthy measurement):
        # the window since it is then exact, and too few spans there are waited for.
        self.onset_cut = False

    # -- objects ------------------------------------------------------------------------------

    def objects(self) -> dict[str, Manifest]:
        return self.targets.objects()

    def golden(self) -> dict[str, Manifest]:
        try:
            return snapshots.load(self.rest, self.namespace, golden_name(self.charter)).objects
        except SnapshotIntegrityError:
            return {}

    def has_golden(self) -> bool:
        """Whether an intact known-good snapshot exists; checked again only when it changes."""
        return bool(
            GOLDEN_INTACT.get(
                self.rest,
                "ConfigMap",
                self.namespace,
                golden_name(self.charter),
                purpose="intact",
                derive=lambda _: bool(self.golden()),
            )
        )

    def record_writes(self, prints: dict[str, str]) -> None:
        """Into the cycle's journal ConfigMap, read-modify-write guarded by resourceVersion."""
        if self.journal_name is None:
            self._writes = with_writes(self._writes, prints)
            return
        for _ in range(5):
            journal = self.rest.get("ConfigMap", self.namespace, self.journal_name)
            recorded = _journal_writes(journal)
            merged = with_writes(recorded, prints)
            if merged == recorded:
                return
            body: Obj = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": self.journal_name,
                    "namespace": self.namespace,
                    **({"ownerReferences": [self.owner]} if self.owner else {}),
                },
                "data": {WRITES_KEY: json.dumps(merged, sort_keys=True)},
            }
            try:
                if journal is None:
                    self.rest.create("ConfigMap", self.namespace, body)
                else:
                    body["metadata"]["resourceVersion"] = journal["metadata"]["resourceVersion"]
                    self.rest.replace("ConfigMap", self.namespace, self.journal_name, body)
                return
            except ApiException as err:
                if err.status != 409:
                    raise
        raise RuntimeError(f"could not record writes in {self.journal_name}: 5 conflicts")

    def recorded_writes(self) -> Writes:
        if self.journal_name is None:
            return self._writes
        return _journal_writes(self.rest.get("ConfigMap", self.namespace, self.journal_name))

    def previous_templates(self) -> dict[str, Manifest]:
        return self.targets.previous_templates()

    def apply(self, changed: dict[str, Manifest]) -> None:
        for obj in changed.values():
            self.targets.write(obj)

    def recreate_pods(self) -> None:
        self.targets.recreate_pods()

    def wait_rollout(self, timeout_seconds: int) -> bool:
        return self.targets.wait_rollout(timeout_seconds)

    def begin_settling(self) -> float:
        """Settling begins once the endpoints have dropped the pods the rollout replaced and
        the proxies have caught up: until then those pods still answer some requests, which
        are no evidence of the change (an early Fail on them would roll back a good fix). The
        wait is here, so the settle's own seconds all count as the change's result."""
        try:
            self.targets.wait_endpoints(ENDPOINTS_WAIT_SECONDS)
        except (ApiException, TransportError) as err:
            # Without RBAC to read them (an older phase Role), or the API server away a
            # moment: the change is in place, so settle after the fixed tail instead.
            log.warning(
                "could not read the Services' endpoints (%s): waiting %.0f s after the rollout",
                getattr(err, "reason", None) or err,
                ROLLOUT_TAIL_SECONDS,
            )
            self.sleep(ROLLOUT_TAIL_SECONDS - PROXY_SYNC_SECONDS)
        self.sleep(PROXY_SYNC_SECONDS)
        self.settling_since = time.time()
        self._paused = 0.0
        return self.settling_since

    def pause(self, seconds: float) -> None:
        self.sleep(seconds)
        self._paused += seconds

    def settled_seconds(self) -> float:
        """The clock's seconds since settling began (reads and measurements included), or the
        pauses' where they pass faster (a test's ``sleep``)."""
        if self.settling_since is None:
            return self._paused
        return max(time.time() - self.settling_since, self._paused)

    def request_evidence(self, threshold_ms: float) -> Evidence | None:
        """From the receiver's request ledger, for a charter whose spans reach it (also one
        measured from Prometheus, whose spans are its samples). Unreachable or without the
        ledger, there is no evidence to stop early on: the settle runs to its end."""
        if (
            self.spec.telemetry.source == "configMap"
            or self.receiver_url is None
            or self.settling_since is None
        ):
            return None
        url = (
            f"{self.receiver_url}/v1/evidence/"
            f"{urllib.parse.quote(self.spec.telemetry.service_name, safe='')}"
            f"?since={self.settling_since:.3f}&latencyMs={threshold_ms:g}"
            f"&exportDelay={self.spec.telemetry.export_delay_seconds:g}"
        )
        try:
            found = json.loads(self._receiver_get(url))
            return Evidence(int(found["requests"]), int(found["bad"]))
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.warning("no request evidence from the receiver (%s): settling to the end", err)
            return None

    def _receiver_get(self, url: str) -> bytes:
        """GET from the receiver, behind the same bearer token as OTLP when it has one."""
        token = operator_config().receiver_token
        request = urllib.request.Request(
            url, headers={"Authorization": f"Bearer {token}"} if token else {}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body: bytes = response.read()
            return body

    # -- snapshots ----------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Take a snapshot; with a name, store it (immutable, owned by the cycle) first.

        A cycle that runs this step again (after a restart) gets its first snapshot back: the
        objects may already be changed, and a snapshot is never overwritten.
        """
        saved = self.saved_snapshot()
        if saved is not None:
            return saved
        snapshot = Snapshot.take(self.objects())
        if self.snapshot_name:
            snapshots.store(self.rest, self.namespace, self.snapshot_name, snapshot, self.owner)
        return snapshot

    def saved_snapshot(self) -> Snapshot | None:
        if not self.snapshot_name or not self.rest.get(
            "ConfigMap", self.namespace, self.snapshot_name
        ):
            return None
        return snapshots.load(self.rest, self.namespace, self.snapshot_name)

    def restore(self, snapshot: Snapshot) -> None:
        """Integrity first; then every snapshotted object is written back as it was."""
        snapshot.verify()
        for obj in restore_order(snapshot.objects):
            self.targets.write(obj)

    def store_golden(self) -> Snapshot:
        """Keep the target's current objects as the known-good snapshot (while healthy)."""
        snapshot = self.snapshot()
        snapshots.store(
            self.rest, self.namespace, golden_name(self.charter), snapshot, self.charter_owner
        )
        return snapshot

    # -- measuring ----------------------------------------------------------------------------

    def _config_map_spans(self, name: str, key: str, *, current: bool = False) -> ServiceSummary:
        """A service's spans in a ConfigMap. In the current window a service with no spans at
        all is silent (an empty summary), not an error: its baseline says it had traffic."""

        def decode(config_map: Obj) -> dict[str, ServiceSummary]:
            text = (config_map.get("data") or {}).get(key)
            if text is None:
                raise MeasurementUnavailable(
                    f"ConfigMap {self.namespace}/{name} has no key {key!r}"
                )
            return summarise([(line.encode(), "application/json") for line in _documents(text)])

        summaries = DECODED_SPANS.get(
            self.rest, "ConfigMap", self.namespace, name, purpose=key, derive=decode
        )
        if summaries is None:
            raise MeasurementUnavailable(
                f"ConfigMap {self.namespace}/{name} with spans does not exist"
            )
        wanted = self.settings.service
        if current and wanted is not None and wanted not in summaries:
            return ServiceSummary(wanted)
        return pick_service(summaries, wanted, f"{name}/{key}")

    def _receiver_window(
        self, since: float | None = None, *, slot_of: float | None = None
    ) -> ServiceSummary:
        assert self.receiver_url is not None
        if slot_of is None and since is None:
            since = self.settling_since
        url = (
            f"{self.receiver_url}/v1/summaries/"
            f"{urllib.parse.quote(self.spec.telemetry.service_name, safe='')}"
            f"?seconds={self.spec.telemetry.window_seconds}"
            + (f"&since={since:.3f}" if since is not None else "")
            + (f"&slotOf={slot_of:.3f}" if slot_of is not None else "")
        )
        return ServiceSummary.from_dict(json.loads(self._receiver_get(url)))

    def current(self) -> ServiceSummary:
        telemetry = self.spec.telemetry
        if telemetry.source == "configMap":
            assert telemetry.config_map is not None  # the schema requires it
            return self._config_map_spans(
                telemetry.config_map.name, telemetry.config_map.key, current=True
            )
        return self._receiver_window()

    def onset_window(self) -> ServiceSummary | None:
        """The spans since ``onset_since`` when it is later than the settling (see `measure`):
        of the receiver's slots begun since, or when they hold too few spans yet (one began
        just after the onset), from the slot the onset falls in, what came just before it
        included; not that one after a change (it may reach before the change), nor where the
        receiver cut its slot at the onset (``onset_cut``: those spans are waited for)."""
        onset, settling = self.onset_since, self.settling_since
        if self.spec.telemetry.source != "otlp" or onset is None:
            return None
        if settling is not None and onset <= settling:
            return None
        since_onset = self._receiver_window(onset)
        if since_onset.span_count >= self.settings.min_spans or settling is not None:
            return since_onset
        # Cut there, the spans since the onset are few only for a moment: waited for, not made
        # up with the healthy ones before it (measured diluted, a fault reads below the trigger
        # and moves the onset into itself).
        return since_onset if self.onset_cut else self._receiver_window(slot_of=onset)

    def onset_too_thin(self) -> bool:
        """Whether the spans since the onset are too few to judge alone (``minSpans``). A
        window that cannot be read is not: the measurement reports it unavailable."""
        try:
            with _unreadable_as_unavailable():
                since_onset = self.onset_window()
        except MeasurementUnavailable:
            return False
        return since_onset is not None and since_onset.span_count < self.settings.min_spans

    def baseline(self) -> ServiceSummary:
        """The charter's baseline ConfigMap of spans, or the window captured as the baseline.

        Without a baseline ConfigMap the first window with enough spans is kept, as a summary
        in ``<charter>-baseline`` (measuring starts from the next window): a charter is applied
        to a system that is healthy now, or its baseline must be given.
        """
        ref = self.spec.telemetry.baseline.config_map
        if ref is not None:
            return self._config_map_spans(ref.name, ref.key)
        stored = CAPTURED_BASELINES.get(
            self.rest,
            "ConfigMap",
            self.namespace,
            baseline_name(self.charter),
            purpose=BASELINE_KEY,
            derive=lambda config_map: ServiceSummary.from_dict(
                json.loads(config_map["data"][BASELINE_KEY])
            ),
        )
        if stored is not None:
            return stored
        window = self.current()
        if window.span_count < self.settings.min_spans:
            raise BaselinePending(
                f"no baseline yet: the window has {window.span_count} spans, fewer than "
                f"{self.settings.min_spans}"
            )
        # A rate over part of a window (the receiver just started) is no baseline to hold to.
        watched, length = window.window_s, self.spec.telemetry.window_seconds
        if watched is not None and watched < length:
            raise BaselinePending(
                f"no baseline yet: the receiver has watched {watched:.0f} s "
                f"of the {length} s window"
            )
        self._store_baseline({BASELINE_KEY: json.dumps(self._as_baseline(window).to_dict())})
        raise BaselinePending("captured the baseline from this window; measuring from the next")

    def _as_baseline(self, window: ServiceSummary) -> ServiceSummary:
        """The window as the baseline keeps it: with the sampling ratio assumed now for spans
        that say none, so a sampler added later (and samplingRatio with it) leaves the rate it
        was captured at as it was, rather than scaling it up as if it had been sampled too."""
        return replace(window, fallback_ratio=window.fallback_ratio or self.settings.sampling_ratio)

    def _store_baseline(self, data: dict[str, str]) -> None:
        """Keep a captured baseline in ``<charter>-baseline``, owned by the charter. One that
        exists (spans captured while the charter read spans) gets the new keys beside its own."""
        name = baseline_name(self.charter)
        try:
            self.rest.create(
                "ConfigMap",
                self.namespace,
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {
                        "name": name,
                        "namespace": self.namespace,
                        "labels": {CHARTER_LABEL: label_value(self.charter)},
                        **({"ownerReferences": [self.charter_owner]} if self.charter_owner else {}),
                    },
                    "data": data,
                },
            )
        except ApiException as err:
            if err.status != 409:
                raise
            self.rest.patch("ConfigMap", self.namespace, name, {"data": data})

    def red(self) -> RedTelemetry:
        """The charter's telemetry from Prometheus, with the receiver's spans as samples."""
        return RedTelemetry(
            self.rest,
            self.namespace,
            baseline_name(self.charter),
            self.spec,
            store=self._store_baseline,
            samples=self._receiver_window if self.receiver_url else None,
        )

    def _span_parts(self) -> Parts:
        """The window of spans and the baseline (or why there is none yet)."""
        current = self.current()
        try:
            baseline: ServiceSummary | None = self.baseline()
        except BaselinePending as err:
            return Parts(current, None, str(err), sources=self._span_sources())
        return Parts(current, baseline, sources=self._span_sources())

    def _span_sources(self) -> dict[str, str]:
        source = self.spec.telemetry.source
        return {"red": source, "semantic_conventions": source}

    def measure(self) -> Measurement:
        """The telemetry of the window against the baseline, with the workloads' state: a
        workload that fails without a span to show for it is measured all the same.

        With an onset whose spans make a measurement (``minSpans``, see `onset_window`), they
        are measured too and the worse of the two counts: failing requests are judged without
        the healthy ones before them, so a fault is measured as what it is at once, not
        diluted until it fills the window; and seconds of spans, which cannot tell a drop in
        throughput, never hide what the whole window shows."""
        with _unreadable_as_unavailable():
            from_prometheus = self.spec.telemetry.source == "prometheus"
            parts = self.red().parts() if from_prometheus else self._span_parts()
            since_onset = None if from_prometheus else self.onset_window()
        workload = self.workload_health()
        result = self._judged(parts, workload)
        if since_onset is not None and since_onset.span_count >= self.settings.min_spans:
            onset = self._judged(replace(parts, current=since_onset), workload)
            if (onset.entropy_score or 0.0) > (result.entropy_score or 0.0):
                result = onset
        if parts.pending and result.insufficient == "baseline":
            result = replace(result, reason=parts.pending)
        return replace(result, sources=parts.sources)

    def _judged(self, parts: Parts, workload: WorkloadHealth | None) -> Measurement:
        s = self.settings
        return measure(
            parts.current,
            parts.baseline,
            objectives=s.objectives,
            thresholds=s.thresholds,
            min_spans=s.min_spans,
            workload=workload,
            sampling_ratio=s.sampling_ratio,
            counts=parts.counts,
            attributes=parts.attributes,
        )

    def workload_health(self) -> WorkloadHealth | None:
        """The target workloads, their pods and the Warning events on them (read only)."""
        workloads = self.targets.workloads()
        if not workloads:
            return None
        warnings = self.rest.list("Event", self.namespace, fields={"type": "Warning"})
        states = []
        for workload in workloads:
            pods = self.rest.list(
                "Pod", self.namespace, workload["spec"]["selector"].get("matchLabels")
            )
            # The controller's ReplicaSets and the pods carry most of a workload's events.
            involved = {workload["metadata"]["name"]} | {
                name
                for pod in pods
                for name in (
                    pod["metadata"]["name"],
                    *(ref["name"] for ref in pod["metadata"].get("ownerReferences") or []),
                )
            }
            events = [
                e for e in warnings if (e.get("involvedObject") or {}).get("name") in involved
            ]
            states.append(WorkloadState(workload, pods, events))
        window = timedelta(seconds=self.spec.telemetry.window_seconds)
        return workload_health(states, datetime.now(UTC).replace(tzinfo=None), window)

    # -- people -------------------------------------------------------------------------------

    def escalate(self, reason: str) -> None:
        self.events.append(reason)
        charter = {
            "apiVersion": "regeneration.weavergen.io/v1alpha1",
            "kind": "RegenerationCharter",
            "name": self.charter,
            "namespace": self.namespace,
        }
        post_event(self.rest, charter, reasons.ESCALATED, reason, warning=True)

    def _metadata_of(self, consumed: list[ConsumedInput]) -> dict[tuple[str, str], Obj | None]:
        """Each consumed input's metadata (never a Secret's data); an input the operator may
        not read is left out, and reported as not inspected."""
        found: dict[tuple[str, str], Obj | None] = {}
        for item in consumed:
            try:
                found[(item.kind, item.name)] = self.rest.metadata(
                    item.kind, self.namespace, item.name
                )
            except ApiException as err:
                if err.status != 403:
                    raise
        return found

    def inputs_fingerprint(self) -> str:
        """A digest of the workloads' templates, the target ConfigMaps and the ConfigMaps the
        workloads consume: it changes only when someone edits one of them."""
        objects = self.objects()
        workloads = [o for o in objects.values() if o["kind"] in WORKLOAD_KINDS]
        config_maps = [
            self.rest.get("ConfigMap", self.namespace, item.name)
            for item in consumed_inputs(workloads)
            if item.kind == "ConfigMap"
        ]
        return fingerprint([*objects.values(), *(o for o in config_maps if o)])

    def _changes_since(self, last_good: datetime | None) -> datetime:
        """Since when an input outside the targets counts as changed: within the hour before
        the workload was last healthy (a change shows once pods restart, often well after it
        was made), but never before the known-good snapshot (what it ran with was good)."""
        now = datetime.now(UTC).replace(tzinfo=None)
        since = (last_good or now) - CHANGE_LOOKBACK
        golden = self.rest.metadata("ConfigMap", self.namespace, golden_name(self.charter))
        created = parse_time((golden or {}).get("metadata", {}).get("creationTimestamp"))
        return max(since, created) if created else since

    def context(self, last_good: datetime | None = None) -> TargetContext:
        """What Kubernetes says about the target besides its spans, and which inputs of its
        workloads outside the targets changed lately (see ``_changes_since``)."""
        objects, golden = self.objects(), self.golden()
        workloads = [o for o in objects.values() if o["kind"] in WORKLOAD_KINDS]
        pods = [
            pod
            for obj in workloads
            for pod in self.rest.list(
                "Pod", self.namespace, obj["spec"]["selector"].get("matchLabels")
            )
        ]
        since = self._changes_since(last_good)
        consumed = consumed_inputs(workloads)
        changed = [
            *changed_inputs(
                consumed,
                self._metadata_of(consumed),
                targets=self.spec.target.config_maps,
                since=since,
            ),
            *image_drift(pods),
        ]
        config_changed = any(
            (golden[key].get("data") or {}) != (obj.get("data") or {})
            for key, obj in objects.items()
            if obj["kind"] == "ConfigMap" and key in golden
        )
        template_changed = any(
            key in golden and template_of(golden[key]) != template_of(obj)
            for key, obj in objects.items()
            if obj["kind"] in WORKLOAD_KINDS
        )
        restarts = any(
            status.get("restartCount", 0) > 0
            for pod in pods
            for status in pod.get("status", {}).get("containerStatuses", []) or []
        )
        return TargetContext(
            recent_rollout=template_changed and bool(self.previous_templates()),
            config_changed=config_changed,
            restarts=restarts,
            workloads=max(1, len(workloads)),
            replicas=min((o["spec"].get("replicas", 1) for o in workloads), default=1),
            changed_inputs=tuple(changed),
            refused=refused_actions(objects),
            reverted_by=tuple(dict.fromkeys(r.why for r in self.reverted(objects).values())),
            autoscalers=tuple(k for k, o in objects.items() if o["kind"] == HPA),
        )

    def reverted(self, objects: dict[str, Manifest] | None = None) -> dict[str, Reverting]:
        """The target objects (``objects`` if already read) a GitOps controller reverts
        changes to, by key (see ``gitops``)."""
        found: dict[str, Reverting] = {}
        trackers: dict[Tracker, tuple[Obj | None, bool]] = {}
        for key, obj in (objects if objects is not None else self.objects()).items():
            tracker = tracker_of(obj, operator_config().argocd_namespace)
            if tracker is None:
                continue
            if tracker not in trackers:
                trackers[tracker] = self._read_tracker(tracker)
            tracked, readable = trackers[tracker]
            verdict = reverting(tracker, tracked, readable=readable, guessed=inferred(obj, tracker))
            if verdict is not None:
                found[key] = verdict
        return found

    def _read_tracker(self, tracker: Tracker) -> tuple[Obj | None, bool]:
        """The tracker's object (None if not found), and whether it could be read at all."""
        try:
            return self.rest.get(tracker.kind, tracker.namespace, tracker.name), True
        except ApiException as err:
            if err.status != 403:
                raise
            return None, False

    def check_dependencies(self) -> dict[str, Any]:
        return {}

    def rebaseline_validation(self) -> None:
        return None

    def now(self) -> str:
        return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@contextmanager
def _unreadable_as_unavailable() -> Iterator[None]:
    """Spans that cannot be read (undecodable, no such service, the receiver unreachable) are
    a measurement that is unavailable, reported as such: never a pass, never a crash."""
    try:
        yield
    except (OtlpError, ValueError, OSError) as err:
        raise MeasurementUnavailable(str(err)) from err


def _journal_writes(journal: Obj | None) -> Writes:
    if journal is None:
        return {}
    recorded: Writes = json.loads((journal.get("data") or {}).get(WRITES_KEY) or "{}")
    return recorded


def _documents(text: str) -> list[str]:
    """One OTLP/JSON document, or one per line."""
    try:
        json.loads(text)
    except ValueError:
        return [line for line in text.splitlines() if line.strip()]
    return [text]
