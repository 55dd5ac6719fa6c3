"""Per-key server state: the nonce book, the rate counter, the lockout record and statistics.

Nothing here locks: :class:`~simulator.state.SimState` holds one lock around every use.

Nonce rule (``EAPI:Invalid nonce`` otherwise), judged in arrival order:

* the nonce must be a decimal integer string (ASCII digits only) with a value in 1..2^64-1;
* window ``W == 0``: accepted iff ``n > last``;
* window ``W > 0``: accepted iff ``n > last - W`` and ``n`` was not accepted before (accepted
  nonces inside the window are remembered, so a repeat inside the window is rejected);
* after acceptance ``last = max(last, n)``: ``last`` is the highest nonce ever accepted, it never
  decreases and nothing resets it.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from broker.signing import key_id

from .scenario import MAX_NONCE, KeySpec, OtherWriter, TradingSpec

__all__ = ["KeyState", "KeyStats", "NonceBook", "RateCounter", "parse_nonce"]


@dataclass
class KeyStats:
    """Counters for one key (or, from ``total_stats``, summed over all keys).

    ``accepted`` counts successful answers (empty error list). ``requests`` counts every private
    request that named the key, faulted ones included. ``max_concurrency`` is the largest number of
    requests for the key in flight at once (from reading the request to writing the answer).
    ``late`` counts requests judged after their client gave up (the ``late_ms`` fault).
    ``other_writer_nonces`` counts nonces recorded by the simulated other writer; ``invalid_key``
    is only non-zero in ``total_stats`` (requests naming no known key), whose ``in_flight`` and
    ``max_concurrency`` count every API request, public ones included.
    ``trading_rate_limited`` counts answers ``EOrder:Rate limit exceeded`` (Kraken's per-pair
    trading counter refused the transaction), apart from ``rate_limited`` (the call counter's
    ``EAPI:Rate limit exceeded``).
    """

    accepted: int = 0
    invalid_nonce: int = 0
    invalid_signature: int = 0
    permission_denied: int = 0
    rate_limited: int = 0
    locked_out: int = 0
    other_errors: int = 0
    max_concurrency: int = 0
    in_flight: int = 0
    last_nonce: int = 0
    requests: int = 0
    other_writer_nonces: int = 0
    invalid_key: int = 0
    late: int = 0
    trading_rate_limited: int = 0


def parse_nonce(values: list[str]) -> int | None:
    """The nonce from the body's ``nonce`` field(s), or ``None`` when it is not acceptable."""
    if len(values) != 1:
        return None
    text = values[0]
    if not text or len(text) > 40 or not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if 1 <= value <= MAX_NONCE else None


class NonceBook:
    """The nonces one key has accepted (see the module docstring for the rule)."""

    def __init__(self, last: int, window: int, recent: Iterable[int] = ()) -> None:
        self.last = last
        self.window = window
        self._recent: set[int] = set()
        self._heap: list[int] = []
        for n in recent:
            self._remember(n)
        self._prune()

    def accept(self, n: int) -> bool:
        """Judge ``n``; record and return True when accepted."""
        if self.window <= 0:
            if n <= self.last:
                return False
        elif n <= self.last - self.window or n in self._recent:
            return False
        self.record(n)
        return True

    def record(self, n: int) -> None:
        """Record ``n`` as accepted without judging it (another writer's request)."""
        if self.window > 0:
            self._remember(n)
        self.last = max(self.last, n)
        self._prune()

    def set_window(self, window: int) -> None:
        self.window = window
        if window <= 0:
            self._recent.clear()
            self._heap.clear()
        self._prune()

    def recent(self) -> list[int]:
        """Accepted nonces still inside the window (persisted so a restart keeps rejecting them)."""
        return sorted(self._recent)

    def _remember(self, n: int) -> None:
        if n not in self._recent:
            self._recent.add(n)
            heapq.heappush(self._heap, n)

    def _prune(self) -> None:
        floor = self.last - self.window
        while self._heap and self._heap[0] <= floor:
            self._recent.discard(heapq.heappop(self._heap))


class RateCounter:
    """A Kraken counter: +cost per call, decaying continuously; ``None`` = no limit. The per-key
    call counter, and (one per pair, ``enforce=False`` for the ``unlimited`` tier: counted, never
    refused) the trading counter."""

    def __init__(self, limit: tuple[float, float] | None, enforce: bool = True) -> None:
        self.limit = limit
        self.enforce = enforce
        self.value = 0.0
        self._updated: float | None = None

    def level(self, now: float) -> float:
        """The counter's value at ``now`` (after its decay)."""
        if self.limit is not None and self._updated is not None:
            self.value = max(0.0, self.value - (now - self._updated) * self.limit[1])
        self._updated = now
        return self.value

    def fits(self, now: float, cost: float) -> bool:
        """Whether adding ``cost`` now would stay within the maximum (nothing is added)."""
        if self.limit is None or not self.enforce:
            return True
        return self.level(now) + cost <= self.limit[0] + 1e-9

    def try_add(self, now: float, cost: float = 1.0) -> bool:
        """Add ``cost`` unless that would exceed the maximum (then nothing is added)."""
        if self.limit is None:
            return True
        if not self.fits(now, cost):
            return False
        self.value = self.level(now) + cost
        return True

    def add(self, now: float, cost: float) -> None:
        """Add ``cost`` even past the maximum (Kraken's batch cancels are never refused)."""
        if self.limit is not None:
            self.value = self.level(now) + cost


class KeyState:
    """Everything the simulated Kraken knows about one key."""

    def __init__(
        self,
        spec: KeySpec,
        rate_limit: tuple[float, float] | None,
        last_nonce: int,
        recent: Iterable[int] = (),
    ) -> None:
        self.key = spec.key
        self.secret = spec.secret
        self.name = spec.name
        self.account = spec.account
        self.nonce_unit = spec.nonce_unit
        self.id = key_id(spec.key)
        # replaced wholesale (never mutated) so request threads can read them without the lock
        self.permissions: frozenset[str] = frozenset(spec.permissions)
        self.balances: dict[str, str] = dict(spec.balances)
        self.other_writer: OtherWriter | None = spec.other_writer
        self.trading: TradingSpec | None = spec.trading
        #: pair name -> Kraken's per-pair trading counter (see :mod:`simulator.orders`)
        self.trading_counters: dict[str, RateCounter] = {}
        self.book = NonceBook(last_nonce, spec.nonce_window, recent)
        self.rate = RateCounter(rate_limit)
        self.failures: deque[float] = deque()
        self.locked_until = 0.0
        self.stats = KeyStats(last_nonce=last_nonce)

    def describe(self) -> dict[str, object]:
        """Admin view: no secret, no full key."""
        ow = self.other_writer
        return {
            "account": self.account,
            "permissions": sorted(self.permissions),
            "nonce_window": self.book.window,
            "nonce_unit": self.nonce_unit,
            "other_writer": None
            if ow is None
            else {"interval_ms": ow.interval_ms, "lead_ms": ow.lead_ms},
        }
