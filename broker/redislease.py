"""A key's lease in the Redis nonce store (:mod:`broker.redisstore`) while this process holds it.

* :class:`HeldLease` is the held key: it reads the key's record and writes it fenced by the
  lease's token (the ``WRITE`` script of :mod:`broker.redisscripts` checks the token first,
  refuses a coarser unit and keeps the higher mark), so a holder whose lease ran out cannot move
  anything; a write counts once the store's replicas have it (:func:`broker.redisclient.replicated`)
  and is mirrored to the local file store. Right before its request leaves, the holder makes sure
  the lease cannot have run out meanwhile (:meth:`HeldLease.ensure_live`: a process paused past
  its lease, by SIGSTOP or a stalled machine, sends nothing when it wakes).
* :class:`LeaseRenewer` is the one daemon thread per store that renews the leases this process
  holds while their requests are in flight, and knows until when each is certainly still ours.

Neither knows the store's class: what a lease needs of it is :class:`LeaseOwner`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from redis.exceptions import ResponseError

from .errors import NonceStoreError, NonceStoreUnavailable
from .nonce import NonceRecord
from .redisclient import replicated, run_script

__all__ = ["HeldLease", "LeaseOwner", "LeaseRenewer"]

log = logging.getLogger(__name__)


class LeaseOwner(Protocol):
    """What a held lease needs of its store (a :class:`broker.redisstore.RedisStore`)."""

    #: the registered ``WRITE`` script (KEYS: lock, record; ARGV: token, high, unit, hold)
    write_script: Any
    #: the Redis client, and how many replicas must have a write
    client: Any
    replicas: int

    @property
    def description(self) -> str: ...

    def errors(self) -> AbstractContextManager[None]: ...

    def lock_key(self, key_id: str) -> str: ...

    def record_key(self, key_id: str) -> str: ...

    def peek(self, key_id: str) -> NonceRecord | None: ...

    def mirror(self, key_id: str, record: NonceRecord) -> None: ...

    def live_until(self, key_id: str) -> tuple[float, float]:
        """Until when (``time.monotonic()``) this process's lease on the key is certainly live,
        and how long that lease is (s)."""
        ...

    def renew_now(self, key_id: str) -> None:
        """Renew this process's lease on the key at once (best effort)."""
        ...


class HeldLease:
    """A held key: reads and fenced writes of its record, mirrored to the local store."""

    def __init__(self, store: LeaseOwner, key_id: str, token: str):
        self._store = store
        self._key_id = key_id
        self._token = token

    def read(self) -> NonceRecord | None:
        return self._store.peek(self._key_id)

    def ensure_live(self, need_s: float = 0.0) -> None:
        """Raise unless the lease stays ours for ``need_s`` more seconds, or half a lease when
        that is shorter (a lease set below the request timeout cannot promise more); renewed at
        once when it would not."""
        until, lease = self._store.live_until(self._key_id)
        need = min(need_s, lease / 2)
        if time.monotonic() + need >= until:
            self._store.renew_now(self._key_id)
            until, lease = self._store.live_until(self._key_id)
        if time.monotonic() + need >= until:
            raise NonceStoreUnavailable(
                f"the lease on key {self._key_id} may have run out before the request left (the "
                f"process was paused, or {self._store.description} stopped answering "
                "renewals); nothing was sent"
            )

    def write(self, record: NonceRecord) -> None:
        store, key_id = self._store, self._key_id
        keys = [store.lock_key(key_id), store.record_key(key_id)]
        args = [self._token, str(record.high_water), record.unit, repr(record.hold_until)]
        with store.errors():
            try:
                replicated(
                    store.client,
                    store.replicas,
                    lambda target: run_script(target, store.write_script, keys, args),
                    scripts=[store.write_script],
                )
            except ResponseError as exc:
                text = str(exc)  # (through a pipeline: prefixed with the command)
                if "KWLEASE" in text:
                    raise NonceStoreUnavailable(
                        f"the lease on key {key_id} ran out before its nonce was written "
                        f"({store.description}); nothing was sent"
                    ) from None
                if "KWUNIT" in text:
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
        self._live_until: dict[str, float] = {}
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, lock_key: str, token: str, lease: float, taken_at: float) -> None:
        """Renew ``lock_key`` from now on; it was taken with a request sent at ``taken_at``
        (``time.monotonic()``)."""
        with self._changed:
            self._held[lock_key] = (token, lease)
            self._live_until[lock_key] = taken_at + lease
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="kw-redis-lease", daemon=True
                )
                self._thread.start()
            self._changed.notify_all()

    def remove(self, lock_key: str) -> None:
        with self._changed:
            self._held.pop(lock_key, None)
            self._live_until.pop(lock_key, None)

    def renew_now(self, lock_key: str) -> None:
        """Renew ``lock_key`` now, from the calling thread."""
        with self._changed:
            token, lease = self._held.get(lock_key, ("", 0.0))
        if token:
            self._renew_one(lock_key, token, lease)

    def _renew_one(self, lock_key: str, token: str, lease: float) -> None:
        sent = time.monotonic()
        renewed = self._renew(lock_key, token, lease)
        with self._changed:
            still_held = self._held.get(lock_key, ("", 0.0))[0] == token
            if renewed and still_held:
                self._live_until[lock_key] = max(self._live_until.get(lock_key, 0.0), sent + lease)
        if still_held and not renewed:  # (one released meanwhile is simply gone)
            log.warning("could not renew the nonce lease %s", lock_key)

    def live_until(self, lock_key: str) -> tuple[float, float]:
        """Until when the lease is certainly live: one lease after the request that took or last
        renewed it was sent (Redis counts from when it received it, later); and the lease."""
        with self._changed:
            return self._live_until.get(lock_key, 0.0), self._held.get(lock_key, ("", 0.0))[1]

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._held:
                    self._changed.wait()
                held = dict(self._held)
                period = min(lease for _, lease in held.values()) / 3
            for lock_key, (token, lease) in held.items():
                self._renew_one(lock_key, token, lease)
            with self._changed:
                self._changed.wait(period)
