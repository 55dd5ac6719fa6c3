"""Which nonce store a client uses: ``file`` (the data directory's, the default) or a Redis URL.

One store object per place and process, so that every client of a key in the process goes through
the same :class:`~broker.nonce.KeyChannel`. Environment defaults are read when a client is built
(:func:`nonce_store_spec`), never at import.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path

from .errors import ConfigurationError
from .filestore import FileStore, host_lock_dir
from .nonce import NonceStore

__all__ = [
    "LEASE_MARGIN_S",
    "NONCE_STORE_VARIABLE",
    "file_store",
    "nonce_store_spec",
    "open_store",
]

NONCE_STORE_VARIABLE = "KRAKENWATCH_NONCE_STORE"
#: a shared store's lease on a key outlasts the request's read timeout by this much
LEASE_MARGIN_S = 30.0
_INSTALL = "pip install 'krakenwatch[redis]'"

_lock = threading.Lock()
_file_stores: dict[tuple[Path, Path | None, bool], FileStore] = {}
_redis_stores: dict[tuple[str, Path], NonceStore] = {}


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
    if not text.startswith(("redis://", "rediss://")):
        raise ConfigurationError(
            f"{NONCE_STORE_VARIABLE}: use 'file' or a redis:// / rediss:// URL, not "
            f"{text.split('@')[-1]!r}",
            variable=NONCE_STORE_VARIABLE,
        )
    try:
        from .redisstore import RedisStore
    except ImportError:
        raise ConfigurationError(
            f"{NONCE_STORE_VARIABLE} names a Redis store, but redis-py is not installed: {_INSTALL}",
            variable=NONCE_STORE_VARIABLE,
        ) from None
    seed = file_store(directory, durable=False)
    key = (text, directory.expanduser().resolve())
    with _lock:
        store = _redis_stores.get(key)
        if store is None:
            store = RedisStore(text, seed=seed)
            _redis_stores[key] = store
        return store
