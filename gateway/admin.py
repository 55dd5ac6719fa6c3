"""The gateway's admin routes: the kill switch over HTTP, for scripts and runbooks.

* ``POST /admin/halt`` — JSON or form fields ``account``, ``reason``, optional ``client``:
  halts the account's (or the client's) calls that open or change orders; answers once none can
  leave (``{"halted": {...}}``).
* ``POST /admin/resume`` — ``account``, optional ``client`` (``{"resumed": true|false}``).
* ``GET /admin/halts`` — the halts in force.

Only when ``KRAKENWATCH_ADMIN_TOKEN`` is set (no token: no routes, 404), and only with
``Authorization: Bearer <token>`` (401 otherwise, compared in constant time). A bad field is a 400
naming it. The origin on the timeline is ``admin <client address>``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from broker import KrakenError

from .guardstore import GuardStoreError
from .guardview import HaltRecord

if TYPE_CHECKING:
    from .core import Gateway

__all__ = ["admin_routes"]

#: the largest admin request body
_MAX_BODY = 4096


class _BadRequest(Exception):
    pass


def _halt_doc(halt: HaltRecord) -> dict[str, Any]:
    return {
        "account": halt.account,
        "client": halt.client,
        "reason": halt.reason,
        "origin": halt.origin,
        "at": halt.at,
    }


async def _fields(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > _MAX_BODY:
        raise _BadRequest(f"body larger than {_MAX_BODY} bytes")
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            doc = json.loads(body or b"{}")
        except ValueError:
            raise _BadRequest("body: not JSON") from None
        if not isinstance(doc, dict):
            raise _BadRequest("body: a JSON object is expected")
        fields = doc
    else:
        fields = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    for name, value in fields.items():
        if value is not None and not isinstance(value, str):
            raise _BadRequest(f"{name}: must be a string")
    if not fields.get("account"):
        raise _BadRequest("account: missing")
    return {k: v for k, v in fields.items() if v is not None}


def _reason(exc: Exception) -> str:
    return exc.message if isinstance(exc, KrakenError) else str(exc)


class _Admin:
    def __init__(self, gateway: Gateway, token: str):
        self.gateway = gateway
        self._expected = f"Bearer {token}".encode()

    def _allowed(self, request: Request) -> bool:
        given = request.headers.get("authorization", "").encode()
        return hmac.compare_digest(given, self._expected)

    @staticmethod
    def _denied() -> JSONResponse:
        return JSONResponse(
            {"error": "Authorization: Bearer $KRAKENWATCH_ADMIN_TOKEN required"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    @staticmethod
    def _origin(request: Request) -> str:
        host = request.client.host if request.client is not None else "unknown"
        return f"admin {host}"

    async def halt(self, request: Request) -> JSONResponse:
        if not self._allowed(request):
            return self._denied()
        try:
            fields = await _fields(request)
            record = await asyncio.to_thread(
                self.gateway.halt,
                fields["account"],
                fields.get("reason", ""),
                client=fields.get("client") or None,
                origin=self._origin(request),
            )
        except (_BadRequest, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except (GuardStoreError, KrakenError) as exc:  # the store, or a key busy too long
            return JSONResponse({"error": _reason(exc)}, status_code=503)
        return JSONResponse({"halted": _halt_doc(record)})

    async def resume(self, request: Request) -> JSONResponse:
        if not self._allowed(request):
            return self._denied()
        try:
            fields = await _fields(request)
            resumed = await asyncio.to_thread(
                self.gateway.resume,
                fields["account"],
                client=fields.get("client") or None,
                origin=self._origin(request),
            )
        except (_BadRequest, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except GuardStoreError as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)
        return JSONResponse({"resumed": resumed})

    async def halts(self, request: Request) -> JSONResponse:
        if not self._allowed(request):
            return self._denied()
        halts = self.gateway.guard_snapshot().halts
        return JSONResponse({"halts": [_halt_doc(h) for h in halts]})


def admin_routes(gateway: Gateway) -> list[Route]:
    """The admin routes, or none when no admin token is configured."""
    token = gateway.settings.admin_token
    if not token:
        return []
    admin = _Admin(gateway, token)
    return [
        Route("/admin/halt", admin.halt, methods=["POST"]),
        Route("/admin/resume", admin.resume, methods=["POST"]),
        Route("/admin/halts", admin.halts, methods=["GET"]),
    ]
