"""The file nonce store: one small record per key, locked with ``flock`` across processes.

Each key has two records, locked in this order for as long as a request is in flight:

1. **host-wide**: ``<runtime dir>/krakenwatch/nonces/<key id>.nonce``, under the user's runtime
   directory (``$XDG_RUNTIME_DIR``, else a private ``/tmp/krakenwatch-<uid>``). Every process of
   this user on this host takes turns through it, whatever data directory it was given.
2. **the data directory's**: ``<data dir>/nonces/<key id>.nonce``. It survives reboots, so a restart
   starts above the last nonce sent.

Both hold ``<high-water> <unit>`` (plus ``hold=<unix time>`` while a request's outcome is unknown);
the next nonce is above both. The data directory's record also holds ``bound=<nonce>``: a mark
synced to disk (``fdatasync``) that every nonce sent stays below. When a nonce would pass it, the
bound moves one second (in the key's unit) past that nonce and is synced before the request
leaves; the exact high-water mark is written with a plain ``pwrite`` on every call. So a key costs
one sync per second at most, not one per call, and after a power loss (which loses what was not
synced) the first look at the key starts above the bound, hence above every nonce ever sent, at
most a second ahead of the clock. ``durable=False`` never syncs. Processes of other users, other containers and other hosts share
neither record: use the Redis store (or the signing gateway) for them.

POSIX only. ``flock`` locks belong to an open file description, so a forked child must reopen its
files (:meth:`FileStore.reset_after_fork`) before it can take turns with its parent.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import KeyBusyError, NonceStoreError
from .nonce import NONCE_UNITS, NonceRecord, WouldBlock, convert

__all__ = ["FileStore", "host_lock_dir"]

_RECORD_SIZE = 96
_MAX_NONCE = 2**64 - 1


def host_lock_dir() -> Path | None:
    """This user's host-wide lock directory, or ``None`` when no safe one exists.

    ``$XDG_RUNTIME_DIR/krakenwatch/nonces`` when the runtime directory exists and belongs to this
    user, else ``/tmp/krakenwatch-<uid>/nonces`` (created with mode 0700; refused when another
    user owns it or others may write to it).
    """
    uid = os.getuid()
    runtime = os.environ.get("XDG_RUNTIME_DIR", "").strip()
    if runtime and _private_dir(Path(runtime), uid, create=False):
        base = Path(runtime) / "krakenwatch"
    else:
        base = Path(tempfile.gettempdir()) / f"krakenwatch-{uid}"
    if not _private_dir(base, uid, create=True):
        return None
    return base / "nonces"


def _private_dir(path: Path, uid: int, *, create: bool) -> bool:
    try:
        if create:
            path.mkdir(mode=0o700, parents=False, exist_ok=True)
        info = path.lstat()
    except OSError:
        return False
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == uid
        and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


_NOTHING_KNOWN: tuple[bytes | None, NonceRecord | None] = (None, None)


class _RecordFile:
    """A fixed-size text record rewritten in place with one ``pwrite`` (opened on first use)."""

    def __init__(self, path: Path, *, durable: bool):
        self.path = path
        self.durable = durable
        self._fd: int | None = None
        #: the record as last read or written under the current lock
        self._seen: NonceRecord | None = None
        #: bytes last read or written and the record they hold (the same bytes are not parsed again)
        self._last: tuple[bytes | None, NonceRecord | None] = _NOTHING_KNOWN

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return self._fd

    def read(self) -> NonceRecord | None:
        data = os.pread(self._open(), _RECORD_SIZE, 0)
        if data == self._last[0]:  # what this process last read or wrote: parsed already
            self._seen = self._last[1]
            return self._seen
        self._seen = record = self._parse(data)
        self._last = (data, record)
        return record

    def _parse(self, data: bytes) -> NonceRecord | None:
        raw = data.decode("ascii", "replace").strip("\0 \n")
        if not raw:
            return None
        try:
            hw_text, unit, *rest = raw.split()
            extra = dict(item.split("=", 1) for item in rest)
            record = NonceRecord(
                int(hw_text), unit, float(extra.pop("hold", 0.0)), int(extra.pop("bound", 0))
            )
            if (
                unit not in NONCE_UNITS
                or extra
                or not 0 <= record.high_water <= _MAX_NONCE
                or not 0 <= record.bound <= _MAX_NONCE
            ):
                raise ValueError(raw)
        except ValueError:
            raise NonceStoreError(
                f"nonce store file {self.path} is corrupt; it holds no valid '<nonce> <unit>' "
                "record. Move it aside only if no other program uses this key, then restart.",
                path=self.path,
            ) from None
        return record

    def write(self, record: NonceRecord) -> None:
        """Write ``record``; when durable, keep the synced bound above it (see the module
        docstring). Call :meth:`read` first, under the same lock."""
        bound, sync = self.bound_for(record)
        text = f"{record.high_water} {record.unit}"
        if record.hold_until:
            text += f" hold={record.hold_until:.3f}"
        if bound:
            text += f" bound={bound}"
        data = f"{text}\n".ljust(_RECORD_SIZE - 1).encode("ascii") + b"\n"
        fd = self._open()
        if os.pwrite(fd, data, 0) != _RECORD_SIZE:
            raise OSError(errno.EIO, "short write")
        if sync:
            os.fdatasync(fd)
        self._seen = NonceRecord(record.high_water, record.unit, record.hold_until, bound)
        if not record.hold_until:  # else the text holds it rounded: parsed when next read
            self._last = (data, self._seen)

    def bound_for(self, record: NonceRecord) -> tuple[int, bool]:
        """The synced bound to write with ``record`` (0: none), and whether it moves (a sync)."""
        bound, sync = 0, False
        if self.durable:
            seen = self._seen
            if seen is not None and seen.bound:
                bound = convert(seen.bound, seen.unit, record.unit)
            if record.high_water > bound:
                bound = min(record.high_water + NONCE_UNITS[record.unit], _MAX_NONCE)
                sync = True
        return bound, sync

    @contextlib.contextmanager
    def locked(self, mode: int = fcntl.LOCK_EX, deadline: float | None = None) -> Iterator[None]:
        """Hold the file's lock; with a ``deadline`` (``time.monotonic()``), :class:`_LockTimeout`
        when another process still holds it then."""
        self.lock(mode, deadline)
        try:
            yield
        finally:
            self.unlock()

    def lock(self, mode: int = fcntl.LOCK_EX, deadline: float | None = None) -> None:
        """Take the file's lock (as :meth:`locked` does); release it with :meth:`unlock`."""
        fd = self._open()
        if deadline is None:
            fcntl.flock(fd, mode)
        else:
            _flock_until(fd, mode, deadline)

    def unlock(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def forget(self) -> None:
        """Drop the descriptor without unlocking: a forked child's copy of the parent's."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


class _LockTimeout(Exception):
    """A file lock was still held by another process at the caller's deadline."""


def _flock_until(fd: int, mode: int, deadline: float) -> None:
    """``flock`` that gives up at ``deadline`` (``flock`` itself cannot time out): try, then retry
    after a pause that grows from 1 ms to 20 ms."""
    pause = 0.001
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _LockTimeout from None
            time.sleep(min(pause, left))
            pause = min(pause * 2, 0.02)


def _store_error(path: Path, exc: OSError) -> NonceStoreError:
    """What an ``OSError`` on ``path`` (full disk, read-only or missing directory, a file where
    the directory should be) means: a :class:`~broker.errors.NonceStoreError` naming it."""
    return NonceStoreError(
        f"nonce store {path}: {exc.strerror or type(exc).__name__}; nothing was sent", path=path
    )


@contextlib.contextmanager
def _store_errors(path: Path) -> Iterator[None]:
    """:func:`_store_error` for what the block raises."""
    try:
        yield
    except OSError as exc:
        raise _store_error(path, exc) from None


class _Lease:
    """The records of one key while they are locked: read the highest, write them all."""

    def __init__(self, files: list[_RecordFile], *, wait: bool = True):
        self._files = files
        #: ``False``: :class:`WouldBlock` rather than a write that syncs the disk
        self.wait = wait

    def read(self) -> NonceRecord | None:
        found: NonceRecord | None = None
        for file in self._files:
            try:
                record = file.read()
            except OSError as exc:
                raise _store_error(file.path, exc) from None
            if record is not None:
                found = record if found is None or found == record else found.merged(record)
        return found

    def write(self, record: NonceRecord) -> None:
        if not self.wait and any(file.bound_for(record)[1] for file in self._files):
            raise WouldBlock
        for file in self._files:
            try:
                file.write(record)
            except OSError as exc:
                raise _store_error(file.path, exc) from None

    def ensure_live(self, need_s: float = 0.0) -> None:
        """A file lock is held until released: always live."""


class FileStore:
    """The default nonce store (see the module docstring)."""

    kind = "file"

    def __init__(self, directory: Path, *, host_dir: Path | None = None, durable: bool = True):
        self.directory = directory.expanduser().resolve()
        self.host_dir = host_dir.resolve() if host_dir is not None else None
        if self.host_dir == self.directory:
            self.host_dir = None
        self.durable = durable
        self._files: dict[tuple[Path, str], _RecordFile] = {}
        self._by_key: dict[str, list[_RecordFile]] = {}
        self._files_lock = threading.Lock()

    @property
    def description(self) -> str:
        host = (
            f"host-wide lock in {self.host_dir}"
            if self.host_dir is not None
            else "no host-wide lock (no private runtime directory)"
        )
        return f"file store in {self.directory} ({host})"

    def _record(self, directory: Path, key_id: str, *, durable: bool) -> _RecordFile:
        with self._files_lock:
            file = self._files.get((directory, key_id))
            if file is None:
                file = _RecordFile(directory / f"{key_id}.nonce", durable=durable)
                self._files[(directory, key_id)] = file
            return file

    def _records(self, key_id: str) -> list[_RecordFile]:
        files = self._by_key.get(key_id)
        if files is None:
            files = self._by_key[key_id] = self._open_records(key_id)
        return files

    def _open_records(self, key_id: str) -> list[_RecordFile]:
        files = []
        if self.host_dir is not None:  # always first: every process locks in the same order
            files.append(self._record(self.host_dir, key_id, durable=False))
        files.append(self._record(self.directory, key_id, durable=self.durable))
        return files

    def hold(
        self, key_id: str, *, lease_s: float | None = None, deadline: float | None = None
    ) -> contextlib.AbstractContextManager[_Lease]:
        """Hold ``key_id`` against every other process on this host until the block ends (a
        file lock ends with its process: ``lease_s`` does not apply); :class:`KeyBusyError` when
        another process still holds it at ``deadline``."""
        return self._held(key_id, deadline, wait=True)

    def hold_now(self, key_id: str) -> contextlib.AbstractContextManager[_Lease]:
        """:meth:`hold` for a caller that must not block (an event loop): :class:`WouldBlock`
        when another process holds the key, and from the lease's ``write`` when it would have
        to sync the disk."""
        return self._held(key_id, None, wait=False)

    @contextlib.contextmanager
    def _held(self, key_id: str, deadline: float | None, *, wait: bool) -> Iterator[_Lease]:
        files = self._records(key_id)
        held: list[_RecordFile] = []
        try:  # no context manager per file: this is on every request's path
            for file in files:
                try:
                    file.lock(fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB, deadline)
                except BlockingIOError:  # only without waiting
                    raise WouldBlock from None
                except OSError as exc:
                    raise _store_error(file.path, exc) from None
                except _LockTimeout:
                    raise KeyBusyError(
                        f"key {key_id} stayed busy (another process on this host) until the "
                        "caller's deadline; nothing was sent"
                    ) from None
                held.append(file)
            yield _Lease(files, wait=wait)
        finally:
            for file in reversed(held):
                file.unlock()

    def peek(self, key_id: str) -> NonceRecord | None:
        """The key's record, read under a shared lock."""
        files = self._records(key_id)
        with contextlib.ExitStack() as stack:
            for file in files:
                with _store_errors(file.path):
                    stack.enter_context(file.locked(fcntl.LOCK_SH))
            return _Lease(files).read()

    def reset_after_fork(self) -> None:
        """In a forked child: drop the parent's descriptors (and their locks) and a lock another
        thread may have held; files are reopened on first use."""
        self._files_lock = threading.Lock()
        for file in self._files.values():
            file.forget()
