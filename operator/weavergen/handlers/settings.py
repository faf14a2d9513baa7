"""Operator-wide kopf settings and shared clients (kept in kopf's memo, not in globals)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import kopf
from grpc import aio
from kubernetes.client.exceptions import ApiException

from weavergen.api.keys import CYCLE_LABEL, PHASE_LABEL
from weavergen.config import operator_config
from weavergen.handlers import shards
from weavergen.handlers.http import OPEN_PATHS, add_routes
from weavergen.k8s.client import api_client
from weavergen.k8s.gate import Gate
from weavergen.k8s.notifications import status_recorder
from weavergen.k8s.rest import Rest
from weavergen.notify.delivery import Notifier
from weavergen.telemetry import metrics, tracing
from weavergen.telemetry.otlp_grpc import serve_grpc
from weavergen.telemetry.receiver import ReceiverConfig, build_app, serve
from weavergen.telemetry.windows import WindowStore

PREFIX = "regeneration.weavergen.io"


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = shards.finalizer()
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PREFIX, key="last-handled-configuration"
    )
    # The phase watches, selected on the server: only a cycle's Jobs, pods and phase results
    # stream.
    settings.watching.label_selectors["batch", "v1", "jobs"] = CYCLE_LABEL
    settings.watching.label_selectors["", "v1", "pods"] = CYCLE_LABEL
    settings.watching.label_selectors["", "v1", "configmaps"] = PHASE_LABEL
    settings.watching.server_timeout = 60
    settings.watching.client_timeout = 90
    settings.watching.connect_timeout = 30
    settings.posting.level = logging.INFO
    config = operator_config()
    settings.execution.max_workers = config.workers
    memo.rest = Rest(api_client())
    if not settings.peering.standalone and settings.peering.name:
        ensure_peering(memo.rest, settings.peering.name, config.namespaces)
    memo.windows = WindowStore()
    metrics.register_receiver(memo.windows)
    receiving = ReceiverConfig(token=config.receiver_token, open_paths=OPEN_PATHS)
    app = build_app(memo.windows, receiving)
    add_routes(app, Gate(memo.rest))
    memo.receiver, bound = await serve(app, config.receiver_host, config.receiver_port)
    memo.grpc = await _serve_grpc(memo.windows, receiving)
    # Where phase Jobs reach this receiver: loopback only works when they run on this host;
    # in a cluster the chart passes the pod's own address (WEAVERGEN_RECEIVER_URL).
    memo.receiver_url = config.receiver_url or f"http://127.0.0.1:{bound}"
    memo.notifier = Notifier(config.notifications, status_recorder(memo.rest))
    await memo.notifier.start()
    metrics.declare_sinks(name for name, _ in config.notifications.sinks)
    exporting = tracing.configure("weavergen-operator")
    logging.getLogger(__name__).info(
        "started the OTLP receiver, /metrics and /gate port=%d tracing=%s charters=%s sinks=%s",
        bound,
        "otlp" if exporting else "off",
        shards.describe(),
        ",".join(f"{n}:{t}" for n, t in config.notifications.sinks) or "none",
    )


async def _serve_grpc(windows: WindowStore, receiving: ReceiverConfig) -> aio.Server | None:
    """The OTLP/gRPC receiver, when a port is configured (a sharded install always has one)."""
    config = operator_config()
    if config.receiver_grpc_port is None:
        return None
    server, bound = await serve_grpc(
        windows, receiving, config.receiver_host, config.receiver_grpc_port
    )
    logging.getLogger(__name__).info("started the OTLP/gRPC receiver grpc_port=%d", bound)
    return server


def ensure_peering(rest: Rest, name: str, namespaces: Sequence[str]) -> None:
    """kopf only updates its peering objects; the first instance of a pair creates them."""
    targets: list[tuple[str, str | None]] = [("KopfPeering", n) for n in namespaces] or [
        ("ClusterKopfPeering", None)
    ]
    for kind, namespace in targets:
        body = {
            "apiVersion": "kopf.dev/v1",
            "kind": kind,
            "metadata": {"name": name, **({"namespace": namespace} if namespace else {})},
        }
        try:
            rest.create(kind, namespace, body)
        except ApiException as err:
            if err.status != 409:
                raise


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    receiver = getattr(memo, "receiver", None)
    if receiver is not None:
        await receiver.cleanup()
    notifier = getattr(memo, "notifier", None)
    if notifier is not None:
        await notifier.stop()
    grpc_server = getattr(memo, "grpc", None)
    if grpc_server is not None:
        await grpc_server.stop(5)
    tracing.shutdown()
