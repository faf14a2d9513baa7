"""A small JSON client over the kubernetes ApiClient (which keeps auth, TLS and retries).

The operator works with objects as plain JSON dicts, as kopf hands them over and as the pure
domain plans them; the typed models of the kubernetes package would only be converted back and
forth. Errors stay ``ApiException`` with the HTTP status.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as TransportError

Obj = dict[str, Any]

RESOURCES: dict[str, tuple[str, str]] = {
    "Deployment": ("apis/apps/v1", "deployments"),
    "StatefulSet": ("apis/apps/v1", "statefulsets"),
    "ReplicaSet": ("apis/apps/v1", "replicasets"),
    "ControllerRevision": ("apis/apps/v1", "controllerrevisions"),
    "Rollout": ("apis/argoproj.io/v1alpha1", "rollouts"),
    "HorizontalPodAutoscaler": ("apis/autoscaling/v2", "horizontalpodautoscalers"),
    "Application": ("apis/argoproj.io/v1alpha1", "applications"),
    "Kustomization": ("apis/kustomize.toolkit.fluxcd.io/v1", "kustomizations"),
    "HelmRelease": ("apis/helm.toolkit.fluxcd.io/v2", "helmreleases"),
    "ConfigMap": ("api/v1", "configmaps"),
    "Secret": ("api/v1", "secrets"),
    "Pod": ("api/v1", "pods"),
    "Service": ("api/v1", "services"),
    "EndpointSlice": ("apis/discovery.k8s.io/v1", "endpointslices"),
    "PersistentVolumeClaim": ("api/v1", "persistentvolumeclaims"),
    "Event": ("api/v1", "events"),
    "Job": ("apis/batch/v1", "jobs"),
    "RegenerationCharter": ("apis/regeneration.weavergen.io/v1alpha1", "regenerationcharters"),
    "RegenerationCycle": ("apis/regeneration.weavergen.io/v1alpha1", "regenerationcycles"),
    "KopfPeering": ("apis/kopf.dev/v1", "kopfpeerings"),
    "ClusterKopfPeering": ("apis/kopf.dev/v1", "clusterkopfpeerings"),
}
MERGE_PATCH = "application/merge-patch+json"
METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
# (connect, read) seconds. Without them a request in flight when the API server goes away can
# wait forever: a phase Job would hang until its deadline instead of failing and being retried.
REQUEST_TIMEOUT = (5.0, 30.0)
# A restarted API server serves before it is ready: it answers 503 until all its HTTP paths are
# installed ("please try again": the request was not served) and denies every request until its
# authorizer has loaded the RBAC rules. Either answer from a server that is not ready
# (``/readyz``, which it always allows) is asked again once it is, if within this long.
NOT_READY_ANSWERS = frozenset({403, 503})
READY_WAIT_SECONDS = 30.0
READY_POLL_SECONDS = 0.25


class Rest:
    def __init__(self, api: client.ApiClient) -> None:
        self.api = api

    def _path(self, kind: str, namespace: str | None, name: str | None = None) -> str:
        """The resource path; a None namespace means a cluster-scoped resource."""
        group, plural = RESOURCES[kind]
        scope = f"/namespaces/{namespace}" if namespace is not None else ""
        path = f"/{group}{scope}/{plural}"
        return f"{path}/{name}" if name else path

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
        *,
        accept: str = "application/json",
    ) -> Obj:
        response = self._send(method, path, body, query, content_type=content_type, accept=accept)
        if response.status in NOT_READY_ANSWERS and self._became_ready():
            response = self._send(
                method, path, body, query, content_type=content_type, accept=accept
            )
        data = response.data
        if not 200 <= response.status <= 299:
            raise ApiException.from_response(
                http_resp=response, body=data.decode(errors="replace") if data else None, data=None
            )
        parsed: Obj = json.loads(data) if data else {}
        return parsed

    def _send(
        self,
        method: str,
        path: str,
        body: Any,
        query: list[tuple[str, str]] | None,
        *,
        content_type: str,
        accept: str,
    ) -> Any:
        method, url, headers, payload, post = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params={"Accept": accept, "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(
            method,
            url,
            header_params=headers,
            body=payload,
            post_params=post,
            _request_timeout=REQUEST_TIMEOUT,
        )
        response.read()  # type: ignore[no-untyped-call]
        return response

    def _ready(self) -> bool:
        try:
            answer = self._send(
                "GET", "/readyz", None, None, content_type="text/plain", accept="*/*"
            )
        except (ApiException, TransportError):
            return False
        return bool(answer.status == 200)

    def _became_ready(self) -> bool:
        """Whether the API server was not ready and is now (see ``READY_WAIT_SECONDS``)."""
        if self._ready():
            return False
        deadline = time.monotonic() + READY_WAIT_SECONDS
        while time.monotonic() < deadline:
            time.sleep(READY_POLL_SECONDS)
            if self._ready():
                return True
        return False

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        """The object, or None when it does not exist."""
        found = self._find(kind, namespace, name, "application/json")
        return None if found is None else _typed(found, kind)

    def metadata(self, kind: str, namespace: str, name: str) -> Obj | None:
        """Only the object's metadata (a PartialObjectMetadata), or None when it does not exist.

        Cheap next to ``get`` for a large object: enough to tell whether it changed.
        """
        return self._find(kind, namespace, name, METADATA_ONLY)

    def _find(self, kind: str, namespace: str, name: str, accept: str) -> Obj | None:
        try:
            return self._call("GET", self._path(kind, namespace, name), accept=accept)
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    def list(
        self,
        kind: str,
        namespace: str | None,
        selector: dict[str, str] | None = None,
        fields: dict[str, str] | None = None,
    ) -> list[Obj]:
        """Objects of a kind, filtered by the API server on labels and on fields; a None
        namespace lists them in all namespaces. A kind the cluster does not serve (its CRD is
        not installed: the list itself is not found) has no objects."""
        query = []
        for parameter, terms in (("labelSelector", selector), ("fieldSelector", fields)):
            if terms:
                query.append((parameter, ",".join(f"{k}={v}" for k, v in sorted(terms.items()))))
        try:
            found = self._call("GET", self._path(kind, namespace), query=query)
        except ApiException as err:
            if err.status != 404:
                raise
            return []
        items = found.get("items", [])
        return [_typed(item, kind) for item in items]

    def watch(
        self, kind: str, namespace: str, name: str, since: str, timeout_seconds: int
    ) -> Iterator[tuple[str, Obj]]:
        """The changes to one object after its ``resourceVersion`` ``since``, as (event
        type, object), until the API server ends the watch after ``timeout_seconds``."""
        query = [
            ("watch", "true"),
            ("fieldSelector", f"metadata.name={name}"),
            ("resourceVersion", since),
            ("timeoutSeconds", str(timeout_seconds)),
        ]
        method, url, headers, _, _ = self.api.param_serialize(
            method="GET",
            resource_path=self._path(kind, namespace),
            query_params=query,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(
            method,
            url,
            header_params=headers,
            _request_timeout=(REQUEST_TIMEOUT[0], timeout_seconds + REQUEST_TIMEOUT[1]),
        )
        if not 200 <= response.status <= 299:
            data = response.read()  # type: ignore[no-untyped-call]
            raise ApiException.from_response(
                http_resp=response, body=data.decode(errors="replace") if data else None, data=None
            )
        try:
            for line in response.response:
                if line.strip():
                    event = json.loads(line)
                    if event.get("type") == "ERROR":  # e.g. 410 Gone: resourceVersion too old
                        status = event.get("object") or {}
                        raise ApiException(status=status.get("code"), reason=status.get("message"))
                    yield event["type"], _typed(event["object"], kind)
        finally:
            # Unread events may remain: the connection must not go back to the pool as is.
            response.response.close()
            response.response.release_conn()

    def create(self, kind: str, namespace: str | None, body: Obj) -> Obj:
        return self._call("POST", self._path(kind, namespace), body)

    def replace(self, kind: str, namespace: str, name: str, body: Obj) -> Obj:
        return self._call("PUT", self._path(kind, namespace, name), body)

    def patch(
        self, kind: str, namespace: str, name: str, patch: Obj, subresource: str | None = None
    ) -> Obj:
        path = self._path(kind, namespace, name) + (f"/{subresource}" if subresource else "")
        return self._call("PATCH", path, patch, content_type=MERGE_PATCH)

    def delete(self, kind: str, namespace: str, name: str, propagation: str | None = None) -> None:
        """Delete (gone already is fine); ``propagation`` ``Foreground`` keeps the object until
        its dependents (a Job's pods) are gone, so its absence means they are."""
        options = {"propagationPolicy": propagation} if propagation else None
        try:
            self._call("DELETE", self._path(kind, namespace, name), options)
        except ApiException as err:
            if err.status != 404:
                raise


def _typed(obj: Obj, kind: str) -> Obj:
    """List items come without apiVersion and kind; put them back first, as manifests have them."""
    group = RESOURCES[kind][0]
    api_version = group.removeprefix("apis/").removeprefix("api/")
    rest = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    return {"apiVersion": api_version, "kind": kind, **rest}
