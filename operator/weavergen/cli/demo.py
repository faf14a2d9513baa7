"""`weavergen demo app|load`: the demo workload and its load generator (not the operator)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from weavergen.cli.common import fail


def cmd_demo_app(args: argparse.Namespace) -> int:
    from weavergen.demo import app  # noqa: PLC0415 - the operator never loads the demo

    namespace = args.namespace or os.environ.get("POD_NAMESPACE")
    if not namespace:
        fail("--namespace (or $POD_NAMESPACE) is needed to read the app's ConfigMap")
    app.run(
        port=args.port,
        version=args.version,
        namespace=namespace,
        config_map=args.config_map,
        payments=args.payments_config_map,
    )
    return 0


def cmd_demo_load(args: argparse.Namespace) -> int:
    from weavergen.demo import load  # noqa: PLC0415

    if not 0 < args.rps <= load.MAX_RPS:
        fail(f"--rps {args.rps}: must be above 0 and at most {load.MAX_RPS}")
    return load.run(
        url=args.url,
        rps=args.rps,
        duration=args.duration,
        report_every=args.report_every,
        timeout=args.timeout,
    )


def add_demo(groups: Any) -> None:
    demo = groups.add_parser("demo", help="the demo shop and its load generator (a demo)")
    commands = demo.add_subparsers(dest="command", required=True, metavar="COMMAND")
    app = commands.add_parser(
        "app",
        help="run the demo shop: HTTP service exporting OTLP spans, faults from its ConfigMap",
        description=(
            "Serve /checkout and /cart, call a simulated payments dependency, export spans over "
            "OTLP (OTEL_EXPORTER_OTLP_ENDPOINT). Faults are read live from the ConfigMap: "
            "errorRate, latencyMs, attributeStyle (semconv|renamed|mistyped), retryStorm; the "
            "payments dependency's errorRate from its own ConfigMap. A --version containing "
            "'bad' is a broken release."
        ),
    )
    app.add_argument("--port", type=int, default=8080, help="HTTP port (shared: SO_REUSEPORT)")
    app.add_argument("--version", default="1.0.0", help="the release; 'bad' in it breaks it")
    app.add_argument("--config-map", default="demo-shop-config", help="ConfigMap with the faults")
    app.add_argument(
        "--payments-config-map", default="demo-payments", help="the dependency's state"
    )
    app.add_argument("--namespace", help="namespace of the ConfigMaps (default $POD_NAMESPACE)")
    app.set_defaults(func=cmd_demo_app)
    load = commands.add_parser(
        "load",
        help="send a bounded, fixed-rate load to the demo shop; JSON lines of results",
        description="Open-loop GET load on loopback; one JSON line per interval and a summary.",
    )
    load.add_argument("--url", default="http://127.0.0.1:8080", help="the shop's base URL")
    load.add_argument("--rps", type=float, default=50.0, help="requests per second (max 1000)")
    load.add_argument("--duration", type=float, default=0.0, help="seconds; 0: until stopped")
    load.add_argument("--report-every", type=float, default=5.0, help="seconds between lines")
    load.add_argument("--timeout", type=float, default=5.0, help="per-request timeout, seconds")
    load.set_defaults(func=cmd_demo_load)
