"""Charters measured from Prometheus: spans pushed to the real Collector, its span_metrics
scraped by a real Prometheus (Debian's), read by the operator (``telemetry.source: prometheus``).

The Collector flushes span_metrics every 2 s and Prometheus scrapes it every second, so a 20 s
window holds ten flushes: its counts move by a tenth at most with where the window falls.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from hack.localplane.plane import Plane, free_port
from hack.localplane.services import collector, prometheus
from tests.integration.conftest import wait_for
from tests.integration.test_operator import charter, charter_status
from tests.scenario import OperatorProcess, SpanPusher, apply, condition, config_map, deployment
from weavergen.api.charter import PrometheusSpec
from weavergen.config import PrometheusAuth
from weavergen.domain.errors import PrometheusQueryFailed, PrometheusUnavailable
from weavergen.domain.simulation.simulator import Faults
from weavergen.k8s.cluster_target import baseline_name
from weavergen.k8s.red_target import RED_KEY, SAMPLES_KEY
from weavergen.k8s.rest import Rest
from weavergen.telemetry.prometheus import Prometheus

# Prometheus's own basic authentication (--web.config.file) wants a bcrypt hash: this one is of
# PASSWORD (cost 4, the least bcrypt allows: the test is about who may ask, not hashing).
USER, PASSWORD = "weavergen", "weavergen-test-password"
HASH = "$2b$04$jKLK8TFpzmOvyW24DJiA0uj4BfnGzvwoV2zJP3EcTLVz.78YD7ti2"
BASIC = {"Authorization": "Basic d2VhdmVyZ2VuOndlYXZlcmdlbi10ZXN0LXBhc3N3b3Jk"}


class Telemetry:
    """The Collector forwarding its sample to ``receiver`` and exporting span_metrics, and a
    Prometheus scraping it; spans pushed for ``services``."""

    def __init__(self, workdir: Path, receiver: str, services: list[str], **prom: Any) -> None:
        self.collector, ports = collector(workdir, receiver)
        self.prometheus, self.url = prometheus(
            workdir / "prometheus", [f"127.0.0.1:{ports.prometheus}"], **prom
        )
        self.pusher = SpanPusher(ports.otlp_http, services, interval=0.5, window_s=3)

    def __enter__(self) -> Telemetry:
        self.collector.start()
        self.prometheus.start()
        self.pusher.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.pusher.stop()
        self.prometheus.stop()
        self.collector.stop()


@pytest.fixture
def telemetry_dir(tmp_path: Path) -> Path:
    return tmp_path / "telemetry"


def prometheus_charter(url: str) -> dict[str, Any]:
    spec = charter("observe")
    spec["spec"]["telemetry"] = {
        "serviceName": "web",
        "source": "prometheus",
        "prometheus": {"url": url},
        "windowSeconds": 20,
        "minSpans": 100,
        "baseline": {"captureWindows": 1},
    }
    return spec


def sent(outcome: str) -> float:
    """The operator's count of queries sent with this outcome (this process's registry)."""
    return (
        REGISTRY.get_sample_value("weavergen_prometheus_queries_total", {"outcome": outcome}) or 0
    )


def indicators(status: dict[str, Any]) -> set[str]:
    return {i["type"] for i in (status.get("entropy") or {}).get("indicators", [])}


def drops(status: dict[str, Any]) -> str:
    """The evidence of a throughput_drop, if the status has one."""
    found = (status.get("entropy") or {}).get("indicators", [])
    return " ".join(i["summary"] for i in found if i["type"] == "throughput_drop")


def test_a_charter_is_measured_from_span_metrics_in_prometheus(
    plane: Plane,
    rest: Rest,
    namespace: str,
    operator: OperatorProcess,
    telemetry_dir: Path,
) -> None:
    """Healthy is LOW; errors, latency and silence each show as their indicator; Prometheus
    stopped is a charter that is not Ready, saying why: never a guess."""
    port = wait_for(operator.receiver_port, 30, what="the operator's OTLP receiver")
    with Telemetry(telemetry_dir, f"http://127.0.0.1:{port}", ["web"]) as telemetry:
        apply(plane, namespace, deployment("web"), config_map("web-config", {"a": "1"}))
        spec = prometheus_charter(telemetry.url)
        plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(spec))

        def await_charter(until: Any, what: str, timeout: float = 120) -> dict[str, Any]:
            return charter_status(
                rest, namespace, until, timeout=timeout, what=f"{what} (operator log: {operator})"
            )

        healthy = await_charter(
            lambda s: (s.get("entropy") or {}).get("level"), "a measurement from Prometheus"
        )
        assert healthy["entropy"]["level"] == "low", healthy["entropy"]
        assert healthy["entropy"]["sources"] == {"red": "prometheus", "semanticConventions": "otlp"}
        stored = (rest.get("ConfigMap", namespace, baseline_name("web")) or {})["data"]
        assert json.loads(stored[RED_KEY])["windowSeconds"] == 20 and SAMPLES_KEY in stored

        telemetry.pusher.set_faults(Faults(error_rate=0.35))
        sick = await_charter(lambda s: condition(s, "Degraded") == "True", "the errors to show")
        assert "error_rate_increase" in indicators(sick)

        telemetry.pusher.set_faults(Faults(latency_factor=4.0))
        await_charter(lambda s: "latency_degradation" in indicators(s), "the latency to show")

        telemetry.pusher.stop()
        # The window empties as it moves on: a falling rate first, then silence.
        silent = await_charter(lambda s: "silent=True" in drops(s), "the silence")
        assert silent["entropy"]["level"] in ("high", "critical")

        telemetry.prometheus.stop()
        down = await_charter(lambda s: condition(s, "Ready") == "False", "Ready to turn False")
    ready = next(c for c in down["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "PrometheusUnavailable"
    assert telemetry.url in ready["message"] and "did not answer" in ready["message"]
    assert telemetry.pusher.failures == []


def test_queries_are_shared_authenticated_and_their_failures_named(
    tmp_path: Path, telemetry_dir: Path
) -> None:
    """One query per question for fifty services; the operator's credentials open Prometheus's
    own basic authentication, and go to that Prometheus only; refusals name URL and error."""
    services = [f"svc-{i:02d}" for i in range(50)]
    receiver = f"http://127.0.0.1:{free_port()}"  # nobody: the sample is dropped
    (tmp_path / "user").write_text(USER)
    (tmp_path / "password").write_text(PASSWORD + "\n")
    with Telemetry(
        telemetry_dir, receiver, services, users={USER: HASH}, ready_headers=BASIC
    ) as telemetry:
        auth = PrometheusAuth(telemetry.url, None, tmp_path / "user", tmp_path / "password")
        client = Prometheus(auth)
        spec = PrometheusSpec(url=telemetry.url)
        end = client.now()

        def everyone_counted() -> bool:
            nonlocal end
            end = client.now()
            return all(client.red(spec, s, 10, end).requests > 0 for s in services)

        wait_for(everyone_counted, 90, what="requests of all fifty services in Prometheus")
        asked = client.asked
        windows = [client.red(spec, s, 10, end) for s in services]
        assert client.asked == asked  # all answered by the three shared queries of the slot
        assert all(w.errors <= w.requests and w.buckets for w in windows)

        (tmp_path / "password").write_text("wrong")
        with pytest.raises(PrometheusQueryFailed, match="401") as refused:
            Prometheus(auth).red(spec, "svc-00", 10, end)
        assert telemetry.url in str(refused.value)
        elsewhere = PrometheusAuth("http://127.0.0.1:1", None, tmp_path / "u", tmp_path / "p")
        with pytest.raises(PrometheusQueryFailed, match="401"):  # no credentials sent
            Prometheus(elsewhere).red(spec, "svc-00", 10, end)

        (tmp_path / "password").write_text(PASSWORD)
        broken = PrometheusSpec(url=telemetry.url, errors="sum(rate(x[{{window}}])")
        with pytest.raises(PrometheusQueryFailed, match=r"bad_data.*parse error") as unparsed:
            Prometheus(auth).red(broken, "svc-00", 10, end)
        assert telemetry.url in str(unparsed.value) and "errors query" in str(unparsed.value)
        telemetry.prometheus.stop()
        unavailable = sent("unavailable")
        with pytest.raises(PrometheusUnavailable, match=f"{telemetry.url} did not answer"):
            Prometheus(auth).red(spec, "svc-00", 10, client.now() + 5)
        assert sent("unavailable") == unavailable + 1  # one query: the others never asked
