"""The event store against real SQLite files: filters, restarts, readers, pruning, schema, secrets."""

from __future__ import annotations

import math
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dashboard.history import store as store_module
from dashboard.history.store import SCHEMA_VERSION, EventStore, StoreError
from dashboard.monitor.events import BALANCE, INVALID_NONCE, SKEW, STATE, Event

REPO = Path(__file__).resolve().parents[2]


def ev(
    kind: str = STATE, account: str | None = "MASTER", ts: float = 1000.0, **data: object
) -> Event:
    return Event(kind=kind, account=account, detail=f"{kind} at {ts}", data=dict(data), ts=ts)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "events.sqlite"


def test_append_returns_ids_and_query_filters_and_orders(db: Path) -> None:
    with EventStore(db) as store:
        first = store.append(ev(STATE, "MASTER", 10.0, state="connected"))
        assert first.id is not None
        store.append_many(
            [
                ev(BALANCE, "USER:daivon", 30.0, balances={"ZUSD": "1.5"}),
                ev(STATE, "USER:daivon", 20.0),
                ev(SKEW, None, 25.0, offset_s=0.01),
                ev(INVALID_NONCE, "MASTER", 40.0),
            ]
        )
        assert [e.ts for e in store.query()] == [10.0, 20.0, 25.0, 30.0, 40.0]
        assert [e.ts for e in store.query(newest_first=True, limit=2)] == [40.0, 30.0]
        assert [e.ts for e in store.query(limit=2)] == [10.0, 20.0]
        assert [e.ts for e in store.query(since=20.0, until=30.0)] == [20.0, 25.0]
        assert [e.ts for e in store.query(accounts=["USER:daivon"])] == [20.0, 30.0]
        assert [e.ts for e in store.query(kinds=[STATE, SKEW])] == [10.0, 20.0, 25.0]
        assert [e.ts for e in store.query(accounts=["MASTER"], kinds=[INVALID_NONCE])] == [40.0]
        assert store.query(accounts=[]) == []
        got = store.query(kinds=[BALANCE])[0]
        assert got.data == {"balances": {"ZUSD": "1.5"}}
        assert got.account == "USER:daivon" and got.detail == "balance at 30.0"
        assert store.query()[0] == first
        assert store.accounts() == ["MASTER", "USER:daivon"]


def test_latest_and_count(db: Path) -> None:
    with EventStore(db) as store:
        store.append_many([ev(STATE, "MASTER", 1.0), ev(STATE, "USER:a", 3.0), ev(SKEW, None, 2.0)])
        store.append(ev(STATE, "MASTER", 2.0, state="degraded"))
        latest = store.latest(STATE)
        assert latest is not None and latest.account == "USER:a"
        latest_master = store.latest(STATE, "MASTER")
        assert latest_master is not None and latest_master.data == {"state": "degraded"}
        assert store.latest(BALANCE) is None
        assert store.count() == 4
        assert store.count(STATE) == 3
        assert store.count(STATE, "MASTER") == 2
        assert store.count(since=2.0) == 3
        assert store.count(account="nobody") == 0


def test_wal_mode_schema_version_and_integrity(db: Path) -> None:
    with EventStore(db) as store:
        store.append(ev())
        assert store.schema_version() == SCHEMA_VERSION == 2
        assert store.integrity_check() == "ok"
        assert store.get_meta("created_at") is not None
        store.set_meta("started_at", "123.5")
        assert store.get_meta("started_at") == "123.5"
    raw = sqlite3.connect(db)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        indexes = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert {"events_ts", "events_account_ts", "events_kind_ts"} <= indexes
    finally:
        raw.close()


def test_reopen_after_close_keeps_everything(db: Path) -> None:
    with EventStore(db) as store:
        stored = store.append_many(ev(ts=float(i), n=i) for i in range(50))
    with EventStore.open_readonly(db) as reader:  # the writer is gone and its WAL checkpointed
        assert reader.query() == stored
    with EventStore(db) as store:
        assert store.query() == stored
        nxt = store.append(ev(ts=99.0))
        assert nxt.id is not None and stored[-1].id is not None and nxt.id > stored[-1].id


def test_committed_event_survives_kill_9(db: Path) -> None:
    script = (
        "import sys; from dashboard.history.store import EventStore; from dashboard.monitor.events import Event\n"
        "s = EventStore(sys.argv[1])\n"
        "e = s.append(Event(kind='state', account='MASTER', detail='before the kill', ts=5.0))\n"
        "print(e.id, flush=True)\n"
        "sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(db)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        row_id = int(proc.stdout.readline())
    finally:
        proc.kill()  # SIGKILL: no close, no checkpoint
        proc.communicate(timeout=10)  # and close our ends of its pipes
    with EventStore(db) as store:
        (event,) = store.query()
        assert event.id == row_id and event.detail == "before the kill"
        assert store.integrity_check() == "ok"


def test_readonly_reader_sees_commits_while_writer_threads_write(db: Path) -> None:
    writer = EventStore(db)
    reader = EventStore.open_readonly(db)
    threads_n, per_thread = 4, 200
    go = threading.Event()

    def write(t: int) -> None:
        go.wait()
        for i in range(per_thread):
            writer.append(ev(STATE, f"USER:t{t}", float(t * 1000 + i)))

    threads = [threading.Thread(target=write, args=(t,)) for t in range(threads_n)]
    for t in threads:
        t.start()
    go.set()
    seen = []
    while any(t.is_alive() for t in threads):
        seen.append(reader.count())
    for t in threads:
        t.join()
    assert seen == sorted(seen)  # a reader never sees rows disappear or a torn state
    assert reader.count() == threads_n * per_thread
    assert reader.accounts() == [f"USER:t{t}" for t in range(threads_n)]
    ids = [e.id for e in reader.query()]
    assert len(set(ids)) == threads_n * per_thread
    # another process reads the same database while this one still holds the writer open
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from dashboard.history.store import EventStore;"
            " print(EventStore.open_readonly(sys.argv[1]).count())",
            str(db),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == str(threads_n * per_thread)
    with pytest.raises(StoreError, match="read-only"):
        reader.append(ev())
    reader.close()
    writer.close()


def test_readonly_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.sqlite"
    with pytest.raises(StoreError, match=re.escape(str(missing))):
        EventStore.open_readonly(missing)
    assert not missing.exists()


def test_prune_by_retention_and_max_events(db: Path) -> None:
    day = 86400.0
    now = 100 * day
    with EventStore(db, retention_days=30, max_events=5, prune_every=0) as store:
        store.append_many(ev(ts=now - 40 * day + i) for i in range(3))  # too old
        store.append_many(ev(ts=now - day + i, n=i) for i in range(8))
        assert store.prune(now=now) == 3 + 3
        assert [e.data["n"] for e in store.query()] == [3, 4, 5, 6, 7]  # the oldest went first
        assert store.prune(now=now) == 0


def test_prune_runs_automatically_every_n_appends(db: Path) -> None:
    with EventStore(db, max_events=10, prune_every=25) as store:
        for i in range(24):
            store.append(ev(ts=1e12 + i))  # far future: retention never applies
        assert store.count() == 24
        store.append(ev(ts=1e12 + 24))
        assert store.count() == 10
        assert store.query()[0].ts == 1e12 + 15


def test_newer_schema_is_refused_and_left_untouched(db: Path) -> None:
    with EventStore(db) as store:
        store.append(ev())
    raw = sqlite3.connect(db)
    raw.execute("PRAGMA user_version = 7")
    raw.close()
    for opener in (EventStore, EventStore.open_readonly):
        with pytest.raises(StoreError) as info:
            opener(db)
        message = str(info.value)
        assert str(db) in message and "7" in message and str(SCHEMA_VERSION) in message
    raw = sqlite3.connect(db)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == 7
    assert raw.execute("SELECT count(*) FROM events").fetchone()[0] == 1
    raw.close()


def test_a_later_release_migrates_with_a_new_step(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with EventStore(db) as store:
        store.append(ev(ts=1.0))

    def to_2(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE events ADD COLUMN source TEXT")

    monkeypatch.setattr(store_module, "MIGRATIONS", [*store_module.MIGRATIONS, to_2])
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 3)
    with EventStore(db) as store:
        assert store.schema_version() == 3
        assert [e.ts for e in store.query()] == [1.0]


def test_non_sqlite_file_is_refused_with_its_name(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_bytes(b"this is not a database\n" * 200)
    for opener in (EventStore, EventStore.open_readonly):
        with pytest.raises(StoreError, match=re.escape(f"{bogus}: not a SQLite database")):
            opener(bogus)
    assert bogus.read_bytes() == b"this is not a database\n" * 200


def test_another_applications_sqlite_file_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    raw = sqlite3.connect(other)
    raw.execute("CREATE TABLE things (x)")
    raw.commit()
    raw.close()
    for opener in (EventStore, EventStore.open_readonly):
        with pytest.raises(StoreError, match=re.escape(f"{other}: not a krakenwatch")):
            opener(other)


def test_an_empty_file_becomes_a_new_database(tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    with EventStore(empty) as store:
        assert store.schema_version() == SCHEMA_VERSION


def test_secrets_are_redacted_everywhere(db: Path) -> None:
    key, secret = "AbCdKEY1234567890", "c2VjcmV0/c2VjcmV0+c2VjcmV0=="
    with EventStore(db, redact=[key, secret, ""]) as store:
        stored = store.append(
            Event(
                kind="api_error",
                account="MASTER",
                detail=f"signing with {key} failed ({secret})",
                data={"key": key, "nested": [{"s": f"x{secret}y"}], key: 1, "obj": Path(secret)},
            )
        )
        assert key not in repr(stored) and secret not in repr(stored)
        (got,) = store.query()
        assert got.detail == "signing with [redacted] failed ([redacted])"
        assert got.data == {
            "key": "[redacted]",
            "nested": [{"s": "x[redacted]y"}],
            "[redacted]": 1,
            "obj": "[redacted]",
        }
    blob = b"".join(p.read_bytes() for p in db.parent.iterdir())
    assert key.encode() not in blob and secret.encode() not in blob


def test_non_finite_floats_and_odd_values_do_not_break_json(db: Path) -> None:
    with EventStore(db) as store:
        store.append(ev(a=math.nan, b=math.inf, c=-math.inf, d=(1, 2), e={3: 0.5}, f=None))
        (got,) = store.query()
        assert got.data == {
            "a": "nan",
            "b": "inf",
            "c": "-inf",
            "d": [1, 2],
            "e": {"3": 0.5},
            "f": None,
        }


def test_closed_store_raises_store_error(db: Path) -> None:
    store = EventStore(db)
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.query()


def test_ten_thousand_events_round_trip(db: Path) -> None:
    accounts = ["MASTER", "USER:a", "USER:b", "USER:c"]
    base = time.time() - 20_000  # recent: the automatic prune after 1,000 appends keeps them
    events = [
        ev(
            (STATE, BALANCE)[i % 2],
            accounts[i % 4],
            base + i,
            i=i,
            balances={"ZUSD": f"{i}.00"},
        )
        for i in range(10_000)
    ]
    with EventStore(db) as store:
        stored = store.append_many(events)
        assert len({e.id for e in stored}) == 10_000
        assert store.count() == 10_000
        back = store.query(newest_first=True, limit=10_000)
        assert [e.data["i"] for e in back] == list(range(9_999, -1, -1))
        filtered = store.query(accounts=["USER:a", "USER:b"], kinds=[STATE], since=base + 100)
        assert all(e.account == "USER:b" and e.kind == STATE for e in filtered)
        assert [e.data["i"] for e in filtered] == [i for i in range(100, 10_000) if i % 4 == 2]
        assert store.integrity_check() == "ok"
