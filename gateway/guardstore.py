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

import functools
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
    #: the account's key (hashed): an account label means that key only
    key_id: str = ""

    def to_json(self) -> str:
        return json.dumps(
            [self.kind, self.account, self.client, self.reason, self.origin, self.at, self.key_id]
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> GuardLogEntry:
        kind, account, client, reason, origin, at, key_id = json.loads(text)
        return cls(kind, account, client, reason, origin, float(at), key_id)


def _halt_json(halt: HaltRecord) -> str:
    return json.dumps({"reason": halt.reason, "origin": halt.origin, "at": halt.at})


def _halt(account: str, client: str, text: str | bytes) -> HaltRecord:
    doc: dict[str, Any] = json.loads(text)
    return HaltRecord(account, client or None, doc["reason"], doc["origin"], float(doc["at"]))


class GuardStore(Protocol):
    #: ``"file"`` or ``"redis"``
    kind: str

    def halts(self) -> list[tuple[str, HaltRecord]]:
        """``(key id, halt)``: a halt binds its account label on that key only (two
        deployments on one Redis may both have a MASTER)."""
        ...

    def put_halt(self, key_id: str, halt: HaltRecord) -> None: ...

    def drop_halt(self, key_id: str, account: str, client: str | None) -> bool:
        """``False`` when there was no such halt."""
        ...

    def counter(self, scope: str) -> tuple[float, float] | None:
        """``(level, at)`` of a counter, ``None`` when it was never charged."""
        ...

    def set_counter(self, scope: str, level: float, at: float) -> None: ...

    def change_counter(
        self, scope: str, decay_per_s: float, at: float, *, add: float = 0.0, floor: float = 0.0
    ) -> float:
        """In one step (whoever else writes it meanwhile): decay the counter to ``at``, add
        ``add`` (negative: give back), raise it to at least ``floor``; the new level."""
        ...

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
                "CREATE TABLE IF NOT EXISTS halts (key_id TEXT, account TEXT, client TEXT,"
                " doc TEXT, PRIMARY KEY (key_id, account, client));"
                "CREATE TABLE IF NOT EXISTS counters (scope TEXT PRIMARY KEY, level REAL, at REAL);"
                "CREATE TABLE IF NOT EXISTS orders (key_id TEXT, txid TEXT, at REAL, doc TEXT,"
                " PRIMARY KEY (key_id, txid));"
                "CREATE TABLE IF NOT EXISTS log (id INTEGER PRIMARY KEY AUTOINCREMENT, doc TEXT);"
            )
        except (OSError, sqlite3.Error) as exc:
            raise GuardStoreError(f"trading guard store {path}: {exc}") from None

    def halts(self) -> list[tuple[str, HaltRecord]]:
        with self._lock, self._errors():
            rows = self._db.execute("SELECT key_id, account, client, doc FROM halts").fetchall()
        return sorted(((k, _halt(a, c, d)) for k, a, c, d in rows), key=lambda h: h[1].at)

    def put_halt(self, key_id: str, halt: HaltRecord) -> None:
        with self._lock, self._errors():
            self._db.execute(
                "INSERT OR REPLACE INTO halts VALUES (?, ?, ?, ?)",
                (key_id, halt.account, halt.client or _EVERY, _halt_json(halt)),
            )

    def drop_halt(self, key_id: str, account: str, client: str | None) -> bool:
        with self._lock, self._errors():
            return (
                self._db.execute(
                    "DELETE FROM halts WHERE key_id = ? AND account = ? AND client = ?",
                    (key_id, account, client or _EVERY),
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

    def change_counter(
        self, scope: str, decay_per_s: float, at: float, *, add: float = 0.0, floor: float = 0.0
    ) -> float:
        with self._lock, self._errors():  # one UPSERT: atomic against every other process
            row = self._db.execute(
                "INSERT INTO counters VALUES (?, max(?, max(0.0, ?)), ?) ON CONFLICT (scope) DO"
                " UPDATE SET level = max(?, max(0.0, max(0.0, level - max(0.0, ? - at) * ?) + ?)),"
                " at = ? RETURNING level",
                (scope, floor, add, at, floor, at, decay_per_s, add, at),
            ).fetchone()
        return float(row[0])

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

        from broker.redisclient import connect, replicated

        self.where = masked_spec(spec)
        parsed = parse_redis_spec(spec)
        self._client = connect(parsed, io_timeout_s=io_timeout_s)
        self._write = functools.partial(replicated, self._client, parsed.replicas)
        self._redis_error: type[Exception] = redis.RedisError
        self._change = self._client.register_script(_CHANGE_COUNTER)

    def halts(self) -> list[tuple[str, HaltRecord]]:
        with self._errors():
            found = self._client.hgetall(f"{_PREFIX}:halts")
        halts = []
        for field, doc in found.items():
            key_id, account, client = _text(field).split("\x1f")
            halts.append((key_id, _halt(account, client, doc)))
        return sorted(halts, key=lambda h: h[1].at)

    def put_halt(self, key_id: str, halt: HaltRecord) -> None:
        with self._errors():
            field = _halt_field(key_id, halt.account, halt.client)
            self._write(lambda pipe: pipe.hset(f"{_PREFIX}:halts", field, _halt_json(halt)))

    def drop_halt(self, key_id: str, account: str, client: str | None) -> bool:
        with self._errors():
            field = _halt_field(key_id, account, client)
            return bool(self._client.hdel(f"{_PREFIX}:halts", field))

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

    def change_counter(
        self, scope: str, decay_per_s: float, at: float, *, add: float = 0.0, floor: float = 0.0
    ) -> float:
        with self._errors():  # one script: atomic against every replica
            level = self._change(
                keys=[f"{_PREFIX}:counter:{scope}"],
                args=[repr(decay_per_s), repr(at), repr(add), repr(floor)],
            )
        return float(_text(level))

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
        with self._errors():  # XREAD: after the cursor, exclusive (Redis 5 and later)
            found: Any = self._client.xread({f"{_PREFIX}:log": cursor}, count=_LOG_KEPT)
        rows: list[Any] = found[0][1] if found else []
        if not rows:
            return [], cursor
        entries = [GuardLogEntry.from_json(_text(fields[b"doc"])) for _, fields in rows]
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


#: decay a counter ("level at") to ARGV[2], add ARGV[3], raise to ARGV[4]; the new level
_CHANGE_COUNTER = """
local level, at = 0, tonumber(ARGV[2])
local found = redis.call('GET', KEYS[1])
if found then
  local l, t = string.match(found, '(%S+) (%S+)')
  level = math.max(0, tonumber(l) - math.max(0, tonumber(ARGV[2]) - tonumber(t)) * tonumber(ARGV[1]))
end
level = math.max(tonumber(ARGV[4]), math.max(0, level + tonumber(ARGV[3])))
local text = string.format('%.17g %.17g', level, tonumber(ARGV[2]))
redis.call('SET', KEYS[1], text, 'EX', 86400)
return string.format('%.17g', level)
"""


def _text(value: Any) -> str:
    """A Redis reply as text (redis-py answers bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _halt_field(key_id: str, account: str, client: str | None) -> str:
    return f"{key_id}\x1f{account}\x1f{client or _EVERY}"


def open_guard_store(nonce_store: str, store_dir: Path) -> GuardStore:
    """The guard's store beside the nonces: Redis when ``nonce_store`` is a Redis URL, else
    ``guard.sqlite3`` in ``store_dir``."""
    if nonce_store.strip() != "file":
        return RedisGuardStore(nonce_store.strip())
    return FileGuardStore(store_dir / "guard.sqlite3")
