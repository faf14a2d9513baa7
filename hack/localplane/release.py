"""The operator installed on a plane by its Helm chart, as users install it: its pod runs under
the chart's RBAC and security context, and is reached through the chart's Service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hack.localplane.plane import REPO, Plane

CHART = REPO / "charts" / "weavergen-operator"


@dataclass(frozen=True)
class Release:
    plane: Plane
    name: str
    namespace: str

    @classmethod
    def beside(cls, plane: Plane, namespace: str) -> Release:
        """A release of its own for the workloads of ``namespace`` (a test's), in a namespace
        next to it, named after it: its cluster-wide RBAC objects never meet another's."""
        return cls(plane, f"wg-{namespace[-6:]}", f"{namespace[:50]}-sys")

    @property
    def fullname(self) -> str:
        """The chart's name for its objects (its ``weavergen-operator.fullname``)."""
        return self.name if "weavergen-operator" in self.name else f"{self.name}-weavergen-operator"

    def install(self, watch: list[str], *values: str, timeout_seconds: int = 180) -> None:
        """``helm install`` watching ``watch``, its charters reconciled every 0.5 s (a fault's
        failing requests are looked for that often); ``values`` are further helm flags
        (``--set k=v``)."""
        self.plane.helm(
            "install", self.name, str(CHART),
            "--namespace", self.namespace, "--create-namespace",
            "--skip-crds",  # the plane has them already (the same files)
            "--set", f"watchNamespaces={{{','.join(watch)}}}",
            "--set", "operator.logFormat=text",
            "--set", "operator.extraEnv[0].name=WEAVERGEN_TIMER_SECONDS",
            "--set-string", "operator.extraEnv[0].value=0.5",
            *values,
            "--wait", "--timeout", f"{timeout_seconds}s",
            timeout=timeout_seconds + 60,
        )  # fmt: skip

    def remove(self) -> None:
        """Uninstall, then delete its namespace (without waiting); for cleanup, so it never
        raises."""
        self.plane.helm("uninstall", self.name, "-n", self.namespace, check=False, timeout=120)
        self.plane.kubectl("delete", "namespace", self.namespace, "--wait=false", check=False)

    def url(self) -> str:
        """The operator's Service: OTLP receiver, /metrics and /gate."""
        return self.plane.service_url(self.namespace, self.fullname)

    def collector_url(self) -> str:
        """The chart's Collector (collector.enabled): OTLP/HTTP, where services export."""
        return self.plane.service_url(self.namespace, f"{self.fullname}-collector", "otlp-http")

    def pods(self) -> list[dict[str, Any]]:
        return self.plane.pods(self.namespace, f"app.kubernetes.io/instance={self.name}")

    def logs(self) -> str:
        """The operator container's log, read through the kubelet."""
        done = self.plane.kubectl(
            "logs", f"deployment/{self.fullname}", "-n", self.namespace, "--tail=-1",
            check=False,
        )  # fmt: skip
        return done.stdout or done.stderr
