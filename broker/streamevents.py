"""The events an account's private WebSocket stream hands out (:mod:`broker.stream`).

Frozen dataclasses, one per kind of news. Every event names its ``account`` (the client's label)
and ``at``, the local wall-clock time (``time.time()``) it was received or happened. Amounts are
strings holding Kraken's numbers exactly as sent (``"0.00000001"``, never a float), assets are
spelled the WebSocket v2 way (``BTC``, ``USD``; see :mod:`broker.assets` and
:func:`with_rest_names`), pairs too (``BTC/USD``).

=======================  ===================================================================
event                    meaning
=======================  ===================================================================
``StreamStateChanged``   ``connecting``, ``up`` (both subscriptions acknowledged), ``down``
                         (will retry), ``refused`` (no permission: stopped trying until
                         ``restart()``), ``stopped``
``BalancesSnapshot``     every asset's balance, after each (re)subscription
``BalanceUpdate``        one ledger entry (trade, deposit, withdrawal...) and the new balance
``OrdersSnapshot``       the open orders, after each (re)subscription
``Execution``            an order event: ``pending_new``, ``new``, ``trade``, ``filled``,
                         ``canceled``, ``expired``, ``amended``, ``restated``, ``status``
``RateCount``            Kraken's trading rate counter of a pair (``ratecounter``)
``Heartbeat``            Kraken's heartbeat (about once a second while the stream is up)
``SystemStatus``         Kraken's ``status`` message (``online``, ``maintenance``...)
=======================  ===================================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

from .assets import rest_asset

__all__ = [
    "STREAM_STATES",
    "BalanceUpdate",
    "BalancesSnapshot",
    "Execution",
    "Heartbeat",
    "OrdersSnapshot",
    "RateCount",
    "StreamEvent",
    "StreamState",
    "StreamStateChanged",
    "SystemStatus",
    "with_rest_names",
]

StreamState: TypeAlias = Literal["connecting", "up", "down", "refused", "stopped"]
STREAM_STATES: tuple[StreamState, ...] = ("connecting", "up", "down", "refused", "stopped")


@dataclass(frozen=True, slots=True)
class StreamStateChanged:
    """The stream moved to ``state``; ``reason`` says why (``None`` when there is nothing to
    say, e.g. ``up``). ``reconnects`` and ``tokens`` are the stream's counters at that moment."""

    account: str
    state: StreamState
    reason: str | None
    at: float
    reconnects: int
    tokens: int


@dataclass(frozen=True, slots=True)
class BalancesSnapshot:
    """Every asset's balance (WebSocket asset name -> amount), sent after each subscription."""

    account: str
    balances: Mapping[str, str]
    at: float


@dataclass(frozen=True, slots=True)
class BalanceUpdate:
    """One ledger entry: ``amount`` (signed) and ``fee`` moved ``asset`` to ``balance``.
    ``kind`` is the ledger type (``trade``, ``deposit``, ``withdrawal``, ...)."""

    account: str
    asset: str
    amount: str
    balance: str
    fee: str
    ledger_id: str | None
    kind: str | None
    at: float
    ref_id: str | None = None
    wallet_type: str | None = None
    #: Kraken's time of the entry (RFC 3339), as sent
    timestamp: str | None = None


@dataclass(frozen=True, slots=True)
class Execution:
    """An order event of the ``executions`` channel; fields Kraken did not send are ``None``.
    ``fees`` holds ``(asset, quantity)`` pairs. ``ratecount`` is the pair's trading rate counter
    when ``ratecounter`` is on (also sent as a :class:`RateCount`)."""

    account: str
    exec_type: str
    order_id: str
    symbol: str | None
    side: str | None
    order_type: str | None
    order_qty: str | None
    limit_price: str | None
    order_status: str | None
    last_qty: str | None
    last_price: str | None
    cost: str | None
    fees: tuple[tuple[str, str], ...]
    cum_qty: str | None
    #: Kraken's time of the event (RFC 3339), as sent
    timestamp: str | None
    ratecount: float | None
    at: float
    exec_id: str | None = None
    cl_ord_id: str | None = None
    avg_price: str | None = None
    cum_cost: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class OrdersSnapshot:
    """The open orders (one :class:`Execution` each), sent after each subscription."""

    account: str
    orders: tuple[Execution, ...]
    at: float


@dataclass(frozen=True, slots=True)
class RateCount:
    """Kraken's trading rate counter of ``symbol`` for the account: ``count`` now, and the
    threshold ``max_count`` from the subscription's acknowledgement (``maxratecount``). The
    counter decays continuously, so ``count`` has decimals."""

    account: str
    symbol: str
    count: float
    max_count: int | None
    at: float


@dataclass(frozen=True, slots=True)
class Heartbeat:
    account: str
    at: float


@dataclass(frozen=True, slots=True)
class SystemStatus:
    """Kraken's ``status`` message: ``system`` is ``online``, ``maintenance``, ``cancel_only``
    or ``post_only``."""

    account: str
    system: str
    at: float
    api_version: str | None = None


StreamEvent: TypeAlias = (
    StreamStateChanged
    | BalancesSnapshot
    | BalanceUpdate
    | OrdersSnapshot
    | Execution
    | RateCount
    | Heartbeat
    | SystemStatus
)


def with_rest_names(balances: Mapping[str, str], known: Iterable[str] = ()) -> dict[str, str]:
    """``balances`` (WebSocket asset names) keyed by REST names instead (``BTC`` -> ``XXBT``),
    preferring the spellings in ``known`` (the assets REST ``Balance`` answered), so a stream's
    balances compare key for key with REST ``Balance``."""
    names = list(known)
    return {rest_asset(asset, names): amount for asset, amount in balances.items()}
