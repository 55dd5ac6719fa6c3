"""The order book: every key's orders, their fills and cancels, and Kraken's per-pair trading
counter. Every public operation holds the state lock (:attr:`SimState.lock`), so REST calls, the
admin routes, the demo trader, the dead man's switch and the streams' snapshots see one order of
events, and every event is published to the key's WebSocket subscriptions
(:class:`~simulator.hub.StreamHub`) before the lock is released. Methods documented "lock held"
are for :mod:`simulator.order_changes` (amends, edits, batches), which holds the lock itself.

* Market orders fill at once, in full, at the simulator's own price of the pair (taker fee).
  Limit orders rest until :meth:`OrderDesk.fill` fills them (in parts if asked: maker fee, at the
  limit price), or they are cancelled or expired. Fees are charged in the quote currency.
* An order the key's balance cannot cover (minus what its other open orders hold) is refused with
  ``EOrder:Insufficient funds``.
* The trading counter (one per key and pair; thresholds in
  :data:`~simulator.scenario.TRADING_TIERS`, decay times the scenario's ``trading_decay_scale``):
  ``AddOrder`` adds 1 on receipt (even when the order then fails its checks), a cancel adds by the
  order's age (:func:`~simulator.orders.cancel_cost`); a transaction that would pass the
  threshold is refused with ``EOrder:Rate limit exceeded`` and changes nothing. Batch cancels
  (``CancelOrderBatch``, ``CancelAll``, the dead man's switch) are never refused: each of their
  cancels counts, past the threshold if need be (Kraken's rule for batch cancels).
* An order is named by its txid, by its ``userref`` (every open order carrying it) or by its
  ``cl_ord_id`` (unique among the key's open orders).
* Balances are changed under the REST names the key already uses (``XXBT``, ``ZUSD``), or the
  pair's asset codes for an asset the key does not hold yet (:mod:`simulator.ledger`).
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from .hub import StreamHub, Subscription
from .keys import KeyState, RateCounter
from .ledger import Ledger, balance, balance_name
from .market import Market, Pair
from .order_args import build_order
from .orders import Fill, Order, OrderAge, asset_decimals, cancel_cost, kraken_id, quantize
from .scenario import TRADING_TIERS, Scenario
from .state import SimState

__all__ = ["OrderDesk", "OrderError"]

RATE_LIMIT = "EOrder:Rate limit exceeded"
INSUFFICIENT = "EOrder:Insufficient funds"
UNKNOWN_ORDER = "EOrder:Unknown order"
USER_REQUESTED = "User requested"
_KEEP_CLOSED = 500  # closed orders remembered per key
_KEEP_TRADES = 50  # fills per key for ``snap_trades``
_USERREF = re.compile(r"-?[0-9]{1,10}")


class OrderError(ValueError):
    """An order operation was refused; the message is Kraken's error (``EOrder:...``)."""


class OrderDesk:
    def __init__(self, state: SimState, market: Market, hub: StreamHub, scenario: Scenario) -> None:
        self._state = state
        self._market = market
        self._hub = hub
        threshold, decay = TRADING_TIERS[scenario.tier]
        self._limit = (threshold, decay * scenario.trading_decay_scale)
        self._enforce = scenario.tier != "unlimited"
        self._fees = {
            "limit": Decimal(scenario.maker_fee_pct),
            "market": Decimal(scenario.taker_fee_pct),
        }
        self._orders: dict[str, Order] = {}
        self._open: dict[str, dict[str, Order]] = {}
        self._closed: dict[str, deque[str]] = {}
        self._trades: dict[str, deque[dict[str, Any]]] = {}
        self._trade_ids: dict[str, int] = {}
        self._ledger = Ledger(hub, state.now)
        state.on_balances = self._ledger.adjusted

    @property
    def market(self) -> Market:
        return self._market

    @property
    def lock(self) -> threading.Condition:
        return self._state.lock

    @property
    def maxratecount(self) -> int:
        """The trading counter's threshold (the ``executions`` acknowledgement shows it)."""
        return int(self._limit[0])

    def now(self) -> float:
        """The simulator's clock (orders' ages are measured on it)."""
        return self._state.now()

    # ------------------------------------------------------------------ operations
    def add_order(
        self, ks: KeyState, fields: Mapping[str, str], status: str
    ) -> dict[str, Any] | str:
        """``AddOrder`` without ``validate``: its result, or Kraken's error."""
        pair = self._market.pair(fields.get("pair", ""))
        if pair is None:
            return (
                "EQuery:Unknown asset pair"
                if fields.get("pair")
                else "EGeneral:Invalid arguments:pair"
            )
        with self.lock:
            if not self.counter(ks, pair).try_add(time.monotonic(), 1.0):
                return RATE_LIMIT
            order = self.new_order(ks, pair, fields, status)
            if isinstance(order, str):
                return order
            error = self.submit(ks, order)
            if error is not None:
                return error
            self.lock.notify_all()
        return {"descr": {"order": order.descr}, "txid": [order.txid]}

    def cancel_order(
        self, ks: KeyState, txid: str = "", cl_ord_id: str = ""
    ) -> dict[str, Any] | str:
        """``CancelOrder`` by txid or userref (``txid``) or by ``cl_ord_id``: ``{"count": n}``."""
        with self.lock:
            orders = self.find(ks, txid) if txid else self._by_client_id(ks, cl_ord_id)
            if not orders:
                return UNKNOWN_ORDER
            count = self.cancel(ks, orders)
        return count if isinstance(count, str) else {"count": count}

    def cancel_batch(self, ks: KeyState, refs: list[str], cl_ord_ids: list[str]) -> dict[str, Any]:
        """``CancelOrderBatch``: every open order named (unknown names are passed over)."""
        with self.lock:
            named: dict[str, Order] = {}
            for ref in refs:
                named.update((o.txid, o) for o in self.find(ks, ref))
            for client_id in cl_ord_ids:
                named.update((o.txid, o) for o in self._by_client_id(ks, client_id))
            count = self.cancel(ks, list(named.values()), force=True)
        return {"count": count}

    def cancel_all(self, ks: KeyState, reason: str = USER_REQUESTED) -> dict[str, Any]:
        """``CancelAll`` (and the dead man's switch, with its own ``reason``)."""
        with self.lock:
            orders = list(self._open.get(ks.key, {}).values())
            count = self.cancel(ks, orders, reason, force=True)
        return {"count": count}

    def expire_order(self, ks: KeyState, txid: str) -> None:
        with self.lock:
            order = self._open.get(ks.key, {}).get(txid)
            if order is None:
                raise OrderError(UNKNOWN_ORDER)
            self.close(ks, order, "expired")

    def fill(self, ks: KeyState, txid: str, volume: Decimal | None = None) -> None:
        """Fill an open limit order at its limit price: ``volume`` of it, or the rest."""
        with self.lock:
            order = self._open.get(ks.key, {}).get(txid)
            if order is None:
                raise OrderError(UNKNOWN_ORDER)
            qty = order.remaining if volume is None else volume
            if not 0 < qty <= order.remaining:
                raise OrderError(
                    f"EGeneral:Invalid arguments:volume (0 < volume <= {order.remaining})"
                )
            assert order.price is not None
            self._execute(ks, order, qty, order.price, "m")
            self.lock.notify_all()

    def open_orders(self, ks: KeyState) -> dict[str, Any]:
        """``OpenOrders``'s result."""
        with self.lock:
            return {"open": self._open_entries(ks)}

    def wait_open(
        self, ks: KeyState, predicate: Callable[[dict[str, Any]], bool], timeout: float
    ) -> dict[str, Any]:
        """Block until ``predicate(open orders)`` holds; ``TimeoutError`` otherwise."""
        with self.lock:
            if not self.lock.wait_for(lambda: predicate(self._open_entries(ks)), timeout):
                raise TimeoutError(f"key {ks.name}: open orders condition not met in {timeout} s")
            return self._open_entries(ks)

    def order_ages(self, ks: KeyState) -> list[OrderAge]:
        with self.lock:
            now = self.now()
            return [o.age_entry(now) for o in self._open.get(ks.key, {}).values()]

    def order(self, ks: KeyState, txid: str) -> Order | None:
        with self.lock:
            order = self._orders.get(txid)
            return order if order is not None and order.key == ks.key else None

    def ratecount(self, ks: KeyState, pair: Pair) -> float:
        return round(self.counter(ks, pair).level(time.monotonic()), 3)

    def counter_level(self, ks: KeyState, pair: Pair) -> float:
        """The key's trading counter of ``pair`` now, after its decay."""
        with self.lock:
            return round(self.counter(ks, pair).level(time.monotonic()), 6)

    def subscribe(
        self,
        ks: KeyState,
        sub: Subscription,
        snapshot: bool,
        trades: bool,
        register: Callable[[], None],
    ) -> list[dict[str, Any]] | None:
        """Register a subscription and take its snapshot atomically (no update lost or repeated):
        ``None`` when no snapshot is asked for."""
        with self.lock:
            register()
            if sub.channel == "balances":
                return Ledger.snapshot(ks) if snapshot else None
            if not snapshot and not trades:
                return None
            data = (
                [o.snapshot_entry() for o in self._open.get(ks.key, {}).values()]
                if snapshot
                else []
            )
            return data + (list(self._trades.get(ks.key, ())) if trades else [])

    # ------------------------------------------------------------------ lock held
    def counter(self, ks: KeyState, pair: Pair) -> RateCounter:
        counter = ks.trading_counters.get(pair.name)
        if counter is None:
            counter = ks.trading_counters[pair.name] = RateCounter(self._limit, self._enforce)
        return counter

    def find(self, ks: KeyState, ref: str) -> list[Order]:
        """The open orders ``ref`` names: a txid, or a ``userref`` (every order carrying it)."""
        open_orders = self._open.get(ks.key, {})
        if ref in open_orders:
            return [open_orders[ref]]
        if _USERREF.fullmatch(ref):
            return [o for o in open_orders.values() if o.userref == int(ref)]
        return []

    def open_order(self, ks: KeyState, txid: str, cl_ord_id: str = "") -> Order | None:
        """The open order of that txid (or, without one, of that ``cl_ord_id``)."""
        if txid:
            return self._open.get(ks.key, {}).get(txid)
        found = self._by_client_id(ks, cl_ord_id)
        return found[0] if found else None

    def cancel(
        self, ks: KeyState, orders: list[Order], reason: str = USER_REQUESTED, force: bool = False
    ) -> int | str:
        """Cancel ``orders`` as one transaction, each counted by its age: refused whole
        (``EOrder:Rate limit exceeded``) when a pair's counter would pass its threshold, unless
        ``force``. How many were cancelled."""
        now_sim, now = self.now(), time.monotonic()
        costs: dict[str, tuple[RateCounter, float]] = {}
        for order in orders:
            counter, cost = costs.get(order.pair.name, (self.counter(ks, order.pair), 0.0))
            costs[order.pair.name] = counter, cost + cancel_cost(order.age(now_sim))
        if not force and not all(counter.fits(now, cost) for counter, cost in costs.values()):
            return RATE_LIMIT
        for counter, cost in costs.values():
            counter.add(now, cost)
        for order in orders:
            self.close(ks, order, "canceled", reason)
        return len(orders)

    def new_order(
        self, ks: KeyState, pair: Pair, fields: Mapping[str, str], status: str
    ) -> Order | str:
        """An order from ``AddOrder``'s arguments (checked, not placed), or Kraken's error."""
        return build_order(
            ks.key,
            pair,
            fields,
            status,
            fees=self._fees,
            now=self.now(),
            client_id_taken=lambda client_id: bool(self._by_client_id(ks, client_id)),
        )

    def submit(self, ks: KeyState, order: Order) -> str | None:
        """Place a checked order (a market order fills at once): Kraken's error, else ``None``."""
        if not self.covered(ks, order, order.price or order.pair.price):
            return INSUFFICIENT
        self._orders[order.txid] = order
        self._open.setdefault(ks.key, {})[order.txid] = order
        self.publish(ks, order, order.pending_new(order.opened))
        if order.ordertype == "market":
            try:
                self._execute(ks, order, order.volume, order.pair.price, "t")
            except OrderError as exc:  # a rounding short of the fee: nothing was moved
                self.close(ks, order, "canceled", "Insufficient funds")
                return str(exc)
        else:
            self.publish(ks, order, order.new(order.opened))
        return None

    def covered(
        self, ks: KeyState, order: Order, price: Decimal, excluding: Order | None = None
    ) -> bool:
        """Whether the key's balance, minus what its open orders (but ``excluding``) hold,
        covers ``order``."""
        asset, need = self._needs(order, price)
        held = Decimal(0)
        for other in self._open.get(ks.key, {}).values():
            if other is excluding:
                continue
            other_asset, amount = self._needs(other, other.price or other.pair.price)
            if other_asset == asset:
                held += amount
        return balance(ks, asset) - held >= need

    def close(self, ks: KeyState, order: Order, how: str, reason: str | None = None) -> None:
        now = self.now()
        order.status = {"filled": "closed"}.get(how, how)
        order.closed = now
        self._open.get(ks.key, {}).pop(order.txid, None)
        closed = self._closed.setdefault(ks.key, deque())
        closed.append(order.txid)
        while len(closed) > _KEEP_CLOSED:
            self._orders.pop(closed.popleft(), None)
        self.publish(ks, order, order.closed_entry(how, now, reason))
        self.lock.notify_all()

    def publish(self, ks: KeyState, order: Order, entry: dict[str, Any]) -> None:
        self._hub.publish(
            ks.key, "executions", [{**entry, "ratecount": self.ratecount(ks, order.pair)}]
        )

    # ------------------------------------------------------------------ internals (lock held)
    def _open_entries(self, ks: KeyState) -> dict[str, Any]:
        return {txid: o.rest_entry() for txid, o in self._open.get(ks.key, {}).items()}

    def _by_client_id(self, ks: KeyState, client_id: str) -> list[Order]:
        if not client_id:
            return []
        return [o for o in self._open.get(ks.key, {}).values() if o.cl_ord_id == client_id]

    def _needs(self, order: Order, price: Decimal) -> tuple[str, Decimal]:
        if order.side == "buy":
            return order.pair.quote, order.remaining * price * (1 + order.fee_pct / 100)
        return order.pair.base, order.remaining

    def _execute(
        self, ks: KeyState, order: Order, qty: Decimal, price: Decimal, liquidity: str
    ) -> None:
        pair, now = order.pair, self.now()
        base, quote = balance_name(ks, pair.base), balance_name(ks, pair.quote)
        places = asset_decimals(quote, ks.balances.get(quote))
        cost = quantize(qty * price, places)
        fee = quantize(cost * order.fee_pct / 100, places)
        if order.side == "buy" and balance(ks, pair.quote) < cost + fee:
            raise OrderError(INSUFFICIENT)
        if order.side == "sell" and balance(ks, pair.base) < qty:
            raise OrderError(INSUFFICIENT)
        self._trade_ids[pair.name] = trade_id = self._trade_ids.get(pair.name, 0) + 1
        fill = Fill(trade_id, kraken_id("T"), qty, price, cost, fee, now, liquidity)
        order.vol_exec += qty
        order.cost += cost
        order.fee += fee
        order.trades.append(fill.exec_id)
        trade = order.trade(fill)
        self._trades.setdefault(ks.key, deque(maxlen=_KEEP_TRADES)).append(trade)
        self.publish(ks, order, trade)
        sign = 1 if order.side == "buy" else -1
        self._ledger.move(
            ks,
            [(base, sign * qty, Decimal(0)), (quote, -sign * cost, fee)],
            fill.exec_id,
            "trade",
            now,
        )
        if not order.remaining:
            self.close(ks, order, "filled")
