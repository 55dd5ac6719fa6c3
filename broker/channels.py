"""The process's :class:`~broker.nonce.KeyChannel` objects: one per key and store, all of one key
sharing one thread lock; started over in a forked child (every inherited lock dropped, the stores'
descriptors reopened), so parent and child take turns like any two processes."""

from __future__ import annotations

import os
import threading

from .nonce import KeyChannel, NonceStore
from .signing import key_id

__all__ = ["channel_for"]

_registry_lock = threading.Lock()
_channels: dict[tuple[str, int], KeyChannel] = {}
_key_locks: dict[str, threading.Lock] = {}


def channel_for(api_key: str, store: NonceStore) -> KeyChannel:
    """The process-wide channel for ``api_key`` in ``store`` (created on first use).

    The thread lock is per key for the whole process, whatever the store, so two clients of one
    key can never send concurrently even if they were given different stores.
    """
    ident = key_id(api_key)
    with _registry_lock:
        channel = _channels.get((ident, id(store)))
        if channel is None:
            channel = KeyChannel(ident, store, _key_locks.setdefault(ident, threading.Lock()))
            _channels[(ident, id(store))] = channel
        return channel


def _after_fork_in_child() -> None:
    """Locks held by threads that do not exist in the child would block it forever, and the
    parent's file locks would be shared with it: start over with fresh ones."""
    global _registry_lock
    _registry_lock = threading.Lock()
    fresh = {ident: threading.Lock() for ident in _key_locks}
    _key_locks.clear()
    _key_locks.update(fresh)
    stores: dict[int, NonceStore] = {}
    for channel in _channels.values():
        channel._reset_after_fork(_key_locks[channel.key_id])
        stores[id(channel.store)] = channel.store
    for store in stores.values():
        store.reset_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
