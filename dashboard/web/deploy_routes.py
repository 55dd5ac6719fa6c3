"""The deploy routes: ``POST /api/deploys`` marks a deploy; ``GET /api/deploys`` lists the last
ones, ``GET /api/deploys/latest`` and ``GET /api/deploys/{id}`` return one, judged now.

Marking needs the admin token or the password, or a loopback caller when neither is set
(:func:`~dashboard.web.admission.admit_admin`); reading is like ``/api/verify``. Every answer is
JSON; a mistake in the request is a 400 whose ``error`` names the field.
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
NO_DEPLOY = (
    "no deploy has been marked yet; mark one with `krakenwatch deploy mark` or POST /api/deploys"
)
NO_STORE = {"Cache-Control": "no-store"}


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={**NO_STORE, **(headers or {})})


def _error(message: str, status: int) -> JSONResponse:
    return _json({"error": message}, status)


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
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return _error(f"the body is larger than {MAX_BODY} bytes", 413)
        try:
            wanted = parse_mark(json.loads(raw or b"{}"), service.deploys.known_accounts())
        except ValueError as exc:  # JSONDecodeError and DeployRequestError alike
            if isinstance(exc, DeployRequestError):
                return _error(str(exc), 400)
            return _error(f"the body is not JSON ({exc})", 400)
        try:
            deploy = await asyncio.to_thread(service.deploys.mark, wanted)
        except StoreError as exc:
            return _error(f"the deploy could not be recorded: {exc}", 503)
        headers = {"Location": f"/api/deploys/{deploy.id}"}
        return _json(service.deploys.document(deploy), 201, headers)

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
        deploy = await asyncio.to_thread(service.deploys.get, deploy_id)
        if deploy is None:
            return _error(f"no deploy #{deploy_id}", 404)
        return _json(service.deploys.document(deploy))
