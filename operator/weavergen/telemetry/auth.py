"""The bearer-token check of the operator's HTTP server, once for all its routes.

The OTLP receiver and the gate share one server and one token; a check in each handler would
leave the next route added without one.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

UNAUTHORISED = {"code": 401, "message": "missing or wrong bearer token"}


def bearer_token_middleware(token: str | None, open_paths: Collection[str] = ()) -> Middleware:
    """Answer 401 to a request without ``Authorization: Bearer <token>``, except on
    ``open_paths``; without a token every request passes."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token is None or request.path in open_paths:
            return await handler(request)
        if not bearer_matches(request.headers.get("Authorization", ""), token):
            return web.json_response(UNAUTHORISED, status=401)
        return await handler(request)

    return check


def bearer_matches(authorization: str, token: str) -> bool:
    """Whether an ``Authorization`` value is ``Bearer <token>`` (for HTTP and gRPC alike)."""
    # Compared in constant time, so the answer's timing does not tell how much was right.
    return hmac.compare_digest(authorization.encode(), f"Bearer {token}".encode())
