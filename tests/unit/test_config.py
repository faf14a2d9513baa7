"""The operator's settings from the environment: defaults, each variable, and bad values named."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO
from weavergen.config import ConfigError, NotificationSettings, OperatorConfig, PrometheusAuth


def test_without_variables_the_defaults_hold() -> None:
    config = OperatorConfig.from_env({})
    assert config == OperatorConfig()
    assert config.workers == 8
    assert config.namespaces == ()
    assert config.timer_seconds == 5.0
    assert (config.receiver_host, config.receiver_port) == ("127.0.0.1", 4318)
    assert config.receiver_token is None
    assert config.receiver_url is None
    assert config.kubeconfig is None
    assert config.image == "weavergen-operator:0.1.0"
    assert config.image_pull_policy == "IfNotPresent"
    assert config.phase_service_account == "weavergen-phase"
    assert config.phase_resources == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"memory": "512Mi"},
    }
    assert config.bpmn_dir == REPO / "bpmn"
    assert config.traceparent is None


TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("WEAVERGEN_WORKERS", "3", "workers", 3),
        ("WEAVERGEN_NAMESPACES", "shop,,billing", "namespaces", ("shop", "billing")),
        ("WEAVERGEN_NAMESPACES", "", "namespaces", ()),
        ("WEAVERGEN_TIMER_SECONDS", "0.5", "timer_seconds", 0.5),
        ("WEAVERGEN_RECEIVER_HOST", "0.0.0.0", "receiver_host", "0.0.0.0"),
        ("WEAVERGEN_RECEIVER_PORT", "0", "receiver_port", 0),
        ("WEAVERGEN_RECEIVER_PORT", "65535", "receiver_port", 65535),
        ("WEAVERGEN_RECEIVER_TOKEN", "s3cret", "receiver_token", "s3cret"),
        ("WEAVERGEN_RECEIVER_URL", "http://10.0.0.7:4318", "receiver_url", "http://10.0.0.7:4318"),
        ("WEAVERGEN_RECEIVER_URL", "", "receiver_url", None),
        ("KUBECONFIG", "/tmp/kubeconfig", "kubeconfig", "/tmp/kubeconfig"),
        ("KUBECONFIG", "", "kubeconfig", None),
        ("WEAVERGEN_IMAGE", "registry.local/weavergen:2", "image", "registry.local/weavergen:2"),
        ("WEAVERGEN_IMAGE_PULL_POLICY", "Never", "image_pull_policy", "Never"),
        ("WEAVERGEN_PHASE_SERVICE_ACCOUNT", "phases", "phase_service_account", "phases"),
        (
            "WEAVERGEN_PHASE_RESOURCES",
            '{"requests": {"cpu": "50m", "memory": 67108864}}',
            "phase_resources",
            {"requests": {"cpu": "50m", "memory": "67108864"}},
        ),
        ("WEAVERGEN_PHASE_RESOURCES", "{}", "phase_resources", {}),
        (
            "WEAVERGEN_PHASE_RESOURCES",
            '{"requests": {"cpu": ".5", "memory": "1e9", "ephemeral-storage": "+1Gi"}}',
            "phase_resources",
            {"requests": {"cpu": ".5", "memory": "1e9", "ephemeral-storage": "+1Gi"}},
        ),
        ("WEAVERGEN_BPMN_DIR", "/opt/weavergen/bpmn", "bpmn_dir", Path("/opt/weavergen/bpmn")),
        ("TRACEPARENT", TRACEPARENT, "traceparent", TRACEPARENT),
        ("TRACEPARENT", "", "traceparent", None),
    ],
)
def test_each_variable_sets_its_field(variable: str, value: str, field: str, expected: Any) -> None:
    assert OperatorConfig.from_env({variable: value}) == dataclasses.replace(
        OperatorConfig(), **{field: expected}
    )


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("WEAVERGEN_WORKERS", "x", "expected a positive integer, got 'x'"),
        ("WEAVERGEN_WORKERS", "0", "expected a positive integer, got '0'"),
        ("WEAVERGEN_WORKERS", "2.5", "expected a positive integer, got '2.5'"),
        ("WEAVERGEN_WORKERS", "", "expected a positive integer, got ''"),
        ("WEAVERGEN_TIMER_SECONDS", "soon", "expected a positive number of seconds, got 'soon'"),
        ("WEAVERGEN_TIMER_SECONDS", "0", "expected a positive number of seconds, got '0'"),
        ("WEAVERGEN_TIMER_SECONDS", "-1", "expected a positive number of seconds, got '-1'"),
        ("WEAVERGEN_TIMER_SECONDS", "nan", "expected a positive number of seconds, got 'nan'"),
        ("WEAVERGEN_TIMER_SECONDS", "inf", "expected a positive number of seconds, got 'inf'"),
        ("WEAVERGEN_RECEIVER_PORT", "http", "expected a port number from 0"),
        ("WEAVERGEN_RECEIVER_PORT", "65536", "(any free port) to 65535, got '65536'"),
        ("WEAVERGEN_RECEIVER_PORT", "-1", "(any free port) to 65535, got '-1'"),
        ("WEAVERGEN_RECEIVER_HOST", "", "expected a non-empty value, got ''"),
        ("WEAVERGEN_RECEIVER_TOKEN", "", "expected a non-empty value, got ''"),
        ("WEAVERGEN_IMAGE", "", "expected a non-empty value, got ''"),
        (
            "WEAVERGEN_IMAGE_PULL_POLICY",
            "always",
            "one of Always, IfNotPresent, Never, got 'always'",
        ),
        ("WEAVERGEN_PHASE_SERVICE_ACCOUNT", "", "expected a non-empty value, got ''"),
        ("WEAVERGEN_PHASE_RESOURCES", "100m", 'a JSON object with "requests" and/or "limits"'),
        ("WEAVERGEN_PHASE_RESOURCES", '{"request": {}}', 'with "requests" and/or "limits"'),
        ("WEAVERGEN_PHASE_RESOURCES", '{"limits": "1Gi"}', "limits as an object of resource"),
        (
            "WEAVERGEN_PHASE_RESOURCES",
            '{"limits": {"memory": "lots"}}',
            "a quantity for limits.memory (like 100m or 128Mi), not 'lots'",
        ),
        ("WEAVERGEN_BPMN_DIR", "", "expected a non-empty value, got ''"),
    ],
)
def test_a_bad_value_is_refused_with_the_variable_named(
    variable: str, value: str, problem: str
) -> None:
    with pytest.raises(ConfigError, match=f"^{variable}: ") as refused:
        OperatorConfig.from_env({variable: value})
    assert problem in str(refused.value)


def test_the_configuration_is_frozen() -> None:
    config = OperatorConfig.from_env({})
    with pytest.raises(AttributeError):
        config.workers = 2  # type: ignore[misc]


def python(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A fresh interpreter: the configuration is read once per process."""
    return subprocess.run(
        [sys.executable, *argv],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{REPO / 'operator'}:{REPO}", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_operator_stops_at_start_up_on_a_bad_variable() -> None:
    """Before kopf starts or any cluster is asked: the error names the variable, exit code 2."""
    done = python("-m", "weavergen.cli", "operator", "run", env={"WEAVERGEN_TIMER_SECONDS": "fast"})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "weavergen: error: WEAVERGEN_TIMER_SECONDS: expected a positive number of seconds, "
        "got 'fast'"
    )


def test_importing_the_command_line_reads_no_configuration() -> None:
    """``operator run`` writes its flags into the environment after the CLI is imported; a
    setting read at import would miss them."""
    code = (
        "import weavergen.cli, weavergen.config as c; "
        "assert c.operator_config.cache_info().currsize == 0"
    )
    done = python("-c", code, env={})
    assert done.returncode == 0, done.stderr


PROM = {
    "url": "WEAVERGEN_PROMETHEUS_AUTH_URL",
    "token": "WEAVERGEN_PROMETHEUS_BEARER_TOKEN_FILE",
    "user": "WEAVERGEN_PROMETHEUS_USERNAME_FILE",
    "password": "WEAVERGEN_PROMETHEUS_PASSWORD_FILE",
}


def test_prometheus_credentials_are_files_for_one_prometheus() -> None:
    token = OperatorConfig.from_env(
        {PROM["url"]: "http://prom:9090", PROM["token"]: "/etc/weavergen/prometheus/token"}
    ).prometheus_auth
    assert token == PrometheusAuth(
        "http://prom:9090", bearer_token_file=Path("/etc/weavergen/prometheus/token")
    )
    basic = OperatorConfig.from_env(
        {PROM["url"]: "https://p/", PROM["user"]: "/u", PROM["password"]: "/p"}
    ).prometheus_auth
    assert basic is not None and (basic.username_file, basic.password_file) == (
        Path("/u"),
        Path("/p"),
    )
    assert OperatorConfig.from_env({}).prometheus_auth is None


def test_credentials_go_to_their_prometheus_only() -> None:
    auth = PrometheusAuth("http://prom:9090/", bearer_token_file=Path("/t"))
    assert auth.covers("http://prom:9090") and auth.covers("http://prom:9090/api/v1/query")
    assert not auth.covers("http://prom:90901") and not auth.covers("http://evil/prom:9090")


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        (["token"], f"{PROM['url']}: expected the Prometheus the credentials are for"),
        (["url"], f"{PROM['url']}: expected {PROM['token']} or {PROM['user']} and"),
        (["url", "user"], f"{PROM['password']}: expected it beside {PROM['user']}"),
        (["url", "token", "user", "password"], "expected one way to authenticate, got both"),
    ],
)
def test_incomplete_or_ambiguous_prometheus_credentials_are_refused(
    given: list[str], problem: str
) -> None:
    env = {PROM[name]: "http://p:9090" if name == "url" else f"/{name}" for name in given}
    with pytest.raises(ConfigError) as refused:
        OperatorConfig.from_env(env)
    assert problem in str(refused.value)


def test_a_prometheus_auth_url_must_be_http() -> None:
    with pytest.raises(ConfigError, match=f"^{PROM['url']}: expected an http"):
        OperatorConfig.from_env({PROM["url"]: "prom:9090", PROM["token"]: "/t"})


def test_notification_sinks_come_with_their_types_defaults_and_limits() -> None:
    config = OperatorConfig.from_env(
        {
            "WEAVERGEN_NOTIFICATIONS_DIR": "/run/sinks",
            "WEAVERGEN_NOTIFICATIONS_SINKS": "ops=slack, audit=cloudevents,hook=webhook",
            "WEAVERGEN_NOTIFICATIONS_DEFAULT_SINKS": "ops,audit",
            "WEAVERGEN_NOTIFICATIONS_NAMESPACE_SINKS": '{"shop": ["hook"], "quiet": []}',
            "WEAVERGEN_NOTIFICATIONS_TIMEOUT_SECONDS": "2.5",
            "WEAVERGEN_NOTIFICATIONS_MAX_ATTEMPTS": "3",
            "WEAVERGEN_NOTIFICATIONS_PER_MINUTE": "6",
            "WEAVERGEN_NOTIFICATIONS_BURST": "2",
        }
    ).notifications
    assert config == NotificationSettings(
        directory=Path("/run/sinks"),
        sinks=(("ops", "slack"), ("audit", "cloudevents"), ("hook", "webhook")),
        default_sinks=("ops", "audit"),
        namespace_sinks=(("quiet", ()), ("shop", ("hook",))),
        timeout_seconds=2.5,
        max_attempts=3,
        per_minute=6.0,
        burst=2,
    )
    assert config.sink_type("audit") == "cloudevents" and config.sink_type("pager") is None
    # A namespace's own defaults replace the operator's; an empty list silences a namespace.
    assert config.defaults_for("shop") == ("hook",)
    assert config.defaults_for("quiet") == ()
    assert config.defaults_for("elsewhere") == ("ops", "audit")
    unset = OperatorConfig.from_env({}).notifications
    assert unset.sinks == () and unset.directory == Path("/etc/weavergen/notifications")


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"WEAVERGEN_NOTIFICATIONS_SINKS": "ops=email"}, "type one of webhook, slack, cloudevents"),
        ({"WEAVERGEN_NOTIFICATIONS_SINKS": "ops"}, "expected name=type pairs"),
        ({"WEAVERGEN_NOTIFICATIONS_SINKS": "=slack"}, "expected name=type pairs"),
        ({"WEAVERGEN_NOTIFICATIONS_SINKS": "Ops=slack"}, "DNS labels (not Ops)"),
        ({"WEAVERGEN_NOTIFICATIONS_SINKS": "a=slack,a=webhook"}, "distinct sink names"),
        (
            {
                "WEAVERGEN_NOTIFICATIONS_SINKS": "a=slack",
                "WEAVERGEN_NOTIFICATIONS_DEFAULT_SINKS": "b",
            },
            "WEAVERGEN_NOTIFICATIONS_DEFAULT_SINKS: b not among WEAVERGEN_NOTIFICATIONS_SINKS (a)",
        ),
        (
            {
                "WEAVERGEN_NOTIFICATIONS_SINKS": "a=slack",
                "WEAVERGEN_NOTIFICATIONS_NAMESPACE_SINKS": '{"shop": ["a", "pager"]}',
            },
            "WEAVERGEN_NOTIFICATIONS_NAMESPACE_SINKS['shop']: pager not among",
        ),
        (
            {"WEAVERGEN_NOTIFICATIONS_NAMESPACE_SINKS": '["a"]'},
            "a JSON object of namespaces to lists of sink names",
        ),
        (
            {"WEAVERGEN_NOTIFICATIONS_BURST": "0"},
            "WEAVERGEN_NOTIFICATIONS_BURST: expected a positive",
        ),
    ],
)
def test_bad_notification_settings_are_refused_with_the_variable_named(
    env: dict[str, str], problem: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        OperatorConfig.from_env(env)
    assert problem in str(refused.value)
