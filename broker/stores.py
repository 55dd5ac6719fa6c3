"""Which nonce store a client uses: one shared store object per place, so that every client of a
key in this process goes through the same :class:`~broker.nonce.KeyChannel`."""

from __future__ import annotations

import threading
from pathlib import Path

from .filestore import FileStore, host_lock_dir

__all__ = ["file_store"]

_lock = threading.Lock()
_file_stores: dict[tuple[Path, Path | None, bool], FileStore] = {}


def file_store(directory: Path, *, durable: bool = True) -> FileStore:
    """The file store in ``directory`` (a data directory's ``nonces/`` folder), shared within the
    process.

    The host-wide lock directory is looked up now (``$XDG_RUNTIME_DIR``), at construction of the
    client, never at import.
    """
    directory = directory.expanduser().resolve()
    host = host_lock_dir()
    key = (directory, host, durable)
    with _lock:
        store = _file_stores.get(key)
        if store is None:
            store = FileStore(directory, host_dir=host, durable=durable)
            _file_stores[key] = store
        return store
