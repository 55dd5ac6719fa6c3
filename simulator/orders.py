"""Orders and fills as data, and the shapes Kraken shows them in: a REST ``OpenOrders`` entry and
the WebSocket v2 ``executions`` entries (``pending_new``, ``new``, ``trade``, ``amended``,
``filled``, ``canceled``, ``expired``); and what each transaction adds to Kraken's per-pair
trading counter by the order's age. No locking and no I/O: :mod:`simulator.book` owns the live
orders.

Numbers on the WebSocket are JSON numbers (Kraken's v2 style); REST answers decimal strings.
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from broker.assets import ws_asset

from .market import Pair

__all__ = [
    "Fill",
    "Order",
    "OrderAge",
    "amend_cost",
    "asset_decimals",
    "cancel_cost",
    "edit_cost",
    "kraken_id",
    "quantize",
    "rfc3339",
    "valid_client_id",
]

_ID_ALPHABET = string.ascii_uppercase + string.digits
#: decimals Kraken's ``Balance`` shows for a few assets (others: 8; fiat ``Z...``: 4)
_DECIMALS = {"XXBT": 10, "XETH": 10, "XBT": 10, "ETH": 10, "USDT": 8, "USDC": 8, "KFEE": 2}
#: the extra count a transaction adds to the trading counter by the order's age (seconds since
#: it was created or last amended), on top of its fixed count (kraken-api.md "Spot trading
#: limits"): (age below, extra) ...
_CANCEL_COSTS = ((5.0, 8.0), (10.0, 6.0), (15.0, 5.0), (45.0, 4.0), (90.0, 2.0), (300.0, 1.0))
_AMEND_COSTS = ((5.0, 3.0), (10.0, 2.0), (15.0, 1.0))
#: Kraken's ``cl_ord_id`` forms: a UUID (with or without dashes) or up to 18 characters of text
_CLIENT_ID = re.compile(r"[0-9a-fA-F]{8}-?(?:[0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}|[!-~]{1,18}")
_EDIT_COSTS = ((5.0, 6.0), (10.0, 5.0), (15.0, 4.0), (45.0, 2.0), (90.0, 1.0))


def kraken_id(prefix: str) -> str:
    """An id shaped like Kraken's: ``OQCLML-BW3P3-BUCMWZ`` (prefix + 5, 5, 6 characters)."""

    def part(n: int) -> str:
        return "".join(secrets.choice(_ID_ALPHABET) for _ in range(n))

    return f"{prefix}{part(5)}-{part(5)}-{part(6)}"


def rfc3339(t: float) -> str:
    """``2023-09-22T10:33:05.709993Z``."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _by_age(table: tuple[tuple[float, float], ...], age_s: float) -> float:
    for below, cost in table:
        if age_s < below:
            return cost
    return 0.0


def cancel_cost(age_s: float) -> float:
    """What cancelling an order of this age adds to the pair's trading counter."""
    return _by_age(_CANCEL_COSTS, age_s)


def amend_cost(age_s: float) -> float:
    """What ``AmendOrder`` adds: 1, plus by the order's age."""
    return 1.0 + _by_age(_AMEND_COSTS, age_s)


def edit_cost(age_s: float) -> float:
    """What ``EditOrder`` adds: 1, plus by the order's age."""
    return 1.0 + _by_age(_EDIT_COSTS, age_s)


def valid_client_id(text: str) -> bool:
    """Whether ``text`` is a ``cl_ord_id`` Kraken takes."""
    return _CLIENT_ID.fullmatch(text) is not None


def asset_decimals(name: str, current: str | None = None) -> int:
    """The decimals of a balance: as its current amount is written, else the asset's."""
    if current is not None and "." in current:
        return len(current.partition(".")[2])
    base = name.split(".")[0]
    if base in _DECIMALS:
        return _DECIMALS[base]
    return 4 if len(base) == 4 and base.startswith("Z") else 8


def quantize(value: Decimal, decimals: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-decimals))


def _num(value: Decimal) -> float:
    return float(value)


@dataclass(frozen=True)
class Fill:
    trade_id: int
    exec_id: str
    qty: Decimal
    price: Decimal
    cost: Decimal
    fee: Decimal
    time: float
    liquidity: str  # "m" (maker) or "t" (taker)


@dataclass(frozen=True)
class OrderAge:
    """An open order and its age as the trading counter sees it (seconds since it was created
    or last amended, on the simulator's clock)."""

    txid: str
    pair: str
    userref: int
    cl_ord_id: str | None
    opened: float
    amended: float | None
    age_s: float


@dataclass
class Order:
    txid: str
    key: str
    pair: Pair
    side: str
    ordertype: str
    volume: Decimal
    price: Decimal | None  # the limit price; None for a market order
    fee_pct: Decimal
    opened: float
    descr: str
    userref: int = 0
    cl_ord_id: str | None = None
    #: when it was last amended (``AmendOrder``), on the simulator's clock
    amended: float | None = None
    status: str = "open"  # open | closed | canceled | expired (REST words)
    vol_exec: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    fee: Decimal = Decimal(0)
    closed: float | None = None
    trades: list[str] = field(default_factory=list)

    @property
    def remaining(self) -> Decimal:
        return self.volume - self.vol_exec

    @property
    def avg_price(self) -> Decimal:
        return self.cost / self.vol_exec if self.vol_exec else Decimal(0)

    def age(self, now: float) -> float:
        """Seconds since the order was created or last amended: what the trading counter's
        age-dependent counts look at."""
        return now - (self.opened if self.amended is None else self.amended)

    def age_entry(self, now: float) -> OrderAge:
        return OrderAge(
            self.txid,
            self.pair.name,
            self.userref,
            self.cl_ord_id,
            self.opened,
            self.amended,
            self.age(now),
        )

    def describe(self) -> str:
        """``descr.order`` as Kraken writes a changed order: ``buy 0.01000000 XXBTZUSD @ limit
        40000.0``."""
        text = f"{self.side} {quantize(self.volume, 8):f} {self.pair.name} @ {self.ordertype}"
        if self.price is not None:
            text += f" {quantize(self.price, self.pair.pair_decimals):f}"
        return text

    @property
    def ws_status(self) -> str:
        """The v2 ``order_status`` of a live order."""
        return "partially_filled" if self.vol_exec else "new"

    # ------------------------------------------------------------------ REST
    def rest_entry(self) -> dict[str, Any]:
        """The order as ``OpenOrders`` lists it."""
        decimals = self.pair.pair_decimals
        price = "0" if self.price is None else str(quantize(self.price, decimals))
        entry: dict[str, Any] = {
            "refid": None,
            "userref": self.userref,
            **({"cl_ord_id": self.cl_ord_id} if self.cl_ord_id else {}),
            "status": self.status,
            "opentm": round(self.opened, 4),
            "starttm": 0,
            "expiretm": 0,
            "descr": {
                "pair": self.pair.altname,
                "type": self.side,
                "ordertype": self.ordertype,
                "price": price,
                "price2": "0",
                "leverage": "none",
                "order": self.descr,
                "close": "",
            },
            "vol": f"{quantize(self.volume, 8):f}",
            "vol_exec": f"{quantize(self.vol_exec, 8):f}",
            "cost": f"{quantize(self.cost, 5):f}",
            "fee": f"{quantize(self.fee, 5):f}",
            "price": f"{quantize(self.avg_price, decimals):f}",
            "stopprice": "0.00000",
            "limitprice": "0.00000",
            "misc": "",
            "oflags": "fciq",
            "trades": list(self.trades),
        }
        if self.amended is not None:
            entry["amended"] = True
        return entry

    # ------------------------------------------------------------------ WebSocket v2
    def _details(self) -> dict[str, Any]:
        details: dict[str, Any] = {
            "order_id": self.txid,
            "symbol": self.pair.symbol,
            "order_qty": _num(self.volume),
            "cum_cost": _num(self.cost),
            "time_in_force": "GTC",
            "side": self.side,
            "order_type": self.ordertype,
            "order_userref": self.userref,
            **self._client_id(),
        }
        if self.price is not None:
            details.update(limit_price_type="static", limit_price=_num(self.price))
        return details

    def _client_id(self) -> dict[str, Any]:
        return {"cl_ord_id": self.cl_ord_id} if self.cl_ord_id else {}

    def pending_new(self, t: float) -> dict[str, Any]:
        return {
            **self._details(),
            "exec_type": "pending_new",
            "order_status": "pending_new",
            "stop_price": 0.0,
            "fee_usd_equiv": 0.0,
            "fee_ccy_pref": "fciq",
            "timestamp": rfc3339(t),
        }

    def new(self, t: float) -> dict[str, Any]:
        return {
            "timestamp": rfc3339(t),
            "order_status": "new",
            "exec_type": "new",
            "order_userref": self.userref,
            "order_id": self.txid,
            **self._client_id(),
        }

    def amended_entry(self, t: float) -> dict[str, Any]:
        """The ``amended`` event of an ``AmendOrder``: the order's new quantity and price."""
        entry: dict[str, Any] = {
            "timestamp": rfc3339(t),
            "exec_type": "amended",
            "order_status": self.ws_status,
            "order_id": self.txid,
            "order_userref": self.userref,
            **self._client_id(),
            "symbol": self.pair.symbol,
            "order_qty": _num(self.volume),
            "cum_qty": _num(self.vol_exec),
            "amended": True,
        }
        if self.price is not None:
            entry["limit_price"] = _num(self.price)
        return entry

    def snapshot_entry(self) -> dict[str, Any]:
        """A live order in the ``executions`` snapshot."""
        return {
            **self._details(),
            "exec_type": "new",
            "order_status": self.ws_status,
            "cum_qty": _num(self.vol_exec),
            "avg_price": _num(self.avg_price),
            "fee_usd_equiv": _num(self.fee),
            "fee_ccy_pref": "fciq",
            "timestamp": rfc3339(self.opened),
        }

    def trade(self, fill: Fill) -> dict[str, Any]:
        return {
            "order_id": self.txid,
            "order_userref": self.userref,
            "exec_id": fill.exec_id,
            "exec_type": "trade",
            "trade_id": fill.trade_id,
            "symbol": self.pair.symbol,
            "side": self.side,
            "last_qty": _num(fill.qty),
            "last_price": _num(fill.price),
            "liquidity_ind": fill.liquidity,
            "cost": _num(fill.cost),
            "order_status": "partially_filled" if self.remaining else "filled",
            "order_type": self.ordertype,
            "timestamp": rfc3339(fill.time),
            "fee_usd_equiv": _num(fill.fee),
            "fees": [{"asset": ws_asset(self.pair.quote), "qty": _num(fill.fee)}],
        }

    def closed_entry(self, exec_type: str, t: float, reason: str | None = None) -> dict[str, Any]:
        """The ``filled``, ``canceled`` or ``expired`` entry."""
        entry: dict[str, Any] = {
            "timestamp": rfc3339(t),
            "order_status": exec_type,
            "exec_type": exec_type,
            "order_id": self.txid,
            "order_userref": self.userref,
            **self._client_id(),
            "symbol": self.pair.symbol,
            "side": self.side,
            "order_qty": _num(self.volume),
            "cum_qty": _num(self.vol_exec),
            "cum_cost": _num(self.cost),
            "avg_price": _num(self.avg_price),
            "fee_usd_equiv": _num(self.fee),
        }
        if self.vol_exec and exec_type == "filled":
            entry["exec_id"] = self.trades[-1]
        if reason is not None:
            entry.update(cancel_reason=reason, reason=reason)
        return entry
