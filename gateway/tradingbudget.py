"""The order budget of one key: Kraken's per-pair trading counters as the gateway models them, so
an order that would overflow waits (up to ``--max-queue-wait``) instead of earning
``EOrder:Rate limit exceeded`` from Kraken.

Each pair's counter rises by what a transaction adds (:func:`gateway.tradeplan.charges`) and
decays at the tier's rate. The model errs on the safe side:

* **Charged before the call leaves** (Kraken counts on receipt, a moment later), and given back
  only when the call was certainly not sent.
* **Headroom.** :data:`HEADROOM` below the threshold is kept free (a transaction of a program the
  gateway does not see, a counter that is a little ahead of the model).
* **Slower decay.** :data:`DECAY_SHARE` of the published rate.
* **Kraken's word wins.** ``EOrder:Rate limit exceeded`` from Kraken sets the pair's counter to
  the threshold; the account's stream's ``ratecount`` (when the dashboard runs the gateway)
  raises it to Kraken's value when that is higher.

A client credential with ``order_share`` (0 < share <= 1) also has counters of its own per pair,
``share`` of the threshold decaying at ``share`` of the rate, so one bot cannot take a pair's
whole budget from another on the same key.

Counters live in the guard's store (shared by every gateway on the key); reads and writes happen
while the key is held, so deciding and charging is one step across replicas.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

from .guardstore import GuardStore

__all__ = ["DECAY_SHARE", "HEADROOM", "TradingBudget"]

HEADROOM = 1.0
DECAY_SHARE = 0.95


class TradingBudget:
    """One key's per-pair trading counters (see the module docstring)."""

    def __init__(
        self,
        store: GuardStore,
        key_id: str,
        threshold: float,
        decay_per_s: float,
        *,
        enforce: bool = True,
        clock: Callable[[], float] = time.time,
    ):
        self.store = store
        self.key_id = key_id
        #: Kraken's threshold of the key's tier
        self.threshold = threshold
        #: the highest modelled value a transaction may bring a counter to
        self.limit = threshold - HEADROOM
        self.decay_per_s = decay_per_s * DECAY_SHARE
        #: ``False``: count, never hold (a simulator without trading limits)
        self.enforce = enforce
        self._clock = clock
        self._lock = threading.Lock()
        #: pair -> (level, at) as this process last wrote or read it (for the gauges: a page
        #: or a scrape never waits for the store)
        self._seen: dict[str, tuple[float, float]] = {}

    def _scope(self, pair: str, client: str | None = None) -> str:
        return f"{self.key_id}|{pair}" if client is None else f"{self.key_id}|{pair}|{client}"

    def _level(self, scope: str, decay: float, now: float) -> float:
        found = self.store.counter(scope)
        if found is None:
            return 0.0
        level, at = found
        return max(0.0, level - max(0.0, now - at) * decay)

    def _scopes(
        self, owed: Mapping[str, float], client: str | None, share: float | None
    ) -> list[tuple[str, float, float, float]]:
        """``(scope, cost, limit, decay)`` of every counter ``owed`` charges."""
        scopes = []
        for pair, cost in owed.items():
            scopes.append((self._scope(pair), cost, self.limit, self.decay_per_s))
            if client is not None and share is not None:
                scopes.append(
                    (self._scope(pair, client), cost, self.limit * share, self.decay_per_s * share)
                )
        return scopes

    def take(
        self,
        owed: Mapping[str, float],
        client: str | None = None,
        share: float | None = None,
        *,
        force: bool = False,
    ) -> float:
        """Charge ``owed`` (pair -> count) when every counter it touches has room: 0.0; else
        charge nothing and return the seconds until it would fit (``force``: charge anyway).
        Call with the key held."""
        now = self._clock()
        with self._lock:
            scopes = self._scopes(owed, client, share)
            levels = [self._level(scope, decay, now) for scope, _, _, decay in scopes]
            if self.enforce and not force:
                wait = max(
                    (
                        (level + cost - limit) / decay
                        for (_, cost, limit, decay), level in zip(scopes, levels, strict=True)
                    ),
                    default=0.0,
                )
                if wait > 0:
                    return wait
            for scope, cost, _, decay in scopes:
                self._note(scope, self.store.change_counter(scope, decay, now, add=cost), now)
        return 0.0

    def _note(self, scope: str, level: float, now: float) -> None:
        """Remember a pair's level as last written (call with the lock held)."""
        pair = scope.split("|")[1]
        if scope == self._scope(pair):
            self._seen[pair] = (level, now)

    def give_back(
        self, owed: Mapping[str, float], client: str | None = None, share: float | None = None
    ) -> None:
        """Undo a :meth:`take` whose call was certainly not sent."""
        now = self._clock()
        with self._lock:
            for scope, cost, _, decay in self._scopes(owed, client, share):
                self._note(scope, self.store.change_counter(scope, decay, now, add=-cost), now)

    def raise_to(self, pair: str, level: float) -> None:
        """Kraken's own counter of ``pair`` is at least ``level`` (its stream's ``ratecount``, or
        the threshold after its ``EOrder:Rate limit exceeded``)."""
        now = self._clock()
        scope = self._scope(pair)
        with self._lock:
            self._note(
                scope, self.store.change_counter(scope, self.decay_per_s, now, floor=level), now
            )

    def levels(self) -> dict[str, float]:
        """pair -> the modelled counter now, as this process last saw it, decayed since (no
        store read: charges made by other gateways show once this one trades the pair)."""
        now = self._clock()
        with self._lock:
            seen = dict(self._seen)
        return {
            pair: max(0.0, level - max(0.0, now - at) * self.decay_per_s)
            for pair, (level, at) in sorted(seen.items())
        }
