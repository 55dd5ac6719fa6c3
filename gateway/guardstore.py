"""Where the trading guard keeps what every gateway on a key must agree on: the halts in force, the
modelled per-pair trading counters, and the recent orders (their pairs and ages, for what a cancel
or an edit will cost). Kept where the nonces are:

* :class:`FileGuardStore` — ``guard.sqlite3`` in the data dir's nonce folder (mode 0600, WAL), for
  every gateway process of the host on that data dir, and for ``krakenwatch gateway halt``.
* :class:`RedisGuardStore` — the Redis of ``KRAKENWATCH_NONCE_STORE``, for every replica.

Counters are read and written while the key is held (the nonce store's lock or lease), so a
read-decide-write needs no transaction of its own. Times are Unix times (shared across hosts).
Trouble with the store is :class:`GuardStoreError`: the guard then sends no order (fail closed).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from broker.limits import TRADING_AGE_HORIZON_S
from broker.stores import masked_spec, parse_redis_spec

from .guardview import HaltRecord
from .sqlitefile import failing_closed, private_sqlite

__all__ = [
    "FileGuardStore",
    "GuardLogEntry",
    "GuardStore",
    "GuardStoreError",
    "OrderSeen",
    "RedisGuardStore",
    "open_guard_store",
]

_PREFIX = "krakenwatch:guard"
#: the whole-account scope of a halt in the store (a client name is never empty)
_EVERY = ""
#: halts and resumes kept in the log (every gateway reads it within a second)
_LOG_KEPT = 1000


class GuardStoreError(Exception):
    """The guard's store cannot be read or written; no order was sent."""


@dataclass(frozen=True)
class OrderSeen:
    """An order the gateway saw opened (or amended): what a cancel, an edit or an amend of it
    will cost depends on its age."""

    txid: str
    pair: str
    #: when it was opened or last amended (Unix time; the answer's arrival: the latest possible)
    at: float
    userref: str | None = None
    cl_ord_id: str | None = None

    def to_json(self) -> str:
        return json.dumps([self.txid, self.pair, self.at, self.userref, self.cl_ord_id])

    @classmethod
    def from_json(cls, text: str | bytes) -> OrderSeen:
        txid, pair, at, userref, cl_ord_id = json.loads(text)
        return cls(txid, pair, float(at), userref, cl_ord_id)


@dataclass(frozen=True)
class GuardLogEntry:
    """A halt or a resume, as written by whoever asked (any process, any host)."""

    kind: str
    account: str
    client: str | None
    reason: str
    origin: str
    at: float

    def to_json(self) -> str:
        return json.dumps([self.kind, self.account, self.client, self.reason, self.origin, self.at])

    @classmethod
    def from_json(cls, text: str | bytes) -> GuardLogEntry:
        kind, account, client, reason, origin, at = json.loads(text)
        return cls(kind, account, client, reason, origin, float(at))


def _halt_json(halt: HaltRecord) -> str:
    return json.dumps({"reason": halt.reason, "origin": halt.origin, "at": halt.at})


def _halt(account: str, client: str, text: str | bytes) -> HaltRecord:
    doc: dict[str, Any] = json.loads(text)
    return HaltRecord(account, client or None, doc["reason"], doc["origin"], float(doc["at"]))


class GuardStore(Protocol):
    #: ``"file"`` or ``"redis"``
    kind: str

    def halts(self) -> list[HaltRecord]: ...

    def put_halt(self, halt: HaltRecord) -> None: ...

    def drop_halt(self, account: str, client: str | None) -> bool:
        """``False`` when there was no such halt."""
        ...

    def counter(self, scope: str) -> tuple[float, float] | None:
        """``(level, at)`` of a counter, ``None`` when it was never charged."""
        ...

    def set_counter(self, scope: str, level: float, at: float) -> None: ...

    def remember(self, key_id: str, orders: list[OrderSeen]) -> None: ...

    def orders(self, key_id: str) -> list[OrderSeen]:
        """The key's orders seen within the age horizon (older ones cost nothing more)."""
        ...

    def forget(self, key_id: str, txids: list[str]) -> None: ...

    def append(self, entry: GuardLogEntry) -> None:
        """Add a halt or a resume to the log every gateway follows."""
        ...

    def log_end(self) -> str:
        """The log's cursor now (what follows it is new)."""
        ...

    def log_since(self, cursor: str) -> tuple[list[GuardLogEntry], str]:
        """The entries after ``cursor``, and the new cursor."""
        ...

    def close(self) -> None: ...


class FileGuardStore:
    """The guard's store in a SQLite file (see the module docstring). Thread-safe."""

    kind = "file"

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        try:
            self._db = private_sqlite(path, durable=True)
            self._db.executescript(
                "CREATE TABLE IF NOT EXISTS halts (account TEXT, client TEXT, doc TEXT,"
                " PRIMARY KEY (account, client));"
                "CREATE TABLE IF NOT EXISTS counters (scope TEXT PRIMARY KEY, level REAL, at REAL);"
                "CREATE TABLE IF NOT EXISTS orders (key_id TEXT, txid TEXT, at REAL, doc TEXT,"
                " PRIMARY KEY (key_id, txid));"
                "CREATE TABLE IF NOT EXISTS log (id INTEGER PRIMARY KEY AUTOINCREMENT, doc TEXT);"
            )
        except (OSError, sqlite3.Error) as exc:
            raise GuardStoreError(f"trading guard store {path}: {exc}") from None

    def halts(self) -> list[HaltRecord]:
        with self._lock, self._errors():
            rows = self._db.execute("SELECT account, client, doc FROM halts").fetchall()
        return sorted((_halt(*row) for row in rows), key=lambda h: h.at)

    def put_halt(self, halt: HaltRecord) -> None:
        with self._lock, self._errors():
            self._db.execute(
                "INSERT OR REPLACE INTO halts VALUES (?, ?, ?)",
                (halt.account, halt.client or _EVERY, _halt_json(halt)),
            )

    def drop_halt(self, account: str, client: str | None) -> bool:
        with self._lock, self._errors():
            return (
                self._db.execute(
                    "DELETE FROM halts WHERE account = ? AND client = ?",
                    (account, client or _EVERY),
                ).rowcount
                == 1
            )

    def counter(self, scope: str) -> tuple[float, float] | None:
        with self._lock, self._errors():
            row = self._db.execute(
                "SELECT level, at FROM counters WHERE scope = ?", (scope,)
            ).fetchone()
        return None if row is None else (float(row[0]), float(row[1]))

    def set_counter(self, scope: str, level: float, at: float) -> None:
        with self._lock, self._errors():
            self._db.execute("INSERT OR REPLACE INTO counters VALUES (?, ?, ?)", (scope, level, at))

    def remember(self, key_id: str, orders: list[OrderSeen]) -> None:
        with self._lock, self._errors():
            self._db.executemany(
                "INSERT OR REPLACE INTO orders VALUES (?, ?, ?, ?)",
                [(key_id, o.txid, o.at, o.to_json()) for o in orders],
            )

    def orders(self, key_id: str) -> list[OrderSeen]:
        oldest = time.time() - TRADING_AGE_HORIZON_S
        with self._lock, self._errors():
            self._db.execute("DELETE FROM orders WHERE at < ?", (oldest,))
            rows = self._db.execute(
                "SELECT doc FROM orders WHERE key_id = ? ORDER BY at", (key_id,)
            ).fetchall()
        return [OrderSeen.from_json(row[0]) for row in rows]

    def forget(self, key_id: str, txids: list[str]) -> None:
        with self._lock, self._errors():
            self._db.executemany(
                "DELETE FROM orders WHERE key_id = ? AND txid = ?", [(key_id, t) for t in txids]
            )

    def append(self, entry: GuardLogEntry) -> None:
        with self._lock, self._errors():
            self._db.execute("INSERT INTO log (doc) VALUES (?)", (entry.to_json(),))
            self._db.execute(
                "DELETE FROM log WHERE id <= (SELECT max(id) FROM log) - ?", (_LOG_KEPT,)
            )

    def log_end(self) -> str:
        with self._lock, self._errors():
            return str(self._db.execute("SELECT coalesce(max(id), 0) FROM log").fetchone()[0])

    def log_since(self, cursor: str) -> tuple[list[GuardLogEntry], str]:
        with self._lock, self._errors():
            rows = self._db.execute(
                "SELECT id, doc FROM log WHERE id > ? ORDER BY id", (int(cursor),)
            ).fetchall()
        if not rows:
            return [], cursor
        return [GuardLogEntry.from_json(doc) for _, doc in rows], str(rows[-1][0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _errors(self) -> AbstractContextManager[None]:
        return failing_closed(GuardStoreError, f"trading guard store {self.path}", sqlite3.Error)


class RedisGuardStore:
    """The guard's store in the nonce store's Redis (see the module docstring)."""

    kind = "redis"

    def __init__(self, spec: str, *, io_timeout_s: float = 2.0):
        import redis

        self.where = masked_spec(spec)
        self._client = redis.Redis.from_url(
            parse_redis_spec(spec).url,
            socket_connect_timeout=io_timeout_s,
            socket_timeout=io_timeout_s,
        )
        self._redis_error: type[Exception] = redis.RedisError

    def halts(self) -> list[HaltRecord]:
        with self._errors():
            found = self._client.hgetall(f"{_PREFIX}:halts")
        halts = []
        for field, doc in found.items():
            account, _, client = _text(field).partition("\x1f")
            halts.append(_halt(account, client, doc))
        return sorted(halts, key=lambda h: h.at)

    def put_halt(self, halt: HaltRecord) -> None:
        with self._errors():
            self._client.hset(
                f"{_PREFIX}:halts", _halt_field(halt.account, halt.client), _halt_json(halt)
            )

    def drop_halt(self, account: str, client: str | None) -> bool:
        with self._errors():
            return bool(self._client.hdel(f"{_PREFIX}:halts", _halt_field(account, client)))

    def counter(self, scope: str) -> tuple[float, float] | None:
        with self._errors():
            value = self._client.get(f"{_PREFIX}:counter:{scope}")
        if value is None:
            return None
        level, at = _text(value).split()
        return float(level), float(at)

    def set_counter(self, scope: str, level: float, at: float) -> None:
        with self._errors():
            # a counter left alone decays to 0 well within a day at every tier
            self._client.set(f"{_PREFIX}:counter:{scope}", f"{level!r} {at!r}", ex=86400)

    def remember(self, key_id: str, orders: list[OrderSeen]) -> None:
        name = f"{_PREFIX}:orders:{key_id}"
        with self._errors():
            pipe = self._client.pipeline()
            pipe.hset(name, mapping={o.txid: o.to_json() for o in orders})
            pipe.expire(name, int(TRADING_AGE_HORIZON_S) * 2)
            pipe.execute()

    def orders(self, key_id: str) -> list[OrderSeen]:
        name = f"{_PREFIX}:orders:{key_id}"
        oldest = time.time() - TRADING_AGE_HORIZON_S
        with self._errors():
            found = [OrderSeen.from_json(doc) for doc in self._client.hvals(name)]
            stale = [o.txid for o in found if o.at < oldest]
            if stale:
                self._client.hdel(name, *stale)
        return sorted((o for o in found if o.at >= oldest), key=lambda o: o.at)

    def forget(self, key_id: str, txids: list[str]) -> None:
        if txids:
            with self._errors():
                self._client.hdel(f"{_PREFIX}:orders:{key_id}", *txids)

    def append(self, entry: GuardLogEntry) -> None:
        with self._errors():
            self._client.xadd(
                f"{_PREFIX}:log", {"doc": entry.to_json()}, maxlen=_LOG_KEPT, approximate=True
            )

    def log_end(self) -> str:
        with self._errors():
            last = self._client.xrevrange(f"{_PREFIX}:log", count=1)
        return _text(last[0][0]) if last else "0-0"

    def log_since(self, cursor: str) -> tuple[list[GuardLogEntry], str]:
        with self._errors():
            rows = self._client.xrange(f"{_PREFIX}:log", min=f"({cursor}")
        if not rows:
            return [], cursor
        entries = [GuardLogEntry.from_json(_text((fields or {})[b"doc"])) for _, fields in rows]
        return entries, _text(rows[-1][0])

    def close(self) -> None:
        self._client.close()

    def _errors(self) -> AbstractContextManager[None]:
        return failing_closed(
            GuardStoreError,
            f"trading guard store in Redis at {self.where}",
            self._redis_error,
            detail=False,
        )


def _text(value: Any) -> str:
    """A Redis reply as text (redis-py answers bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _halt_field(account: str, client: str | None) -> str:
    return f"{account}\x1f{client or _EVERY}"


def open_guard_store(nonce_store: str, store_dir: Path) -> GuardStore:
    """The guard's store beside the nonces: Redis when ``nonce_store`` is a Redis URL, else
    ``guard.sqlite3`` in ``store_dir``."""
    if nonce_store.strip() != "file":
        return RedisGuardStore(nonce_store.strip())
    return FileGuardStore(store_dir / "guard.sqlite3")
