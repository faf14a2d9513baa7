"""The demo shop's Kubernetes objects and its charter (pure: used by `make demo` and the tests).

The shop reads two ConfigMaps: its own (``demo-shop-config``, part of the charter's target: what
the operator may reset) and the simulated payments dependency's state (``demo-payments``, not
the shop's: a fault there is no fault of the shop's and cannot be fixed by changing it). Its
pods also take their environment from ``demo-shop-runtime`` (``envFrom``), runtime settings the
charter does not list: a change there, rolled out, is a fault outside the charter's targets.
"""

from __future__ import annotations

from typing import Any

APP = "demo-shop"
CONFIG = f"{APP}-config"
PAYMENTS = "demo-payments"
RUNTIME = f"{APP}-runtime"
GOOD_RUNTIME = {"EXTRA_LATENCY_MS": "0"}
IMAGE = "weavergen-operator:0.1.0"
GOOD_CONFIG = {
    "errorRate": "0.0",
    "latencyMs": "15",
    "attributeStyle": "semconv",
    "retryStorm": "false",
}
CORRUPT_CONFIG = {
    **GOOD_CONFIG,
    "errorRate": "0.6",
    "latencyMs": "120",
    "attributeStyle": "renamed",
}
HEALTHY_PAYMENTS = {"errorRate": "0.0"}
BAD_VERSION = "2.0.0-bad"
# A JSON patch of the shop's Deployment that rolls out the bad release.
BAD_RELEASE_PATCH = [
    {
        "op": "replace",
        "path": "/spec/template/spec/containers/0/args/3",
        "value": f"--version={BAD_VERSION}",
    }
]
PORT = 8080
# As the operator's own pod: non-root, read-only root, no capabilities, RuntimeDefault seccomp.
POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "runAsGroup": 65532,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


def shop_manifests(
    *, namespace: str, otlp_endpoint: str, version: str = "1.0.0"
) -> list[dict[str, Any]]:
    """ServiceAccount and Role (read its two ConfigMaps), the ConfigMaps, the Deployment and
    its Service. The shop exports its spans to ``otlp_endpoint`` (the operator's receiver)."""
    labels = {"app": APP}
    return [
        _service_account(),
        _role(),
        _role_binding(namespace),
        _config_map(CONFIG, GOOD_CONFIG),
        _config_map(PAYMENTS, HEALTHY_PAYMENTS),
        _config_map(RUNTIME, GOOD_RUNTIME),
        _deployment(labels, otlp_endpoint=otlp_endpoint, version=version),
        _service(labels),
    ]


def _service_account() -> dict[str, Any]:
    """The identity the shop's pods run as, so the Role can grant it its reads."""
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": APP}}


def _role() -> dict[str, Any]:
    """The shop reads its config and the payments state itself, and nothing else."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": APP},
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": [CONFIG, PAYMENTS],
                "verbs": ["get"],
            }
        ],
    }


def _role_binding(namespace: str) -> dict[str, Any]:
    """Grants the Role to the shop's ServiceAccount in ``namespace``."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": APP},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": APP},
        "subjects": [{"kind": "ServiceAccount", "name": APP, "namespace": namespace}],
    }


def _config_map(name: str, data: dict[str, str]) -> dict[str, Any]:
    """One of the shop's ConfigMaps in its healthy state, the state a demo starts from."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def _deployment(labels: dict[str, str], *, otlp_endpoint: str, version: str) -> dict[str, Any]:
    """The shop's Deployment: its pods run as its ServiceAccount, locked down as the operator."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": APP, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": APP,
                    "securityContext": POD_SECURITY,
                    "containers": [_shop_container(otlp_endpoint=otlp_endpoint, version=version)],
                },
            },
        },
    }


def _shop_container(*, otlp_endpoint: str, version: str) -> dict[str, Any]:
    """The shop itself: ``version`` is an argument (the bad release patches it), its runtime
    settings come from a ConfigMap outside the charter, and its spans go to ``otlp_endpoint``."""
    return {
        "name": "shop",
        "image": IMAGE,
        "args": ["demo", "app", f"--port={PORT}", f"--version={version}"],
        "ports": [{"name": "http", "containerPort": PORT}],
        "securityContext": CONTAINER_SECURITY,
        # A pod without a CPU request gets CPU last: on a busy node (a cycle's phase pods
        # starting beside it) its requests stalled for seconds and timed out.
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"memory": "256Mi"},
        },
        "readinessProbe": {
            "httpGet": {"path": "/healthz", "port": "http"},
            "periodSeconds": 1,
        },
        # Serve on while kube-proxy stops sending here: an endpoint leaves the Service a
        # moment after its pod is told to stop (the shop also serves on after SIGTERM until
        # requests stop coming, for when that moment is long).
        "lifecycle": {"preStop": {"sleep": {"seconds": 3}}},
        "envFrom": [{"configMapRef": {"name": RUNTIME}}],
        "env": [
            {
                "name": "POD_NAMESPACE",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
            },
            {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": otlp_endpoint},
            {"name": "OTEL_SERVICE_NAME", "value": APP},
        ],
    }


def _service(labels: dict[str, str]) -> dict[str, Any]:
    """The shop's Service on port 80: the load generator and the demo reach the shop through it."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": APP, "labels": labels},
        "spec": {
            "selector": labels,
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }


def charter(
    namespace: str,
    *,
    cadence_seconds: int = 3,
    executor: str = "job",
    trigger_mode: str = "auto",
    max_cycles: int = 3,
) -> dict[str, Any]:
    """A web-service charter for the shop: OTLP spans, a short window, a 20 s settle."""
    return {
        "apiVersion": "regeneration.weavergen.io/v1alpha1",
        "kind": "RegenerationCharter",
        "metadata": {"name": APP, "namespace": namespace},
        "spec": {
            "systemId": APP,
            "systemType": "web-service",
            "executor": executor,
            "target": {"workloads": [{"name": APP}], "configMaps": [CONFIG]},
            "telemetry": {
                "serviceName": APP,
                "source": "otlp",
                "windowSeconds": 15,
                "minSpans": 100,
                # The shop's SDK exports every 0.2 s (the SDK's default is 5 s), straight to
                # the receiver: 0.3 s to spare.
                "exportDelaySeconds": 0.5,
            },
            # The shop's latency objective, as a team would write it: 99% of requests within
            # 250 ms. Without it the objective is the baseline's own p99, which a busy node
            # (the tests run four at once on 2 cores) breaks without any fault of the shop's.
            "objectives": {"latencyThresholdMs": 250, "latencyTarget": 0.99},
            "cadence": {"measureIntervalSeconds": cadence_seconds},
            "trigger": {"mode": trigger_mode, "level": "medium"},
            "successCriteria": {
                "maxEntropyScore": 0.3,
                "minHealthScore": 0.9,
                "minEntropyReduction": 0.2,
                "maxRecoverySeconds": 180,
                "settleSeconds": 20,
                "verifyWindows": 1,
            },
            "circuitBreaker": {"maxCycles": max_cycles, "windowSeconds": 3600},
            "spc": {"baselinePoints": 8},
        },
    }
