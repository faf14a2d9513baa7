"""The operator's HTTP endpoints besides OTLP: ``/metrics``, ``/gate/<namespace>/<charter>``.

``GET /gate/...`` answers 200 when deploying is allowed and 423 (Locked) while it is blocked
or a cycle is regenerating the system, always with the answer as JSON; ``POST
/gate/.../cycle`` asks for a cycle. The gate shares the receiver's optional bearer token,
checked by the app's middleware (``telemetry.auth``); ``/metrics`` is open to scrapers like any
exporter's (``OPEN_PATHS``).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aiohttp import web

from weavergen.domain.decide.gate import GateAnswer
from weavergen.domain.errors import CharterNotFound
from weavergen.k8s.gate import Gate
from weavergen.telemetry import metrics

OPEN_PATHS = frozenset({"/metrics"})


def add_routes(app: web.Application, gate: Gate) -> None:
    def reply(answer: GateAnswer) -> web.Response:
        metrics.GATE_DECISIONS.labels(answer.decision).inc()
        return web.json_response(answer.to_dict(), status=200 if answer.allowed else 423)

    async def answer(request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["charter"]
        try:
            found = await asyncio.to_thread(gate.answer, namespace, name)
        except CharterNotFound as err:
            return web.json_response({"message": str(err)}, status=404)
        return reply(found)

    async def request_cycle(request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["charter"]
        now = datetime.now(UTC).replace(tzinfo=None)
        try:
            found = await asyncio.to_thread(gate.request_cycle, namespace, name, now)
        except CharterNotFound as err:
            return web.json_response({"message": str(err)}, status=404)
        return reply(found)

    async def scrape(_: web.Request) -> web.Response:
        return web.Response(
            body=metrics.exposition(), headers={"Content-Type": "text/plain; version=0.0.4"}
        )

    app.router.add_get("/gate/{namespace}/{charter}", answer)
    app.router.add_post("/gate/{namespace}/{charter}/cycle", request_cycle)
    app.router.add_get("/metrics", scrape)
