"""The event store: the monitor's connection timeline and history in SQLite (WAL).

One writer (the monitor, possibly from several threads: writes are serialised by a lock) and any
number of readers (the Streamlit pages, other processes) through :meth:`EventStore.open_readonly`.
Every append is committed at once, so an event survives a ``kill -9`` of the writer. The writer
keeps the database and its WAL and SHM files private (0600, tightened when wider).

The schema is versioned with ``PRAGMA user_version``; :data:`MIGRATIONS` holds one function per
version step. A database written by a newer krakenwatch is refused, never downgraded.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from broker.private import PRIVATE_DIR, private_file
from dashboard.errors import StoreError
from dashboard.history.redact import Redactor
from dashboard.monitor.events import Event

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "EventStore", "StoreError"]

#: ``PRAGMA application_id`` of a krakenwatch database ("KWCH")
APPLICATION_ID = 0x4B574348
_log = logging.getLogger(__name__)
_BUSY_TIMEOUT_S = 5.0


def _migrate_0_to_1(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE events (id INTEGER PRIMARY KEY, ts REAL NOT NULL, kind TEXT NOT NULL,"
        " account TEXT, detail TEXT NOT NULL, data TEXT NOT NULL)"
    )
    conn.execute("CREATE INDEX events_ts ON events (ts)")
    conn.execute("CREATE INDEX events_account_ts ON events (account, ts)")
    conn.execute("CREATE INDEX events_kind_ts ON events (kind, ts)")
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("INSERT INTO meta (key, value) VALUES ('created_at', ?)", (repr(time.time()),))


def _migrate_1_to_2(conn: sqlite3.Connection) -> None:
    """The deploy markers (:mod:`dashboard.history.deploy_book`)."""
    conn.execute(
        "CREATE TABLE deploys (id INTEGER PRIMARY KEY, marked_at REAL NOT NULL,"
        " version TEXT NOT NULL, accounts TEXT NOT NULL, note TEXT NOT NULL,"
        " state TEXT NOT NULL, decided_at REAL, reason TEXT NOT NULL, failing TEXT NOT NULL,"
        " gateway_accounts TEXT NOT NULL)"
    )


#: ``MIGRATIONS[v]`` takes a database from schema version ``v`` to ``v + 1``
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migrate_0_to_1, _migrate_1_to_2]
SCHEMA_VERSION = len(MIGRATIONS)


def _where(
    since: float | None,
    until: float | None,
    accounts: Sequence[str] | None,
    kinds: Sequence[str] | None,
) -> tuple[str, list[Any]]:
    """A WHERE clause (constant text: every value is bound) and its arguments."""
    where: list[str] = []
    args: list[Any] = []
    for clause, bound in (("ts >= ?", since), ("ts < ?", until)):
        if bound is not None:
            where.append(clause)
            args.append(bound)
    for column, values in (("account", accounts), ("kind", kinds)):
        if values is not None:
            values = list(values)
            where.append(f"{column} IN ({','.join('?' * len(values))})" if values else "0")
            args.extend(values)
    return (" WHERE " + " AND ".join(where) if where else ""), args


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # some errors (disk full) have rolled back already
            conn.execute("ROLLBACK")
        raise


class EventStore:
    """The SQLite event store. Use as a context manager or call :meth:`close`."""

    def __init__(
        self,
        path: Path | str,
        *,
        retention_days: float = 30.0,
        max_events: int = 1_000_000,
        redact: Iterable[str] = (),
        prune_every: int = 1000,
        _readonly: bool = False,
    ) -> None:
        self.path = Path(path)
        self.retention_days = retention_days
        self.max_events = max_events
        self.prune_every = prune_every
        self.readonly = _readonly
        self._redactor = Redactor(redact)
        self._lock = threading.RLock()
        self._since_prune = 0
        self._conn: sqlite3.Connection | None = None
        if _readonly:
            self._conn = self._open_readonly()
        else:
            self._conn = self._open_writer()

    @classmethod
    def open_readonly(cls, path: Path | str) -> EventStore:
        """A read-only view for the pages; :class:`StoreError` if there is no krakenwatch database."""
        return cls(path, _readonly=True)

    # -- opening ----------------------------------------------------------------------------

    def _connect(self, target: str, *, uri: bool) -> sqlite3.Connection:
        try:
            return sqlite3.connect(
                target,
                timeout=_BUSY_TIMEOUT_S,
                isolation_level=None,  # autocommit: each append is its own committed transaction
                check_same_thread=False,
                uri=uri,
            )
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the event database ({exc})") from exc

    def _identify(self, conn: sqlite3.Connection) -> tuple[int, int, int]:
        """(application_id, user_version, number of tables); StoreError if not SQLite."""
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'")
            return app_id, version, tables.fetchone()[0]
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(f"{self.path}: not a SQLite database ({exc})") from exc

    def _check_version(self, conn: sqlite3.Connection, app_id: int, version: int) -> None:
        if app_id != APPLICATION_ID:
            conn.close()
            raise StoreError(f"{self.path}: not a krakenwatch event database")
        if version > SCHEMA_VERSION:
            conn.close()
            raise StoreError(
                f"{self.path}: the database has schema version {version}, newer than the "
                f"version {SCHEMA_VERSION} this krakenwatch knows; upgrade krakenwatch or use "
                "another data directory (the database was left untouched)"
            )

    def _open_writer(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot create the directory ({exc})") from exc
        try:  # SQLite gives a new -wal/-shm the database's mode: 0600 too
            private_file(self.path)
            for suffix in ("-wal", "-shm"):
                private_file(Path(f"{self.path}{suffix}"), create=False)
        except OSError as exc:
            raise StoreError(
                f"{self.path}: cannot make the event database private ({exc})"
            ) from exc
        conn = self._connect(str(self.path), uri=False)
        app_id, version, tables = self._identify(conn)
        if not (app_id == 0 and version == 0 and tables == 0):  # else: a new, empty database
            self._check_version(conn, app_id, version)
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"journal_mode is {mode}, WAL is required")
            conn.execute("PRAGMA synchronous = NORMAL")
            self._migrate(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"{self.path}: cannot prepare the event database ({exc})") from exc
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        with _transaction(conn):  # re-read under the write lock: another process may race us
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for step in range(version, SCHEMA_VERSION):
                MIGRATIONS[step](conn)
                conn.execute(f"PRAGMA user_version = {step + 1}")
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")

    def _open_readonly(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise StoreError(f"{self.path}: no event database (the monitor creates it)")
        conn = self._connect(self.path.resolve().as_uri() + "?mode=ro", uri=True)
        app_id, version, _tables = self._identify(conn)
        self._check_version(conn, app_id, version)
        if version < SCHEMA_VERSION:
            conn.close()
            raise StoreError(
                f"{self.path}: schema version {version} is older than {SCHEMA_VERSION}; "
                "start the monitor once to migrate it"
            )
        return conn

    # -- plumbing ---------------------------------------------------------------------------

    def redact(self, value: str) -> str:
        """``value`` with every known secret removed (what this store writes of any text)."""
        return self._redactor.text(value)

    @contextmanager
    def database(self, action: str, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        """The connection, under the store's lock, for the tables beside the events (the
        deploys): ``action`` names what failed in the :class:`StoreError` of an SQLite error."""
        with self._db(action, write=write) as conn:
            yield conn

    @contextmanager
    def _db(self, action: str, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._conn is None:
                raise StoreError(f"{self.path}: the event store is closed")
            if write and self.readonly:
                raise StoreError(f"{self.path}: opened read-only, cannot {action}")
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: {action} failed ({exc})") from exc

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> EventStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- writing ----------------------------------------------------------------------------

    def _insert(self, conn: sqlite3.Connection, event: Event) -> Event:
        data = self._redactor.clean(event.data)
        text = json.dumps(data, separators=(",", ":"), default=str, allow_nan=False)
        account = None if event.account is None else self._redactor.text(event.account)
        detail = self._redactor.text(event.detail)
        kind = self._redactor.text(event.kind)
        cur = conn.execute(
            "INSERT INTO events (ts, kind, account, detail, data) VALUES (?, ?, ?, ?, ?)",
            (float(event.ts), kind, account, detail, text),
        )
        return dataclasses.replace(
            event, id=cur.lastrowid, kind=kind, account=account, detail=detail, data=data
        )

    def append(self, event: Event) -> Event:
        """Store ``event`` (committed before returning); the stored event, with its ``id``."""
        with self._db("append", write=True) as conn:
            stored = self._insert(conn, event)
        self._count_appends(1)
        return stored

    def append_many(self, events: Iterable[Event]) -> list[Event]:
        """Store ``events`` in one transaction; the stored events, with their ids."""
        with self._db("append", write=True) as conn, _transaction(conn):
            stored = [self._insert(conn, e) for e in events]
        self._count_appends(len(stored))
        return stored

    def _count_appends(self, n: int) -> None:
        with self._lock:
            self._since_prune += n
            due = self.prune_every > 0 and self._since_prune >= self.prune_every
        if due:
            try:
                self.prune()
            except StoreError:  # the appends are committed; pruning is retried next time
                _log.exception("automatic pruning of the event store failed")

    def prune(self, now: float | None = None) -> int:
        """Delete events older than the retention, then the oldest beyond ``max_events``."""
        cutoff = (time.time() if now is None else now) - self.retention_days * 86400.0
        with self._db("prune", write=True) as conn:
            self._since_prune = 0
            with _transaction(conn):
                deleted = conn.execute("DELETE FROM events WHERE ts < ?", (cutoff,)).rowcount
                excess = conn.execute("SELECT count(*) FROM events").fetchone()[0] - self.max_events
                if excess > 0:
                    deleted += conn.execute(
                        "DELETE FROM events WHERE id IN"
                        " (SELECT id FROM events ORDER BY ts, id LIMIT ?)",
                        (excess,),
                    ).rowcount
        return deleted

    def set_meta(self, key: str, value: str) -> None:
        with self._db("set meta", write=True) as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # -- reading ----------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        with self._db("read meta") as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @staticmethod
    def _row(row: tuple[Any, ...]) -> Event:
        id_, ts, kind, account, detail, text = row
        try:
            data = json.loads(text)
        except ValueError:
            data = {"raw": text}
        return Event(kind=kind, account=account, detail=detail, data=data, ts=ts, id=id_)

    def query(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        accounts: Sequence[str] | None = None,
        kinds: Sequence[str] | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[Event]:
        """Events with ``since <= ts < until``, in time order (``limit`` counts from that end)."""
        where, args = _where(since, until, accounts, kinds)
        sql = "SELECT id, ts, kind, account, detail, data FROM events" + where  # noqa: S608
        sql += " ORDER BY ts DESC, id DESC" if newest_first else " ORDER BY ts, id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(max(0, int(limit)))
        with self._db("query") as conn:
            rows = conn.execute(sql, args).fetchall()
        return [self._row(r) for r in rows]

    def latest(
        self, kind: str, account: str | None = None, *, before: float | None = None
    ) -> Event | None:
        """The newest event of ``kind`` (for ``account``, or any account when None), optionally
        the newest strictly before ``before``."""
        found = self.query(
            until=before,
            kinds=[kind],
            accounts=None if account is None else [account],
            limit=1,
            newest_first=True,
        )
        return found[0] if found else None

    def count(
        self, kind: str | None = None, account: str | None = None, since: float | None = None
    ) -> int:
        """How many events (of ``kind``, for ``account``, since ``since``) are stored."""
        accounts = None if account is None else [account]
        where, args = _where(since, None, accounts, None if kind is None else [kind])
        with self._db("count") as conn:
            sql = "SELECT count(*) FROM events" + where  # noqa: S608 (constant clauses, bound values)
            return int(conn.execute(sql, args).fetchone()[0])

    def accounts(self) -> list[str]:
        """The distinct account labels that have events, sorted."""
        with self._db("list accounts") as conn:
            rows = conn.execute(
                "SELECT DISTINCT account FROM events WHERE account IS NOT NULL ORDER BY account"
            ).fetchall()
        return [r[0] for r in rows]

    def schema_version(self) -> int:
        with self._db("read schema version") as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check``: ``"ok"`` or the problems found, one per line."""
        with self._db("integrity check") as conn:
            return "\n".join(str(r[0]) for r in conn.execute("PRAGMA integrity_check"))
