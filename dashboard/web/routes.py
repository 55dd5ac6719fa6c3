"""HTTP routes of krakenwatch: ``GET /metrics``, ``GET /api/verify`` and the deploys
(:mod:`~dashboard.web.deploy_routes`).

A small factory usable by the Streamlit app (``st.App(routes=...)``) and headless (Starlette on
uvicorn). ``/metrics`` is a plain ``Route``: a ``Mount`` would only answer ``/metrics/``.

With a password, a client address that failed too often is answered 401 with ``Retry-After`` and
says so, its password unchecked (the service's :class:`~dashboard.web.auth.PasswordThrottle`, shared
with the login form).
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dashboard.exporter.metrics import CONTENT_TYPE
from dashboard.web.admission import admit
from dashboard.web.deploy_routes import deploy_routes
from dashboard.web.service import Service

__all__ = ["accepts_gzip", "create_routes", "headless_app"]


#: gzip level of /metrics (level 6: 15 KB for 200 accounts' 240 KB in about 1 ms)
GZIP_LEVEL = 6


def create_routes(get_service: Callable[[], Service | None]) -> list[Route]:
    """The routes; ``get_service`` returns the running service, or ``None`` while starting."""

    async def metrics(request: Request) -> Response:
        service = admit(request, get_service)
        if isinstance(service, Response):
            return service
        gzipped = accepts_gzip(request.headers.get("accept-encoding", ""))
        body = await asyncio.to_thread(_exposition, service, gzipped)
        headers = {"Cache-Control": "no-store"}
        if gzipped:  # (a plain answer gets its Vary from Streamlit's gzip middleware: not twice)
            headers.update({"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
        return Response(body, media_type=CONTENT_TYPE, headers=headers)

    async def verify(request: Request) -> Response:
        service = admit(request, get_service)
        if isinstance(service, Response):
            return service
        doc = await asyncio.to_thread(service.verify)
        return JSONResponse(
            doc, status_code=200 if doc["ok"] else 503, headers={"Cache-Control": "no-store"}
        )

    return [
        Route("/metrics", metrics, methods=["GET"]),
        Route("/api/verify", verify, methods=["GET"]),
        *deploy_routes(get_service),
    ]


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` header accepts gzip (``gzip;q=0`` refuses it)."""
    for item in accept_encoding.split(","):
        name, _, params = item.partition(";")
        if name.strip().lower() == "gzip":
            quality = params.strip().removeprefix("q=").strip()
            try:
                return not quality or float(quality) > 0
            except ValueError:
                return True
    return False


def _exposition(service: Service, gzipped: bool) -> bytes:
    """The metrics text, gzipped here when asked: in the same worker thread, at a level that
    costs about a millisecond for 250 KB (Streamlit's middleware would otherwise compress it at
    level 9, handing it to yet another thread; it leaves an encoded body alone)."""
    body = service.metrics.exposition()
    return gzip.compress(body, compresslevel=GZIP_LEVEL) if gzipped else body


def headless_app(service: Service) -> Starlette:
    """The routes alone, without the Streamlit pages (for tests and metrics-only deployments)."""

    async def health(request: Request) -> Response:
        return Response("ok", media_type="text/plain")

    return Starlette(routes=[*create_routes(lambda: service), Route("/_stcore/health", health)])
