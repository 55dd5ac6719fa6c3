"""Nonce generation that cannot produce ``EAPI:Invalid nonce`` on its own.

What the seed's fix got wrong and how this module gets it right:

* **One writer per key.** :class:`KeyChannel` is the single gate for a key in this process, shared
  by every client using that key (looked up by a hash of the key, never by the account label). Its
  :meth:`KeyChannel.reserve` context holds a thread lock *and* an OS file lock on the key's record
  for as long as the caller is inside it, so the nonce is generated, signed, sent and answered
  before any other thread or process on the host can issue the next one.
* **Never backwards.** The next nonce is ``max(now in the unit, last issued + 1, persisted
  high-water + 1)``; :meth:`KeyChannel.refresh` re-baselines but never lowers anything.
* **Persistent.** The high-water mark of each key lives in ``<store>/<key id>.nonce`` and is written
  *before* the request leaves, so a restart, a crash or another process starts above it.
* **Units are sticky.** The record remembers the finest unit the key has used; asking for a coarser
  one raises :class:`~broker.errors.NonceUnitDowngradeError` before anything is sent.

POSIX only (``fcntl.flock``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigurationError, NonceUnitDowngradeError
from .signing import key_id

__all__ = [
    "NONCE_UNITS",
    "KeyChannel",
    "NonceRecord",
    "NonceStatus",
    "channel_for",
    "now_in_unit",
    "parse_unit",
]

#: ticks per second of each supported unit, coarse to fine
NONCE_UNITS: dict[str, int] = {"ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_RECORD_SIZE = 96
_MAX_NONCE = 2**64 - 1


def parse_unit(value: str, *, variable: str | None = None) -> str:
    unit = value.strip().lower().replace("µs", "us")
    if unit not in NONCE_UNITS:
        where = f"{variable}: " if variable else ""
        raise ConfigurationError(
            f"{where}unknown nonce unit {value.strip()!r}; use one of ms, us, ns", variable=variable
        )
    return unit


def now_in_unit(unit: str) -> int:
    return time.time_ns() // (1_000_000_000 // NONCE_UNITS[unit])


@dataclass(frozen=True)
class NonceRecord:
    """What the store knows of a key: the highest nonce issued and the finest unit used."""

    high_water: int
    unit: str


@dataclass(frozen=True)
class NonceStatus:
    key_id: str
    unit: str
    high_water: int
    #: how far the high-water mark runs ahead of the wall clock (positive: a stranded key)
    lead_seconds: float


def _convert(value: int, from_unit: str, to_unit: str) -> int:
    """Convert a nonce between units, rounding up so a converted high-water mark stays a bound."""
    f, t = NONCE_UNITS[from_unit], NONCE_UNITS[to_unit]
    return value * (t // f) if t >= f else -(-value // (f // t))


class _RecordFile:
    """A fixed-size text record ``<high_water> <unit>`` rewritten in place with one ``pwrite``."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    def read(self) -> NonceRecord | None:
        raw = os.pread(self.fd, _RECORD_SIZE, 0).decode("ascii", "replace").strip("\0 \n")
        if not raw:
            return None
        try:
            hw_text, unit = raw.split()
            high_water = int(hw_text)
            if unit not in NONCE_UNITS or not 0 <= high_water <= _MAX_NONCE:
                raise ValueError(raw)
        except ValueError:
            raise ConfigurationError(
                f"nonce store file {self.path} is corrupt; it holds no valid '<nonce> <unit>' record. "
                "Move it aside only if no other program uses this key, then restart."
            ) from None
        return NonceRecord(high_water, unit)

    def write(self, record: NonceRecord) -> None:
        line = f"{record.high_water} {record.unit}\n".ljust(_RECORD_SIZE - 1) + "\n"
        os.pwrite(self.fd, line.encode("ascii"), 0)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)


class KeyChannel:
    """The single writer for one API key in this process (see the module docstring)."""

    def __init__(self, key_hash: str, store_dir: Path, lock: threading.RLock):
        self.key_id = key_hash
        self.store_dir = store_dir
        self._lock = lock
        self._file = _RecordFile(store_dir / f"{key_hash}.nonce")
        self._last_issued = 0
        self._last_unit: str | None = None
        #: True once the store had a record for this key when this process first looked
        self.had_history: bool | None = None
        self.issued_count = 0

    @contextlib.contextmanager
    def reserve(self, unit: str) -> Iterator[int]:
        """Issue the next nonce and hold the key until the ``with`` block ends.

        The record is persisted before the nonce is yielded, i.e. before it can reach Kraken.
        """
        with self._lock, self._file.locked():
            record = self._checked_record(unit)
            floor = max(self._last_issued_in(unit), _convert(record.high_water, record.unit, unit))
            nonce = max(now_in_unit(unit), floor + 1)
            if nonce > _MAX_NONCE:
                raise ConfigurationError(f"nonce for key {self.key_id} would exceed 2^64-1")
            self._file.write(NonceRecord(nonce, unit))
            self._last_issued, self._last_unit = nonce, unit
            self.issued_count += 1
            yield nonce

    def refresh(self, unit: str) -> tuple[int, int]:
        """Re-baseline to ``max(now, last issued, persisted high-water)``; never moves backwards.

        Returns ``(previous baseline, new baseline)`` in ``unit``.
        """
        with self._lock, self._file.locked():
            record = self._checked_record(unit)
            previous = self._last_issued_in(unit)
            baseline = max(
                previous, _convert(record.high_water, record.unit, unit), now_in_unit(unit)
            )
            self._last_issued, self._last_unit = baseline, unit
            return previous, baseline

    def status(self, unit: str) -> NonceStatus:
        with self._lock, self._file.locked():
            record = self._file.read()
        if record is None:
            high_water, unit_seen = self._last_issued_in(unit), unit
        else:
            high_water, unit_seen = record.high_water, record.unit
        lead = (high_water - now_in_unit(unit_seen)) / NONCE_UNITS[unit_seen]
        return NonceStatus(self.key_id, unit_seen, high_water, lead)

    def _last_issued_in(self, unit: str) -> int:
        if self._last_unit is None:
            return 0
        return _convert(self._last_issued, self._last_unit, unit)

    def _checked_record(self, unit: str) -> NonceRecord:
        record = self._file.read()
        if self.had_history is None:
            self.had_history = record is not None
        if record is None:
            return NonceRecord(0, unit)
        if NONCE_UNITS[unit] < NONCE_UNITS[record.unit]:
            raise NonceUnitDowngradeError(
                f"key {self.key_id} has already used nonces in {record.unit}; refusing to send "
                f"{unit} nonces, which Kraken would reject forever (store: {self._file.path})"
            )
        return record


_channels: dict[tuple[str, str], KeyChannel] = {}
_key_locks: dict[str, threading.RLock] = {}
_channels_lock = threading.Lock()


def channel_for(api_key: str, store_dir: Path) -> KeyChannel:
    """The process-wide channel for ``api_key`` in ``store_dir`` (created on first use).

    The thread lock is per key for the whole process, whatever the store directory, so two clients
    of one key can never send concurrently even if they were given different stores.
    """
    resolved = store_dir.expanduser().resolve()
    ident = key_id(api_key)
    with _channels_lock:
        channel = _channels.get((ident, str(resolved)))
        if channel is None:
            lock = _key_locks.setdefault(ident, threading.RLock())
            channel = KeyChannel(ident, resolved, lock)
            _channels[(ident, str(resolved))] = channel
        return channel
