"""The simulated Kraken's account state: keys, judging order, lockout, persistence, other writers.

One lock (``SimState._lock``) serialises every judgement, so nonces are judged in the order the
requests reach this step (their arrival order, after the simulated network latency).

Judging order for a private request (see :meth:`SimState.judge`): key -> lockout -> signature ->
rate limit -> nonce -> permission. Choices the Kraken docs leave open:

* A rate-limited call is refused before its nonce is looked at, so it does not consume the nonce
  (the client may resend the same nonce later). A call refused for its nonce has already counted
  against the rate limit.
* Invalid signatures and invalid nonces count as failed calls; ``lockout_threshold`` of them within
  ``lockout_window_s`` lock the key for ``lockout_seconds`` (``EGeneral:Temporary lockout``).
  Calls refused while locked neither extend the lockout nor count. Unknown keys cannot be
  attributed to a key and never lock anything.
* A permission-denied call has passed the nonce check: its nonce is consumed.
* What a call adds here is :func:`broker.limits.call_cost`'s (the project's one table): nothing
  for AddOrder/CancelOrder and the other trading-engine transactions that Kraken's separate
  per-pair trading counter judges instead (:mod:`simulator.book`).
* The other writer's nonces do not count against the rate limit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import fields, replace
from os import PathLike

from broker.signing import key_id

from .keys import KeyState, KeyStats, parse_nonce
from .scenario import (
    NONCE_UNITS,
    SYSTEM_STATUSES,
    TIERS,
    KeySpec,
    OtherWriter,
    Scenario,
    mask_key,
    parse_balances,
    parse_nonce_window,
    parse_other_writer,
    parse_permissions,
    resolve_nonce,
)
from .store import NonceStore

__all__ = ["KEEP", "SimState"]

INVALID_KEY = "EAPI:Invalid key"
LOCKOUT = "EGeneral:Temporary lockout"
INVALID_SIGNATURE = "EAPI:Invalid signature"
RATE_LIMIT = "EAPI:Rate limit exceeded"
INVALID_NONCE = "EAPI:Invalid nonce"
PERMISSION_DENIED = "EGeneral:Permission denied"
TRADING_RATE_LIMIT = "EOrder:Rate limit exceeded"


class _Keep:
    def __repr__(self) -> str:
        return "KEEP"


#: ``update_key(other_writer=KEEP)``: leave the other writer as it is.
KEEP = _Keep()


class SimState:
    def __init__(self, scenario: Scenario, state_file: str | PathLike[str] | None = None) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.rate_limit = TIERS[scenario.tier]
        self.lockout_threshold = scenario.lockout_threshold
        self.lockout_window_s = scenario.lockout_window_s
        self.lockout_seconds = scenario.lockout_seconds
        self.clock_offset_s = float(scenario.clock_offset_s)
        self.system_status = scenario.system_status
        self._store = NonceStore(state_file) if state_file is not None else None
        self._by_key: dict[str, KeyState] = {}
        self._by_name: dict[str, KeyState] = {}
        self._unknown = KeyStats()
        self._writers: dict[str, threading.Event] = {}
        self._running = False
        #: called (under the lock) with the key, its old and its new balances when an admin
        #: patch replaces them: the order book turns it into ledger entries on the stream
        self.on_balances: Callable[[KeyState, dict[str, str], dict[str, str]], None] | None = None
        for spec in scenario.keys:
            self.add_key(spec)

    # ------------------------------------------------------------------ registry
    def add_key(self, spec: KeySpec) -> None:
        with self._lock:
            if spec.key in self._by_key:
                raise ValueError(f"key {spec.name} is already configured")
            if spec.name in self._by_name:
                raise ValueError(f"a key named {spec.name!r} is already configured")
            last, recent = resolve_nonce(spec.last_nonce), list[int]()
            if self._store is not None:
                stored_last, recent = self._store.get(key_id(spec.key))
                last = max(last, stored_last)
            ks = KeyState(spec, self.rate_limit, last, recent)
            self._by_key[ks.key] = ks
            self._by_name[ks.name] = ks
            if self._store is not None:
                self._store.put(ks.id, ks.book.last, ks.book.recent())
            if self._running and ks.other_writer is not None:
                self._start_writer(ks, ks.other_writer)

    @property
    def lock(self) -> threading.Condition:
        """The one state lock (a condition: ``notify_all`` after a change), shared by the order
        book and the streams' snapshots."""
        return self._changed

    def lookup(self, api_key: str | None) -> KeyState | None:
        """The key named by an ``API-Key`` header (public key only)."""
        return self._by_key.get(api_key) if api_key else None

    def find(self, ref: str) -> KeyState:
        """A key by its public key or its name. Raises ``KeyError``."""
        ks = self._by_key.get(ref) or self._by_name.get(ref)
        if ks is None:
            shown = mask_key(ref) if len(ref) >= 20 else repr(ref)
            raise KeyError(f"no key {shown} (give a key's name or its public key)")
        return ks

    def all_keys(self) -> list[KeyState]:
        return list(self._by_key.values())

    def now(self) -> float:
        """The simulator's clock: the real clock plus ``clock_offset_s``."""
        return time.time() + self.clock_offset_s

    def set_system_status(self, status: str) -> None:
        if status not in SYSTEM_STATUSES:
            raise ValueError(f"system_status must be one of {', '.join(SYSTEM_STATUSES)}")
        self.system_status = status

    # ------------------------------------------------------------------ judging
    @contextmanager
    def tracking(self, api_key: str | None) -> Iterator[KeyState | None]:
        """Count one private request in flight for its key, from reading to answering it."""
        ks = self.lookup(api_key)
        with self._lock:
            if ks is not None:
                st = ks.stats
                st.requests += 1
                st.in_flight += 1
                st.max_concurrency = max(st.max_concurrency, st.in_flight)
            un = self._unknown
            un.in_flight += 1
            un.max_concurrency = max(un.max_concurrency, un.in_flight)
            self._changed.notify_all()
        try:
            yield ks
        finally:
            with self._lock:
                if ks is not None:
                    ks.stats.in_flight -= 1
                self._unknown.in_flight -= 1
                self._changed.notify_all()

    def judge(
        self,
        ks: KeyState | None,
        *,
        signature_ok: bool,
        nonce_values: list[str],
        cost: float,
        permission: str,
    ) -> str | None:
        """Steps 2-7 of a private request, atomically. Returns the error string or ``None``."""
        now = time.monotonic()
        with self._lock:
            try:
                if ks is None:
                    self._unknown.invalid_key += 1
                    return INVALID_KEY
                st = ks.stats
                if now < ks.locked_until:
                    st.locked_out += 1
                    return LOCKOUT
                if not signature_ok:
                    st.invalid_signature += 1
                    self._failed(ks, now)
                    return INVALID_SIGNATURE
                if cost and not ks.rate.try_add(now, cost):
                    st.rate_limited += 1
                    return RATE_LIMIT
                nonce = parse_nonce(nonce_values)
                if nonce is None or not ks.book.accept(nonce):
                    st.invalid_nonce += 1
                    self._failed(ks, now)
                    return INVALID_NONCE
                st.last_nonce = ks.book.last
                self._persist(ks)
                if permission not in ks.permissions:
                    st.permission_denied += 1
                    return PERMISSION_DENIED
                return None
            finally:
                self._changed.notify_all()

    def count_late(self, ks: KeyState | None) -> None:
        """A request of ``ks`` is judged late: its client has given up waiting for it."""
        if ks is None:
            return
        with self._lock:
            ks.stats.late += 1
            self._changed.notify_all()

    def finish(self, ks: KeyState | None, ok: bool, error: str | None = None) -> None:
        """Record how a request that got past (or skipped) judging was answered (``error``:
        its error, when known)."""
        if ks is None:
            return
        with self._lock:
            if ok:
                ks.stats.accepted += 1
            else:
                ks.stats.other_errors += 1
            if error == TRADING_RATE_LIMIT:
                ks.stats.trading_rate_limited += 1
            self._changed.notify_all()

    def _failed(self, ks: KeyState, now: float) -> None:
        if self.lockout_threshold <= 0:
            return
        failures = ks.failures
        failures.append(now)
        while failures and failures[0] <= now - self.lockout_window_s:
            failures.popleft()
        if len(failures) >= self.lockout_threshold:
            ks.locked_until = now + self.lockout_seconds
            failures.clear()

    def _persist(self, ks: KeyState) -> None:
        if self._store is not None:
            self._store.put(ks.id, ks.book.last, ks.book.recent())

    # ------------------------------------------------------------------ control
    def update_key(
        self,
        ref: str,
        *,
        permissions: Iterable[str] | None = None,
        balances: Mapping[str, str] | None = None,
        other_writer: object = KEEP,
        nonce_window: int | None = None,
    ) -> None:
        """Patch a key (by public key or name). Values are validated like a scenario file's."""
        ks = self.find(ref)
        where = f"key {ks.name}"
        new_perms = (
            None
            if permissions is None
            else parse_permissions(list(permissions), f"{where}: permissions")
        )
        new_bal = None if balances is None else parse_balances(balances, f"{where}: balances")
        window = (
            None
            if nonce_window is None
            else parse_nonce_window(nonce_window, f"{where}: nonce_window")
        )
        writer: OtherWriter | None = None
        if other_writer is not KEEP and not isinstance(other_writer, OtherWriter):
            writer = parse_other_writer(other_writer, f"{where}: other_writer")
        elif isinstance(other_writer, OtherWriter):
            writer = other_writer
        with self._lock:
            if new_perms is not None:
                ks.permissions = frozenset(new_perms)
            if new_bal is not None:
                old, ks.balances = ks.balances, new_bal
                if self.on_balances is not None:
                    self.on_balances(ks, old, new_bal)
            if window is not None:
                ks.book.set_window(window)
            if other_writer is not KEEP:
                cancel = self._writers.pop(ks.id, None)
                if cancel is not None:
                    cancel.set()
                ks.other_writer = writer
                if self._running and writer is not None:
                    self._start_writer(ks, writer)
            self._changed.notify_all()

    def stats(self, ref: str) -> KeyStats:
        ks = self.find(ref)
        with self._lock:
            return replace(ks.stats)

    def total_stats(self) -> KeyStats:
        with self._lock:
            total = replace(self._unknown)
            for ks in self._by_key.values():
                for f in fields(KeyStats):
                    if f.name in ("max_concurrency", "in_flight"):
                        continue
                    value = getattr(ks.stats, f.name)
                    if f.name == "last_nonce":
                        total.last_nonce = max(total.last_nonce, value)
                    else:
                        setattr(total, f.name, getattr(total, f.name) + value)
            return total

    def wait_for(
        self, ref: str, predicate: Callable[[KeyStats], bool], timeout: float = 5.0
    ) -> KeyStats:
        """Block until ``predicate(stats)`` holds for the key; raise ``TimeoutError`` if not."""
        ks = self.find(ref)
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(ks.stats), timeout):
                raise TimeoutError(f"key {ks.name}: condition not met within {timeout} s")
            return replace(ks.stats)

    # ------------------------------------------------------------------ other writers
    def start(self) -> None:
        with self._lock:
            self._running = True
            for ks in self._by_key.values():
                if ks.other_writer is not None and ks.id not in self._writers:
                    self._start_writer(ks, ks.other_writer)

    def stop(self) -> None:
        with self._lock:
            self._running = False
            cancels = list(self._writers.values())
            self._writers.clear()
        for cancel in cancels:
            cancel.set()

    def _start_writer(self, ks: KeyState, writer: OtherWriter) -> None:
        cancel = threading.Event()
        self._writers[ks.id] = cancel
        thread = threading.Thread(
            target=self._writer_loop,
            args=(ks, writer, cancel),
            name=f"sim-other-writer-{ks.name}",
            daemon=True,
        )
        thread.start()

    def _writer_loop(self, ks: KeyState, writer: OtherWriter, cancel: threading.Event) -> None:
        factor = NONCE_UNITS[ks.nonce_unit]
        lead = int(writer.lead_ms * factor) // 1000
        while True:
            nonce = time.time_ns() * factor // 1_000_000_000 + lead
            with self._lock:
                if cancel.is_set():
                    return
                ks.book.record(nonce)
                ks.stats.last_nonce = ks.book.last
                ks.stats.other_writer_nonces += 1
                self._persist(ks)
                self._changed.notify_all()
            if cancel.wait(writer.interval_ms / 1000.0):
                return
