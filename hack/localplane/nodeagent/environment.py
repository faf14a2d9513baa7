"""Each container's environment, as a kubelet builds it: a base (PATH, HOME, a kubeconfig with a
token of the pod's service account), then envFrom, then env with its fieldRef, configMapKeyRef and
secretKeyRef values and $(VAR) references."""

from __future__ import annotations

import base64
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from hack.localplane.node import NODE_NAME
from hack.localplane.nodeagent.pods import Container, PodRunner

VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """Replace $(VAR) references with values from ``env``; unknown ones stay as written."""
    return VAR_REF.sub(lambda m: env.get(m[1], m[0]), text)


class PodEnvironment:
    """Builds the environments of a pod's containers, reading what they refer to as the agent."""

    def __init__(self, core: client.CoreV1Api, kubeconfig: dict[str, Any]) -> None:
        self.core = core
        self.kubeconfig = kubeconfig

    def prepare(self, runner: PodRunner) -> None:
        """Fill ``runner.env`` for every container; when a reference cannot be resolved, the
        containers wait in CreateContainerConfigError, as with a kubelet."""
        try:
            base = self.base_env(runner)
            for container in runner.all_containers():
                runner.env[container.name] = {**base, **self.container_env(runner, container)}
        except (ApiException, KeyError) as err:
            reason = getattr(err, "reason", None) or f"missing {err}"
            runner.message = f"cannot prepare the pod's environment: {reason}"
            for container in runner.all_containers():
                container.waiting = "CreateContainerConfigError"

    def base_env(self, runner: PodRunner) -> dict[str, str]:
        """What every container gets: the project's Python first on PATH, the pod's directory as
        HOME, and a KUBECONFIG unless the pod opts out of its service account token."""
        spec = runner.pod["spec"]
        bin_dir = str(Path(sys.executable).parent)
        env = {
            "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "/usr/bin:/bin")]),
            "HOME": str(runner.directory),
            "HOSTNAME": runner.name,
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "PYTHONUNBUFFERED": "1",
        }
        if spec.get("automountServiceAccountToken", True):
            env["KUBECONFIG"] = str(self.pod_kubeconfig(runner))
        return env

    def pod_kubeconfig(self, runner: PodRunner) -> Path:
        """A kubeconfig with a token for the pod's service account, bound to the pod."""
        sa = runner.pod["spec"].get("serviceAccountName") or "default"
        token = self.service_account_token(runner, sa)
        cluster = self.kubeconfig["clusters"][0]
        path = runner.directory / "kubeconfig"
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [cluster],
                    "users": [{"name": sa, "user": {"token": token}}],
                    "contexts": [
                        {
                            "name": "pod",
                            "context": {
                                "cluster": cluster["name"],
                                "user": sa,
                                "namespace": runner.namespace,
                            },
                        }
                    ],
                    "current-context": "pod",
                }
            )
        )
        path.chmod(0o600)
        return path

    def service_account_token(self, runner: PodRunner, sa: str) -> str:
        """A TokenRequest token bound to the pod, so it stops working once the pod is deleted."""
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "expirationSeconds": 48 * 3600,
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": runner.name,
                    "uid": runner.uid,
                },
            },
        }
        answer = self.core.create_namespaced_service_account_token(sa, runner.namespace, request)
        token: str = answer.status.token
        return token

    def container_env(self, runner: PodRunner, container: Container) -> dict[str, str]:
        """The container's own variables: envFrom, then env (env wins, as in Kubernetes)."""
        env = self.env_from(runner, container)
        for item in container.spec.get("env") or []:
            if "value" in item:
                env[item["name"]] = expand(item["value"], env)
            else:
                value = self.env_value(runner, item.get("valueFrom") or {})
                if value is not None:
                    env[item["name"]] = value
        return env

    def env_value(self, runner: PodRunner, source: dict[str, Any]) -> str | None:
        """An env entry's valueFrom; None for an optional key that is missing."""
        if "fieldRef" in source:
            return field_value(runner, source["fieldRef"]["fieldPath"])
        if "resourceFieldRef" in source:
            return "1"
        for kind in ("configMap", "secret"):
            ref = source.get(f"{kind}KeyRef")
            if ref:
                try:
                    return self.config_data(kind, runner.namespace, ref["name"])[ref["key"]]
                except (ApiException, KeyError):
                    if not ref.get("optional"):
                        raise
        return None

    def env_from(self, runner: PodRunner, container: Container) -> dict[str, str]:
        """Every key of the ConfigMaps and Secrets in envFrom, with their prefix."""
        env: dict[str, str] = {}
        for source in container.spec.get("envFrom") or []:
            for kind in ("configMap", "secret"):
                ref = source.get(f"{kind}Ref")
                if ref:
                    try:
                        data = self.config_data(kind, runner.namespace, ref["name"])
                    except ApiException:
                        if ref.get("optional"):
                            continue
                        raise
                    prefix = source.get("prefix", "")
                    env.update({prefix + k: v for k, v in data.items()})
        return env

    def config_data(self, kind: str, namespace: str, name: str) -> dict[str, str]:
        """A ConfigMap's data, or a Secret's decoded."""
        if kind == "configMap":
            return dict(self.core.read_namespaced_config_map(name, namespace).data or {})
        raw = self.core.read_namespaced_secret(name, namespace).data or {}
        return {k: base64.b64decode(v).decode() for k, v in raw.items()}


def field_value(runner: PodRunner, path: str) -> str:
    """A fieldRef's value: the pod's name, namespace, uid, labels and annotations, this node, and
    127.0.0.1 for the pod's and host's IP (pods share the host's network here)."""
    pod = runner.pod
    simple = {
        "metadata.name": pod["metadata"]["name"],
        "metadata.namespace": pod["metadata"]["namespace"],
        "metadata.uid": pod["metadata"]["uid"],
        "spec.nodeName": NODE_NAME,
        "spec.serviceAccountName": pod["spec"].get("serviceAccountName", "default"),
        "status.podIP": "127.0.0.1",
        "status.hostIP": "127.0.0.1",
    }
    if path in simple:
        return str(simple[path])
    match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if match:
        return str((pod["metadata"].get(match[1]) or {}).get(match[2], ""))
    return ""
