"""Where the gateway remembers the state-changing requests it sent: kept where the nonces are, so
the memory outlives a restart and is shared by every replica that shares the nonces.

* :class:`FileReplayStore` — ``replay.sqlite3`` in the data dir's nonce folder (mode 0600), for
  every gateway process on the host that uses that data dir. WAL; each remembered request is
  committed before the request leaves, synced to disk when nonce records are
  (``KRAKENWATCH_NONCE_SYNC``, default on), so a power loss forgets nothing either.
* :class:`RedisReplayStore` — the Redis of ``KRAKENWATCH_NONCE_STORE``: ``SET NX`` with an expiry,
  shared by every replica; with Sentinels, a request counts as remembered once the store's
  replicas have it (``WAIT``), so a failover cannot forget a request that was sent.

Both hold digests only (never a body, a key or a signature), each until the moment its nonce
falls out of the freshness window (after which the request is refused for its age anyway), and
a per-credential high-water mark for bots that send counter nonces. Trouble with the store is
:class:`ReplayStoreError`: the gateway then sends nothing (fail closed).
"""

from __future__ import annotations

import functools
import sqlite3
import threading
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from broker.stores import masked_spec, parse_redis_spec

from .sqlitefile import failing_closed, private_sqlite

__all__ = [
    "DEFAULT_CAPACITY",
    "FileReplayStore",
    "RedisReplayStore",
    "ReplayStore",
    "ReplayStoreError",
    "open_replay_store",
]

#: the most requests a file store remembers at once (expired ones are purged first)
DEFAULT_CAPACITY = 1_000_000
#: expired rows are purged at most this often
_PURGE_EVERY_S = 1.0
_PREFIX = "krakenwatch:replay"


class ReplayStoreError(Exception):
    """The replay memory cannot be read or written (or is full); nothing was sent."""


class ReplayStore(Protocol):
    #: ``"file"`` or ``"redis"``
    kind: str

    def claim(self, digest: bytes, expires_at: float) -> bool:
        """Remember ``digest`` until ``expires_at`` (Unix time); ``False`` when it is remembered
        already (a replay)."""
        ...

    def release(self, digest: bytes) -> None:
        """Forget ``digest``: its request was never sent."""
        ...

    def advance(self, credential: str, nonce: int) -> bool:
        """Raise ``credential``'s counter to ``nonce``; ``False`` when it is not above it."""
        ...

    def close(self) -> None: ...


class FileReplayStore:
    """The replay memory in a SQLite file (see the module docstring). Thread-safe."""

    kind = "file"

    def __init__(self, path: Path, *, durable: bool = True, capacity: int = DEFAULT_CAPACITY):
        self.path = path
        self.capacity = capacity
        self._lock = threading.Lock()
        self._purged_at = 0.0
        self._rows = 0
        try:
            self._db = private_sqlite(path, durable=durable)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS seen (digest BLOB PRIMARY KEY, expires REAL NOT NULL)"
                " WITHOUT ROWID"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS counters (credential TEXT PRIMARY KEY, last TEXT)"
            )
        except (OSError, sqlite3.Error) as exc:
            raise ReplayStoreError(f"replay memory {path}: {exc}") from None

    def claim(self, digest: bytes, expires_at: float) -> bool:
        now = time.time()
        with self._lock, self._errors():
            self._purge(now)
            if self._rows >= self.capacity:
                raise ReplayStoreError(
                    f"replay memory {self.path} is full ({self.capacity} requests in the window)"
                )
            taken = self._db.execute(
                "INSERT INTO seen VALUES (?, ?) ON CONFLICT (digest) DO UPDATE"
                " SET expires = excluded.expires WHERE seen.expires < ?",
                (digest, expires_at, now),
            ).rowcount
            self._rows += taken
            return taken == 1

    def release(self, digest: bytes) -> None:
        with self._lock, self._errors():
            self._db.execute("DELETE FROM seen WHERE digest = ?", (digest,))

    def advance(self, credential: str, nonce: int) -> bool:
        padded = f"{nonce:020d}"  # text compares like the number: 2^64 does not fit an INTEGER
        with self._lock, self._errors():
            return (
                self._db.execute(
                    "INSERT INTO counters VALUES (?, ?) ON CONFLICT (credential) DO UPDATE"
                    " SET last = excluded.last WHERE counters.last < excluded.last",
                    (credential, padded),
                ).rowcount
                == 1
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _purge(self, now: float) -> None:
        if now - self._purged_at < _PURGE_EVERY_S:
            return
        self._db.execute("DELETE FROM seen WHERE expires < ?", (now,))
        self._rows = self._db.execute("SELECT count(*) FROM seen").fetchone()[0]
        self._purged_at = now

    def _errors(self) -> AbstractContextManager[None]:
        return failing_closed(ReplayStoreError, f"replay memory {self.path}", sqlite3.Error)


_ADVANCE = """
local cur = redis.call('GET', KEYS[1])
local new = ARGV[1]
if cur and (#cur > #new or (#cur == #new and cur >= new)) then return 0 end
redis.call('SET', KEYS[1], new)
return 1
"""


class RedisReplayStore:
    """The replay memory in the nonce store's Redis (see the module docstring)."""

    kind = "redis"

    def __init__(self, spec: str, *, io_timeout_s: float = 2.0):
        import redis

        from broker.redisclient import connect, replicated, run_script

        self.where = masked_spec(spec)
        parsed = parse_redis_spec(spec)
        self._client = connect(parsed, io_timeout_s=io_timeout_s)
        self._write = functools.partial(replicated, self._client, parsed.replicas)
        self._advance = self._client.register_script(_ADVANCE)
        self._run_script = run_script
        self._redis_error: type[Exception] = redis.RedisError

    def claim(self, digest: bytes, expires_at: float) -> bool:
        key, pxat = f"{_PREFIX}:{digest.hex()}", int(expires_at * 1000) + 1
        with self._errors():
            return bool(self._write(lambda pipe: pipe.set(key, b"1", nx=True, pxat=pxat))[0])

    def release(self, digest: bytes) -> None:
        with self._errors():
            self._client.delete(f"{_PREFIX}:{digest.hex()}")

    def advance(self, credential: str, nonce: int) -> bool:
        keys = [f"{_PREFIX}:counter:{credential}"]
        with self._errors():
            written = self._write(
                lambda target: self._run_script(target, self._advance, keys, [str(nonce)]),
                scripts=[self._advance],
            )
        return bool(written[0])

    def close(self) -> None:
        self._client.close()

    def _errors(self) -> AbstractContextManager[None]:
        return failing_closed(
            ReplayStoreError,
            f"replay memory in Redis at {self.where}",
            self._redis_error,
            detail=False,
        )


def open_replay_store(nonce_store: str, store_dir: Path, *, durable: bool) -> ReplayStore:
    """The replay memory beside the nonces: Redis when ``nonce_store`` is a Redis URL, else
    ``replay.sqlite3`` in ``store_dir``."""
    if nonce_store.strip() != "file":
        return RedisReplayStore(nonce_store.strip())
    return FileReplayStore(store_dir / "replay.sqlite3", durable=durable)
