"""The bearer-token middleware on its own: which requests reach a handler, and the 401."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from weavergen.telemetry.auth import bearer_token_middleware

TOKEN = "t0ken"


def send(
    token: str | None, requests: list[tuple[str, str | None]]
) -> tuple[list[tuple[int, object]], list[str]]:
    """Each (path, Authorization) request's status and JSON body, and the paths handled."""
    handled: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        handled.append(request.path)
        return web.json_response({"ok": True})

    app = web.Application(middlewares=[bearer_token_middleware(token, {"/metrics"})])
    for path in ("/gate/ns/web", "/metrics"):
        app.router.add_get(path, handler)

    async def main() -> list[tuple[int, object]]:
        async with TestClient(TestServer(app)) as client:
            answers = []
            for path, auth in requests:
                headers = {"Authorization": auth} if auth is not None else {}
                async with client.get(path, headers=headers) as response:
                    answers.append((response.status, await response.json()))
            return answers

    return asyncio.run(main()), handled


REFUSED = (401, {"code": 401, "message": "missing or wrong bearer token"})


def test_only_the_exact_bearer_token_passes() -> None:
    answers, handled = send(
        TOKEN,
        [
            ("/gate/ns/web", None),
            ("/gate/ns/web", "Bearer wrong"),
            ("/gate/ns/web", f"bearer {TOKEN}"),
            ("/gate/ns/web", TOKEN),
            ("/gate/ns/web", f"Bearer {TOKEN}"),
        ],
    )
    assert answers == [REFUSED] * 4 + [(200, {"ok": True})]
    assert handled == ["/gate/ns/web"]


def test_open_paths_and_unknown_paths() -> None:
    """An open path needs no token; any other path, one the app does not serve included, does
    (so a refusal tells a caller without the token nothing about the routes)."""
    answers, handled = send(
        TOKEN, [("/metrics", None), ("/metrics", "Bearer wrong"), ("/elsewhere", None)]
    )
    assert answers == [(200, {"ok": True}), (200, {"ok": True}), REFUSED]
    assert handled == ["/metrics", "/metrics"]


def test_without_a_token_every_request_passes() -> None:
    answers, handled = send(None, [("/gate/ns/web", None), ("/gate/ns/web", "Bearer x")])
    assert answers == [(200, {"ok": True})] * 2
    assert handled == ["/gate/ns/web"] * 2
