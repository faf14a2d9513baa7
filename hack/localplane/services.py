"""Telemetry services the tests run on the host beside a plane: the OpenTelemetry Collector
built by ``hack/build-collector.sh``, and Prometheus, from Debian's package.

Each runs as a child process with its log in a file, on ports the caller picks, and counts as
started once its readiness URL answers 200.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import yaml

from hack.localplane import REPO, read_text, versions
from hack.localplane.plane import PlaneError, cache_dir, free_port

COLLECTOR_CONFIG = REPO / "charts" / "weavergen-operator" / "files" / "collector.yaml"


@dataclass
class HostProcess:
    """A service process started by a test, ready once ``ready_url`` answers 200."""

    name: str
    argv: list[str]
    log: Path
    ready_url: str
    env: dict[str, str] = field(default_factory=dict)
    ready_headers: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> HostProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **self.env},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PlaneError(f"{self.name} exited {self.process.returncode}: {self.tail()}")
            if self.ready():
                return self
            time.sleep(0.2)
        self.stop()
        raise PlaneError(f"{self.name} not ready at {self.ready_url} in {timeout}s: {self.tail()}")

    def ready(self) -> bool:
        request = urllib.request.Request(self.ready_url, headers=self.ready_headers)
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def tail(self, lines: int = 30) -> str:
        return "\n".join(read_text(self.log).splitlines()[-lines:])

    def __enter__(self) -> HostProcess:
        return self.start() if self.process is None else self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __str__(self) -> str:
        return f"{self.name} (log: {self.log})"


def collector_binary() -> Path:
    """The Collector distribution, built first when missing (about two minutes cold)."""
    binary = cache_dir() / "bin" / f"otelcol-{versions()['OTELCOL_VERSION']}" / "weavergen-otelcol"
    if not os.access(binary, os.X_OK):
        subprocess.run(["bash", str(REPO / "hack" / "build-collector.sh")], check=True)
    return binary


@dataclass(frozen=True)
class CollectorPorts:
    otlp_grpc: int
    otlp_http: int
    prometheus: int
    health: int

    @classmethod
    def free(cls) -> CollectorPorts:
        return cls(free_port(), free_port(), free_port(), free_port())


def collector(
    workdir: Path,
    receiver_endpoint: str,
    *,
    sampling_percentage: float = 25,
    config: Path = COLLECTOR_CONFIG,
    over: Sequence[Path] = (),
    ports: CollectorPorts | None = None,
    flush_interval: str = "2s",
) -> tuple[HostProcess, CollectorPorts]:
    """The chart's Collector configuration (the example users copy) on loopback ports,
    forwarding its sample to ``receiver_endpoint``, with the files ``over`` merged over it in
    order (as the Collector merges its ``--config`` files); not yet started."""
    ports = ports or CollectorPorts.free()
    env = {
        "COLLECTOR_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{ports.otlp_grpc}",
        "COLLECTOR_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{ports.otlp_http}",
        "PROMETHEUS_EXPORTER_ENDPOINT": f"127.0.0.1:{ports.prometheus}",
        "COLLECTOR_HEALTH_ENDPOINT": f"127.0.0.1:{ports.health}",
        "WEAVERGEN_RECEIVER_ENDPOINT": receiver_endpoint,
        "WEAVERGEN_SAMPLING_PERCENTAGE": str(sampling_percentage),
        "SPANMETRICS_FLUSH_INTERVAL": flush_interval,
    }
    process = HostProcess(
        "otel-collector",
        [
            str(collector_binary()),
            *(a for path in (config, *over) for a in ("--config", str(path))),
        ],
        workdir / "otel-collector.log",
        f"http://127.0.0.1:{ports.health}/",
        env,
    )
    return process, ports


def argo_rollouts() -> Path:
    """Where the Argo Rollouts controller and its CRDs (``crds/``) are, built first when
    missing."""
    built = cache_dir() / "bin" / f"argo-rollouts-{versions()['ARGO_ROLLOUTS_VERSION']}"
    if not (os.access(built / "rollouts-controller", os.X_OK) and (built / "crds").is_dir()):
        subprocess.run(["bash", str(REPO / "hack" / "build-argo-rollouts.sh")], check=True)
    return built


def rollouts_controller(kubeconfig: Path, namespace: str, workdir: Path) -> HostProcess:
    """The Argo Rollouts controller for one namespace (``--namespaced``: tests running side
    by side each drive their own Rollouts); not yet started."""
    health = free_port()
    return HostProcess(
        "argo-rollouts",
        [
            str(argo_rollouts() / "rollouts-controller"),
            f"--kubeconfig={kubeconfig}",
            "--namespaced",
            f"--namespace={namespace}",
            "--leader-elect=false",
            f"--healthzPort={health}",
            f"--metricsPort={free_port()}",
            "--rollout-threads=2",
            "--loglevel=info",
        ],
        workdir / "argo-rollouts.log",
        f"http://127.0.0.1:{health}/healthz",
    )


def module_file(module: str, version: str, path: str) -> Path:
    """A file of a Go module's source (downloaded through the Go module proxy, not built)."""
    found = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"},
        timeout=600,
    )
    return Path(json.loads(found.stdout)["Dir"]) / path


def argocd_application_crd() -> Path:
    """Argo CD's Application CRD (Argo CD itself does not build here)."""
    version = versions()["ARGOCD_VERSION"]
    return module_file(
        "github.com/argoproj/argo-cd/v3", version, "manifests/crds/application-crd.yaml"
    )


def flux_kustomization_crd() -> Path:
    """Flux's Kustomization CRD, from the kustomize-controller module."""
    version = versions()["FLUX_KUSTOMIZE_VERSION"]
    return module_file(
        "github.com/fluxcd/kustomize-controller",
        version,
        "config/crd/bases/kustomize.toolkit.fluxcd.io_kustomizations.yaml",
    )


PROMETHEUS = Path("/usr/bin/prometheus")


def prometheus(
    workdir: Path,
    targets: list[str],
    *,
    scrape_interval: str = "1s",
    users: dict[str, str] | None = None,
    ready_headers: dict[str, str] | None = None,
    port: int | None = None,
) -> tuple[HostProcess, str]:
    """Prometheus (Debian's package) scraping ``targets`` (host:port of /metrics, e.g. the
    Collector's prometheus exporter) every ``scrape_interval``, its data under ``workdir``, on
    a free loopback port; not yet started. ``users`` (name: bcrypt hash) turns on its own
    basic authentication (``--web.config.file``); then ``ready_headers`` must carry it. Returns
    the process and the URL of its HTTP API. The same ``port`` and ``workdir`` restart it with
    the data it had."""
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(
        "global:\n"
        f"  scrape_interval: {scrape_interval}\n"
        f"  evaluation_interval: {scrape_interval}\n"
        "scrape_configs:\n"
        "  - job_name: telemetry\n"
        f"    static_configs: [{{targets: {json.dumps(targets)}}}]\n"
    )
    argv = [
        str(PROMETHEUS),
        f"--config.file={config}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=2h",
    ]
    if users:
        web = workdir / "web.yml"
        web.write_text("basic_auth_users:\n" + "".join(f"  {u}: {h}\n" for u, h in users.items()))
        argv.append(f"--web.config.file={web}")
    url = f"http://127.0.0.1:{port}"
    process = HostProcess(
        "prometheus",
        argv,
        workdir / "prometheus.log",
        f"{url}/-/ready",
        ready_headers=dict(ready_headers or {}),
    )
    return process, url


def loadbalancing_config(helm: Path, endpoints: Sequence[str], path: Path) -> Path:
    """The chart's load_balancing exporter for the Collector (its ``-collector-sharding``
    ConfigMap, rendered by ``helm``), listing ``endpoints`` (loopback receivers) instead of the
    StatefulSet's pods; written to ``path`` for ``collector(over=...)``."""
    rendered = subprocess.run(
        [str(helm), "template", "t", str(REPO / "charts" / "weavergen-operator"),
         "--kube-version", versions()["KUBE_VERSION"],
         "--set", f"sharding.shards={len(endpoints)}",
         "--show-only", "templates/collector-sharding.yaml"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    config = yaml.safe_load(yaml.safe_load(rendered)["data"]["loadbalancing.yaml"])
    resolver = config["exporters"]["load_balancing/weavergen"]["resolver"]
    if len(resolver["static"]["hostnames"]) != len(endpoints):
        raise PlaneError(f"the chart rendered {resolver} for {len(endpoints)} shards")
    resolver["static"]["hostnames"] = list(endpoints)
    path.write_text(yaml.safe_dump(config))
    return path
