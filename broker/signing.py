"""Kraken credentials: request signing (``API-Sign``), the signed body, secret decoding, key
checks, identity and masking.

Shared by the client, the simulator and the gateway (the one module of ``broker`` the simulator
uses).

``API-Sign = base64(HMAC-SHA512(base64decode(secret), urlpath + SHA256(nonce + postdata)))``
where ``postdata`` is the exact form-encoded body that is sent, nonce included.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from .errors import ConfigurationError, InvalidSecretError

__all__ = [
    "InvalidSecretError",
    "check_key",
    "check_secret",
    "decode_secret",
    "form_body",
    "key_id",
    "mask_key",
    "private_headers",
    "sign",
    "signature",
]


def key_id(api_key: str) -> str:
    """A stable, non-reversible identifier of an API key (16 hex chars of its SHA-256)."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:16]


def mask_key(key: str) -> str:
    """``AbCd…wXyZ``: enough to recognise a key, never enough to use it."""
    key = key.strip()
    if len(key) <= 12:
        return "…" if key else ""
    return f"{key[:4]}…{key[-4:]}"


def decode_secret(secret: str | bytes) -> bytes:
    """Decode a base64 API secret, raising :class:`InvalidSecretError` (without the value)."""
    raw = secret.encode("ascii", "replace") if isinstance(secret, str) else secret
    raw = raw.strip()
    if not raw:
        raise InvalidSecretError("the API secret is empty")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecretError("the API secret is not valid base64") from None


def sign(urlpath: str, nonce: int | str, postdata: str | bytes, secret: str | bytes) -> str:
    """Return the ``API-Sign`` header value for one private request.

    ``urlpath`` is the path only (``/0/private/Balance``); ``postdata`` is the raw body as sent.
    """
    return base64.b64encode(signature(urlpath, nonce, postdata, secret)).decode("ascii")


def signature(urlpath: str, nonce: int | str, postdata: str | bytes, secret: str | bytes) -> bytes:
    """The raw HMAC-SHA512 that :func:`sign` encodes."""
    body = postdata.encode("utf-8") if isinstance(postdata, str) else postdata
    digest = hashlib.sha256(str(nonce).encode("ascii") + body).digest()
    mac = _keyed(secret).copy()
    mac.update(urlpath.encode("utf-8") + digest)
    return mac.digest()


@functools.lru_cache(maxsize=4096)
def _keyed(secret: str | bytes) -> hmac.HMAC:
    """An HMAC-SHA512 keyed with ``secret`` and fed nothing, copied for each signature: the
    secret is decoded and the key schedule computed once per secret, not on every call."""
    return hmac.new(decode_secret(secret), digestmod=hashlib.sha512)


def private_headers(
    urlpath: str, nonce: int, body: str | bytes, key: str, secret: str | bytes
) -> dict[str, str]:
    """The headers of one private request whose exact body (nonce included) is ``body``."""
    return {
        "API-Key": key,
        "API-Sign": sign(urlpath, nonce, body, secret),
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
    }


#: any whitespace character (what ``str.isspace`` tells, in one pass in C)
_BLANK = re.compile(r"\s")


def header_safe(key: str) -> bool:
    """Whether ``key`` can be sent as an HTTP header value as it is: printable ASCII, no blank."""
    return key.isascii() and key.isprintable() and not _BLANK.search(key)


def check_key(key: str, account: str) -> str:
    """``key`` when it can be sent as the ``API-Key`` header, else a
    :class:`~broker.errors.ConfigurationError` naming ``account`` (never the key)."""
    if not key:
        raise ConfigurationError(f"no API key configured for {account}", account=account)
    if not header_safe(key):
        raise ConfigurationError(
            f"the API key of {account} contains control, blank or non-ASCII characters; "
            "copy it again from Kraken",
            account=account,
        )
    return key


def check_secret(secret: str | bytes, account: str) -> None:
    """Raise :class:`InvalidSecretError` naming ``account`` unless ``secret`` decodes."""
    try:
        _keyed(secret)
    except InvalidSecretError as exc:
        raise InvalidSecretError(
            f"API secret of {account}: {exc.message}", account=account
        ) from None


def form_body(method: str, data: Mapping[str, Any] | None, *, account: str) -> Callable[[int], str]:
    """The body of a private call for a nonce: ``nonce`` first, then ``data`` form-encoded (a
    ``nonce`` in ``data`` is replaced). Refuses list, set and dict values with a
    :class:`~broker.errors.ConfigurationError` before anything is sent: Kraken expects a
    comma-separated string, and krakenex signs lists wrongly."""
    payload = dict(data or {})
    for name, value in payload.items():
        if isinstance(value, list | tuple | set | dict):
            raise ConfigurationError(
                f"{method}: parameter {name!r} is a {type(value).__name__}; Kraken expects a "
                "comma-separated string (krakenex signs lists wrongly)",
                account=account,
            )
    payload.pop("nonce", None)
    return lambda nonce: urllib.parse.urlencode({"nonce": nonce, **payload})
