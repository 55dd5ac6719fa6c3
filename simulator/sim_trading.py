"""The :class:`~simulator.Simulator`'s test hooks on Kraken's trading limits: a key's per-pair
trading counter, its dead man's switch, the ``EOrder:Rate limit exceeded`` answers it was given,
its open orders with their ages (``GET /_sim/trading/<name>`` shows them all). Keys are named by
name (``"MASTER"``) or public key; pairs by name or altname (``XXBTZUSD``, ``XBTUSD``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from .book import OrderDesk
from .deadman import DeadMansSwitch
from .market import Pair
from .orders import OrderAge
from .state import SimState

__all__ = ["TradingHooks"]


class TradingHooks:
    _state: SimState
    _desk: OrderDesk
    _deadman: DeadMansSwitch

    def _pair(self, name: str) -> Pair:
        pair = self._desk.market.pair(name)
        if pair is None:
            raise ValueError(f"{name!r} is not a pair of the simulator's prices")
        return pair

    def trading_counter(self, key: str, pair: str) -> float:
        """The key's trading counter of ``pair`` now (after its decay); 0 before any trading."""
        return self._desk.counter_level(self._state.find(key), self._pair(pair))

    def dead_mans_switch(self, key: str) -> float | None:
        """When the key's dead man's switch fires (simulator clock, epoch seconds); ``None``
        when it is off (never armed, disarmed with ``timeout=0``, or fired)."""
        return self._deadman.trigger_time(self._state.find(key).key)

    def dead_mans_switch_fired(self, key: str) -> int:
        """How many times the key's dead man's switch has fired."""
        return self._deadman.fired(self._state.find(key).key)

    def trading_rate_limited(self, key: str) -> int:
        """How many answers ``EOrder:Rate limit exceeded`` the key got (the trading counter's
        refusals, REST only; also ``stats(key).trading_rate_limited``)."""
        return self._state.stats(key).trading_rate_limited

    def order_ages(self, key: str) -> list[OrderAge]:
        """The key's open orders with their ages: ``age_s`` is what the trading counter looks
        at (since the order was created or last amended, on the simulator's clock)."""
        return self._desk.order_ages(self._state.find(key))

    def wait_for_orders(
        self, key: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0
    ) -> dict[str, Any]:
        """Block until ``predicate(open orders)`` holds (txid -> the ``OpenOrders`` entry);
        ``TimeoutError`` otherwise. Returns the open orders."""
        return self._desk.wait_open(self._state.find(key), predicate, timeout)

    def trading_snapshot(self, key: str) -> dict[str, Any]:
        """What ``GET /_sim/trading/<name>`` answers: every pair's counter, the dead man's
        switch, the trading counter's refusals and the open orders' ages."""
        ks = self._state.find(key)
        counters = {
            name: self._desk.counter_level(ks, self._pair(name))
            for name in sorted(ks.trading_counters)
        }
        return {
            "counters": counters,
            "maxratecount": self._desk.maxratecount,
            "dead_mans_switch": self.dead_mans_switch(key),
            "dead_mans_switch_fired": self.dead_mans_switch_fired(key),
            "trading_rate_limited": self.trading_rate_limited(key),
            "orders": [dataclasses.asdict(age) for age in self.order_ages(key)],
        }
