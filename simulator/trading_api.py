"""The private trading methods beyond ``AddOrder`` over REST: their form arguments and their
answers. ``CancelOrder``, ``AmendOrder``, ``EditOrder``, ``AddOrderBatch``, ``CancelOrderBatch``,
``CancelAll`` and ``CancelAllOrdersAfter``, on the order book (:mod:`simulator.book`,
:mod:`simulator.order_changes`) and the dead man's switch (:mod:`simulator.deadman`).

Kraken takes the batches as JSON arrays; in a form-encoded body (all the simulator reads, and
what krakenex sends) they are indexed fields:

* ``AddOrderBatch``: ``pair=XBTUSD&orders[0][type]=buy&orders[0][ordertype]=limit&
  orders[0][volume]=0.01&orders[0][price]=40000&orders[1][type]=...`` (each order takes
  ``AddOrder``'s fields: ``type``, ``ordertype``, ``volume``, ``price``, ``userref``,
  ``cl_ord_id``, ``oflags``);
* ``CancelOrderBatch``: ``orders[0]=<txid or userref>&orders[1]=...`` and/or
  ``cl_ord_ids[0]=...``, 1 to 50 names in all.

Indices run from 0 without gaps, else ``EGeneral:Invalid arguments:<name>``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .book import OrderDesk
from .deadman import MAX_TIMEOUT_S, DeadMansSwitch
from .endpoints import is_validate
from .keys import KeyState
from .order_changes import OrderChanges

__all__ = ["MAX_CANCEL_BATCH", "TRADING_METHODS", "TradingApi", "indexed"]

#: names a ``CancelOrderBatch`` may carry (Kraken: "maximum 50 total unique IDs/references")
MAX_CANCEL_BATCH = 50
_INDEXED = re.compile(r"([a-z_]+)\[([0-9]{1,3})\](?:\[([a-z_0-9]+)\])?")

Result = dict[str, Any] | str
Handler = Callable[[KeyState, Mapping[str, str], str], Result]


def indexed(
    fields: Mapping[str, str], name: str
) -> tuple[dict[int, str], dict[int, dict[str, str]]]:
    """The ``name[i]`` values and the ``name[i][field]`` tables of a form, by index."""
    values: dict[int, str] = {}
    tables: dict[int, dict[str, str]] = {}
    for field, value in fields.items():
        match = _INDEXED.fullmatch(field)
        if match is None or match.group(1) != name:
            continue
        index, sub = int(match.group(2)), match.group(3)
        if sub is None:
            values[index] = value
        else:
            tables.setdefault(index, {})[sub] = value
    return values, tables


def _listed(found: Mapping[int, Any], other: Mapping[int, Any], name: str) -> list[Any] | str:
    """``found`` as a list when its indices run from 0 without gaps and ``other`` is empty."""
    if other or sorted(found) != list(range(len(found))):
        return f"EGeneral:Invalid arguments:{name}"
    return [found[i] for i in range(len(found))]


def _tables(fields: Mapping[str, str], name: str) -> list[dict[str, str]] | str:
    values, tables = indexed(fields, name)
    return _listed(tables, values, name)


def _values(fields: Mapping[str, str], name: str) -> list[str] | str:
    values, tables = indexed(fields, name)
    listed = _listed(values, tables, name)
    if isinstance(listed, list) and not all(listed):
        return f"EGeneral:Invalid arguments:{name}"
    return listed


class TradingApi:
    def __init__(self, desk: OrderDesk, deadman: DeadMansSwitch) -> None:
        self.desk = desk
        self.changes = OrderChanges(desk)
        self.deadman = deadman
        self._handlers: dict[str, Handler] = {
            "CancelOrder": self._cancel_order,
            "AmendOrder": lambda ks, fields, status: self.changes.amend(ks, fields),
            "EditOrder": self.changes.edit,
            "AddOrderBatch": self._add_batch,
            "CancelOrderBatch": self._cancel_batch,
            "CancelAll": lambda ks, fields, status: self.desk.cancel_all(ks),
            "CancelAllOrdersAfter": self._cancel_after,
        }

    def result(self, method: str, fields: Mapping[str, str], ks: KeyState, status: str) -> Result:
        """The ``result`` of an authorised call of one of :data:`TRADING_METHODS`, or its
        error string."""
        return self._handlers[method](ks, fields, status)

    def _cancel_order(self, ks: KeyState, fields: Mapping[str, str], status: str) -> Result:
        txid, client_id = fields.get("txid", ""), fields.get("cl_ord_id", "")
        if bool(txid) == bool(client_id):
            return "EGeneral:Invalid arguments:txid"  # one of txid (or userref) and cl_ord_id
        return self.desk.cancel_order(ks, txid, client_id)

    def _add_batch(self, ks: KeyState, fields: Mapping[str, str], status: str) -> Result:
        orders = _tables(fields, "orders")
        if isinstance(orders, str):
            return orders
        validate = is_validate(fields)
        return self.changes.add_batch(ks, fields.get("pair", ""), orders, status, validate)

    def _cancel_batch(self, ks: KeyState, fields: Mapping[str, str], status: str) -> Result:
        refs, client_ids = _values(fields, "orders"), _values(fields, "cl_ord_ids")
        if isinstance(refs, str) or isinstance(client_ids, str):
            return refs if isinstance(refs, str) else str(client_ids)
        if not 0 < len(refs) + len(client_ids) <= MAX_CANCEL_BATCH:
            return "EGeneral:Invalid arguments:orders"
        return self.desk.cancel_batch(ks, refs, client_ids)

    def _cancel_after(self, ks: KeyState, fields: Mapping[str, str], status: str) -> Result:
        text = fields.get("timeout", "")
        if not text.isascii() or not text.isdigit() or int(text) >= MAX_TIMEOUT_S:
            return "EGeneral:Invalid arguments:timeout"
        return self.deadman.arm(ks, int(text))


#: the methods :class:`TradingApi` answers
TRADING_METHODS = frozenset(
    {
        "CancelOrder",
        "AmendOrder",
        "EditOrder",
        "AddOrderBatch",
        "CancelOrderBatch",
        "CancelAll",
        "CancelAllOrdersAfter",
    }
)
