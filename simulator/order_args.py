"""An order from ``AddOrder``'s form arguments (also each order of an ``AddOrderBatch`` and the
replacement of an ``EditOrder``): checked like a validate-only order, then built, not placed.
No state: :mod:`simulator.book` places it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation

from .endpoints import order_description, order_error
from .market import Pair
from .orders import Order, kraken_id, valid_client_id

__all__ = ["BAD_CLIENT_ID", "build_order"]

BAD_CLIENT_ID = "EGeneral:Invalid arguments:cl_ord_id"


def build_order(
    key: str,
    pair: Pair,
    fields: Mapping[str, str],
    status: str,
    *,
    fees: Mapping[str, Decimal],
    now: float,
    client_id_taken: Callable[[str], bool],
) -> Order | str:
    """The order ``fields`` describe for ``key``, or Kraken's error. Only ``market`` and
    ``limit`` orders are simulated. A ``cl_ord_id`` must be well-formed, come without a
    ``userref`` (Kraken: mutually exclusive) and not be ``client_id_taken`` by an open order."""
    error = order_error(fields, status)
    if error is not None:
        return error
    ordertype = fields["ordertype"]
    if ordertype not in ("market", "limit"):
        return "EGeneral:Invalid arguments:ordertype"
    try:
        userref = int(fields.get("userref", "0") or "0")
    except ValueError:
        return "EGeneral:Invalid arguments:userref"
    client_id = fields.get("cl_ord_id") or None
    if client_id is not None and (
        not valid_client_id(client_id) or userref or client_id_taken(client_id)
    ):
        return BAD_CLIENT_ID
    try:
        volume = Decimal(fields["volume"])
        price = Decimal(fields["price"]) if ordertype == "limit" else None
    except (InvalidOperation, KeyError):
        return "EGeneral:Invalid arguments:price"
    return Order(
        txid=kraken_id("O"),
        key=key,
        pair=pair,
        side=fields["type"],
        ordertype=ordertype,
        volume=volume,
        price=price,
        fee_pct=fees[ordertype],
        opened=now,
        descr=order_description(fields),
        userref=userref,
        cl_ord_id=client_id,
    )
