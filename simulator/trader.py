"""Demo trading: keys whose scenario says ``trading = {...}`` trade by themselves, from one daemon
thread, through the same order book as ``AddOrder`` (so a dashboard watching the stream sees
orders, fills and cancels).

Every ``60 / orders_per_minute`` seconds each such key places a limit order of ``volume`` on its
pair, at the simulator's own price of the pair (so the account's value at the simulator's prices
only moves by the fees), alternating buy and sell (the other side when the balance cannot cover
one; none when neither). A third of an interval later the order is cancelled (a
``cancel_ratio`` share of the orders, at random) or half filled, and the rest is filled another
sixth of an interval later. Nothing is placed while the system status is not ``online``.
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
from collections.abc import Callable
from decimal import Decimal

from .book import OrderDesk, OrderError
from .keys import KeyState
from .market import Market
from .scenario import TradingSpec
from .state import SimState

__all__ = ["Trader"]

#: the first order comes this soon (at most), so a fresh demo shows trading at once
_FIRST_WITHIN_S = 3.0


class Trader:
    def __init__(self, desk: OrderDesk, state: SimState, market: Market, seed: int | None) -> None:
        self._desk = desk
        self._state = state
        self._rng = random.Random(seed)
        self._keys: list[tuple[KeyState, TradingSpec]] = []
        for ks in state.all_keys():
            spec = ks.trading
            if spec is None:
                continue
            if market.pair(spec.pair) is None:
                raise ValueError(f"key {ks.name}: trading.pair {spec.pair!r} is not priced")
            self._keys.append((ks, spec))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._agenda: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._side: dict[str, str] = {}

    def start(self) -> None:
        if not self._keys:
            return
        now = time.monotonic()
        for ks, spec in self._keys:
            first = min(60.0 / spec.orders_per_minute, _FIRST_WITHIN_S) * self._rng.uniform(0.3, 1)
            self._at(now + first, self._cycler(ks, spec))
        self._thread = threading.Thread(target=self._run, name="sim-demo-trader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _at(self, when: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._agenda, (when, next(self._seq), action))

    def _run(self) -> None:
        while self._agenda:
            when, _, action = self._agenda[0]
            if self._stop.wait(max(0.0, when - time.monotonic())):
                return
            heapq.heappop(self._agenda)
            action()

    def _cycler(self, ks: KeyState, spec: TradingSpec) -> Callable[[], None]:
        return lambda: self._cycle(ks, spec)

    def _cycle(self, ks: KeyState, spec: TradingSpec) -> None:
        interval = 60.0 / spec.orders_per_minute
        now = time.monotonic()
        self._at(now + interval, self._cycler(ks, spec))
        txid = self._place(ks, spec) if self._state.system_status == "online" else None
        if txid is None:
            return
        if self._rng.random() < spec.cancel_ratio:
            self._at(now + interval / 3, lambda: self._cancel(ks, txid))
            return
        half = Decimal(spec.volume) / 2
        self._at(now + interval / 3, lambda: self._fill(ks, txid, half))
        self._at(now + interval / 2, lambda: self._fill(ks, txid, None))

    def _place(self, ks: KeyState, spec: TradingSpec) -> str | None:
        first = "sell" if self._side.get(ks.key) == "buy" else "buy"
        price = self._desk_price(spec.pair)
        for side in (first, "buy" if first == "sell" else "sell"):
            fields = {
                "pair": spec.pair,
                "type": side,
                "ordertype": "limit",
                "volume": spec.volume,
                "price": price,
                "userref": "7",
            }
            result = self._desk.add_order(ks, fields, self._state.system_status)
            if isinstance(result, dict):
                self._side[ks.key] = side
                return str(result["txid"][0])
            if result != "EOrder:Insufficient funds":
                return None
        return None

    def _desk_price(self, pair_name: str) -> str:
        pair = self._desk.market.pair(pair_name)
        assert pair is not None
        return f"{pair.price:f}"

    def _cancel(self, ks: KeyState, txid: str) -> None:
        self._desk.cancel_order(ks, txid)

    def _fill(self, ks: KeyState, txid: str, volume: Decimal | None) -> None:
        try:
            self._desk.fill(ks, txid, volume)
        except OrderError:  # cancelled meanwhile, or the balance moved: give the order up
            self._desk.cancel_order(ks, txid)
