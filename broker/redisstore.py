"""The Redis nonce store: one writer per key across every process and host that shares a Redis.

``KRAKENWATCH_NONCE_STORE=redis://host:6379/0`` (or ``rediss://`` for TLS; a password goes in the
URL as ``redis://:password@host``). Needs redis-py: ``pip install 'krakenwatch[redis]'``.

* **The lock is a lease.** ``SET krakenwatch:lock:<key id> <random token> NX PX <lease>``; the
  holder renews it while its request is in flight and releases it with compare-and-delete, so a
  crashed holder blocks the others only until its lease runs out (by default the request's read
  timeout plus 30 s).
* **Waiters take turns in arrival order.** A process that finds the key taken joins the key's
  queue (a sorted set ordered by a sequence number) and may take the lease only when it is at the
  head; the holder's release wakes the next live waiter (a list it blocks on), so no replica
  starves and nobody spins. A waiter refreshes a short-lived presence key each time it looks; a
  waiter that stopped looking (killed, frozen) is dropped from the head by the next one. Waiting
  ends at the caller's deadline (by default a lease and a bit) with
  :class:`~broker.errors.KeyBusyError`, nothing sent.
* **Fenced writes.** The high-water mark is written by one Lua script that checks the token first,
  refuses a coarser unit and keeps ``max(old, new)``, so a holder whose lease ran out cannot move
  anything, and the mark never goes backwards. Nonces are compared as decimal strings (Lua's
  numbers lose precision above 2^53, below a nanosecond nonce).
* **Seeded and mirrored.** The first use of a key in this process seeds Redis from the local
  file store (the higher value wins), and every write is mirrored there, so a Redis that lost
  its data (restarted without persistence, ``FLUSHALL``) can be re-seeded.
* **A data loss is waited out.** Redis holds a marker (``krakenwatch:store-id``, stamped with
  Redis' clock when made), remembered by each process and in the data directory. When it changed,
  the data was lost, leases with it: a holder may still have a request in flight. So every key
  stays quiet (its new lease held, nothing sent) until one full lease after the new marker was
  made, then is re-seeded. The loss is reported in the store's description and the log.
* **Across a failover** (``redis-sentinel://``, see :mod:`broker.redisclient`). Replication is
  asynchronous, so a promoted replica may lack the old primary's last writes, leases with them. A
  write of the high-water mark counts once ``replicas`` replicas have it (``WAIT``; 1 by default
  with Sentinels), so an old primary cut off from its replicas acknowledges nothing and nothing is
  sent. The first acquire on a new primary (a new replication id) stamps the change in Redis; every
  process, also one started later, then keeps every key quiet until the longest lease taken in
  the last day has passed since that stamp and re-seeds it from its host's file store, as after a
  data loss; :attr:`RedisStore.primary_since` lets the gateway refuse older captured requests.
* **A paused holder sends nothing.** Right before a request leaves, the holder checks that its
  lease stays its own for the request's read timeout, renewing it at once when it would not (a
  process stopped past its lease wakes up to :class:`~broker.errors.NonceStoreUnavailable`).
* **Fail closed.** Redis unreachable, timing out, read-only (a replica), refusing the password,
  no primary known to the Sentinels, or a write its replicas did not acknowledge:
  :class:`~broker.errors.NonceStoreUnavailable`, and nothing is sent to Kraken.

The held lease (fenced reads and writes) and the thread that renews leases are in
:mod:`broker.redislease`; the Lua scripts in :mod:`broker.redisscripts`.

Redis keys hold the key id (a hash), never the API key; values hold nonces, units and tokens.
The scripts touch keys they compute (waiters of a queue): a single Redis or Sentinel, not Cluster.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from redis.exceptions import (
    RedisError,
)

from . import redisscripts as scripts
from .errors import KeyBusyError, NonceStoreError
from .nonce import NONCE_UNITS, NonceRecord, NonceStore
from .redisclient import connect, failing_closed
from .redislease import HeldLease, LeaseRenewer
from .storespec import RedisSpec, masked_spec

__all__ = ["RedisStore"]

log = logging.getLogger(__name__)

PREFIX = "krakenwatch"
#: the lease when the caller names none
DEFAULT_LEASE_S = 40.0
#: how long connecting and each command may take
IO_TIMEOUT_S = 2.0
#: a waiter in a key's queue that has not looked for this long is dead and leaves the queue
WAITER_TTL_MS = 2000
#: the longest a waiter sleeps between looks when no release wakes it
WAKE_POLL_S = 0.1


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _record(fields: list[Any]) -> NonceRecord | None:
    high, unit, hold = (f.decode() if isinstance(f, bytes) else f for f in fields)
    if high is None:
        return None
    if unit not in NONCE_UNITS:
        raise NonceStoreError(f"Redis holds an unknown nonce unit {unit!r} for a key")
    return NonceRecord(int(high), unit, float(hold or 0.0))


class RedisStore:
    """A nonce store shared through Redis (see the module docstring)."""

    kind = "redis"

    def __init__(
        self,
        spec: RedisSpec,
        *,
        seed: NonceStore | None = None,
        io_timeout_s: float = IO_TIMEOUT_S,
    ):
        # ``spec`` as :func:`broker.storespec.parse_redis_spec` gives it
        self.spec = spec
        self.url = spec.url
        self.lease_s = spec.lease_s
        self.replicas = spec.replicas
        self.seed = seed
        self._io_timeout_s = io_timeout_s
        self._connect()
        self._watch_primary = "1" if spec.sentinel is not None else "0"
        #: the Redis time (ms) this process last saw a new primary stamped, 0: none
        self._primary_changed_ms = 0
        #: when this process found that a failover had happened (Unix time), if it did
        self.failover_at: float | None = None
        #: since when (Redis' clock, Unix time) the primary is the one that replaced another:
        #: it may lack what was written before (the gateway refuses older captured requests)
        self.primary_since: float | None = None
        self._marker: str | None = None
        #: leases this process is done with that Redis has not released yet, by key
        self._unreleased: dict[str, str] = {}
        self._seeded: set[str] = set()
        self._state_lock = threading.Lock()
        #: when this process found that Redis had lost its data (Unix time), if it did
        self.data_lost_at: float | None = None
        #: Redis' clock (ms) when this process saw the marker that told it so
        self._seen_ms = 0
        self._renewer = LeaseRenewer(self.renew)

    def _connect(self) -> None:
        self.client = connect(self.spec, io_timeout_s=self._io_timeout_s, health_check_interval=30)
        self._acquire = self.client.register_script(scripts.ACQUIRE)
        self._leave = self.client.register_script(scripts.LEAVE)
        self._renew = self.client.register_script(scripts.RENEW)
        self._release = self.client.register_script(scripts.RELEASE)
        self.write_script = self.client.register_script(scripts.WRITE)

    # -- the NonceStore interface -----------------------------------------------------------------

    @property
    def description(self) -> str:
        text = f"redis store at {masked_spec(self.url)}"
        if self.data_lost_at is not None:
            lost = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.data_lost_at))
            text += (
                f" (Redis lost its data, found at {lost}: run it with appendonly yes; re-seeded "
                "from this host's file store)"
            )
        if self.failover_at is not None:
            seen = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.failover_at))
            text += f" (a new primary took over, seen at {seen}: every key waited out one lease)"
        return text

    @contextlib.contextmanager
    def hold(
        self, key_id: str, *, lease_s: float | None = None, deadline: float | None = None
    ) -> Iterator[HeldLease]:
        lease = self.lease_s or lease_s or DEFAULT_LEASE_S
        token, quiet_s, taken_at = self._take(key_id, lease, deadline)
        self._renewer.add(self.lock_key(key_id), token, lease, taken_at)
        try:
            if quiet_s > 0:
                self._wait_quiet(key_id, quiet_s, deadline)
            held = HeldLease(self, key_id, token)
            self._seed_once(key_id, held)
            yield held
        finally:
            self._renewer.remove(self.lock_key(key_id))
            self._unreleased[key_id] = token
            self._release_unreleased()

    def _release_unreleased(self) -> None:
        """Release the leases this process is done with (compare-and-delete by token). One Redis
        did not take (it was down; with persistence the lease outlives its restart) is released
        again before this process next takes a lease, instead of blocking everyone until it runs
        out."""
        for key_id, token in list(self._unreleased.items()):
            try:
                self._release(
                    keys=[self.lock_key(key_id), self.queue_key(key_id)],
                    args=[token, f"{PREFIX}:waiter:", f"{PREFIX}:wake:"],
                )
            except RedisError:
                return  # still down: the next take tries again (or the lease runs out)
            if self._unreleased.get(key_id) == token:
                del self._unreleased[key_id]

    def peek(self, key_id: str) -> NonceRecord | None:
        with self.errors():
            fields = self.client.hmget(self.record_key(key_id), "high_water", "unit", "hold_until")
        return _record(list(fields))

    def live_until(self, key_id: str) -> tuple[float, float]:
        return self._renewer.live_until(self.lock_key(key_id))

    def renew_now(self, key_id: str) -> None:
        self._renewer.renew_now(self.lock_key(key_id))

    def reset_after_fork(self) -> None:
        self._state_lock = threading.Lock()
        self._unreleased = {}  # the parent's leases are the parent's
        self._connect()  # the parent's sockets stay the parent's
        self._renewer = LeaseRenewer(self.renew)

    # -- internals --------------------------------------------------------------------------------

    def lock_key(self, key_id: str) -> str:
        return f"{PREFIX}:lock:{key_id}"

    def record_key(self, key_id: str) -> str:
        return f"{PREFIX}:nonce:{key_id}"

    def queue_key(self, key_id: str) -> str:
        return f"{PREFIX}:queue:{key_id}"

    def errors(self) -> contextlib.AbstractContextManager[None]:
        """Redis trouble as :class:`NonceStoreUnavailable` naming the store (never a password)."""
        return failing_closed(masked_spec(self.url))

    def renew(self, lock_key: str, token: str, lease: float) -> bool:
        try:
            return bool(self._renew(keys=[lock_key], args=[token, int(lease * 1000)]))
        except RedisError:
            return False

    def _take(self, key_id: str, lease: float, deadline: float | None) -> tuple[str, float, float]:
        """Acquire the key's lease in arrival order (see the module docstring), waiting until
        ``deadline`` (``time.monotonic()``), by default a lease and a bit. Returns the lease's
        token, how long the key must stay quiet first (after a detected data loss or failover)
        and when (``time.monotonic()``) the request that took it was sent."""
        self._release_unreleased()
        token = secrets.token_hex(16)
        if deadline is None:
            deadline = time.monotonic() + lease + 5.0
        waiter, wake = f"{PREFIX}:waiter:{token}", f"{PREFIX}:wake:{token}"
        keys = [
            self.lock_key(key_id),
            f"{PREFIX}:store-id",
            self.queue_key(key_id),
            f"{PREFIX}:queue-seq:{key_id}",
            waiter,
            f"{PREFIX}:primary",
            f"{PREFIX}:lease-max",
        ]
        args: list[str | int] = [
            token,
            int(lease * 1000),
            secrets.token_hex(8),
            WAITER_TTL_MS,
            f"{PREFIX}:waiter:",
            self._watch_primary,
        ]
        try:
            while True:
                sent = time.monotonic()
                with self.errors():
                    got, marker, _, now_ms, changed_ms, longest_ms = self._acquire(
                        keys=keys, args=args
                    )
                quiet_s = max(
                    self._check_marker(_text(marker), int(now_ms), lease),
                    # a holder lost with the old primary may have taken a longer lease than ours
                    self._check_primary(int(changed_ms), int(now_ms), int(longest_ms) / 1000),
                )
                if got:
                    return token, quiet_s, sent
                left = deadline - time.monotonic()
                if left <= 0:
                    raise KeyBusyError(
                        f"key {key_id} stayed busy (another process or host holds it, "
                        f"{self.description}) until the caller's deadline; nothing was sent"
                    )
                with self.errors():  # woken by the holder's release, or look again soon
                    # (never 0: Redis would block for good)
                    self.client.blpop([wake], timeout=max(0.01, min(WAKE_POLL_S, left)))
        except BaseException:
            with contextlib.suppress(RedisError):
                self._leave(keys=[self.queue_key(key_id), waiter], args=[token])
            raise

    def _check_marker(self, marker: str, now_ms: int, lease: float) -> float:
        """Notice a Redis that lost its data (its marker changed since this process, or this
        data directory, last saw it). Returns the seconds to stay quiet: until one full lease
        after the new marker was made, so that a holder whose lease vanished with the data has
        finished before anyone sends on its key."""
        with self._state_lock:
            known = self._marker if self._marker is not None else self._remembered_marker()
            if marker == self._marker:
                return self._quiet_left(marker, now_ms, lease)
            self._marker = marker
            self._remember_marker(marker)
            if known is None or known == marker:
                return 0.0
            self.data_lost_at = time.time()
            self._seen_ms = now_ms
            self._seeded.clear()  # re-seed every key from the local store
        log.warning(
            "the nonce store %s lost its data (restarted without persistence?): every key waits "
            "out one lease, then is re-seeded from this host's file store; run Redis with "
            "appendonly yes",
            masked_spec(self.url),
        )
        return self._quiet_left(marker, now_ms, lease)

    def _check_primary(self, changed_ms: int, now_ms: int, lease: float) -> float:
        """Notice a new primary (a failover): it may lack the old one's last writes and leases.
        Returns the seconds to stay quiet: until one lease after the change was stamped."""
        if changed_ms == 0:
            return 0.0
        quiet_s = max(0.0, (changed_ms + lease * 1000 - now_ms) / 1000)
        self.primary_since = changed_ms / 1000
        with self._state_lock:
            new = changed_ms != self._primary_changed_ms and quiet_s > 0
            self._primary_changed_ms = changed_ms  # (one long past was waited out by others)
            if new:
                self.failover_at = time.time()
                self._seeded.clear()  # re-seed every key from the local store
        if new:
            log.warning(
                "the nonce store %s has a new primary since a failover (Redis time %d ms): every "
                "key waits out one lease from then, then is re-seeded from this host's file store",
                masked_spec(self.url),
                changed_ms,
            )
        return quiet_s

    def _quiet_left(self, marker: str, now_ms: int, lease: float) -> float:
        """Seconds left of the quiet lease after a data loss (0 when none was seen)."""
        if self.data_lost_at is None:
            return 0.0
        stamp = marker.rpartition(":")[2]
        # a marker made by an older krakenwatch carries no time: count from when it was seen
        made_ms = int(stamp) if marker.count(":") == 1 and stamp.isdigit() else self._seen_ms
        return max(0.0, (made_ms + lease * 1000 - now_ms) / 1000)

    def _wait_quiet(self, key_id: str, quiet_s: float, deadline: float | None) -> None:
        """Hold the (renewed) lease and send nothing until the quiet lease is over."""
        if deadline is not None and time.monotonic() + quiet_s > deadline:
            raise KeyBusyError(
                f"key {key_id} waits out a lease after {self.description} lost its data or changed "
                "primary; "
                "nothing was sent"
            )
        time.sleep(quiet_s)

    def _marker_file(self) -> Path | None:
        directory = getattr(self.seed, "directory", None)
        if not isinstance(directory, Path):
            return None
        return directory / f"redis-{hashlib.sha256(self.url.encode()).hexdigest()[:16]}.marker"

    def _remembered_marker(self) -> str | None:
        """The marker this data directory last saw in this Redis (across restarts)."""
        path = self._marker_file()
        try:
            return path.read_text().strip() or None if path is not None else None
        except OSError:
            return None

    def _remember_marker(self, marker: str) -> None:
        path = self._marker_file()
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temp = path.with_suffix(".tmp")
            temp.write_text(marker + "\n")
            os.replace(temp, path)
        except OSError as exc:
            log.debug("could not remember the Redis marker in %s: %s", path, exc)

    def _seed_once(self, key_id: str, lease: HeldLease) -> None:
        with self._state_lock:
            if key_id in self._seeded:
                return
        if self.seed is not None:
            local = self.seed.peek(key_id)
            current = lease.read()
            if local is not None:
                if current is not None and NONCE_UNITS[local.unit] < NONCE_UNITS[current.unit]:
                    local = None  # Redis already knows a finer unit; the write would refuse it
                else:
                    lease.write(local if current is None else local.merged(current))
        with self._state_lock:
            self._seeded.add(key_id)

    def mirror(self, key_id: str, record: NonceRecord) -> None:
        """Best effort: the local file store follows Redis, for re-seeding after a loss."""
        if self.seed is None:
            return
        try:
            with self.seed.hold(key_id) as local:
                current = local.read()
                local.write(record if current is None else current.merged(record))
        except NonceStoreError as exc:
            log.debug("could not mirror key %s locally: %s", key_id, exc.message)
