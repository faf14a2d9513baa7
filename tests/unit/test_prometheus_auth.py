"""The operator's Prometheus credentials: read from their files at each request, sent to their
Prometheus only (basic authentication is also tested against Prometheus's own web config in
tests/integration/test_prometheus.py)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from weavergen.config import PrometheusAuth
from weavergen.domain.errors import PrometheusQueryFailed
from weavergen.telemetry.prometheus import Prometheus

URL = "http://prometheus.monitoring:9090"


def test_a_bearer_token_is_read_anew_for_each_request(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    client = Prometheus(PrometheusAuth(URL, bearer_token_file=token))
    assert client.headers(URL) == {"Authorization": "Bearer first"}
    token.write_text("rotated")  # a Secret updated in place by the kubelet
    assert client.headers(f"{URL}/") == {"Authorization": "Bearer rotated"}


def test_basic_credentials_keep_the_password_as_written(tmp_path: Path) -> None:
    (tmp_path / "u").write_text("weavergen\n")
    (tmp_path / "p").write_text(" pass word \n")
    client = Prometheus(PrometheusAuth(URL, None, tmp_path / "u", tmp_path / "p"))
    [(name, value)] = client.headers(URL).items()
    assert name == "Authorization" and value.startswith("Basic ")
    assert base64.b64decode(value.removeprefix("Basic ")).decode() == "weavergen: pass word "


def test_another_prometheus_gets_no_credentials(tmp_path: Path) -> None:
    client = Prometheus(PrometheusAuth(URL, bearer_token_file=tmp_path / "missing"))
    assert client.headers("http://prometheus.monitoring:9091") == {}
    assert Prometheus().headers(URL) == {}


def test_unreadable_credentials_fail_the_query_naming_the_file(tmp_path: Path) -> None:
    client = Prometheus(PrometheusAuth(URL, bearer_token_file=tmp_path / "missing"))
    with pytest.raises(PrometheusQueryFailed, match=f"{URL}: cannot read .*missing"):
        client.headers(URL)
