"""The order book: every key's orders, their fills, the balances they move and Kraken's per-pair
trading counter. Every operation holds the state lock (:attr:`SimState.lock`), so REST calls,
the admin routes, the demo trader and the streams' snapshots see one order of events, and every
event is published to the key's WebSocket subscriptions (:class:`~simulator.hub.StreamHub`)
before the lock is released.

* Market orders fill at once, in full, at the simulator's own price of the pair (taker fee).
  Limit orders rest until :meth:`OrderDesk.fill` fills them (in parts if asked: maker fee, at the
  limit price), or they are cancelled or expired. Fees are charged in the quote currency.
* An order the key's balance cannot cover (minus what its other open orders hold) is refused with
  ``EOrder:Insufficient funds``.
* The trading counter (one per key and pair; thresholds in
  :data:`~simulator.scenario.TRADING_TIERS`): ``AddOrder`` adds 1 on receipt (even when the
  order then fails its checks), ``CancelOrder`` adds by the order's age
  (:func:`~simulator.orders.cancel_cost`); a transaction that would pass the threshold is refused
  with ``EOrder:Rate limit exceeded``.
* Balances are changed under the REST names the key already uses (``XXBT``, ``ZUSD``), or the
  pair's asset codes for an asset the key does not hold yet.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from broker.assets import ws_asset

from .endpoints import order_description, order_error
from .hub import StreamHub, Subscription
from .keys import KeyState, RateCounter
from .market import Market, Pair
from .orders import Fill, Order, asset_decimals, cancel_cost, kraken_id, quantize, rfc3339
from .scenario import TRADING_TIERS, Scenario
from .state import SimState

__all__ = ["OrderDesk", "OrderError"]

RATE_LIMIT = "EOrder:Rate limit exceeded"
INSUFFICIENT = "EOrder:Insufficient funds"
UNKNOWN_ORDER = "EOrder:Unknown order"
_KEEP_CLOSED = 500  # closed orders remembered per key
_KEEP_TRADES = 50  # fills per key for ``snap_trades``


class OrderError(ValueError):
    """An order operation was refused; the message is Kraken's error (``EOrder:...``)."""


class OrderDesk:
    def __init__(self, state: SimState, market: Market, hub: StreamHub, scenario: Scenario) -> None:
        self._state = state
        self._market = market
        self._hub = hub
        self._limit = TRADING_TIERS[scenario.tier]
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
        state.on_balances = self._adjusted

    @property
    def market(self) -> Market:
        return self._market

    @property
    def maxratecount(self) -> int:
        """The trading counter's threshold (the ``executions`` acknowledgement shows it)."""
        return int(self._limit[0])

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
        with self._state.lock:
            if not self._counter(ks, pair).try_add(time.monotonic(), 1.0):
                return RATE_LIMIT
            order = self._new_order(ks, pair, fields, status)
            if isinstance(order, str):
                return order
            if not self._covered(ks, order, order.price or pair.price):
                return INSUFFICIENT
            self._orders[order.txid] = order
            self._open.setdefault(ks.key, {})[order.txid] = order
            self._publish(ks, order, order.pending_new(order.opened))
            if order.ordertype == "market":
                try:
                    self._execute(ks, order, order.volume, pair.price, "t")
                except OrderError as exc:  # a rounding short of the fee: nothing was moved
                    self._close(ks, order, "canceled", "Insufficient funds")
                    return str(exc)
            else:
                self._publish(ks, order, order.new(order.opened))
            self._state.lock.notify_all()
        return {"descr": {"order": order.descr}, "txid": [order.txid]}

    def cancel_order(self, ks: KeyState, txid: str) -> dict[str, Any] | str:
        with self._state.lock:
            order = self._open.get(ks.key, {}).get(txid)
            if order is None:
                return UNKNOWN_ORDER
            age = self._state.now() - order.opened
            if not self._counter(ks, order.pair).try_add(time.monotonic(), cancel_cost(age)):
                return RATE_LIMIT
            self._close(ks, order, "canceled", "User requested")
        return {"count": 1}

    def expire_order(self, ks: KeyState, txid: str) -> None:
        with self._state.lock:
            order = self._open.get(ks.key, {}).get(txid)
            if order is None:
                raise OrderError(UNKNOWN_ORDER)
            self._close(ks, order, "expired")

    def fill(self, ks: KeyState, txid: str, volume: Decimal | None = None) -> None:
        """Fill an open limit order at its limit price: ``volume`` of it, or the rest."""
        with self._state.lock:
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
            self._state.lock.notify_all()

    def open_orders(self, ks: KeyState) -> dict[str, Any]:
        """``OpenOrders``'s result."""
        with self._state.lock:
            return {
                "open": {txid: o.rest_entry() for txid, o in self._open.get(ks.key, {}).items()}
            }

    def order(self, ks: KeyState, txid: str) -> Order | None:
        with self._state.lock:
            order = self._orders.get(txid)
            return order if order is not None and order.key == ks.key else None

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
        with self._state.lock:
            register()
            if sub.channel == "balances":
                return self._balances_snapshot(ks) if snapshot else None
            if not snapshot and not trades:
                return None
            data = (
                [o.snapshot_entry() for o in self._open.get(ks.key, {}).values()]
                if snapshot
                else []
            )
            return data + (list(self._trades.get(ks.key, ())) if trades else [])

    # ------------------------------------------------------------------ internals (lock held)
    def _new_order(
        self, ks: KeyState, pair: Pair, fields: Mapping[str, str], status: str
    ) -> Order | str:
        error = order_error(fields, status)
        if error is not None:
            return error
        ordertype = fields["ordertype"]
        if ordertype not in ("market", "limit"):
            return "EGeneral:Invalid arguments:ordertype"  # the simulator places these two only
        try:
            userref = int(fields.get("userref", "0") or "0")
        except ValueError:
            return "EGeneral:Invalid arguments:userref"
        try:
            volume = Decimal(fields["volume"])
            price = Decimal(fields["price"]) if ordertype == "limit" else None
        except (InvalidOperation, KeyError):
            return "EGeneral:Invalid arguments:price"
        return Order(
            txid=kraken_id("O"),
            key=ks.key,
            pair=pair,
            side=fields["type"],
            ordertype=ordertype,
            volume=volume,
            price=price,
            fee_pct=self._fees[ordertype],
            opened=self._state.now(),
            descr=order_description(fields),
            userref=userref,
        )

    def _counter(self, ks: KeyState, pair: Pair) -> RateCounter:
        counter = ks.trading_counters.get(pair.name)
        if counter is None:
            counter = ks.trading_counters[pair.name] = RateCounter(self._limit, self._enforce)
        return counter

    def ratecount(self, ks: KeyState, pair: Pair) -> float:
        return round(self._counter(ks, pair).level(time.monotonic()), 3)

    @staticmethod
    def _name(ks: KeyState, asset: str) -> str:
        """The key's REST name for ``asset`` (``XXBT``), or ``asset`` when it holds none."""
        spelled = ws_asset(asset)
        return next((name for name in ks.balances if ws_asset(name) == spelled), asset)

    def _balance(self, ks: KeyState, asset: str) -> Decimal:
        return Decimal(ks.balances.get(self._name(ks, asset), "0"))

    def _needs(self, order: Order, price: Decimal) -> tuple[str, Decimal]:
        if order.side == "buy":
            return order.pair.quote, order.remaining * price * (1 + order.fee_pct / 100)
        return order.pair.base, order.remaining

    def _covered(self, ks: KeyState, order: Order, price: Decimal) -> bool:
        """Whether the key's balance, minus what its open orders hold, covers ``order``."""
        asset, need = self._needs(order, price)
        held = Decimal(0)
        for other in self._open.get(ks.key, {}).values():
            other_asset, amount = self._needs(other, other.price or other.pair.price)
            if other_asset == asset:
                held += amount
        return self._balance(ks, asset) - held >= need

    def _execute(
        self, ks: KeyState, order: Order, qty: Decimal, price: Decimal, liquidity: str
    ) -> None:
        pair, now = order.pair, self._state.now()
        base, quote = self._name(ks, pair.base), self._name(ks, pair.quote)
        places = asset_decimals(quote, ks.balances.get(quote))
        cost = quantize(qty * price, places)
        fee = quantize(cost * order.fee_pct / 100, places)
        if order.side == "buy" and self._balance(ks, pair.quote) < cost + fee:
            raise OrderError(INSUFFICIENT)
        if order.side == "sell" and self._balance(ks, pair.base) < qty:
            raise OrderError(INSUFFICIENT)
        self._trade_ids[pair.name] = trade_id = self._trade_ids.get(pair.name, 0) + 1
        fill = Fill(trade_id, kraken_id("T"), qty, price, cost, fee, now, liquidity)
        order.vol_exec += qty
        order.cost += cost
        order.fee += fee
        order.trades.append(fill.exec_id)
        trade = order.trade(fill)
        self._trades.setdefault(ks.key, deque(maxlen=_KEEP_TRADES)).append(trade)
        self._publish(ks, order, trade)
        sign = 1 if order.side == "buy" else -1
        self._move(
            ks,
            [(base, sign * qty, Decimal(0)), (quote, -sign * cost, fee)],
            fill.exec_id,
            "trade",
            now,
        )
        if not order.remaining:
            self._close(ks, order, "filled")

    def _close(self, ks: KeyState, order: Order, how: str, reason: str | None = None) -> None:
        now = self._state.now()
        order.status = {"filled": "closed"}.get(how, how)
        order.closed = now
        self._open.get(ks.key, {}).pop(order.txid, None)
        closed = self._closed.setdefault(ks.key, deque())
        closed.append(order.txid)
        while len(closed) > _KEEP_CLOSED:
            self._orders.pop(closed.popleft(), None)
        self._publish(ks, order, order.closed_entry(how, now, reason))
        self._state.lock.notify_all()

    def _publish(self, ks: KeyState, order: Order, entry: dict[str, Any]) -> None:
        self._hub.publish(
            ks.key, "executions", [{**entry, "ratecount": self.ratecount(ks, order.pair)}]
        )

    def _move(
        self,
        ks: KeyState,
        changes: list[tuple[str, Decimal, Decimal]],
        ref_id: str,
        kind: str,
        t: float,
    ) -> None:
        """Apply ``(asset, amount, fee)`` changes to the key's balances as one transaction."""
        balances, entries = dict(ks.balances), []
        for name, amount, fee in changes:
            current = balances.get(name)
            new = quantize(Decimal(current or "0") + amount - fee, asset_decimals(name, current))
            balances[name] = f"{new:f}"
            entries.append(self._ledger(name, amount, fee, new, ref_id, kind, t))
        ks.balances = balances
        self._hub.publish(ks.key, "balances", entries)

    def _adjusted(self, ks: KeyState, old: dict[str, str], new: dict[str, str]) -> None:
        """An admin patch replaced the balances: one ``adjustment`` ledger entry per change."""
        t, ref, entries = self._state.now(), kraken_id("A"), []
        for name in sorted(set(old) | set(new)):
            before, after = Decimal(old.get(name, "0")), Decimal(new.get(name, "0"))
            if before != after:
                entries.append(
                    self._ledger(name, after - before, Decimal(0), after, ref, "adjustment", t)
                )
        if entries:
            self._hub.publish(ks.key, "balances", entries)

    @staticmethod
    def _ledger(
        name: str, amount: Decimal, fee: Decimal, balance: Decimal, ref_id: str, kind: str, t: float
    ) -> dict[str, Any]:
        return {
            "ledger_id": kraken_id("L"),
            "ref_id": ref_id,
            "timestamp": rfc3339(t),
            "type": kind,
            "asset": ws_asset(name),
            "asset_class": "currency",
            "category": kind,
            "wallet_type": "spot",
            "wallet_id": "main",
            "amount": float(amount),
            "fee": float(fee),
            "balance": float(balance),
        }

    @staticmethod
    def _balances_snapshot(ks: KeyState) -> list[dict[str, Any]]:
        return [
            {
                "asset": ws_asset(name),
                "asset_class": "currency",
                "balance": float(Decimal(amount)),
                "wallets": [{"type": "spot", "id": "main", "balance": float(Decimal(amount))}],
            }
            for name, amount in ks.balances.items()
        ]
