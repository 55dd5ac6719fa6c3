"""The gateway's HTTP face: Starlette routes with Kraken's semantics.

* ``POST /0/private/<Method>`` — a private call (the body is read with a size limit; a client that
  disconnects while its call is queued is noticed through ASGI's ``http.disconnect``).
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
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .admin import admin_routes
from .answers import Reply, refusal
from .metrics import CONTENT_TYPE

if TYPE_CHECKING:
    from .core import Gateway

__all__ = ["GATEWAY_HEADER", "create_app", "create_routes"]

GATEWAY_HEADER = "X-Krakenwatch-Gateway"


def _response(reply: Reply) -> Response:
    headers = {"content-type": reply.content_type}
    if reply.by_gateway:
        headers[GATEWAY_HEADER] = "answered"
    return Response(reply.body, status_code=reply.status, headers=headers)


def _not_allowed(allow: str) -> Response:
    response = _response(refusal("EGeneral:Invalid arguments:method not allowed", status=405))
    response.headers["Allow"] = allow
    return response


def _duplicate_credential_header(request: Request) -> Response | None:
    """The 400 of a request with two ``API-Key`` or ``API-Sign`` headers (which one counted would
    be anybody's guess), else ``None``."""
    for name in ("API-Key", "API-Sign"):
        if len(request.headers.getlist(name)) > 1:
            return _response(
                refusal(f"EGeneral:Invalid arguments:duplicate {name} header", status=400)
            )
    return None


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The whole body, or ``None`` when it is larger than ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def create_routes(gateway: Gateway) -> list[Route]:
    """The gateway's routes (private, public, ``/metrics``, ``/healthz``), to serve with
    :func:`create_app` or to mount in a host app that starts and stops ``gateway``."""
    limit = gateway.settings.max_body_bytes

    async def private(request: Request) -> Response:
        if request.method != "POST":
            return _not_allowed("POST")
        duplicate = _duplicate_credential_header(request)
        if duplicate is not None:
            return duplicate
        try:
            body = await _read_body(request, limit)
        except ClientDisconnect:  # gone before its body arrived (or the read timeout closed it)
            return Response(status_code=499)
        if body is None:
            too_large = refusal(
                f"EGeneral:Invalid arguments:body larger than {limit} bytes", status=413
            )
            return _response(too_large)

        async def disconnected() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                pass

        headers = {name.lower(): value for name, value in request.headers.items()}
        reply = await gateway.private(request.path_params["method"], headers, body, disconnected)
        if reply is None:  # the client left; nobody reads this
            return Response(status_code=499)
        return _response(reply)

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
        Route("/0/private/{method:path}", private, methods=every),
        Route("/0/public/{method:path}", public, methods=every),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        *admin_routes(gateway),
    ]


def create_app(gateway: Gateway) -> Starlette:
    """The routes as an app whose lifespan starts and stops ``gateway``."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    return Starlette(routes=create_routes(gateway), lifespan=lifespan)
