"""What a nonce store setting says: ``file`` (the data directory's store, the default) or a Redis
URL (``redis://`` / ``rediss://``, optionally ``?lease=SECONDS``), and how to show it without its
password.

The bottom of the store modules: :mod:`broker.stores` opens the store a setting names,
:mod:`broker.redisstore` names its Redis in messages with :func:`masked_spec`; this module imports
neither. ``$KRAKENWATCH_NONCE_STORE`` is read when asked for (:func:`nonce_store_spec`), never at
import.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .errors import ConfigurationError

__all__ = [
    "NONCE_STORE_VARIABLE",
    "RedisSpec",
    "check_store_spec",
    "masked_spec",
    "nonce_store_spec",
    "parse_redis_spec",
]

NONCE_STORE_VARIABLE = "KRAKENWATCH_NONCE_STORE"
_INSTALL = "pip install 'krakenwatch[redis]'"


@dataclass(frozen=True)
class RedisSpec:
    """A ``redis://`` / ``rediss://`` store: the URL for redis-py and the lease, if one is set."""

    url: str
    lease_s: float | None


def masked_spec(spec: str) -> str:
    """The store spec without a password (for pages, logs and errors)."""
    parts = urlsplit(spec)
    if parts.password is None:
        return spec
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def parse_redis_spec(spec: str) -> RedisSpec:
    """``redis://[:password@]host[:port]/db[?lease=SECONDS]``; :class:`ConfigurationError`
    naming the variable otherwise (never the password)."""
    parts = urlsplit(spec)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ConfigurationError(
            f"{NONCE_STORE_VARIABLE}: use 'file' or a redis:// / rediss:// URL with a host, not "
            f"{masked_spec(spec)!r}",
            variable=NONCE_STORE_VARIABLE,
        )
    query = dict(parse_qsl(parts.query))
    lease = query.pop("lease", None)
    try:
        lease_s = None if lease is None else float(lease)
    except ValueError:
        lease_s = -1.0
    if lease_s is not None and not 1 <= lease_s <= 3600:
        raise ConfigurationError(
            f"{NONCE_STORE_VARIABLE}: lease={lease!r} must be a number of seconds in [1, 3600]",
            variable=NONCE_STORE_VARIABLE,
        )
    return RedisSpec(urlunsplit(parts._replace(query=urlencode(query))), lease_s)


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
