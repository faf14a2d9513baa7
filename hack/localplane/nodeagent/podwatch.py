"""Pod events from the API server, queued for the agent's main loop."""

from __future__ import annotations

import json
import queue
import threading
import time
from typing import Any

from kubernetes import client, watch

from hack.localplane.nodeagent import LOG


def watch_pods(
    core: client.CoreV1Api, events: queue.Queue[dict[str, Any]], stopping: threading.Event
) -> None:
    """Feed pod events into the queue; relist on expiry or error (level-based)."""
    while not stopping.is_set():
        try:
            version = list_pods(core, events)
            stream = watch.Watch().stream(
                core.list_pod_for_all_namespaces,
                resource_version=version,
                timeout_seconds=60,
                allow_watch_bookmarks=True,
                _preload_content=False,
            )
            for event in stream:
                if stopping.is_set():
                    return
                obj = event["raw_object"]
                if event["type"] == "ERROR":
                    break
                if event["type"] == "BOOKMARK":
                    continue
                obj["__deleted__"] = event["type"] == "DELETED"
                events.put(obj)
        except Exception as err:
            LOG.warning("pod watch failed, relisting: %s", err)
            time.sleep(1)


def list_pods(core: client.CoreV1Api, events: queue.Queue[dict[str, Any]]) -> str:
    """Queue every pod as it is now; the list's resourceVersion, to watch from."""
    listing = core.list_pod_for_all_namespaces(_preload_content=False)
    body = json.loads(listing.data)
    for pod in body["items"]:
        events.put(pod)
    version: str = body["metadata"]["resourceVersion"]
    return version
