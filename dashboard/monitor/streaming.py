"""One account's WebSocket v2 stream, as the monitor sees it: the broker's stream events turned
into the account's status (balances, open orders, trading counters, the connection) and into the
monitor's events (the stream's state, orders and fills).

:class:`StreamFeed` is the ``on_event`` of one account's :class:`broker.AccountStream`; it runs
on the stream hub's thread, so it only takes the board's lock briefly and never calls Kraken.
Under ``up --gateway`` it also tells the gateway's trading guard each trading counter Kraken
reports (``on_counter``: the guard keeps the higher of its model and Kraken's count).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from broker import (
    BalancesSnapshot,
    BalanceUpdate,
    Execution,
    Heartbeat,
    OrdersSnapshot,
    RateCount,
    StreamEvent,
    StreamStateChanged,
    SystemStatus,
)
from broker.assets import rest_asset
from dashboard.monitor import events as ev
from dashboard.monitor.board import AccountBoard
from dashboard.monitor.events import Publisher
from dashboard.monitor.reconcile import in_places_of
from dashboard.monitor.streamstatus import (
    OpenOrder,
    RateCounter,
    StreamState,
    StreamStatus,
)

__all__ = ["StreamFeed", "order_event"]

log = logging.getLogger(__name__)

#: the broker's stream states -> the account's
_STATES = {
    "connecting": StreamState.CONNECTING,
    "up": StreamState.UP,
    "down": StreamState.DOWN,
    "refused": StreamState.REFUSED,
    "stopped": StreamState.OFF,
}
#: Kraken's ``exec_type`` -> the order event counted and shown (the others change no count)
_EXEC_EVENTS = {
    "new": "placed",
    "trade": "fill",
    "filled": "filled",
    "canceled": "cancelled",
    "expired": "expired",
}
_CLOSED = frozenset({"filled", "canceled", "expired"})
#: how many fills' ids are remembered (a snapshot carries Kraken's last 50 trades)
FILLS_REMEMBERED = 1000
_OPEN = frozenset({"pending_new", "new", "trade", "amended", "restated"})
#: told each trading counter Kraken reports: ``(account, pair, level)``, the pair as the stream's
#: symbol (``BTC/USD``)
CounterObserver = Callable[[str, str, float], None]


def order_event(execution: Execution) -> str | None:
    """The order event an execution is (``placed``, ``fill``, ...), or ``None``."""
    return _EXEC_EVENTS.get(execution.exec_type)


class StreamFeed:
    """Feeds one account's stream events to the board and the monitor's events."""

    def __init__(
        self,
        label: str,
        board: AccountBoard,
        publish: Publisher,
        *,
        on_counter: CounterObserver | None = None,
    ):
        self.label = label
        self.board = board
        self.publish = publish
        self.on_counter = on_counter
        #: how many balance messages were applied: a reconciliation compares only when none
        #: arrived while REST ``Balance`` was in flight
        self.balance_version = 0
        #: the balances are the stream's own since its latest (re)subscription: its snapshot
        #: arrived (until then they may be older than the connection)
        self.balances_synced = False
        #: the fills already told (their ``exec_id``): the trades of a snapshot after a
        #: reconnection that were not told are the fills made while the stream was down
        self._fills_seen: deque[str] = deque(maxlen=FILLS_REMEMBERED)
        self._first_snapshot = True

    def __call__(self, event: StreamEvent) -> None:
        try:
            self._handle(event)
        except Exception:  # a bad event must not end the stream
            log.exception("stream event for %s not applied", self.label)

    def _handle(self, event: StreamEvent) -> None:
        now = self.publish.clock()
        if isinstance(event, StreamStateChanged):
            self.balances_synced = self.balances_synced and event.state == "up"
            self._state(event, now)
            return
        if isinstance(event, Heartbeat | SystemStatus):
            return  # the stream's activity (the hub counts it): the account's status is the same
        if isinstance(event, BalancesSnapshot):
            self._balances(dict(event.balances), replace=True)
            self.balances_synced = True
        elif isinstance(event, BalanceUpdate):
            self._balances({event.asset: event.balance}, replace=False)
        elif isinstance(event, OrdersSnapshot):
            self._snapshot(event, now)
        elif isinstance(event, Execution):
            self._execution(event, now)
        elif isinstance(event, RateCount):
            counter = RateCounter(float(event.count), _number(event.max_count), now)
            self.board.change_stream(
                self.label, lambda s: s.rate_counters.__setitem__(event.symbol, counter)
            )
            self._counter(event.symbol, counter.count)

    def _state(self, event: StreamStateChanged, now: float) -> None:
        state = _STATES.get(str(event.state), StreamState.DOWN)
        previous = self.board.stream(self.label).state
        reason = event.reason or ""

        def change(s: StreamStatus) -> None:
            s.reason, s.reconnects, s.tokens = reason, event.reconnects, event.tokens
            if s.state != state:
                if state == StreamState.UP:
                    s.connected_since, s.down_since = now, None
                elif s.state == StreamState.UP:
                    s.down_since = now
                s.state, s.since = state, now

        self.board.change_stream(self.label, change)
        if state != previous:
            detail = f"stream {previous} -> {state}" + (f": {reason}" if reason else "")
            data = {"state": str(state), "previous": str(previous), "reason": reason}
            self.publish(ev.STREAM, self.label, detail, data)

    def _balances(self, ws_balances: dict[str, str], *, replace: bool) -> None:
        current = self.board.balances(self.label) or {}
        known = list(current)
        named = {
            (name := rest_asset(asset, known)): in_places_of(value, current.get(name))
            for asset, value in ws_balances.items()
        }
        balances = named if replace else {**current, **named}
        self.board.record_stream_balances(self.label, balances)
        self.balance_version += 1  # after the write: see AccountPoller._stream_reading
        if balances != current:
            detail = f"{len(balances)} assets (stream)"
            self.publish(ev.BALANCE, self.label, detail, {"balances": balances, "source": "stream"})

    def _snapshot(self, event: OrdersSnapshot, now: float) -> None:
        """The open orders, replaced; the snapshot's trades not told yet (made while the stream
        was down) told now, except on the first snapshot (trades from before the start)."""
        trades = [o for o in event.orders if o.exec_type == "trade"]
        orders = {
            o.order_id: _open_order(o, now, None)
            for o in event.orders
            if o.exec_type != "trade" and o.order_status not in _CLOSED
        }
        self.board.change_stream(self.label, lambda s: _replace_orders(s, orders))
        first, self._first_snapshot = self._first_snapshot, False
        for trade in trades:
            if trade.exec_id is None or trade.exec_id in self._fills_seen:
                continue
            if first:
                self._fills_seen.append(trade.exec_id)
            else:  # trading then, not now: a deploy marked meanwhile must not count it
                self._execution(trade, now, recovered=True)

    def _execution(self, e: Execution, now: float, *, recovered: bool = False) -> None:
        """One order event, as it happens; ``recovered``: told late (a snapshot's trade), so
        the account traded at Kraken's timestamp, not now (unknown: it does not count for
        ``trading_active``)."""
        active = _kraken_time(e.timestamp) if recovered else now
        if e.exec_type == "trade" and e.exec_id is not None:
            if e.exec_id in self._fills_seen:
                return  # told already (a snapshot repeats it)
            self._fills_seen.append(e.exec_id)
        kind = order_event(e)
        # Kraken repeats an order's details only on some events (a cancel names only the order)
        order = _open_order(e, now, self.board.stream(self.label).open_orders.get(e.order_id))

        def change(s: StreamStatus) -> None:
            if e.exec_type in _CLOSED:
                s.open_orders.pop(e.order_id, None)
            elif e.exec_type in _OPEN:
                s.open_orders[e.order_id] = order
            if kind is not None:
                s.orders[(order.pair, kind)] = s.orders.get((order.pair, kind), 0) + 1
            if kind in ("placed", "fill") and active is not None:
                s.last_trade_activity_at = max(s.last_trade_activity_at or active, active)
            if e.ratecount is not None:
                old = s.rate_counters.get(order.pair)
                threshold = old.threshold if old else None
                s.rate_counters[order.pair] = RateCounter(float(e.ratecount), threshold, now)

        self.board.change_stream(self.label, change)
        if e.ratecount is not None and not recovered:  # a late fill's counter is an old one
            self._counter(order.pair, float(e.ratecount))
        if kind is not None:
            data = _order_data(kind, order, e)
            self.publish(ev.ORDER, self.label, _order_detail(data), data)

    def _counter(self, pair: str, level: float) -> None:
        if self.on_counter is not None and pair and pair != "?":
            self.on_counter(self.label, pair, level)


def _replace_orders(s: StreamStatus, orders: dict[str, OpenOrder]) -> None:
    s.open_orders = orders


def _open_order(e: Execution, first_seen: float, known: OpenOrder | None) -> OpenOrder:
    """The order as this event leaves it: its fields, else what was known of it."""
    return OpenOrder(
        order_id=e.order_id,
        pair=e.symbol or (known.pair if known else "?"),
        side=e.side or (known.side if known else ""),
        order_type=e.order_type or (known.order_type if known else ""),
        volume=e.order_qty or (known.volume if known else ""),
        price=e.limit_price or (known.price if known else None),
        status=e.order_status or (known.status if known else ""),
        filled=e.cum_qty or _filled(e, known),
        opened_at=known.opened_at if known else first_seen,
    )


def _filled(e: Execution, known: OpenOrder | None) -> str:
    """What is filled of the order without Kraken's ``cum_qty``: the fills added up."""
    before = known.filled if known else "0"
    if e.exec_type != "trade" or not e.last_qty:
        return before
    try:
        return str(Decimal(before) + Decimal(e.last_qty))
    except InvalidOperation:
        return before


def _kraken_time(text: str | None) -> float | None:
    """Kraken's RFC 3339 timestamp (``2026-12-06T21:04:39.630063Z``) as Unix time, or ``None``."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _order_data(kind: str, order: OpenOrder, e: Execution) -> dict[str, Any]:
    fill = kind == "fill"
    return {
        "event": kind,
        "order_id": e.order_id,
        "pair": order.pair,
        "side": order.side,
        "order_type": order.order_type,
        "volume": e.last_qty if fill else order.volume,
        "price": e.last_price if fill else order.price,
    }


def _order_detail(data: dict[str, Any]) -> str:
    words = [data["event"], data["side"], data["volume"], data["pair"]]
    if data["price"]:
        words.append(f"@ {data['price']}")
    return " ".join(str(w) for w in words if w) + f" ({data['order_id']})"
