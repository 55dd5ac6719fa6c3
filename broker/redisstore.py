"""The Redis nonce store: one writer per key across every process and host that shares a Redis.

``KRAKENWATCH_NONCE_STORE=redis://host:6379/0`` (or ``rediss://`` for TLS; a password goes in the
URL as ``redis://:password@host``). Needs redis-py: ``pip install 'krakenwatch[redis]'``.

* **The lock is a lease.** ``SET krakenwatch:lock:<key id> <random token> NX PX <lease>``; the
  holder renews it while its request is in flight and releases it with compare-and-delete, so a
  crashed holder blocks the others only until its lease runs out (by default the request's read
  timeout plus 30 s). Waiters back off (a few ms, growing, with jitter), at most a lease and a bit
  before :class:`~broker.errors.NonceStoreError` says the key stayed busy.
* **Fenced writes.** The high-water mark is written by one Lua script that checks the token first,
  refuses a coarser unit and keeps ``max(old, new)``, so a holder whose lease ran out cannot move
  anything, and the mark never goes backwards. Nonces are compared as decimal strings (Lua's
  numbers lose precision above 2^53, below a nanosecond nonce).
* **Seeded and mirrored.** The first use of a key in this process seeds Redis from the local
  file store (the higher value wins), and every write is mirrored there, so a Redis that lost
  its data (restarted without persistence) can be re-seeded. Such a loss is detected through a
  marker key and reported in the store's description and the log.
* **Fail closed.** Redis unreachable, timing out, read-only (a replica) or refusing the password:
  :class:`~broker.errors.NonceStoreUnavailable`, and nothing is sent to Kraken.

Redis keys hold the key id (a hash), never the API key; values hold nonces, units and a token.
"""

from __future__ import annotations

import contextlib
import logging
import random
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import redis
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    ReadOnlyError,
    RedisError,
    ResponseError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)

from .errors import NonceStoreError, NonceStoreUnavailable
from .nonce import NONCE_UNITS, NonceRecord, NonceStore
from .stores import masked_spec

__all__ = ["RedisStore"]

log = logging.getLogger(__name__)

PREFIX = "krakenwatch"
#: the lease when the caller names none
DEFAULT_LEASE_S = 40.0
#: how long connecting and each command may take
IO_TIMEOUT_S = 2.0

_ACQUIRE = """
local got = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
local marker = redis.call('GET', KEYS[2])
local created = 0
if not marker then
  redis.call('SET', KEYS[2], ARGV[3])
  marker = ARGV[3]
  created = 1
end
if got then return {1, marker, created} end
return {0, marker, created}
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_WRITE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('KWLEASE') end
local rank = {ms = 1, us = 2, ns = 3}
local high, unit, hold = ARGV[2], ARGV[3], ARGV[4]
local cur = redis.call('HMGET', KEYS[2], 'high_water', 'unit')
if cur[1] and cur[1] ~= '0' then
  local finer = rank[unit] - rank[cur[2]]
  if finer < 0 then return redis.error_reply('KWUNIT ' .. cur[2]) end
  local old = cur[1] .. string.rep('0', 3 * finer)
  if #old > #high or (#old == #high and old > high) then high = old end
end
redis.call('HSET', KEYS[2], 'high_water', high, 'unit', unit, 'hold_until', hold)
return high
"""


def _record(fields: list[Any]) -> NonceRecord | None:
    high, unit, hold = (f.decode() if isinstance(f, bytes) else f for f in fields)
    if high is None:
        return None
    if unit not in NONCE_UNITS:
        raise NonceStoreError(f"Redis holds an unknown nonce unit {unit!r} for a key")
    return NonceRecord(int(high), unit, float(hold or 0.0))


class _Lease:
    """A held key: reads and fenced writes of its record, mirrored to the local store."""

    def __init__(self, store: RedisStore, key_id: str, token: str):
        self._store = store
        self._key_id = key_id
        self._token = token

    def read(self) -> NonceRecord | None:
        with self._store.errors():
            fields = self._store.client.hmget(
                self._store.record_key(self._key_id), "high_water", "unit", "hold_until"
            )
        return _record(list(fields))

    def write(self, record: NonceRecord) -> None:
        store = self._store
        with store.errors():
            try:
                store.write_script(
                    keys=[store.lock_key(self._key_id), store.record_key(self._key_id)],
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
                        f"the lease on key {self._key_id} ran out before its nonce was written "
                        f"({store.description}); nothing was sent"
                    ) from None
                if text.startswith("KWUNIT"):
                    raise NonceStoreError(
                        f"key {self._key_id} already used {text.split()[-1]} nonces in "
                        f"{store.description}; refusing a coarser unit"
                    ) from None
                raise
        store.mirror(self._key_id, record)


class RedisStore:
    """A nonce store shared through Redis (see the module docstring)."""

    kind = "redis"

    def __init__(
        self,
        url: str,
        *,
        seed: NonceStore | None = None,
        lease_s: float | None = None,
        io_timeout_s: float = IO_TIMEOUT_S,
    ):
        # ``url`` and ``lease_s`` as :func:`broker.stores.parse_redis_spec` gives them
        self.url = url
        self.lease_s = lease_s
        self.seed = seed
        self._io_timeout_s = io_timeout_s
        self._connect()
        self._marker: str | None = None
        self._seeded: set[str] = set()
        self._state_lock = threading.Lock()
        #: when this process found that Redis had lost its data (Unix time), if it did
        self.data_lost_at: float | None = None
        self._renewer = _Renewer(self)

    def _connect(self) -> None:
        self.client = redis.Redis.from_url(
            self.url,
            socket_connect_timeout=self._io_timeout_s,
            socket_timeout=self._io_timeout_s,
            health_check_interval=30,
        )
        self._acquire = self.client.register_script(_ACQUIRE)
        self._renew = self.client.register_script(_RENEW)
        self._release = self.client.register_script(_RELEASE)
        self.write_script = self.client.register_script(_WRITE)

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
        return text

    @contextlib.contextmanager
    def hold(self, key_id: str, *, lease_s: float | None = None) -> Iterator[_Lease]:
        lease = self.lease_s or lease_s or DEFAULT_LEASE_S
        token = self._take(key_id, lease)
        self._renewer.add(self.lock_key(key_id), token, lease)
        try:
            held = _Lease(self, key_id, token)
            self._seed_once(key_id, held)
            yield held
        finally:
            self._renewer.remove(self.lock_key(key_id))
            with contextlib.suppress(RedisError):  # an unreleased lease simply runs out
                self._release(keys=[self.lock_key(key_id)], args=[token])

    def peek(self, key_id: str) -> NonceRecord | None:
        with self.errors():
            fields = self.client.hmget(self.record_key(key_id), "high_water", "unit", "hold_until")
        return _record(list(fields))

    def reset_after_fork(self) -> None:
        self._state_lock = threading.Lock()
        self._connect()  # the parent's sockets stay the parent's
        self._renewer = _Renewer(self)

    # -- internals --------------------------------------------------------------------------------

    def lock_key(self, key_id: str) -> str:
        return f"{PREFIX}:lock:{key_id}"

    def record_key(self, key_id: str) -> str:
        return f"{PREFIX}:nonce:{key_id}"

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """Redis trouble as :class:`NonceStoreUnavailable` naming the store (never a password)."""
        where = masked_spec(self.url)
        try:
            yield
        except ReadOnlyError:
            raise NonceStoreUnavailable(
                f"Redis at {where} is read-only (a replica?); nothing was sent"
            ) from None
        except (RedisConnectionError, RedisTimeoutError) as exc:
            raise NonceStoreUnavailable(
                f"Redis at {where} is unreachable or not answering ({type(exc).__name__}); "
                "nothing was sent"
            ) from None

    def renew(self, lock_key: str, token: str, lease: float) -> bool:
        try:
            return bool(self._renew(keys=[lock_key], args=[token, int(lease * 1000)]))
        except RedisError:
            return False

    def _take(self, key_id: str, lease: float) -> str:
        """Acquire the key's lease, waiting with backoff at most ``lease`` + 5 s."""
        token = secrets.token_hex(16)
        deadline = time.monotonic() + lease + 5.0
        pause = 0.002
        while True:
            with self.errors():
                got, marker, created = self._acquire(
                    keys=[self.lock_key(key_id), f"{PREFIX}:store-id"],
                    args=[token, int(lease * 1000), secrets.token_hex(8)],
                )
            self._check_marker(
                marker.decode() if isinstance(marker, bytes) else str(marker), created
            )
            if got:
                return token
            if time.monotonic() + pause > deadline:
                raise NonceStoreError(
                    f"key {key_id} stayed busy for {lease + 5:g} s in {self.description}: "
                    "another process holds it; nothing was sent"
                )
            time.sleep(pause * random.uniform(0.5, 1.5))
            pause = min(pause * 2, 0.05)

    def _check_marker(self, marker: str, created: int) -> None:
        with self._state_lock:
            if self._marker is None:
                self._marker = marker
                return
            if marker == self._marker:
                return
            self._marker = marker
            self.data_lost_at = time.time()
            self._seeded.clear()  # re-seed every key from the local store
        log.warning(
            "the nonce store %s lost its data (restarted without persistence?): re-seeding keys "
            "from this host's file store; run Redis with appendonly yes",
            masked_spec(self.url),
        )

    def _seed_once(self, key_id: str, lease: _Lease) -> None:
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


class _Renewer:
    """One daemon thread per store that renews the leases this process holds."""

    def __init__(self, store: RedisStore):
        self._store = store
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
                if not self._store.renew(lock_key, token, lease):
                    log.warning("could not renew the nonce lease %s", lock_key)
            with self._changed:
                self._changed.wait(period)
