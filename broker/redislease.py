"""A key's lease in the Redis nonce store (:mod:`broker.redisstore`) while this process holds it.

* :class:`HeldLease` is the held key: it reads the key's record and writes it fenced by the
  lease's token (the ``WRITE`` script of :mod:`broker.redisscripts` checks the token first,
  refuses a coarser unit and keeps the higher mark), so a holder whose lease ran out cannot move
  anything; every write is mirrored to the local file store.
* :class:`LeaseRenewer` is the one daemon thread per store that renews the leases this process
  holds while their requests are in flight.

Neither knows the store's class: what a lease needs of it is :class:`LeaseOwner`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from redis.exceptions import ResponseError

from .errors import NonceStoreError, NonceStoreUnavailable
from .nonce import NonceRecord

__all__ = ["HeldLease", "LeaseOwner", "LeaseRenewer"]

log = logging.getLogger(__name__)


class LeaseOwner(Protocol):
    """What a held lease needs of its store (a :class:`broker.redisstore.RedisStore`)."""

    #: the registered ``WRITE`` script (KEYS: lock, record; ARGV: token, high, unit, hold)
    write_script: Any

    @property
    def description(self) -> str: ...

    def errors(self) -> AbstractContextManager[None]: ...

    def lock_key(self, key_id: str) -> str: ...

    def record_key(self, key_id: str) -> str: ...

    def peek(self, key_id: str) -> NonceRecord | None: ...

    def mirror(self, key_id: str, record: NonceRecord) -> None: ...


class HeldLease:
    """A held key: reads and fenced writes of its record, mirrored to the local store."""

    def __init__(self, store: LeaseOwner, key_id: str, token: str):
        self._store = store
        self._key_id = key_id
        self._token = token

    def read(self) -> NonceRecord | None:
        return self._store.peek(self._key_id)

    def write(self, record: NonceRecord) -> None:
        store, key_id = self._store, self._key_id
        with store.errors():
            try:
                store.write_script(
                    keys=[store.lock_key(key_id), store.record_key(key_id)],
                    args=[
                        self._token,
                        str(record.high_water),
                        record.unit,
                        repr(record.hold_until),
                    ],
                )
            except ResponseError as exc:
                text = str(exc)
                if text.startswith("KWLEASE"):
                    raise NonceStoreUnavailable(
                        f"the lease on key {key_id} ran out before its nonce was written "
                        f"({store.description}); nothing was sent"
                    ) from None
                if text.startswith("KWUNIT"):
                    raise NonceStoreError(
                        f"key {key_id} already used {text.split()[-1]} nonces in "
                        f"{store.description}; refusing a coarser unit"
                    ) from None
                raise
        store.mirror(key_id, record)


class LeaseRenewer:
    """One daemon thread that renews the leases this process holds, a third of the shortest lease
    apart. ``renew(lock key, token, lease seconds)`` says whether the lease was still ours."""

    def __init__(self, renew: Callable[[str, str, float], bool]):
        self._renew = renew
        self._held: dict[str, tuple[str, float]] = {}
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, lock_key: str, token: str, lease: float) -> None:
        with self._changed:
            self._held[lock_key] = (token, lease)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="kw-redis-lease", daemon=True
                )
                self._thread.start()
            self._changed.notify_all()

    def remove(self, lock_key: str) -> None:
        with self._changed:
            self._held.pop(lock_key, None)

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._held:
                    self._changed.wait()
                held = dict(self._held)
                period = min(lease for _, lease in held.values()) / 3
            for lock_key, (token, lease) in held.items():
                if not self._renew(lock_key, token, lease):
                    log.warning("could not renew the nonce lease %s", lock_key)
            with self._changed:
                self._changed.wait(period)
