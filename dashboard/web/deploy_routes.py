"""The deploy routes: ``POST /api/deploys`` marks a deploy; ``GET /api/deploys`` lists the last
ones, ``GET /api/deploys/latest`` and ``GET /api/deploys/{id}`` return one, judged now.

Marking needs the admin token or the password, or a loopback caller when neither is set
(:func:`~dashboard.web.admission.admit_admin`); reading is like ``/api/verify``. Every answer is
JSON; a mistake in the request is a 400 whose ``error`` names the field. A mark must be sent as
``application/json`` (415 otherwise: a cross-site form post from a browser cannot be).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dashboard.deploys.request import DeployRequestError, parse_mark
from dashboard.errors import StoreError
from dashboard.web.admission import admit, admit_admin
from dashboard.web.service import Service

__all__ = ["DEFAULT_LIMIT", "MAX_BODY", "MAX_LIMIT", "deploy_routes"]

#: the largest mark request accepted, bytes
MAX_BODY = 64 * 1024
#: how many deploys ``GET /api/deploys`` lists by default, and at most (``?limit=N``)
DEFAULT_LIMIT, MAX_LIMIT = 20, 500
#: the largest deploy id there can be
MAX_ID = 2**63 - 1
NO_DEPLOY = (
    "no deploy has been marked yet; mark one with `krakenwatch deploy mark` or POST /api/deploys"
)
NO_STORE = {"Cache-Control": "no-store"}


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={**NO_STORE, **(headers or {})})


def _error(message: str, status: int) -> JSONResponse:
    return _json({"error": message}, status)


def _refuse_body(request: Request) -> Response | None:
    """A mark request must say it sends JSON (``Content-Type: application/json``: a browser
    cannot send that to another site without asking it first, so no web page can mark a deploy
    from an operator's browser) and must not announce more than :data:`MAX_BODY`."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        return _error("send the body as JSON, with the header Content-Type: application/json", 415)
    length = request.headers.get("content-length", "0")
    if not length.isdigit() or int(length) > MAX_BODY:
        return _error(f"the body is larger than {MAX_BODY} bytes", 413)
    return None


def deploy_routes(get_service: Callable[[], Service | None]) -> list[Route]:
    """The deploy routes; ``get_service`` returns the running service, or ``None`` while starting."""
    handlers = _Handlers(get_service)

    async def deploys(request: Request) -> Response:
        if request.method == "POST":
            return await handlers.mark(request)
        return await handlers.listing(request)

    return [
        Route("/api/deploys", deploys, methods=["GET", "POST"]),
        Route("/api/deploys/latest", handlers.latest, methods=["GET"]),
        Route("/api/deploys/{deploy_id:int}", handlers.one, methods=["GET"]),
    ]


class _Handlers:
    def __init__(self, get_service: Callable[[], Service | None]):
        self.get_service = get_service

    async def mark(self, request: Request) -> Response:
        service = admit_admin(request, self.get_service)
        if isinstance(service, Response):
            return service
        refused = _refuse_body(request)
        if refused is not None:
            return refused
        raw = b""
        async for chunk in request.stream():  # read at most MAX_BODY, whatever it says it sends
            raw += chunk
            if len(raw) > MAX_BODY:
                return _error(f"the body is larger than {MAX_BODY} bytes", 413)
        deploys = service.deploys
        try:
            body = json.loads(raw or b"{}")
        except (ValueError, RecursionError) as exc:
            return _error(f"the body is not JSON ({type(exc).__name__})", 400)
        try:
            wanted = parse_mark(body, deploys.known_accounts(), deploys.default_accounts())
        except DeployRequestError as exc:
            return _error(str(exc), 400)
        try:
            deploy = await asyncio.to_thread(deploys.mark, wanted)
        except StoreError as exc:
            return _error(f"the deploy could not be recorded: {exc}", 503)
        headers = {"Location": f"/api/deploys/{deploy.id}"}
        return _json(deploys.document(deploy), 201, headers)

    async def listing(self, request: Request) -> Response:
        service = admit(request, self.get_service)
        if isinstance(service, Response):
            return service
        raw = request.query_params.get("limit", str(DEFAULT_LIMIT))
        limit = int(raw) if raw.isdigit() else 0
        if not 1 <= limit <= MAX_LIMIT:
            return _error(f"limit must be a whole number from 1 to {MAX_LIMIT}, not {raw!r}", 400)
        found = await asyncio.to_thread(service.deploys.recent, limit)
        return _json({"deploys": [service.deploys.document(d) for d in found]})

    async def latest(self, request: Request) -> Response:
        service = admit(request, self.get_service)
        if isinstance(service, Response):
            return service
        deploy = await asyncio.to_thread(service.deploys.judge)
        if deploy is None:
            return _error(NO_DEPLOY, 404)
        return _json(service.deploys.document(deploy))

    async def one(self, request: Request) -> Response:
        service = admit(request, self.get_service)
        if isinstance(service, Response):
            return service
        deploy_id = int(request.path_params["deploy_id"])
        found = 0 < deploy_id <= MAX_ID  # (SQLite's integers end there)
        deploy = await asyncio.to_thread(service.deploys.get, deploy_id) if found else None
        if deploy is None:
            return _error(f"no deploy #{deploy_id}", 404)
        return _json(service.deploys.document(deploy))
