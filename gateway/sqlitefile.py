"""The gateway's SQLite files beside the nonces (the replay memory, the trading guard's store):
opened private, in WAL mode, and their errors turned into the store's own error (fail closed)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

__all__ = ["failing_closed", "private_sqlite"]


def private_sqlite(path: Path, *, durable: bool) -> sqlite3.Connection:
    """``path`` opened (created mode 0600 in a 0700 folder; its -wal and -shm files get its mode)
    in WAL mode, shared by threads; ``durable``: synced to disk at each commit."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if name.exists():
            os.chmod(name, 0o600)
    db = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
    return db


@contextlib.contextmanager
def failing_closed(
    raised: type[Exception], what: str, error: type[Exception], *, detail: bool = True
) -> Iterator[None]:
    """``error`` (the store's own) as ``raised`` naming the store (``what``; ``detail``: with
    the error's text, else its type only, for errors that may carry an address)."""
    try:
        yield
    except error as exc:
        reason = str(exc) if detail else type(exc).__name__
        raise raised(f"{what}: {reason}") from None
