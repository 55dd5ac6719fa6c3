"""A minimal raw HTTP client for the simulator (stdlib ``http.client``), for tests and checks.

It sends exactly the bytes it is given, so a test can sign one body and send another; and
:func:`encode_private_request` builds a private request the way a client does, with broker's
signing code.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from broker.signing import private_headers, sign

__all__ = [
    "LIMIT_ORDER",
    "RawResponse",
    "encode_private_request",
    "form",
    "fresh_nonce",
    "raw_request",
    "signed_post",
]

#: a validate-only limit order (the simulator never places one: each one reaching it counts)
LIMIT_ORDER = {
    "pair": "XBTUSD",
    "type": "buy",
    "ordertype": "limit",
    "price": "37500",
    "volume": "1.25",
    "validate": "true",
}


@dataclass
class RawResponse:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error(self) -> list[str]:
        return list(self.json()["error"])


def raw_request(
    base_url: str,
    verb: str,
    path: str,
    body: bytes | str = b"",
    headers: Mapping[str, str] | None = None,
    timeout: float = 5.0,
) -> RawResponse:
    """One request on a fresh connection; raises ``OSError``/``http.client`` errors as they come."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        data = body.encode("utf-8") if isinstance(body, str) else body
        conn.request(verb, path, body=data if verb != "GET" else None, headers=dict(headers or {}))
        response = conn.getresponse()
        return RawResponse(
            response.status, response.read(), {k.lower(): v for k, v in response.getheaders()}
        )
    finally:
        conn.close()


def fresh_nonce(per_second: int = 1000) -> int:
    """A time-based nonce for now (milliseconds by default, as krakenex makes them): what the
    gateway accepts for a state-changing call."""
    return time.time_ns() * per_second // 1_000_000_000


def form(nonce: int | str | None = None, **fields: str) -> str:
    """A form body with the nonce first (as krakenex builds it when ``data`` is empty)."""
    pairs = ([("nonce", str(nonce))] if nonce is not None else []) + list(fields.items())
    return urlencode(pairs)


def encode_private_request(
    urlpath: str, nonce: int, params: Mapping[str, Any], key: str, secret: str | bytes
) -> tuple[str, dict[str, str]]:
    """The form-encoded body (``nonce`` first) and the headers (``API-Key``, ``API-Sign``) of one
    private request, signed with :func:`broker.signing.private_headers`."""
    body = urlencode({"nonce": nonce, **params})
    return body, private_headers(urlpath, nonce, body, key, secret)


def signed_post(
    base_url: str,
    method: str,
    *,
    key: str,
    secret: str,
    body: str | bytes,
    nonce: int | str = "",
    sign_body: str | bytes | None = None,
    api_sign: str | None = None,
    timeout: float = 5.0,
    content_type: str = "application/x-www-form-urlencoded",
) -> RawResponse:
    """POST ``body`` to ``/0/private/<method>``, signed over ``sign_body`` (default: ``body``)
    with ``nonce`` (the nonce text the signature covers), unless ``api_sign`` is given."""
    path = f"/0/private/{method}"
    signed = body if sign_body is None else sign_body
    signed = signed.encode("utf-8") if isinstance(signed, str) else signed
    # the signature covers str(nonce) + body; putting the nonce into postdata allows any text
    signature = (
        api_sign
        if api_sign is not None
        else sign(path, "", str(nonce).encode("utf-8") + signed, secret)
    )
    headers = {"API-Key": key, "API-Sign": signature, "Content-Type": content_type}
    return raw_request(base_url, "POST", path, body, headers, timeout)
