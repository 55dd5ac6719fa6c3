"""``POST /0/private/<Method>`` as a plain ASGI app: the gateway's hot path, without a framework.

Starlette's request and response objects, its routing and its two middlewares cost more per call
than the rest of the HTTP layer together; a private call needs none of them. :class:`PrivateApp`
reads the headers straight from the ASGI scope and the body from ``receive``, and answers with two
``send`` messages. :func:`serving` puts it in front of the Starlette app that serves everything
else (the public calls, ``/metrics``, ``/healthz``, the admin routes), and the same app is the
endpoint of the private route when the routes are mounted in another app (embedding).

What a bot sees is what the Starlette route answered before: 405 with ``Allow: POST`` for another
verb, 400 for two ``API-Key`` or ``API-Sign`` headers, 413 for a body over the limit, 499 when the
client is gone, and every answer made by the gateway itself marked ``X-Krakenwatch-Gateway:
answered``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from broker.stages import mark

from .answers import Reply, refusal

if TYPE_CHECKING:
    from .core import Gateway

__all__ = ["GATEWAY_HEADER", "PRIVATE_PREFIX", "PrivateApp", "answer_headers", "serving"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

GATEWAY_HEADER = "X-Krakenwatch-Gateway"
PRIVATE_PREFIX = "/0/private/"
_MARKED = (GATEWAY_HEADER.lower().encode("latin-1"), b"answered")
_CREDENTIAL_HEADERS = {"api-key": "API-Key", "api-sign": "API-Sign"}
#: the headers a private call is read by (lower-case bytes -> name); the others are not decoded
_READ = {
    name.encode("latin-1"): name
    for name in (*_CREDENTIAL_HEADERS, "content-type", "content-length")
}
_NOT_ALLOWED = refusal("EGeneral:Invalid arguments:method not allowed", status=405)


def answer_headers(reply: Reply) -> list[tuple[bytes, bytes]]:
    """The headers of ``reply``'s answer (its content type, and the gateway's mark on its own)."""
    headers = [
        (b"content-length", b"%d" % len(reply.body)),
        (b"content-type", reply.content_type.encode("latin-1")),
    ]
    if reply.by_gateway:
        headers.append(_MARKED)
    return headers


async def _answer(send: Send, reply: Reply, *extra: tuple[bytes, bytes]) -> None:
    headers = answer_headers(reply)
    headers += extra
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})


async def _gone(send: Send) -> None:
    """499: the client left (nobody reads it; uvicorn needs an answer all the same)."""
    await send(
        {"type": "http.response.start", "status": 499, "headers": [(b"content-length", b"0")]}
    )
    await send({"type": "http.response.body", "body": b""})


class _ClientGone(Exception):
    """The client disconnected before its whole body arrived."""


async def _body(receive: Receive, declared: bytes | None, limit: int) -> bytes | None:
    """The whole body, or ``None`` when it is larger than ``limit`` bytes."""
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class PrivateApp:
    """``POST /0/private/<Method>`` for ``gateway`` (see the module docstring)."""

    def __init__(self, gateway: Gateway):
        self.gateway = gateway
        self.limit = gateway.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        mark("routed")
        params = scope.get("path_params")
        method = params["method"] if params else scope["path"][len(PRIVATE_PREFIX) :]
        if scope["method"] != "POST":
            await _answer(send, _NOT_ALLOWED, (b"allow", b"POST"))
            return
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name = _READ.get(raw_name.lower())
            if name is None:  # a header the gateway does not read
                continue
            if name in headers and name in _CREDENTIAL_HEADERS:
                what = _CREDENTIAL_HEADERS[name]
                duplicate = f"EGeneral:Invalid arguments:duplicate {what} header"
                await _answer(send, refusal(duplicate, status=400))
                return
            headers[name] = raw_value.decode("latin-1")
        declared = headers.get("content-length")
        try:
            body = await _body(receive, None if declared is None else declared.encode(), self.limit)
        except _ClientGone:  # gone before its body arrived (or the read timeout closed it)
            await _gone(send)
            return
        if body is None:
            too_large = f"EGeneral:Invalid arguments:body larger than {self.limit} bytes"
            await _answer(send, refusal(too_large, status=413))
            return

        async def disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        reply = await self.gateway.private(method, headers, body, disconnected)
        if reply is None:  # the client left; nobody reads this
            await _gone(send)
            return
        await _answer(send, reply)


def serving(app: ASGIApp, private: PrivateApp) -> ASGIApp:
    """``app`` with the private calls answered by ``private`` before any routing."""

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PRIVATE_PREFIX):
            await private(scope, receive, send)
        else:
            await app(scope, receive, send)

    return dispatch
