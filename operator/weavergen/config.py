"""The operator's settings: read from the environment once, checked, then frozen.

``operator_config()`` reads them on its first call: in the operator when ``operator run`` has
put its flags into the environment and imports the handlers (kopf fixes the timer interval at
import), in a phase Job or another command when a setting is first needed. A bad value stops
the process there, with the variable named, rather than wherever it would first be used.

``OTEL_*`` is not here: the OpenTelemetry SDK reads those variables itself, as its specification
says (``telemetry.tracing``), and phase Jobs get them passed on as they are (``k8s.jobs``).
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

PULL_POLICIES = ("Always", "IfNotPresent", "Never")
SINK_TYPES = ("webhook", "slack", "cloudevents")
SINK_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")

T = TypeVar("T")


class ConfigError(ValueError):
    """A variable whose value the operator cannot run with."""


@dataclass(frozen=True)
class PrometheusAuth:
    """Credentials for the Prometheus at ``url``, as files mounted from a Secret: a bearer
    token, or a username and a password. Read at each request (a rotated Secret changes the
    files in place); sent to that Prometheus only, never to another URL a charter names."""

    url: str
    bearer_token_file: Path | None = None
    username_file: Path | None = None
    password_file: Path | None = None

    def covers(self, url: str) -> bool:
        """Whether ``url`` is this Prometheus (the same base URL, or a path under it)."""
        base, other = self.url.rstrip("/"), url.rstrip("/")
        return other == base or other.startswith(base + "/")


PROMETHEUS_VARIABLES = {
    "url": "WEAVERGEN_PROMETHEUS_AUTH_URL",
    "bearer_token_file": "WEAVERGEN_PROMETHEUS_BEARER_TOKEN_FILE",
    "username_file": "WEAVERGEN_PROMETHEUS_USERNAME_FILE",
    "password_file": "WEAVERGEN_PROMETHEUS_PASSWORD_FILE",
}


@dataclass(frozen=True)
class NotificationSettings:
    """Where notifications go: the sinks by name and type, each sink's URL in a file of
    ``directory`` named after it (mounted from a Secret, read at each send so a rotated Secret
    takes effect), the sinks of charters that name none, and delivery's limits."""

    directory: Path = Path("/etc/weavergen/notifications")  # WEAVERGEN_NOTIFICATIONS_DIR
    # WEAVERGEN_NOTIFICATIONS_SINKS: name=type pairs, comma-separated (type: SINK_TYPES)
    sinks: tuple[tuple[str, str], ...] = ()
    # WEAVERGEN_NOTIFICATIONS_DEFAULT_SINKS, comma-separated: for charters that name none
    default_sinks: tuple[str, ...] = ()
    # WEAVERGEN_NOTIFICATIONS_NAMESPACE_SINKS, JSON {"namespace": ["sink", ...]}: the defaults
    # of charters in that namespace, instead of default_sinks
    namespace_sinks: tuple[tuple[str, tuple[str, ...]], ...] = ()
    timeout_seconds: float = 10.0  # WEAVERGEN_NOTIFICATIONS_TIMEOUT_SECONDS: per attempt
    max_attempts: int = 8  # WEAVERGEN_NOTIFICATIONS_MAX_ATTEMPTS: then the message failed
    per_minute: float = 30.0  # WEAVERGEN_NOTIFICATIONS_PER_MINUTE: per charter and sink
    burst: int = 10  # WEAVERGEN_NOTIFICATIONS_BURST: messages sent at once before the rate

    def sink_type(self, name: str) -> str | None:
        return dict(self.sinks).get(name)

    def defaults_for(self, namespace: str) -> tuple[str, ...]:
        """The sinks of a charter in ``namespace`` that names none."""
        return dict(self.namespace_sinks).get(namespace, self.default_sinks)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> NotificationSettings:
        default = cls()
        sinks = _read(env, "WEAVERGEN_NOTIFICATIONS_SINKS", default.sinks, _sinks)
        defaults = _read(
            env, "WEAVERGEN_NOTIFICATIONS_DEFAULT_SINKS", default.default_sinks, _names
        )
        by_namespace = _read(
            env, "WEAVERGEN_NOTIFICATIONS_NAMESPACE_SINKS", default.namespace_sinks, _sinks_by_ns
        )
        for variable, named in (
            ("WEAVERGEN_NOTIFICATIONS_DEFAULT_SINKS", defaults),
            *(
                (f"WEAVERGEN_NOTIFICATIONS_NAMESPACE_SINKS[{ns!r}]", names)
                for ns, names in by_namespace
            ),
        ):
            unknown = [name for name in named if name not in dict(sinks)]
            if unknown:
                raise ConfigError(
                    f"{variable}: {', '.join(unknown)} not among "
                    f"WEAVERGEN_NOTIFICATIONS_SINKS ({', '.join(dict(sinks)) or 'none'})"
                )
        return cls(
            directory=Path(
                _read(env, "WEAVERGEN_NOTIFICATIONS_DIR", str(default.directory), _text)
            ),
            sinks=sinks,
            default_sinks=defaults,
            namespace_sinks=by_namespace,
            timeout_seconds=_read(
                env,
                "WEAVERGEN_NOTIFICATIONS_TIMEOUT_SECONDS",
                default.timeout_seconds,
                _positive_seconds,
            ),
            max_attempts=_read(
                env, "WEAVERGEN_NOTIFICATIONS_MAX_ATTEMPTS", default.max_attempts, _positive_int
            ),
            per_minute=_read(
                env, "WEAVERGEN_NOTIFICATIONS_PER_MINUTE", default.per_minute, _positive_seconds
            ),
            burst=_read(env, "WEAVERGEN_NOTIFICATIONS_BURST", default.burst, _positive_int),
        )


@dataclass(frozen=True)
class OperatorConfig:
    """Each field's variable is named beside it; the defaults are those of an unset variable."""

    workers: int = 8  # WEAVERGEN_WORKERS: kopf handler threads (and API connections)
    namespaces: tuple[str, ...] = ()  # WEAVERGEN_NAMESPACES, comma-separated; none: cluster
    timer_seconds: float = 5.0  # WEAVERGEN_TIMER_SECONDS: how often charters are reconciled
    receiver_host: str = "127.0.0.1"  # WEAVERGEN_RECEIVER_HOST
    receiver_port: int = 4318  # WEAVERGEN_RECEIVER_PORT (0: any free port)
    receiver_token: str | None = None  # WEAVERGEN_RECEIVER_TOKEN: bearer token of OTLP and gate
    receiver_url: str | None = None  # WEAVERGEN_RECEIVER_URL: where phase Jobs reach it
    # WEAVERGEN_RECEIVER_GRPC_PORT: OTLP/gRPC receiver, same host and token (0: any free
    # port); unset: none. A Collector's loadbalancing exporter speaks only gRPC.
    receiver_grpc_port: int | None = None
    # WEAVERGEN_SHARD_ENDPOINTS, comma-separated: the shards' OTLP/gRPC endpoints in ordinal
    # order, as the Collector's loadbalancing exporter lists them; none: not sharded.
    shard_endpoints: tuple[str, ...] = ()
    # This replica's endpoint among them, from WEAVERGEN_SHARD_SELF (else HOSTNAME): the
    # endpoint itself, its ordinal, or a StatefulSet pod name ending in -<ordinal>.
    shard_endpoint: str | None = None
    kubeconfig: str | None = None  # KUBECONFIG
    image: str = "weavergen-operator:0.1.0"  # WEAVERGEN_IMAGE: of the phase Jobs
    image_pull_policy: str = "IfNotPresent"  # WEAVERGEN_IMAGE_PULL_POLICY
    phase_service_account: str = "weavergen-phase"  # WEAVERGEN_PHASE_SERVICE_ACCOUNT
    # WEAVERGEN_PHASE_RESOURCES, JSON: the phase containers' requests and limits. A namespace
    # with a compute ResourceQuota admits no pod without them, and a pod without requests is
    # the last to get CPU on a busy node, where a phase's start-up is on the cycle's path.
    phase_resources: Mapping[str, Mapping[str, str]] = field(
        default_factory=lambda: {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"memory": "512Mi"},
        }
    )
    # WEAVERGEN_BPMN_DIR: the DMEDI cycle and the strategies' workflows (the repository's bpmn/)
    bpmn_dir: Path = Path(__file__).resolve().parents[2] / "bpmn"
    traceparent: str | None = None  # TRACEPARENT: a phase Job's parent span (W3C)
    # WEAVERGEN_PROMETHEUS_AUTH_URL and one of WEAVERGEN_PROMETHEUS_BEARER_TOKEN_FILE or
    # WEAVERGEN_PROMETHEUS_USERNAME_FILE + _PASSWORD_FILE: what charters' queries carry there
    prometheus_auth: PrometheusAuth | None = None
    # WEAVERGEN_NOTIFICATIONS_*: the sinks charters' notifications go to (NotificationSettings)
    notifications: NotificationSettings = NotificationSettings()
    # WEAVERGEN_ARGOCD_NAMESPACE: where Argo CD's Applications live (those a tracking-id names
    # without a namespace, and those of the app.kubernetes.io/instance label)
    argocd_namespace: str = "argocd"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OperatorConfig:
        """The settings ``env`` holds, defaults for the rest; ConfigError for a bad value.

        An empty ``KUBECONFIG``, ``WEAVERGEN_RECEIVER_URL`` or ``TRACEPARENT`` counts as unset.
        """
        default = cls()
        shard_endpoints, shard_endpoint = _shards(env)
        return cls(
            workers=_read(env, "WEAVERGEN_WORKERS", default.workers, _positive_int),
            namespaces=tuple(n for n in env.get("WEAVERGEN_NAMESPACES", "").split(",") if n),
            timer_seconds=_read(
                env, "WEAVERGEN_TIMER_SECONDS", default.timer_seconds, _positive_seconds
            ),
            receiver_host=_read(env, "WEAVERGEN_RECEIVER_HOST", default.receiver_host, _text),
            receiver_port=_read(env, "WEAVERGEN_RECEIVER_PORT", default.receiver_port, _port),
            receiver_token=_read(env, "WEAVERGEN_RECEIVER_TOKEN", None, _text),
            receiver_url=env.get("WEAVERGEN_RECEIVER_URL") or None,
            receiver_grpc_port=_read(env, "WEAVERGEN_RECEIVER_GRPC_PORT", None, _port),
            shard_endpoints=shard_endpoints,
            shard_endpoint=shard_endpoint,
            kubeconfig=env.get("KUBECONFIG") or None,
            image=_read(env, "WEAVERGEN_IMAGE", default.image, _text),
            image_pull_policy=_read(
                env, "WEAVERGEN_IMAGE_PULL_POLICY", default.image_pull_policy, _pull_policy
            ),
            phase_service_account=_read(
                env, "WEAVERGEN_PHASE_SERVICE_ACCOUNT", default.phase_service_account, _text
            ),
            phase_resources=_read(
                env, "WEAVERGEN_PHASE_RESOURCES", default.phase_resources, _resources
            ),
            bpmn_dir=Path(_read(env, "WEAVERGEN_BPMN_DIR", str(default.bpmn_dir), _text)),
            traceparent=env.get("TRACEPARENT") or None,
            prometheus_auth=_prometheus_auth(env),
            notifications=NotificationSettings.from_env(env),
            argocd_namespace=_read(
                env, "WEAVERGEN_ARGOCD_NAMESPACE", default.argocd_namespace, _text
            ),
        )


@functools.cache
def operator_config() -> OperatorConfig:
    """This process's settings: the environment is read on the first call only."""
    return OperatorConfig.from_env(os.environ)


def _prometheus_auth(env: Mapping[str, str]) -> PrometheusAuth | None:
    """The Prometheus credentials the variables name: one way to authenticate, and the URL
    they are for; none when no variable is set."""
    given = {field: env[name] for field, name in PROMETHEUS_VARIABLES.items() if env.get(name)}
    if not given:
        return None
    names = PROMETHEUS_VARIABLES
    if "url" not in given:
        raise ConfigError(f"{names['url']}: expected the Prometheus the credentials are for")
    if not given["url"].startswith(("http://", "https://")):
        raise ConfigError(f"{names['url']}: expected an http(s) URL, got {given['url']!r}")
    basic = {"username_file", "password_file"} & set(given)
    if basic and "bearer_token_file" in given:
        raise ConfigError(
            f"{names['bearer_token_file']} and {names['username_file']}: expected one way to "
            "authenticate, got both"
        )
    if len(basic) == 1:
        missing = ({"username_file", "password_file"} - basic).pop()
        raise ConfigError(f"{names[missing]}: expected it beside {names[basic.pop()]}")
    if len(given) == 1:
        raise ConfigError(
            f"{names['url']}: expected {names['bearer_token_file']} or "
            f"{names['username_file']} and {names['password_file']} with it"
        )

    def path(field: str) -> Path | None:
        return Path(given[field]) if field in given else None

    return PrometheusAuth(
        url=given["url"],
        bearer_token_file=path("bearer_token_file"),
        username_file=path("username_file"),
        password_file=path("password_file"),
    )


class _Refused(ValueError):
    """What a parser says about a value it refuses: the ``expected ...`` of the message."""


def _read(env: Mapping[str, str], name: str, default: T, parse: Callable[[str], T]) -> T:
    """``env[name]`` parsed, or ``default`` when it is unset."""
    if name not in env:
        return default
    try:
        return parse(env[name])
    except _Refused as refused:
        raise ConfigError(f"{name}: expected {refused}, got {env[name]!r}") from None


def _text(value: str) -> str:
    if not value:
        raise _Refused("a non-empty value")
    return value


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise _Refused("a positive integer")
    return number


def _port(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise _Refused("a port number from 0 (any free port) to 65535")
    return number


def _positive_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise _Refused("a positive number of seconds")
    return seconds


def _shards(env: Mapping[str, str]) -> tuple[tuple[str, ...], str | None]:
    """The shard endpoints and this replica's among them (required when there are any)."""
    none: tuple[str, ...] = ()
    endpoints = _read(env, "WEAVERGEN_SHARD_ENDPOINTS", none, _endpoints)
    if not endpoints:
        return (), None
    name = "WEAVERGEN_SHARD_SELF" if "WEAVERGEN_SHARD_SELF" in env else "HOSTNAME"
    me = _read(env, name, None, lambda value: _shard_self(value, endpoints))
    if me is None:
        raise ConfigError("WEAVERGEN_SHARD_SELF: required with WEAVERGEN_SHARD_ENDPOINTS")
    return endpoints, me


def _endpoints(value: str) -> tuple[str, ...]:
    endpoints = tuple(e.strip() for e in value.split(",") if e.strip())
    if len(set(endpoints)) != len(endpoints):
        raise _Refused("distinct endpoints")
    return endpoints


def _shard_self(value: str, endpoints: tuple[str, ...]) -> str:
    """The endpoint ``value`` names: itself, or by ordinal (``2``, ``weavergen-operator-2``)."""
    if value in endpoints:
        return value
    ordinal = re.fullmatch(r"(?:.*-)?(\d+)", value)
    if ordinal is None or int(ordinal.group(1)) >= len(endpoints):
        raise _Refused(
            f"one of the {len(endpoints)} WEAVERGEN_SHARD_ENDPOINTS, an ordinal below "
            f"{len(endpoints)} or a StatefulSet pod name ending in one"
        )
    return endpoints[int(ordinal.group(1))]


def _names(value: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    bad = [n for n in names if not SINK_NAME.fullmatch(n)]
    if bad:
        raise _Refused(f"sink names that are DNS labels (not {', '.join(bad)})")
    if len(set(names)) != len(names):
        raise _Refused("distinct sink names")
    return names


QUANTITY = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?")


def _resources(value: str) -> Mapping[str, Mapping[str, str]]:
    """A container's ``resources``: ``{"requests": {"cpu": "100m"}, "limits": {...}}``, each
    amount a Kubernetes quantity (the chart's ``phase.resources``)."""
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict) or not set(parsed) <= {"requests", "limits"}:
        raise _Refused('a JSON object with "requests" and/or "limits"')
    found: dict[str, dict[str, str]] = {}
    for part, amounts in parsed.items():
        if not isinstance(amounts, dict):
            raise _Refused(f"{part} as an object of resource names to quantities")
        for name, amount in amounts.items():
            if not QUANTITY.fullmatch(str(amount)):
                raise _Refused(f"a quantity for {part}.{name} (like 100m or 128Mi), not {amount!r}")
        found[part] = {str(name): str(amount) for name, amount in amounts.items()}
    return found


def _sinks_by_ns(value: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``{"namespace": ["sink", ...]}``: the chart's ``notifications.namespaceSinks``."""
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict) or not all(
        isinstance(names, list) and all(isinstance(n, str) for n in names)
        for names in parsed.values()
    ):
        raise _Refused('a JSON object of namespaces to lists of sink names: {"shop": ["slack"]}')
    return tuple((str(ns), _names(",".join(names))) for ns, names in sorted(parsed.items()))


def _sinks(value: str) -> tuple[tuple[str, str], ...]:
    """``name=type`` pairs: the sinks the chart's ``notifications.sinks`` lists."""
    pairs = [p.strip().partition("=") for p in value.split(",") if p.strip()]
    if any(not name or not sep or kind not in SINK_TYPES for name, sep, kind in pairs):
        raise _Refused(f"name=type pairs, type one of {', '.join(SINK_TYPES)}")
    names = _names(",".join(name for name, _, _ in pairs))
    return tuple(zip(names, (kind for _, _, kind in pairs), strict=True))


def _pull_policy(value: str) -> str:
    if value not in PULL_POLICIES:
        raise _Refused(f"one of {', '.join(PULL_POLICIES)}")
    return value
