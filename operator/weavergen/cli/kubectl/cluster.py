"""The plugin's way to the cluster: the user's kubeconfig, context and RBAC, as kubectl's.

Every call names the verb and resource it needs, so a refusal by RBAC (403) tells the user
exactly which permission is missing instead of a stack trace.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from urllib3.exceptions import HTTPError

from weavergen.api.common import GROUP, VERSION
from weavergen.cli.common import UsageError, fail
from weavergen.k8s.rest import RESOURCES, Rest

T = TypeVar("T")


class ApiError(UsageError):
    """The API server refused or could not be reached: one line, and the missing permission."""


def resource_name(kind: str) -> str:
    """``regenerationcycles.regeneration.weavergen.io``, ``configmaps``: as RBAC names them."""
    group, plural = RESOURCES[kind]
    api_group = group.removeprefix("apis/").rpartition("/")[0] if group.startswith("apis/") else ""
    return f"{plural}.{api_group}" if api_group else plural


def forbidden_message(verb: str, kind: str, namespace: str | None, user: str | None) -> str:
    where = f"in namespace {namespace!r}" if namespace else "in all namespaces"
    who = f"user {user!r}" if user else "your kubeconfig's user"
    return (
        f"forbidden: {who} may not {verb} {resource_name(kind)} {where} "
        f"(ask for an RBAC Role granting {verb!r} on it)"
    )


class Kube:
    """A client for the kubeconfig's context (or ``--context``), with its default namespace."""

    def __init__(self, kubeconfig: str | None = None, context: str | None = None) -> None:
        try:
            contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        except (ConfigException, OSError) as err:
            fail(f"no usable kubeconfig ({kubeconfig or '$KUBECONFIG or ~/.kube/config'}): {err}")
        chosen = (
            active if context is None else next((c for c in contexts if c["name"] == context), None)
        )
        if chosen is None:
            known = ", ".join(sorted(c["name"] for c in contexts)) or "none"
            fail(f"context {context!r} is not in the kubeconfig (contexts: {known})")
        self.context = chosen["name"]
        settings = chosen.get("context") or {}
        self.user: str | None = settings.get("user")
        self.namespace: str = settings.get("namespace") or "default"
        try:
            self.api = config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=self.context
            )
        except (ConfigException, OSError) as err:
            fail(f"context {self.context!r} of the kubeconfig cannot be used: {err}")
        self.rest = Rest(self.api)

    def call(self, verb: str, kind: str, namespace: str | None, request: Callable[[], T]) -> T:
        """Run one request; turn the API server's refusals into one sentence each."""
        try:
            return request()
        except (ApiException, HTTPError) as err:
            raise self.error(err, verb, kind, namespace) from None

    def error(self, err: Exception, verb: str, kind: str, namespace: str | None) -> ApiError:
        """The sentence for a failed request: the missing permission for a 403."""
        if not isinstance(err, ApiException):
            return ApiError(f"cannot reach the API server {self.api.configuration.host}: {err}")
        if err.status == 403:
            return ApiError(forbidden_message(verb, kind, namespace, self.user))
        if err.status == 401:
            return ApiError(
                f"unauthorized: the API server refused the credentials of context {self.context!r}"
            )
        return ApiError(
            f"{verb} {resource_name(kind)}: the API server answered {err.status} {err.reason}"
        )

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.call("get", kind, namespace, lambda: self.rest.get(kind, namespace, name))

    def list(self, kind: str, namespace: str | None) -> list[dict[str, Any]]:
        """Objects of a kind in one namespace, or in all of them (None)."""
        return self.call("list", kind, namespace, lambda: self.rest.list(kind, namespace))

    def patch_unless_changed(
        self, kind: str, namespace: str, name: str, body: dict[str, Any]
    ) -> bool:
        """Merge-patch the object; False when the patch names a resourceVersion that is no
        longer current (409), so the caller judges the object again."""
        try:
            self.rest.patch(kind, namespace, name, body)
        except ApiException as err:
            if err.status == 409:
                return False
            raise self.error(err, "patch", kind, namespace) from None
        except HTTPError as err:
            raise self.error(err, "patch", kind, namespace) from None
        return True

    def watch(self, kind: str, namespace: str, name: str) -> Iterator[dict[str, Any]]:
        """The object now, then each new version of it, from a Kubernetes watch (no polling).

        The watch resumes from the last version seen when the server ends it; when that version
        is too old (410 Gone) the object is read again and watched from there.
        """
        api = client.CustomObjectsApi(self.api)
        plural = RESOURCES[kind][1]
        arguments = (GROUP, VERSION, namespace, plural)
        selector = f"metadata.name={name}"
        version: str | None = None
        while True:
            if version is None:
                current = self.get(kind, namespace, name)
                if current is None:
                    fail(f"no {kind} {namespace}/{name}")
                version = current["metadata"]["resourceVersion"]
                yield current
            stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
                api.list_namespaced_custom_object,
                *arguments,
                field_selector=selector,
                resource_version=version,
            )
            try:
                for event in stream:
                    if event["type"] == "DELETED":
                        fail(f"{kind} {namespace}/{name} was deleted")
                    if event["type"] in ("ADDED", "MODIFIED"):
                        yield event["object"]
            except ApiException as err:
                if err.status != 410:
                    raise self.error(err, "watch", kind, namespace) from None
                version = None  # too old to resume from: read the object again
            except HTTPError as err:
                raise self.error(err, "watch", kind, namespace) from None
