"""Results of the stateless endpoints (public Time/SystemStatus/Assets, private Balance,
BalanceEx, TradeBalance, AddOrder with ``validate``), the argument checks of ``AddOrder``, and every
private method's permission (what each adds to the REST call counter is
:func:`broker.limits.call_cost`'s, the project's one table). Market data (public
Ticker/AssetPairs) lives in :mod:`simulator.market`; the stateful private methods (orders, the
dead man's switch, OpenOrders, GetWebSocketsToken) in :mod:`simulator.private_api`."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "PRIVATE_METHODS",
    "PUBLIC_METHODS",
    "is_validate",
    "order_description",
    "order_error",
    "private_result",
    "public_result",
]

#: private method -> the permission it needs. ``trade`` stands for Kraken's two order
#: permissions, *Create & Modify Orders* and *Cancel/Close Orders* (Kraken asks for either one
#: for AmendOrder and the cancels, both for EditOrder and AddOrderBatch): the simulator has one.
PRIVATE_METHODS: dict[str, str] = {
    "Balance": "funds",
    "BalanceEx": "funds",
    "TradeBalance": "funds",
    "OpenOrders": "orders",
    "AddOrder": "trade",
    "AddOrderBatch": "trade",
    "AmendOrder": "trade",
    "EditOrder": "trade",
    "CancelOrder": "trade",
    "CancelOrderBatch": "trade",
    "CancelAll": "trade",
    "CancelAllOrdersAfter": "trade",
    "GetWebSocketsToken": "websocket",
}
PUBLIC_METHODS = ("Time", "SystemStatus", "Assets")

#: a few of Kraken's assets, as ``Assets`` describes them (reference data: it never changes here)
_ASSETS = {
    "XXBT": {"aclass": "currency", "altname": "XBT", "decimals": 10, "display_decimals": 5},
    "XETH": {"aclass": "currency", "altname": "ETH", "decimals": 10, "display_decimals": 5},
    "ZUSD": {"aclass": "currency", "altname": "USD", "decimals": 4, "display_decimals": 2},
    "USDT": {"aclass": "currency", "altname": "USDT", "decimals": 8, "display_decimals": 4},
}

_ORDER_TYPES = (
    "market",
    "limit",
    "iceberg",
    "stop-loss",
    "take-profit",
    "stop-loss-limit",
    "take-profit-limit",
    "trailing-stop",
    "trailing-stop-limit",
    "settle-position",
)
_PRICED = frozenset(_ORDER_TYPES) - {"market", "settle-position"}
_FOUR = Decimal("0.0001")


def public_result(method: str, status: str, now: float) -> dict[str, Any]:
    whole = int(now // 1)
    if method == "Assets":
        return {name: {**info, "status": "enabled"} for name, info in _ASSETS.items()}
    if method == "Time":
        t = time.gmtime(whole)
        rfc1123 = time.strftime(f"%a, {t.tm_mday:2d} %b %y %H:%M:%S +0000", t)
        return {"unixtime": whole, "rfc1123": rfc1123}
    return {"status": status, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(whole))}


def _zero_like(amount: str) -> str:
    decimals = len(amount.partition(".")[2])
    return "0." + "0" * decimals if decimals else "0"


#: the USD price of one unit of a balance's asset, ``None`` when it has none
UsdPrice = Callable[[str], Decimal | None]


def _trade_balance(
    fields: Mapping[str, str], balances: Mapping[str, str], usd_price: UsdPrice
) -> dict[str, Any] | str:
    asset = fields.get("asset", "ZUSD")
    if asset not in ("ZUSD", "USD"):
        return "EQuery:Unknown asset"
    total = Decimal(0)
    for name, amount in balances.items():
        price = usd_price(name)
        if price is not None:
            total += Decimal(amount) * price
    eb = str(total.quantize(_FOUR))
    zero = "0.0000"
    return {
        "eb": eb,
        "tb": eb,
        "m": zero,
        "n": zero,
        "c": zero,
        "v": zero,
        "e": eb,
        "mf": eb,
        "ml": zero,
    }


def _positive(text: str) -> bool:
    try:
        return Decimal(text.lstrip("+-#").rstrip("%")) > 0
    except InvalidOperation:
        return False


def is_validate(fields: Mapping[str, str]) -> bool:
    """An ``AddOrder`` that only validates (``validate=true``): never placed."""
    return fields.get("validate", "").lower() in ("true", "1")


def order_error(fields: Mapping[str, str], status: str) -> str | None:
    """What is wrong with an ``AddOrder``'s arguments (or the market's status), else ``None``."""
    for name in ("pair", "type", "ordertype", "volume"):
        if not fields.get(name):
            return f"EGeneral:Invalid arguments:{name}"
    side, ordertype, volume = fields["type"], fields["ordertype"], fields["volume"]
    if side not in ("buy", "sell"):
        return "EGeneral:Invalid arguments:type"
    if ordertype not in _ORDER_TYPES:
        return "EGeneral:Invalid arguments:ordertype"
    if not _positive(volume) or not volume[0].isdigit():
        return "EGeneral:Invalid arguments:volume"
    if ordertype in _PRICED and not _positive(fields.get("price", "")):
        return "EGeneral:Invalid arguments:price"
    if status == "cancel_only":
        return "EService:Market in cancel_only mode"
    if status == "post_only" and "post" not in fields.get("oflags", "").split(","):
        return "EService:Market in post_only mode"
    return None


def order_description(fields: Mapping[str, str]) -> str:
    """``descr.order``: ``buy 1.25 XBTUSD @ limit 37500`` (the arguments as sent)."""
    ordertype = fields["ordertype"]
    order = f"{fields['type']} {fields['volume']} {fields['pair']} @ {ordertype}"
    if ordertype in _PRICED:
        order += f" {fields.get('price', '')}"
    return order


def _add_order(fields: Mapping[str, str], status: str) -> dict[str, Any] | str:
    if not is_validate(fields):
        return "EGeneral:Invalid arguments:validate"  # placing needs the order book (book.py)
    error = order_error(fields, status)
    return error if error is not None else {"descr": {"order": order_description(fields)}}


def private_result(
    method: str,
    fields: Mapping[str, str],
    balances: Mapping[str, str],
    status: str,
    usd_price: UsdPrice,
) -> dict[str, Any] | str:
    """The ``result`` of an authorised private call, or its error string."""
    if method == "Balance":
        return dict(balances)
    if method == "BalanceEx":
        return {
            asset: {"balance": amount, "hold_trade": _zero_like(amount)}
            for asset, amount in balances.items()
        }
    if method == "TradeBalance":
        return _trade_balance(fields, balances, usd_price)
    if method == "OpenOrders":
        return {"open": {}}
    if method == "AddOrder":
        return _add_order(fields, status)
    if method == "GetWebSocketsToken":
        return {"token": secrets.token_urlsafe(30), "expires": 900}
    return "EGeneral:Unknown method"
