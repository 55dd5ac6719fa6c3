"""Who may use the HTTP routes: the service must be running, and the caller authenticated.

* Reading (``/metrics``, ``/api/verify``, ``GET /api/deploys``): open without a password; with
  ``KRAKENWATCH_PASSWORD``, HTTP Basic with it (any user name), or the admin token as a bearer.
* Marking a deploy (``POST /api/deploys``): ``Authorization: Bearer $KRAKENWATCH_ADMIN_TOKEN``, or
  the password (Basic, or as the bearer token) when one is set; with neither configured, only
  from the machine itself (a loopback address, and no proxy header: through a proxy, on the
  same host or not, the caller could be anyone).

Every check goes through the service's :class:`~dashboard.web.auth.PasswordThrottle`: an address
that failed too often is refused unchecked with ``Retry-After``. Tokens are compared in constant
time and never written anywhere.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from dashboard.web.auth import Attempt, basic_password, password_ok
from dashboard.web.service import Service

__all__ = ["UNAUTHORIZED", "admit", "admit_admin", "is_loopback"]

NOT_READY = {"ok": False, "error": "krakenwatch is starting; the monitor is not running yet"}
CHALLENGE = {"WWW-Authenticate": 'Basic realm="krakenwatch"'}
UNAUTHORIZED = Response(
    "authentication required\n", status_code=401, headers=CHALLENGE, media_type="text/plain"
)
LOCAL_ONLY = (
    "marking a deploy from another host needs KRAKENWATCH_ADMIN_TOKEN (or KRAKENWATCH_PASSWORD) "
    "set on the dashboard, sent as `Authorization: Bearer <token>`; without either, deploys are "
    "marked only from the dashboard's own machine"
)
Admitted = Service | Response


def throttled(attempt: Attempt) -> Response:
    """The 401 of an address that must wait: how long, in the body and in ``Retry-After``."""
    wait = attempt.retry_after
    return Response(
        f"too many failed attempts from this address; try again in {wait} s\n",
        status_code=401,
        headers={**CHALLENGE, "Retry-After": str(wait)},
        media_type="text/plain",
    )


def is_loopback(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


#: headers a proxy adds: a request that carries one came through a proxy, from anywhere
FORWARDED_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


def _forwarded(request: Request) -> bool:
    """Whether the request came through a proxy: then its loopback address says nothing of
    where it came from (uvicorn may even have put the forwarded address there)."""
    return any(name in request.headers for name in FORWARDED_HEADERS)


def _bearer(header: str | None) -> str | None:
    if not header or not header.lower().startswith("bearer "):
        return None
    return header[7:].strip() or None


def admit(request: Request, get_service: Callable[[], Service | None]) -> Admitted:
    """The service to read from, or the refusal (still starting; not authenticated)."""
    service = get_service()
    if service is None:
        return JSONResponse(NOT_READY, status_code=503)
    if service.settings.password is None:
        return service
    return _authenticate(request, service, allow_local=False)


def admit_admin(request: Request, get_service: Callable[[], Service | None]) -> Admitted:
    """The service to mark a deploy on, or the refusal."""
    service = get_service()
    if service is None:
        return JSONResponse(NOT_READY, status_code=503)
    return _authenticate(request, service, allow_local=True)


def _authenticate(request: Request, service: Service, *, allow_local: bool) -> Admitted:
    settings = service.settings
    secrets = [s for s in (settings.admin_token, settings.password) if s]
    address = request.client.host if request.client is not None else None
    if not secrets:
        if allow_local and (not is_loopback(address) or _forwarded(request)):
            return JSONResponse({"error": LOCAL_ONLY}, status_code=403)
        return service
    header = request.headers.get("authorization")
    given = [g for g in (_bearer(header), basic_password(header)) if g is not None]
    if settings.password is None:  # a password given as Basic is no token
        given = [g for g in given if g == _bearer(header)]
    if not given:  # no credentials: nothing was tried
        return UNAUTHORIZED
    attempt = service.password_throttle.attempt(
        address, lambda: any(password_ok(g, s) for g in given for s in secrets)
    )
    if attempt.ok:
        return service
    return throttled(attempt) if attempt.throttled else UNAUTHORIZED
