"""Nonce generation that cannot produce ``EAPI:Invalid nonce`` on its own.

* **One writer per key.** :class:`KeyChannel` is the single gate for a key in this process, shared
  by every client of that key (looked up by a hash of the key, never by the account label). Its
  :meth:`KeyChannel.reserve` block holds a thread lock *and* the store's hold on the key (file
  locks, or a Redis lease) for as long as the caller is inside it, so the nonce is generated,
  signed, sent and answered before anyone else sharing the store can issue the next one.
* **Never backwards.** The next nonce is ``max(now in the unit, last issued + 1, stored
  high-water + 1)``; :meth:`KeyChannel.refresh` re-baselines but never lowers anything.
* **Persistent.** The high-water mark is written to the store *before* the request leaves.
* **Units are sticky.** The store remembers the finest unit the key has used; asking for a coarser
  one raises :class:`~broker.errors.NonceUnitDowngradeError` before anything is sent.
* **No re-entry.** A call made by the thread that is already inside a call for the same key (a
  signal handler, an observer) is refused with :class:`~broker.errors.ReentrantCallError`: it
  would put two requests of one key in flight at once.
* **Fork-safe.** In a forked child every inherited lock is dropped and the store's descriptors are
  reopened, so parent and child take turns like any two processes (:mod:`broker.channels`, where
  the process's channels are kept).
* **Late answers.** When a request's outcome is unknown (read timeout, connection lost after
  sending) the caller may hold the key for a grace period (:meth:`Ticket.hold_for`): the next
  request waits, so a late delivery of the lost one reaches Kraken first instead of being
  rejected, and counted towards a lockout, behind a higher nonce.

The stores themselves are in :mod:`broker.filestore` (and :mod:`broker.redisstore`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from .errors import (
    ConfigurationError,
    KeyBusyError,
    NonceStoreError,
    NonceUnitDowngradeError,
    ReentrantCallError,
)

__all__ = [
    "MAX_HOLD_S",
    "NONCE_UNITS",
    "KeyChannel",
    "KeyLease",
    "NonceRecord",
    "NonceStatus",
    "NonceStore",
    "Ticket",
    "convert",
    "now_in_unit",
    "parse_hold",
    "parse_unit",
]

log = logging.getLogger(__name__)

#: ticks per second of each supported unit, coarse to fine
NONCE_UNITS: dict[str, int] = {"ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
MAX_NONCE = 2**64 - 1
#: the longest a recorded hold can delay a request (a hold further ahead is a clock jump)
MAX_HOLD_S = 120.0


def parse_hold(value: object, *, what: str = "late_grace") -> float:
    """A hold on a key after an unknown outcome: seconds in ``[0, MAX_HOLD_S]`` (0: no hold);
    :class:`ConfigurationError` naming ``what`` otherwise."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 <= value <= MAX_HOLD_S
    ):
        raise ConfigurationError(
            f"{what} must be between 0 (no hold) and {MAX_HOLD_S:g} seconds, not {value!r}"
        )
    return float(value)


def parse_unit(value: str, *, variable: str | None = None) -> str:
    """``ms``, ``us`` (also ``µs``) or ``ns``; :class:`ConfigurationError` naming ``variable``."""
    unit = value.strip().lower().replace("µs", "us")
    if unit not in NONCE_UNITS:
        where = f"{variable}: " if variable else ""
        raise ConfigurationError(
            f"{where}unknown nonce unit {value.strip()!r}; use ms, us or ns", variable=variable
        )
    return unit


def now_in_unit(unit: str) -> int:
    return time.time_ns() // (1_000_000_000 // NONCE_UNITS[unit])


def convert(value: int, from_unit: str, to_unit: str) -> int:
    """A nonce in another unit, rounded up so a converted high-water mark stays a bound."""
    f, t = NONCE_UNITS[from_unit], NONCE_UNITS[to_unit]
    return value * (t // f) if t >= f else -(-value // (f // t))


def _finer(a: str, b: str) -> str:
    return a if NONCE_UNITS[a] >= NONCE_UNITS[b] else b


@dataclass(frozen=True)
class NonceRecord:
    """What a store knows of a key: the highest nonce issued, the finest unit used, and until when
    (Unix time) no new request may leave because an earlier one's outcome is unknown."""

    high_water: int
    unit: str
    hold_until: float = 0.0
    #: a mark synced to disk that every nonce sent stays below (0: none; the file store's)
    bound: int = 0

    def merged(self, other: NonceRecord) -> NonceRecord:
        """The bound of both records, in the finer unit."""
        unit = _finer(self.unit, other.unit)
        high = max(
            convert(self.high_water, self.unit, unit), convert(other.high_water, other.unit, unit)
        )
        bound = max(convert(self.bound, self.unit, unit), convert(other.bound, other.unit, unit))
        return NonceRecord(high, unit, max(self.hold_until, other.hold_until), bound)


@dataclass(frozen=True)
class NonceStatus:
    key_id: str
    unit: str
    high_water: int
    #: how far the high-water mark runs ahead of the wall clock (positive: a stranded key)
    lead_seconds: float
    #: which store coordinates the key, e.g. ``file store in /data/nonces (host-wide lock in ...)``
    store: str = ""


class KeyLease(Protocol):
    """A store's hold on one key: read and write its record while nobody else can."""

    def read(self) -> NonceRecord | None: ...

    def write(self, record: NonceRecord) -> None: ...

    def ensure_live(self, need_s: float = 0.0) -> None:
        """Raise :class:`~broker.errors.NonceStoreUnavailable` unless the hold is certainly
        still this process's for ``need_s`` more seconds (a lease may have run out while the
        process was paused)."""
        ...


class NonceStore(Protocol):
    """Where high-water marks live and who may send for a key (file store, Redis store)."""

    #: ``"file"`` or ``"redis"``
    kind: str

    @property
    def description(self) -> str:
        """One line saying which processes this store coordinates (no secret)."""
        ...

    def hold(
        self, key_id: str, *, lease_s: float | None = None, deadline: float | None = None
    ) -> AbstractContextManager[KeyLease]:
        """Exclusive use of ``key_id`` against everyone sharing the store, until the block ends.
        ``lease_s``: how long a crashed holder may keep others out, where the store leases;
        ``deadline`` (``time.monotonic()``): give up waiting then, with
        :class:`~broker.errors.KeyBusyError`."""
        ...

    def peek(self, key_id: str) -> NonceRecord | None:
        """The key's current record (for status); never blocks for long."""
        ...

    def reset_after_fork(self) -> None:
        """In a forked child: drop what was inherited from the parent (descriptors, locks)."""
        ...


class Ticket:
    """The nonce of one request in flight, and the caller's say on what happens after it."""

    def __init__(self, nonce: int, waited_s: float, lease: KeyLease | None = None):
        self.nonce = nonce
        #: how long the caller waited for the key (other requests of it, a hold)
        self.waited_s = waited_s
        self.hold_s = 0.0
        self._lease = lease

    def ensure_live(self, need_s: float = 0.0) -> None:
        """Right before the request leaves: the store's hold on the key stays ours for the
        ``need_s`` seconds its answer may take, else
        :class:`~broker.errors.NonceStoreUnavailable` and nothing may be sent."""
        if self._lease is not None:
            self._lease.ensure_live(need_s)

    def hold_for(self, seconds: float) -> None:
        """Keep the key from sending for ``seconds`` after this request (its outcome is unknown)."""
        self.hold_s = max(self.hold_s, min(seconds, MAX_HOLD_S))


class WouldBlock(Exception):
    """A step of a call made with ``wait=False`` would have blocked the thread; nothing was
    issued or sent (make the call again from a thread that may block)."""


class KeyChannel:
    """The single writer for one API key in this process (see the module docstring)."""

    def __init__(self, key_hash: str, store: NonceStore, lock: threading.Lock):
        self.key_id = key_hash
        self.store = store
        self._lock = lock
        self._holder: int | None = None
        self._hold_until = 0.0
        self._last_issued = 0
        self._last_unit: str | None = None
        #: the store had a record of the key when this process first looked
        self.had_history: bool | None = None
        #: a call with this key has been accepted by Kraken in this process
        self.accepted = False

    # -- holding the key ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _exclusive(self, purpose: str, deadline: float | None = None) -> Iterator[None]:
        self._take(purpose, deadline)
        try:
            yield
        finally:
            self._give_back()

    def _take(self, purpose: str, deadline: float | None, wait: bool = True) -> None:
        me = threading.get_ident()
        if self._holder == me:
            raise ReentrantCallError(
                f"cannot {purpose} for key {self.key_id} from inside a call this thread is making "
                "with the same key (a signal handler or a callback?): two requests of one key "
                "would be in flight at once. Make the call after the current one returns."
            )
        if not wait:
            if not self._lock.acquire(blocking=False):
                raise WouldBlock
        else:
            patience = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
            if not self._lock.acquire(timeout=patience):
                raise self.busy("another call of this process")
        self._holder = me

    def _give_back(self) -> None:
        self._holder = None
        self._lock.release()

    def busy(self, by: str) -> KeyBusyError:
        """The error for a caller whose deadline passed while ``by`` kept the key."""
        return KeyBusyError(
            f"key {self.key_id} stayed busy ({by}) until the caller's deadline; nothing was sent"
        )

    @contextlib.contextmanager
    def reserve(
        self,
        unit: str,
        *,
        lease_s: float | None = None,
        deadline: float | None = None,
        wait: bool = True,
    ) -> Iterator[Ticket]:
        """Issue the next nonce and hold the key until the ``with`` block ends.

        The record is persisted before the ticket is yielded, i.e. before the nonce can reach
        Kraken. A hold set on the ticket (:meth:`Ticket.hold_for`) is recorded before the key is
        released, and the next request waits it out. ``deadline`` (``time.monotonic()``): when
        the key is not free by then (this process, the store, a hold), raise
        :class:`~broker.errors.KeyBusyError` and issue nothing.

        ``wait=False`` (an event loop's caller): raise :class:`WouldBlock`, issuing nothing,
        instead of anything that could block the thread: the key held by another thread or
        process, a hold to wait out, a store without a non-blocking hold (Redis), a write that
        must be synced to disk.
        """
        asked = time.monotonic()
        self._take("send a request", deadline, wait)  # not a context manager: on every call's path
        try:
            with self._hold(lease_s, deadline, wait) as lease:
                ticket = self._issue(lease, unit, asked, deadline, wait)
                try:
                    yield ticket
                finally:
                    if ticket.hold_s > 0:
                        held = time.time() + ticket.hold_s
                        self._record_hold(lease, NonceRecord(ticket.nonce, unit, held))
        finally:
            self._give_back()

    def _hold(
        self, lease_s: float | None, deadline: float | None, wait: bool
    ) -> contextlib.AbstractContextManager[KeyLease]:
        if wait:
            return self.store.hold(self.key_id, lease_s=lease_s, deadline=deadline)
        hold_now = getattr(self.store, "hold_now", None)
        if hold_now is None:  # every hold of this store may wait (Redis: the network)
            raise WouldBlock
        held: contextlib.AbstractContextManager[KeyLease] = hold_now(self.key_id)
        return held

    def _issue(
        self, lease: KeyLease, unit: str, asked: float, deadline: float | None, wait: bool
    ) -> Ticket:
        """The next nonce, written to ``lease`` (the key held)."""
        first_look = self.had_history is None
        record = self._checked(lease.read(), unit)
        try:
            hold_until = max(record.hold_until, self._hold_until)
            if deadline is not None and hold_until - time.time() > deadline - time.monotonic():
                raise self.busy("a hold after a request whose answer was lost")
            if not wait and hold_until > time.time():
                raise WouldBlock
            _wait_out(hold_until)
            floor = max(self._last_issued_in(unit), convert(record.high_water, record.unit, unit))
            nonce = max(now_in_unit(unit), floor + 1)
            if nonce > MAX_NONCE:
                raise ConfigurationError(f"nonce for key {self.key_id} would exceed 2^64-1")
            lease.write(NonceRecord(nonce, unit))
        except WouldBlock:  # the first look (its floor: the synced bound) is the retry's
            if first_look:
                self.had_history = None
            raise
        self._last_issued, self._last_unit = nonce, unit
        return Ticket(nonce, time.monotonic() - asked, lease)

    def wait_idle(self, deadline: float | None = None) -> None:
        """Return once no request of the key is in flight anywhere that shares the store (this
        process, other processes, other hosts): the key is taken and released at once, nothing
        is issued. :class:`~broker.errors.KeyBusyError` when it stays busy past ``deadline``
        (``time.monotonic()``)."""
        with (
            self._exclusive("wait for the key", deadline),
            self.store.hold(self.key_id, deadline=deadline),
        ):
            return

    def refresh(self, unit: str) -> tuple[int, int]:
        """Re-baseline to ``max(now, last issued, stored high-water)``; never moves backwards.

        Returns ``(previous baseline, new baseline)`` in ``unit``.
        """
        with self._exclusive("refresh the nonce"), self.store.hold(self.key_id) as lease:
            record = self._checked(lease.read(), unit)
            previous = self._last_issued_in(unit)
            baseline = max(
                previous, convert(record.high_water, record.unit, unit), now_in_unit(unit)
            )
            self._last_issued, self._last_unit = baseline, unit
            return previous, baseline

    def status(self, unit: str) -> NonceStatus:
        with self._exclusive("read the nonce status"):
            record = self.store.peek(self.key_id)
        if record is None:
            high_water, unit_seen = self._last_issued_in(unit), unit
        else:
            high_water, unit_seen = record.high_water, record.unit
        lead = (high_water - now_in_unit(unit_seen)) / NONCE_UNITS[unit_seen]
        return NonceStatus(self.key_id, unit_seen, high_water, lead, self.store.description)

    def diagnosis(self) -> str:
        """Why Kraken rejected one of our nonces, as far as this host can tell.

        With a record of the key, or after one of our calls was accepted, every nonce we send is
        above everything sent through this store: a rejection means another program pushed the
        key's nonce higher (``second_writer``). Without either, Kraken simply saw higher nonces
        before this host ever used the key (``restart_below_high_water``).
        """
        return "second_writer" if self.had_history or self.accepted else "restart_below_high_water"

    # -- internals ------------------------------------------------------------------------------

    def _last_issued_in(self, unit: str) -> int:
        if self._last_unit is None:
            return 0
        return convert(self._last_issued, self._last_unit, unit)

    def _checked(self, record: NonceRecord | None, unit: str) -> NonceRecord:
        first_look = self.had_history is None
        if first_look:
            self.had_history = record is not None
        if record is None:
            return NonceRecord(0, unit)
        if first_look and record.bound > record.high_water:
            # after a power loss the exact mark may be older than what was sent; the synced bound
            # never is. Later looks see the exact mark other processes keep writing.
            record = NonceRecord(record.bound, record.unit, record.hold_until, record.bound)
        if NONCE_UNITS[unit] < NONCE_UNITS[record.unit]:
            raise NonceUnitDowngradeError(
                f"key {self.key_id} has already used nonces in {record.unit}; refusing to send "
                f"{unit} nonces, which Kraken would reject forever ({self.store.description})"
            )
        return record

    def _record_hold(self, lease: KeyLease, record: NonceRecord) -> None:
        """Best effort: the request has been answered (or lost) and its caller must learn how;
        without the record, only this process waits the hold out."""
        self._hold_until = record.hold_until  # first: whatever the store says, this process waits
        try:
            lease.write(record)
        except NonceStoreError as exc:
            log.warning("could not record the hold of key %s: %s", self.key_id, exc.message)
        except WouldBlock:  # never: a hold moves no bound to sync; the request is not re-sent
            log.warning("could not record the hold of key %s: it would wait", self.key_id)

    def _reset_after_fork(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._holder = None


def _wait_out(hold_until: float) -> None:
    """Sleep until ``hold_until`` (Unix time), at most :data:`MAX_HOLD_S`."""
    delay = hold_until - time.time()
    if delay > 0:
        time.sleep(min(delay, MAX_HOLD_S))
