"""The chart as rendered by the pinned helm: RBAC equal to config/rbac, values validated by its
schema, a restricted pod, peering, sharding (a StatefulSet and the Collector's exporter on one
ring), and the Grafana dashboard for the sidecar.

Runs the pinned helm binary (the one the local control plane uses); no cluster is needed.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.localplane.plane import Binaries, versions
from hack.localplane.services import COLLECTOR_CONFIG, collector_binary
from tests.helpers import REPO
from weavergen.config import OperatorConfig

CHART = REPO / "charts" / "weavergen-operator"
DASHBOARD = CHART / "dashboards" / "weavergen-operator.json"
NAME = "t-weavergen-operator-dashboard"


@pytest.fixture(scope="module")
def helm() -> Path:
    """The pinned helm, built first when missing (as the ``plane`` fixture does; never skipped)."""
    binaries = Binaries.from_cache()
    binaries.ensure_built()
    return binaries.helm


def run(helm: Path, *args: str) -> str:
    done = subprocess.run(
        [str(helm), *args], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, f"helm {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def template(helm: Path, *sets: str, namespace: str = "weavergen-system") -> list[dict[str, Any]]:
    """Render the chart as release ``t`` (for the pinned Kubernetes version: the chart's
    kubeVersion excludes helm's built-in default) and return its objects."""
    out = run(
        helm,
        "template",
        "t",
        str(CHART),
        "--namespace",
        namespace,
        "--kube-version",
        versions()["KUBE_VERSION"],
        *(arg for value in sets for arg in ("--set", value)),
    )
    return [doc for doc in yaml.safe_load_all(out) if doc]


def dashboards(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == NAME]


def test_renders_the_dashboard_for_the_sidecar(helm: Path) -> None:
    [configmap] = dashboards(template(helm))
    meta = configmap["metadata"]
    assert meta["namespace"] == "weavergen-system"
    assert meta["labels"]["grafana_dashboard"] == "1"
    assert meta["labels"]["app.kubernetes.io/name"] == "weavergen-operator"
    assert meta["labels"]["app.kubernetes.io/instance"] == "t"
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert meta["labels"]["helm.sh/chart"] == "weavergen-operator-0.1.0"
    assert "annotations" not in meta
    assert configmap["data"].keys() == {"weavergen-operator.json"}
    shipped = configmap["data"]["weavergen-operator.json"]
    assert shipped == DASHBOARD.read_text()  # byte for byte, final newline included
    assert json.loads(shipped)["uid"] == "weavergen-operator"


def test_disabled_renders_no_dashboard(helm: Path) -> None:
    assert dashboards(template(helm, "grafana.dashboard.enabled=false")) == []


def test_namespace_label_and_annotations_are_configurable(helm: Path) -> None:
    [configmap] = dashboards(
        template(
            helm,
            "grafana.dashboard.namespace=monitoring",
            "grafana.dashboard.label=my_dashboards",
            "grafana.dashboard.labelValue=yes",
            "grafana.dashboard.annotations.grafana_folder=WeaverGen",
        )
    )
    meta = configmap["metadata"]
    assert meta["namespace"] == "monitoring"
    assert meta["labels"]["my_dashboards"] == "yes"  # quoted: a string, not YAML's true
    assert "grafana_dashboard" not in meta["labels"]
    assert meta["annotations"] == {"grafana_folder": "WeaverGen"}


def test_lint_passes(helm: Path) -> None:
    out = run(helm, "lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in out


def rules(objects: list[dict[str, Any]], kind: str) -> set[tuple[str, str, tuple[str, ...]]]:
    """Every (apiGroup, resource, verbs) granted by every ``kind`` object."""
    return {
        (group, resource, tuple(sorted(rule["verbs"])))
        for obj in objects
        if obj["kind"] == kind
        for rule in obj["rules"]
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
    }


def test_rbac_is_the_same_as_config_rbac(helm: Path) -> None:
    config = [d for d in yaml.safe_load_all((REPO / "config/rbac/operator.yaml").read_text()) if d]
    phase = [d for d in yaml.safe_load_all((REPO / "config/rbac/phase.yaml").read_text()) if d]
    cluster_wide = template(helm, "phase.namespaces={shop}")
    assert rules(cluster_wide, "ClusterRole") == rules(config, "ClusterRole")
    assert rules(cluster_wide, "Role") == rules(phase, "Role")
    granted = rules(cluster_wide, "ClusterRole") | rules(phase, "Role")
    assert not any(resource == "secrets" for _, resource, _ in granted)


def test_namespaced_install_binds_only_in_its_namespaces(helm: Path) -> None:
    objects = template(helm, "watchNamespaces={shop,pay}")
    bindings = {
        (o["kind"], o["metadata"].get("namespace")) for o in objects if "Binding" in o["kind"]
    }
    assert ("ClusterRoleBinding", None) in bindings  # the cluster-scoped reads only
    assert {("RoleBinding", "shop"), ("RoleBinding", "pay")} <= bindings
    cluster_bound = {o["roleRef"]["name"] for o in objects if o["kind"] == "ClusterRoleBinding"}
    assert cluster_bound == {"t-weavergen-operator-cluster"}
    cluster_rules = rules(
        [o for o in objects if o["metadata"]["name"] == "t-weavergen-operator-cluster"],
        "ClusterRole",
    )
    assert all(not {"create", "update", "patch", "delete"} & set(r[2]) for r in cluster_rules)
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=shop" in args and "--namespace=pay" in args
    phase_accounts = {
        o["metadata"]["namespace"] for o in objects if o["kind"] == "ServiceAccount"
    } - {"weavergen-system"}
    assert phase_accounts == {"shop", "pay"}


def test_the_operator_pod_is_restricted_and_runs_one_at_a_time(helm: Path) -> None:
    [deployment] = [o for o in template(helm) if o["kind"] == "Deployment"]
    spec = deployment["spec"]
    assert spec["strategy"]["type"] == "Recreate" and spec["replicas"] == 1
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["WEAVERGEN_IMAGE"] == container["image"] == "weavergen-operator:0.1.0"
    assert "--standalone" in container["args"]


@pytest.mark.parametrize(
    ("sets", "files"),
    [
        (["prometheus.auth.bearerTokenSecret.name=prom-token"], {"bearer_token_file": "token"}),
        (
            ["prometheus.auth.basicAuthSecret.name=prom-basic"],
            {"username_file": "username", "password_file": "password"},
        ),
    ],
)
def test_prometheus_credentials_are_mounted_files_the_operator_reads(
    helm: Path, sets: list[str], files: dict[str, str]
) -> None:
    """The Secret the user names is mounted, and the variables point the operator's config at
    its keys there: the operator never reads a Secret through the API."""
    [deployment] = [
        o
        for o in template(helm, "prometheus.auth.url=http://prometheus.monitoring:9090", *sets)
        if o["kind"] == "Deployment"
    ]
    pod = deployment["spec"]["template"]["spec"]
    [volume] = [v for v in pod["volumes"] if "secret" in v]
    assert volume["secret"]["secretName"] == sets[0].split("=")[1]
    [mount] = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"] if "value" in e}
    auth = OperatorConfig.from_env(env).prometheus_auth
    assert auth is not None and auth.url == "http://prometheus.monitoring:9090"
    for field, key in files.items():
        assert getattr(auth, field) == Path(mount["mountPath"]) / key
    assert mount["readOnly"] is True


SINK = "notifications.sinks[{i}].{field}={value}"


def sink_values(i: int, name: str, kind: str, secret: str, key: str) -> list[str]:
    """The --set values of one notification sink."""
    fields = {"name": name, "type": kind, "urlSecret.name": secret, "urlSecret.key": key}
    return [SINK.format(i=i, field=f, value=v) for f, v in fields.items()]


def test_notification_sinks_are_mounted_files_the_operator_reads(helm: Path) -> None:
    """Each sink's URL is a key of the Secret the user names, mounted as a file named after the
    sink where the operator's config looks for it; types and defaults reach the operator."""
    sets = [
        *sink_values(0, "oncall", "slack", "weavergen-slack", "url"),
        *sink_values(1, "audit", "cloudevents", "audit-bus", "endpoint"),
        "notifications.defaultSinks={oncall}",
        "notifications.namespaceSinks.payments={audit,oncall}",
        "notifications.rateLimit.perMinute=12",
    ]
    [deployment] = [o for o in template(helm, *sets) if o["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    [volume] = [v for v in pod["volumes"] if v["name"] == "notifications"]
    sources = [s["secret"] for s in volume["projected"]["sources"]]
    assert sources == [
        {"name": "weavergen-slack", "items": [{"key": "url", "path": "oncall"}]},
        {"name": "audit-bus", "items": [{"key": "endpoint", "path": "audit"}]},
    ]
    [mount] = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "notifications"]
    assert mount["readOnly"] is True
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"] if "value" in e}
    settings = OperatorConfig.from_env(env).notifications
    assert settings.directory == Path(mount["mountPath"])
    assert settings.sinks == (("oncall", "slack"), ("audit", "cloudevents"))
    assert settings.default_sinks == ("oncall",)
    assert settings.defaults_for("payments") == ("audit", "oncall")
    assert settings.per_minute == 12.0 and settings.max_attempts == 8


def test_without_sinks_nothing_of_notifications_is_rendered(helm: Path) -> None:
    [deployment] = [o for o in template(helm) if o["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert all(v["name"] != "notifications" for v in pod["volumes"])
    names = {e["name"] for e in pod["containers"][0]["env"]}
    assert not {n for n in names if n.startswith("WEAVERGEN_NOTIFICATIONS_")}


def test_peering_gives_standbys_distinct_priorities(helm: Path) -> None:
    objects = template(
        helm, "peering.enabled=true", "replicas=2", "podDisruptionBudget.enabled=true"
    )
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--peering=weavergen" in args and "--priority=auto" in args
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert [o["kind"] for o in objects if o["kind"].endswith("KopfPeering")] == [
        "ClusterKopfPeering"
    ]
    assert any(o["kind"] == "PodDisruptionBudget" for o in objects)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("replicas=2", "replicas > 1 needs peering.enabled"),
        ("bogus=1", "additional properties 'bogus' not allowed"),
        ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
        ("operator.logFormat=xml", "/operator/logFormat"),
        ("watchNamespaces={Shop_1}", "/watchNamespaces/0"),
        ("receiver.port=0", "/receiver/port"),
        ("prometheus.auth.bearerTokenSecret.name=t", "prometheus.auth.url: the Prometheus"),
        ("prometheus.auth.url=prom:9090", "/prometheus/auth/url"),
        ("sharding.shards=0", "/sharding/shards"),
        ("sharding.shards=2,peering.enabled=true", "sharding.shards > 1 runs one pod per shard"),
        (",".join(sink_values(0, "ops", "email", "s", "url")), "/notifications/sinks/0/type"),
        (",".join(sink_values(0, "Ops", "slack", "s", "url")), "/notifications/sinks/0/name"),
        (",".join(sink_values(0, "ops", "slack", "s", "url")[:2]), "missing property 'urlSecret'"),
        (
            ",".join(
                sink_values(0, "ops", "slack", "s", "a")
                + sink_values(1, "ops", "webhook", "s", "b")
            ),
            "notifications.sinks: each sink needs a name of its own",
        ),
        ("notifications.defaultSinks={ops}", "notifications.defaultSinks: ops is not one of"),
        (
            "notifications.namespaceSinks.shop={ops}",
            "notifications.namespaceSinks.shop: ops is not one of",
        ),
        ("notifications.namespaceSinks.Shop={ops}", "invalid propertyName 'Shop'"),
        ("notifications.rateLimit.burst=0", "/notifications/rateLimit/burst"),
    ],
)
def test_bad_values_are_refused_with_the_field(helm: Path, value: str, message: str) -> None:
    done = subprocess.run(
        [str(helm), "template", "t", str(CHART), "--kube-version", versions()["KUBE_VERSION"],
         "--set", value],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert message in done.stderr, done.stderr


def test_the_chart_carries_the_crds_and_kopf_peering(helm: Path, tmp_path: Path) -> None:
    crds = CHART / "crds"
    assert (crds / "kopf-peering.yaml").read_text() == (
        REPO / "config" / "crd" / "kopf-peering.yaml"
    ).read_text()
    for generated in (REPO / "crds").glob("*.yaml"):
        assert (crds / generated.name).read_text() == generated.read_text()
    packaged = run(helm, "package", str(CHART), "--destination", str(tmp_path))
    assert "weavergen-operator-0.1.0.tgz" in packaged


def test_the_collector_runs_the_shipped_config_and_is_never_selected_as_the_operator(
    helm: Path,
) -> None:
    """collector.enabled runs files/collector.yaml as is (the example users copy), forwarding
    to the release's own receiver; its pods carry a name of their own, so the operator's
    Service never sends spans to the Collector."""
    assert not [o for o in template(helm) if "collector" in o["metadata"]["name"]]
    objects = template(helm, "collector.enabled=true", "collector.samplingPercentage=10")
    by_kind = {
        o["kind"]: o for o in objects if o["metadata"]["name"] == "t-weavergen-operator-collector"
    }
    assert set(by_kind) == {"ConfigMap", "Deployment", "Service"}
    shipped = (CHART / "files" / "collector.yaml").read_text()
    assert by_kind["ConfigMap"]["data"]["collector.yaml"].strip() == shipped.strip()
    pod = by_kind["Deployment"]["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["WEAVERGEN_RECEIVER_ENDPOINT"] == (
        "http://t-weavergen-operator.weavergen-system.svc:4318"
    )
    assert env["WEAVERGEN_SAMPLING_PERCENTAGE"] == "10"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    operator_selector = next(
        o
        for o in objects
        if o["kind"] == "Service" and o["metadata"]["name"] == "t-weavergen-operator"
    )["spec"]["selector"]
    labels = pod["metadata"]["labels"]
    assert not all(labels.get(k) == v for k, v in operator_selector.items())
    assert by_kind["Service"]["spec"]["selector"].items() <= labels.items()


def test_the_collector_config_is_valid_for_the_built_distribution() -> None:
    """The shipped configuration names only components the distribution was built with."""
    done = subprocess.run(
        [str(collector_binary()), "validate", f"--config={COLLECTOR_CONFIG}"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_sharding_renders_a_statefulset_whose_pods_and_collector_share_one_ring(
    helm: Path, tmp_path: Path
) -> None:
    objects = template(helm, "sharding.shards=3")
    assert not [o for o in objects if o["kind"] == "Deployment"]
    [shards] = [o for o in objects if o["kind"] == "StatefulSet"]
    [headless] = [o for o in objects if o["metadata"]["name"] == "t-weavergen-operator-shards"]
    [exporter] = [o for o in objects if o["metadata"]["name"].endswith("-collector-sharding")]
    spec, pod = shards["spec"], shards["spec"]["template"]["spec"]
    assert (spec["replicas"], spec["serviceName"]) == (3, "t-weavergen-operator-shards")
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"] == spec["selector"]["matchLabels"]
    container = pod["containers"][0]
    assert "--standalone" in container["args"] and "--receiver-grpc-port=4317" in container["args"]
    assert {"name": "otlp-grpc", "containerPort": 4317, "protocol": "TCP"} in container["ports"]
    env = {e["name"]: e for e in container["env"]}
    endpoints = env["WEAVERGEN_SHARD_ENDPOINTS"]["value"].split(",")
    assert endpoints == [
        f"t-weavergen-operator-{k}.t-weavergen-operator-shards.weavergen-system.svc"
        f".cluster.local:4317"
        for k in range(3)
    ]
    assert env["WEAVERGEN_SHARD_SELF"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    # Each pod finds itself in the list by its name; the Collector gets the very same strings.
    for k in range(3):
        config = OperatorConfig.from_env(
            {"WEAVERGEN_SHARD_ENDPOINTS": ",".join(endpoints),
             "WEAVERGEN_SHARD_SELF": f"{shards['metadata']['name']}-{k}"}
        )  # fmt: skip
        assert config.shard_endpoint == endpoints[k]
    snippet = yaml.safe_load(exporter["data"]["loadbalancing.yaml"])
    balancer = snippet["exporters"]["load_balancing/weavergen"]
    assert balancer["routing_key"] == "service"
    assert balancer["resolver"]["static"]["hostnames"] == endpoints
    # The real Collector accepts the chart's collector.yaml with the snippet over it.
    (tmp_path / "loadbalancing.yaml").write_text(exporter["data"]["loadbalancing.yaml"])
    done = subprocess.run(
        [str(collector_binary()), "validate", "--config", str(COLLECTOR_CONFIG),
         "--config", str(tmp_path / "loadbalancing.yaml")],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_unsharded_renders_no_shard_objects(helm: Path) -> None:
    objects = template(helm, "sharding.shards=1")
    assert [o["kind"] for o in objects if o["kind"] in ("Deployment", "StatefulSet")] == [
        "Deployment"
    ]
    assert not [o for o in objects if "shard" in o["metadata"]["name"]]
    env = {e["name"] for o in objects if o["kind"] == "Deployment"
           for e in o["spec"]["template"]["spec"]["containers"][0]["env"]}  # fmt: skip
    assert not {"WEAVERGEN_SHARD_ENDPOINTS", "WEAVERGEN_SHARD_SELF"} & env


def test_the_charts_own_collector_routes_by_shard_when_sharded(helm: Path) -> None:
    """collector.enabled with shards: the chart's Collector runs the sharding exporter over the
    shipped config, and restarts when the list of shards (its ring) changes."""
    objects = template(
        helm, "collector.enabled=true", "sharding.shards=2", "sharding.collectorConfigMap=false"
    )
    [collector] = [
        o for o in objects
        if o["kind"] == "Deployment" and o["metadata"]["name"] == "t-weavergen-operator-collector"
    ]  # fmt: skip
    assert [o for o in objects if o["metadata"]["name"].endswith("-collector-sharding")]
    pod = collector["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["args"] == [
        "--config=/etc/weavergen-collector/collector.yaml",
        "--config=/etc/weavergen-collector-sharding/loadbalancing.yaml",
    ]
    volumes = {v["name"]: v["configMap"]["name"] for v in pod["spec"]["volumes"]}
    assert volumes["sharding"] == "t-weavergen-operator-collector-sharding"
    three = template(helm, "collector.enabled=true", "sharding.shards=3")
    [restarted] = [
        o["spec"]["template"]["metadata"]["annotations"] for o in three
        if o["kind"] == "Deployment" and o["metadata"]["name"] == "t-weavergen-operator-collector"
    ]  # fmt: skip
    assert restarted["checksum/shards"] != pod["metadata"]["annotations"]["checksum/shards"]
