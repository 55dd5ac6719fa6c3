"""Which nonce store a client uses: ``file`` (the data directory's, the default) or a Redis URL.

One store object per place and process, so that every client of a key in the process goes through
the same :class:`~broker.nonce.KeyChannel`. Environment defaults are read when a client is built
(:func:`nonce_store_spec`), never at import. What a setting says is parsed in
:mod:`broker.storespec` (re-exported here); :mod:`broker.redisstore` is imported only when a Redis
store is opened (redis-py is an optional extra).
"""

from __future__ import annotations

import threading
from pathlib import Path

from .filestore import FileStore, host_lock_dir
from .nonce import NonceStore
from .storespec import (
    NONCE_STORE_VARIABLE,
    RedisSpec,
    check_store_spec,
    masked_spec,
    nonce_store_spec,
    parse_redis_spec,
)

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

#: a shared store's lease on a key outlasts the request's read timeout by this much
LEASE_MARGIN_S = 30.0

_lock = threading.Lock()
_file_stores: dict[tuple[Path, Path | None, bool], FileStore] = {}
_redis_stores: dict[tuple[str, Path], NonceStore] = {}


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
            store = RedisStore(parsed, seed=seed)
            _redis_stores[key] = store
        return store
