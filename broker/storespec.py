"""What a nonce store setting says: ``file`` (the data directory's store, the default), a Redis URL
(``redis://`` / ``rediss://``) or Redis Sentinels (``redis-sentinel://`` / ``rediss-sentinel://``),
each optionally with ``?lease=SECONDS&replicas=N``, and how to show it without its passwords.

The bottom of the store modules: :mod:`broker.stores` opens the store a setting names,
:mod:`broker.redisclient` connects to the Redis it names; this module imports neither.
``$KRAKENWATCH_NONCE_STORE`` is read when asked for (:func:`nonce_store_spec`), never at import.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from .errors import ConfigurationError

__all__ = [
    "NONCE_STORE_VARIABLE",
    "RedisSpec",
    "SentinelSpec",
    "check_store_spec",
    "masked_spec",
    "nonce_store_spec",
    "parse_redis_spec",
]

NONCE_STORE_VARIABLE = "KRAKENWATCH_NONCE_STORE"
_INSTALL = "pip install 'krakenwatch[redis]'"
_SENTINEL_SCHEMES = {"redis-sentinel": False, "rediss-sentinel": True}
SENTINEL_PORT = 26379
#: query parameters that hold a secret (shown as ``***``)
_SECRET_QUERY = ("sentinel_password", "password")
_USAGE = (
    "use 'file', a redis:// / rediss:// URL with a host, or "
    "redis-sentinel://HOST:PORT[,HOST:PORT...]/PRIMARY-NAME[/DB]"
)


@dataclass(frozen=True)
class SentinelSpec:
    """Sentinels to ask for the primary named ``service``, and how to reach that primary."""

    addresses: tuple[tuple[str, int], ...]
    service: str
    db: int
    username: str | None
    password: str | None
    sentinel_password: str | None
    ssl: bool


@dataclass(frozen=True)
class RedisSpec:
    """A Redis store: ``url`` names it (for redis-py when ``sentinel`` is None; always without the
    store's own query parameters), the lease if one is set, and how many replicas must have a
    write before anything is sent (``replicas``; 1 by default with Sentinels, else 0)."""

    url: str
    lease_s: float | None
    replicas: int = 0
    sentinel: SentinelSpec | None = None


def _split_userinfo(spec: str) -> tuple[str, str, str, str]:
    """``(scheme://, userinfo, rest, ?query)`` of a URL, the user info being everything before the
    last ``@`` ahead of the query, so that a password with an unencoded ``/``, ``#`` or ``?`` is
    still the password."""
    scheme, sep, after = spec.partition("://")
    if not sep:
        return "", "", spec, ""
    body, mark, query = after.partition("?")
    if "@" in query and "@" not in body:  # ("?" in the password)
        body, mark, query = after, "", ""
    userinfo, at, rest = body.rpartition("@")
    return scheme + sep, userinfo if at else "", rest, mark + query


def masked_spec(spec: str) -> str:
    """The store spec without its passwords (for pages, logs and errors): the password of the
    user info (all of it when it has no ``:``, a password written without one), and secret
    query parameters."""
    head, userinfo, rest, query = _split_userinfo(spec)
    if userinfo:
        user, colon, _ = userinfo.partition(":")
        rest = f"{user}:***@{rest}" if colon else f"***@{rest}"
    if query:
        pairs = [(k, "***" if k in _SECRET_QUERY else v) for k, v in parse_qsl(query[1:])]
        query = "?" + urlencode(pairs, safe="*")
    return head + rest + query


def _bad(message: str) -> ConfigurationError:
    return ConfigurationError(f"{NONCE_STORE_VARIABLE}: {message}", variable=NONCE_STORE_VARIABLE)


def _lease(query: dict[str, str]) -> float | None:
    lease = query.pop("lease", None)
    try:
        lease_s = None if lease is None else float(lease)
    except ValueError:
        lease_s = -1.0
    if lease_s is not None and not 1 <= lease_s <= 3600:
        raise _bad(f"lease={lease!r} must be a number of seconds in [1, 3600]")
    return lease_s


def _replicas(query: dict[str, str], default: int) -> int:
    text = query.pop("replicas", None)
    if text is None:
        return default
    if not re.fullmatch(r"[0-9]", text.strip()):
        raise _bad(f"replicas={text!r} must be a whole number of replicas in [0, 9]")
    return int(text)


def _address(text: str, spec: str) -> tuple[str, int]:
    match = re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[^:\[\]@]+)(?::([0-9]{1,5}))?", text)
    if match is None or not 0 < int(match.group(2) or SENTINEL_PORT) < 65536:
        raise _bad(
            f"{text!r} is not a Sentinel HOST[:PORT] in {masked_spec(spec)!r} (percent-encode "
            "'@', '/', '?' and '#' in a password)"
        )
    return match.group(1).strip("[]"), int(match.group(2) or SENTINEL_PORT)


def _sentinel(spec: str, ssl: bool) -> RedisSpec:
    head, userinfo, rest, query_text = _split_userinfo(spec)
    hosts, _, path_text = rest.partition("/")
    addresses = tuple(_address(h.strip(), spec) for h in hosts.split(",") if h.strip())
    path = [p for p in path_text.split("/") if p]
    if (
        not addresses
        or not 1 <= len(path) <= 2
        or (len(path) == 2 and not re.fullmatch(r"[0-9]{1,5}", path[1]))
    ):
        raise _bad(f"{_USAGE}, not {masked_spec(spec)!r}")
    query = dict(parse_qsl(query_text[1:]))
    lease_s, replicas = _lease(query), _replicas(query, 1)
    user, colon, password = userinfo.partition(":")
    sentinel = SentinelSpec(
        addresses=addresses,
        service=unquote(path[0]),
        db=int(path[1]) if len(path) == 2 else 0,
        username=unquote(user) or None,
        password=unquote(password) if colon else None,
        sentinel_password=query.pop("sentinel_password", None),
        ssl=ssl,
    )
    if query:
        raise _bad(f"unknown option(s) {sorted(query)} in {masked_spec(spec)!r}")
    at = "@" if userinfo else ""
    return RedisSpec(f"{head}{userinfo}{at}{rest}", lease_s, replicas, sentinel)


def parse_redis_spec(spec: str) -> RedisSpec:
    """``redis://[:password@]host[:port]/db[?lease=SECONDS&replicas=N]``, or
    ``redis-sentinel://[:password@]host:port,.../PRIMARY-NAME[/db][?lease=..&replicas=..
    &sentinel_password=..]``; :class:`ConfigurationError` naming the variable otherwise (never a
    password)."""
    parts = urlsplit(spec)
    if parts.scheme in _SENTINEL_SCHEMES:
        return _sentinel(spec, _SENTINEL_SCHEMES[parts.scheme])
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise _bad(f"{_USAGE}, not {masked_spec(spec)!r}")
    query = dict(parse_qsl(parts.query))
    lease_s, replicas = _lease(query), _replicas(query, 0)
    return RedisSpec(urlunsplit(parts._replace(query=urlencode(query))), lease_s, replicas)


def check_store_spec(spec: str) -> None:
    """Raise :class:`ConfigurationError` naming the variable unless ``spec`` can be opened:
    ``file``, or a Redis URL with redis-py installed."""
    if spec.strip() == "file":
        return
    parse_redis_spec(spec.strip())
    try:
        import redis  # noqa: F401
    except ImportError:
        raise ConfigurationError(
            f"{NONCE_STORE_VARIABLE} names a Redis store, but redis-py is not installed: {_INSTALL}",
            variable=NONCE_STORE_VARIABLE,
        ) from None


def nonce_store_spec(environ: Mapping[str, str] | None = None) -> str:
    """``$KRAKENWATCH_NONCE_STORE``, else ``file``."""
    env = os.environ if environ is None else environ
    return env.get(NONCE_STORE_VARIABLE, "").strip() or "file"
