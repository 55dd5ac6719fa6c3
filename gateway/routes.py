"""The gateway's HTTP face: routes with Kraken's semantics.

* ``POST /0/private/<Method>`` — a private call, answered by a plain ASGI app
  (:mod:`gateway.privateapp`: the body is read with a size limit; a client that disconnects while
  its call is queued is noticed through ASGI's ``http.disconnect``).
* ``GET /0/public/<Method>`` — a public call, passed through.
* ``GET /metrics`` — the gateway's registry; ``GET /healthz`` — 200 when it can serve, else 503.
* ``POST /admin/halt``, ``POST /admin/resume``, ``GET /admin/halts`` — the kill switch, only when
  ``KRAKENWATCH_ADMIN_TOKEN`` is set, with it as a bearer token (:mod:`gateway.admin`).

The HTTP layer sits above :mod:`gateway.core`: it imports the :class:`~gateway.core.Gateway` it
serves, never the other way round.

Answers made by the gateway itself carry ``X-Krakenwatch-Gateway: answered`` (Kraken saw nothing
of them); Kraken's answers come back with their status, body and content type unchanged. Request
bodies are never logged.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .admin import admin_routes
from .answers import Reply, refusal
from .metrics import CONTENT_TYPE
from .privateapp import GATEWAY_HEADER, PRIVATE_PREFIX, ASGIApp, PrivateApp, answer_headers, serving

if TYPE_CHECKING:
    from .core import Gateway

__all__ = ["GATEWAY_HEADER", "create_app", "create_routes"]


def _response(reply: Reply) -> Response:
    return Response(reply.body, status_code=reply.status, headers=_as_text(answer_headers(reply)))


def _as_text(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in headers}


def _not_allowed(allow: str) -> Response:
    response = _response(refusal("EGeneral:Invalid arguments:method not allowed", status=405))
    response.headers["Allow"] = allow
    return response


def create_routes(gateway: Gateway) -> list[Route]:
    """The gateway's routes (private, public, ``/metrics``, ``/healthz``), to serve with
    :func:`create_app` or to mount in a host app that starts and stops ``gateway``."""

    async def public(request: Request) -> Response:
        if request.method != "GET":
            return _not_allowed("GET")
        query = request.scope.get("query_string", b"").decode("latin-1")
        return _response(await gateway.public_call(request.path_params["method"], query))

    async def metrics(request: Request) -> Response:
        return Response(
            gateway.metrics.exposition(),
            media_type=CONTENT_TYPE,
            headers={"Cache-Control": "no-store"},
        )

    async def healthz(request: Request) -> Response:
        ok, doc = gateway.health()
        return JSONResponse(doc, status_code=200 if ok else 503)

    every = ["GET", "POST", "PUT", "DELETE", "PATCH"]
    return [
        Route(PRIVATE_PREFIX + "{method:path}", PrivateApp(gateway), methods=every),
        Route("/0/public/{method:path}", public, methods=every),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        *admin_routes(gateway),
    ]


def create_app(gateway: Gateway) -> ASGIApp:
    """The routes as an app whose lifespan starts and stops ``gateway``, the private calls
    answered before any routing (:func:`~gateway.privateapp.serving`)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    app = Starlette(routes=create_routes(gateway), lifespan=lifespan)
    return serving(app, PrivateApp(gateway))
