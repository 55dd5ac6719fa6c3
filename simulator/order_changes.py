"""Changing live orders and placing them in batches, on the :class:`~simulator.book.OrderDesk`
(under its lock): ``AmendOrder``, ``EditOrder`` and ``AddOrderBatch`` as Kraken documents them.

Trading counter (kraken-api.md "Spot trading limits"; the age is the order's, since it was
created or last amended, on the simulator's clock):

* ``AmendOrder`` adds 1, plus 3 under 5 s, 2 under 10 s, 1 under 15 s. The order keeps its txid;
  its age starts again.
* ``EditOrder`` adds 1, plus 6 under 5 s, 5 under 10 s, 4 under 15 s, 2 under 45 s, 1 under 90 s.
  The old order is cancelled (``cancel_reason`` ``Order replaced``) and a new one with a new txid
  is opened for the new volume less what the old one had executed.
* ``AddOrderBatch`` adds n/2 for its n orders (Kraken's batch rule: "+(n/2)"), 2 to 15 of them,
  all on one pair.

A transaction that would pass the threshold is refused with ``EOrder:Rate limit exceeded`` and
changes nothing. One refused for its arguments or funds still gets its fixed count (1, or n/2),
as Kraken counts a transaction on receipt. ``validate=true`` (``EditOrder``, ``AddOrderBatch``)
checks and answers without counting or changing anything, like ``AddOrder``'s.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from .book import INSUFFICIENT, RATE_LIMIT, UNKNOWN_ORDER, USER_REQUESTED, OrderDesk
from .endpoints import is_validate
from .keys import KeyState
from .market import Pair
from .orders import Order, amend_cost, edit_cost, kraken_id, quantize

__all__ = ["BATCH_SIZES", "OrderChanges"]

#: how many orders an ``AddOrderBatch`` carries (Kraken: "minimum of 2 and maximum 15")
BATCH_SIZES = range(2, 16)
REPLACED = "Order replaced"
_UNSUPPORTED_AMENDS = ("display_qty", "trigger_price")


def _positive(text: str) -> Decimal | None:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() and value > 0 and text[:1].isdigit() else None


def _amendment(order: Order, fields: Mapping[str, str]) -> tuple[Decimal, Decimal | None] | str:
    """The amended ``(quantity, limit price)`` of ``order``, or Kraken's error."""
    for name in _UNSUPPORTED_AMENDS:  # the simulator has no iceberg or trigger orders
        if fields.get(name):
            return f"EGeneral:Invalid arguments:{name}"
    qty_text, price_text = fields.get("order_qty", ""), fields.get("limit_price", "")
    if not qty_text and not price_text:
        return "EGeneral:Invalid arguments:order_qty"
    qty = _positive(qty_text) if qty_text else order.volume
    if qty is None:
        return "EGeneral:Invalid arguments:order_qty"
    price = order.price
    if price_text:
        price = _positive(price_text)  # relative prices (+, -, %) are not simulated
        if price is None or order.price is None:
            return "EGeneral:Invalid arguments:limit_price"
    return qty, price


class OrderChanges:
    def __init__(self, desk: OrderDesk) -> None:
        self._desk = desk

    # ------------------------------------------------------------------ AmendOrder
    def amend(self, ks: KeyState, fields: Mapping[str, str]) -> dict[str, Any] | str:
        """``AmendOrder`` (``txid`` or ``cl_ord_id``; ``order_qty``, ``limit_price``):
        ``{"amend_id": ...}``."""
        txid, client_id = fields.get("txid", ""), fields.get("cl_ord_id", "")
        if bool(txid) == bool(client_id):
            return "EGeneral:Invalid arguments:txid"  # exactly one of the two names the order
        desk = self._desk
        with desk.lock:
            order = desk.open_order(ks, txid, client_id)
            if order is None:
                return UNKNOWN_ORDER
            counter, now = desk.counter(ks, order.pair), time.monotonic()
            cost = amend_cost(order.age(desk.now()))
            if not counter.fits(now, cost):
                return RATE_LIMIT
            change = _amendment(order, fields)
            if isinstance(change, str) or not self._covers(ks, order, *change):
                counter.add(now, 1.0)  # the fixed count, on receipt
                return change if isinstance(change, str) else INSUFFICIENT
            counter.add(now, cost)
            order.volume, order.price = change
            order.amended = desk.now()
            order.descr = order.describe()
            desk.publish(ks, order, order.amended_entry(order.amended))
            if order.remaining <= 0:  # below what has executed: the rest is cancelled
                order.volume = order.vol_exec
                desk.close(ks, order, "canceled", USER_REQUESTED)
            desk.lock.notify_all()
        return {"amend_id": kraken_id("T")}

    def _covers(self, ks: KeyState, order: Order, qty: Decimal, price: Decimal | None) -> bool:
        trial = dataclasses.replace(order, volume=max(qty, order.vol_exec), price=price)
        return self._desk.covered(ks, trial, price or order.pair.price, excluding=order)

    # ------------------------------------------------------------------ EditOrder
    def edit(self, ks: KeyState, fields: Mapping[str, str], status: str) -> dict[str, Any] | str:
        """``EditOrder`` (``txid``: a txid or a unique userref; ``pair``; ``volume``, ``price``,
        ``userref`` of the new order): the old order cancelled, a new one opened."""
        desk = self._desk
        pair = desk.market.pair(fields.get("pair", ""))
        if not fields.get("txid"):
            return "EGeneral:Invalid arguments:txid"
        if pair is None:
            return (
                "EQuery:Unknown asset pair"
                if fields.get("pair")
                else "EGeneral:Invalid arguments:pair"
            )
        with desk.lock:
            found = desk.find(ks, fields["txid"])
            if len(found) != 1:  # none, or a userref several orders carry
                return UNKNOWN_ORDER if not found else "EGeneral:Invalid arguments:txid"
            old = found[0]
            if old.pair != pair:
                return "EGeneral:Invalid arguments:pair"
            counter, now = desk.counter(ks, pair), time.monotonic()
            cost = edit_cost(old.age(desk.now()))
            if not is_validate(fields) and not counter.fits(now, cost):
                return RATE_LIMIT
            new = self._replacement(ks, old, pair, fields, status)
            if is_validate(fields):
                return new if isinstance(new, str) else self._edited(old, new, validated=True)
            if isinstance(new, str) or not desk.covered(ks, new, new.price or pair.price, old):
                counter.add(now, 1.0)  # the fixed count, on receipt
                return new if isinstance(new, str) else INSUFFICIENT
            counter.add(now, cost)
            desk.close(ks, old, "canceled", REPLACED)
            error = desk.submit(ks, new)
            desk.lock.notify_all()
        return error if error is not None else self._edited(old, new)

    def _replacement(
        self, ks: KeyState, old: Order, pair: Pair, fields: Mapping[str, str], status: str
    ) -> Order | str:
        """The order that replaces ``old`` (not placed), or Kraken's error."""
        volume = fields.get("volume") or f"{old.volume:f}"
        price = fields.get("price") or ("" if old.price is None else f"{old.price:f}")
        arguments = {
            "pair": fields["pair"],
            "type": old.side,
            "ordertype": old.ordertype,
            "volume": volume,
            "price": price,
            "userref": fields.get("userref", "0"),  # the old order's userref is not kept
            "oflags": fields.get("oflags", ""),
        }
        new = self._desk.new_order(ks, pair, arguments, status)
        if isinstance(new, str):
            return new
        if new.volume <= old.vol_exec:
            return "EGeneral:Invalid arguments:volume"  # not above what has executed
        new.volume -= old.vol_exec
        new.descr = new.describe()
        return new

    @staticmethod
    def _edited(old: Order, new: Order, validated: bool = False) -> dict[str, Any]:
        price = Decimal(0) if new.price is None else new.price
        result: dict[str, Any] = {
            "status": "ok",
            "originaltxid": old.txid,
            "volume": f"{quantize(new.volume, 8):f}",
            "price": f"{quantize(price, new.pair.pair_decimals):f}",
            "price2": "0",
            "orders_cancelled": 0 if validated else 1,
            "descr": {"order": new.descr},
        }
        if not validated:
            result["txid"] = new.txid
        return result

    # ------------------------------------------------------------------ AddOrderBatch
    def add_batch(
        self,
        ks: KeyState,
        pair_name: str,
        orders: list[dict[str, str]],
        status: str,
        validate: bool = False,
    ) -> dict[str, Any] | str:
        """``AddOrderBatch``: ``{"orders": [{"txid", "descr"} or {"error"}, ...]}``. An order
        that fails its checks rejects the whole batch; one its funds cannot cover is refused
        alone."""
        desk = self._desk
        pair = desk.market.pair(pair_name)
        if pair is None:
            return "EQuery:Unknown asset pair" if pair_name else "EGeneral:Invalid arguments:pair"
        if len(orders) not in BATCH_SIZES:
            return "EGeneral:Invalid arguments:orders"
        with desk.lock:
            counter, now = desk.counter(ks, pair), time.monotonic()
            if not validate and not counter.try_add(now, len(orders) / 2):
                return RATE_LIMIT
            built = self._batch(ks, pair, pair_name, orders, status)
            if isinstance(built, str):
                return built
            if validate:
                return {"orders": [{"descr": {"order": o.descr}} for o in built]}
            placed = [(order, desk.submit(ks, order)) for order in built]
            desk.lock.notify_all()
        return {
            "orders": [
                {"error": error} if error else {"txid": o.txid, "descr": {"order": o.descr}}
                for o, error in placed
            ]
        }

    def _batch(
        self, ks: KeyState, pair: Pair, pair_name: str, orders: list[dict[str, str]], status: str
    ) -> list[Order] | str:
        built: list[Order] = []
        for fields in orders:
            order = self._desk.new_order(ks, pair, {**fields, "pair": pair_name}, status)
            if isinstance(order, str):
                return order
            if order.cl_ord_id and any(o.cl_ord_id == order.cl_ord_id for o in built):
                return "EGeneral:Invalid arguments:cl_ord_id"
            built.append(order)
        return built
