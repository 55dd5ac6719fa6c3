"""Which nonce store a client uses: ``file`` (the data directory's, the default) or a Redis URL.

One store object per place and process, so that every client of a key in the process goes through
the same :class:`~broker.nonce.KeyChannel`. Environment defaults are read when a client is built
(:func:`nonce_store_spec`), never at import.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .errors import ConfigurationError
from .filestore import FileStore, host_lock_dir
from .nonce import NonceStore

__all__ = [
    "LEASE_MARGIN_S",
    "NONCE_STORE_VARIABLE",
    "RedisSpec",
    "check_store_spec",
    "file_store",
    "masked_spec",
    "nonce_store_spec",
    "open_store",
    "parse_redis_spec",
]

NONCE_STORE_VARIABLE = "KRAKENWATCH_NONCE_STORE"
#: a shared store's lease on a key outlasts the request's read timeout by this much
LEASE_MARGIN_S = 30.0
_INSTALL = "pip install 'krakenwatch[redis]'"

_lock = threading.Lock()
_file_stores: dict[tuple[Path, Path | None, bool], FileStore] = {}
_redis_stores: dict[tuple[str, Path], NonceStore] = {}


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


def file_store(directory: Path, *, durable: bool = True) -> FileStore:
    """The file store in ``directory`` (a data directory's ``nonces/`` folder), shared within the
    process. The host-wide lock directory is looked up now (``$XDG_RUNTIME_DIR``)."""
    directory = directory.expanduser().resolve()
    host = host_lock_dir()
    key = (directory, host, durable)
    with _lock:
        store = _file_stores.get(key)
        if store is None:
            store = FileStore(directory, host_dir=host, durable=durable)
            _file_stores[key] = store
        return store


def open_store(spec: str | NonceStore, directory: Path, *, durable: bool = True) -> NonceStore:
    """The store named by ``spec``: a store object as it is, ``file`` for the file store in
    ``directory``, or a ``redis://``/``rediss://`` URL (seeded from that file store)."""
    if not isinstance(spec, str):
        return spec
    text = spec.strip()
    if text == "file":
        return file_store(directory, durable=durable)
    check_store_spec(text)
    from .redisstore import RedisStore

    parsed = parse_redis_spec(text)
    key = (text, directory.expanduser().resolve())
    seed = file_store(directory, durable=False)  # before taking the lock: it takes it too
    with _lock:
        store = _redis_stores.get(key)
        if store is None:
            store = RedisStore(parsed.url, seed=seed, lease_s=parsed.lease_s)
            _redis_stores[key] = store
        return store
