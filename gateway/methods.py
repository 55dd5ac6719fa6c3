"""Kraken's REST method names as the gateway knows them: one table of the private methods (what
each does, and whether it only reads, changes state or moves funds), and the public ones.

The private table is an **allowlist**: a private call to a name it does not hold, exactly and
case-sensitively (``WITHDRAW``, ``Withdraw/X``, ``Walletransfer``, a method Kraken added after this
table), is refused by the gateway with ``EGeneral:Unknown method`` for every caller, and nothing
is sent. Names from Kraken's Spot REST reference (docs.kraken.com), 2026; the retired legacy
staking (``Stake``, ``Unstake``, ``Staking/*``) and NFT names are left out.

* ``read`` — only reads. A byte-identical repeat is forwarded again (two threads of an
  unmodified krakenex can send identical ``Balance`` bodies in the same millisecond).
* ``state`` — places, edits or cancels orders, creates or removes something. Replay-checked.
* ``funds`` — moves funds out of the account or between wallets and accounts, creates deposit
  addresses, allocates to Earn. Replay-checked, and a gateway client credential may call it only
  when its ``allow`` list names it.
* ``GetWebSocketsToken`` is ``state`` and, like ``funds``, needs naming in ``allow``: the token it
  returns can place orders over Kraken's WebSocket API, past the gateway.

:data:`KNOWN_PUBLIC` names the public methods for the metrics' ``method`` label (any other
well-formed public name is passed through and labelled ``other``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CACHEABLE_PUBLIC",
    "KNOWN_PRIVATE",
    "KNOWN_PUBLIC",
    "MOVES_FUNDS",
    "NAMED_ONLY",
    "OTHER",
    "PRIVATE_METHODS",
    "READ_ONLY",
    "MethodInfo",
    "is_read_only",
    "known_private",
    "method_label",
    "permitted",
    "valid_public",
]

OTHER = "other"
Kind = Literal["read", "state", "funds"]


@dataclass(frozen=True)
class MethodInfo:
    name: str
    kind: Kind
    #: what it does, in a few words
    what: str


def _table(*rows: tuple[str, Kind, str]) -> dict[str, MethodInfo]:
    return {name: MethodInfo(name, kind, what) for name, kind, what in rows}


#: every private method the gateway forwards (see the module docstring)
PRIVATE_METHODS: dict[str, MethodInfo] = _table(
    # account data
    ("Balance", "read", "cash balances"),
    ("BalanceEx", "read", "balances with credit and holds"),
    ("CreditLines", "read", "credit-line details"),
    ("GetApiKeyInfo", "read", "the calling key's permissions"),
    ("ListWalletAccounts", "read", "the account's wallet accounts"),
    ("TradeBalance", "read", "margin trade balance"),
    ("OpenOrders", "read", "open orders"),
    ("ClosedOrders", "read", "closed orders"),
    ("QueryOrders", "read", "orders by id"),
    ("OrderAmends", "read", "an order's amend history"),
    ("TradesHistory", "read", "own fills"),
    ("QueryTrades", "read", "fills by id"),
    ("OpenPositions", "read", "open margin positions"),
    ("Ledgers", "read", "ledger entries"),
    ("QueryLedgers", "read", "ledger entries by id"),
    ("TradeVolume", "read", "30-day volume and fees"),
    ("Level3", "read", "order-by-order book"),
    ("AddExport", "state", "requests a trades/ledgers export"),
    ("ExportStatus", "read", "export report status"),
    ("RetrieveExport", "read", "downloads an export"),
    ("RemoveExport", "state", "deletes or cancels an export"),
    # trading
    ("AddOrder", "state", "places an order"),
    ("AddOrderBatch", "state", "places 2-15 orders"),
    ("AmendOrder", "state", "amends an order in place"),
    ("EditOrder", "state", "cancels and replaces an order"),
    ("CancelOrder", "state", "cancels orders"),
    ("CancelAll", "state", "cancels every open order"),
    ("CancelAllOrdersAfter", "state", "arms the dead man's switch"),
    ("CancelOrderBatch", "state", "cancels up to 50 orders"),
    ("GetWebSocketsToken", "state", "a token that can trade over WebSocket"),
    ("AddStrategy", "state", "starts an algo (TWAP) strategy"),
    ("CancelStrategy", "state", "cancels an algo strategy"),
    ("QueryStrategies", "read", "algo strategies by id"),
    ("GetOpenStrategies", "read", "active algo strategies"),
    ("GetClosedStrategies", "read", "finished algo strategies"),
    # funding
    ("DepositMethods", "read", "deposit methods"),
    ("DepositAddresses", "funds", "gets or creates a deposit address"),
    ("DepositStatus", "read", "recent deposits"),
    ("WithdrawMethods", "read", "withdrawal methods"),
    ("WithdrawAddresses", "read", "saved withdrawal addresses"),
    ("WithdrawInfo", "read", "withdrawal fee and limit"),
    ("Withdraw", "funds", "withdraws funds"),
    ("WithdrawStatus", "read", "recent withdrawals"),
    ("WithdrawCancel", "funds", "cancels a pending withdrawal"),
    ("WalletTransfer", "funds", "spot to futures wallet"),
    # subaccounts
    ("CreateSubaccount", "funds", "creates a subaccount"),
    ("AccountTransfer", "funds", "master to/from subaccount"),
    # earn
    ("Earn/Allocate", "funds", "allocates to an Earn strategy"),
    ("Earn/Deallocate", "funds", "deallocates from Earn"),
    ("Earn/AllocateStatus", "read", "last allocation's status"),
    ("Earn/DeallocateStatus", "read", "last deallocation's status"),
    ("Earn/Strategies", "read", "Earn strategies"),
    ("Earn/Allocations", "read", "Earn allocations"),
)

KNOWN_PRIVATE: frozenset[str] = frozenset(PRIVATE_METHODS)
#: private methods that read and change nothing; byte-identical twins of these are both answered
READ_ONLY: frozenset[str] = frozenset(m for m, i in PRIVATE_METHODS.items() if i.kind == "read")
#: private methods that move funds: refused to gateway clients whose ``allow`` does not name them
MOVES_FUNDS: frozenset[str] = frozenset(m for m, i in PRIVATE_METHODS.items() if i.kind == "funds")
#: what a client credential may call only when its ``allow`` names it
NAMED_ONLY: frozenset[str] = MOVES_FUNDS | {"GetWebSocketsToken"}

KNOWN_PUBLIC: frozenset[str] = frozenset(
    {
        "Time",
        "SystemStatus",
        "MaintenanceSchedule",
        "Assets",
        "AssetPairs",
        "Ticker",
        "OHLC",
        "Depth",
        "GroupedBook",
        "Trades",
        "Spread",
        "PreTrade",
        "PostTrade",
    }
)

#: reference data that changes rarely: the gateway may answer it from a short cache (never
#: ``Time``, which bots use to measure their clock skew, and never anything private)
CACHEABLE_PUBLIC: frozenset[str] = frozenset({"Assets", "AssetPairs"})

_NAME = re.compile(r"[A-Z][A-Za-z0-9]{0,63}(?:/[A-Z][A-Za-z0-9]{0,63})?")


def known_private(name: str) -> bool:
    """Whether ``name`` is, exactly, a private method of the table."""
    return name in PRIVATE_METHODS


def valid_public(name: str) -> bool:
    """Whether ``name`` looks like a Kraken method (``Time``, ``Earn/Strategies``)."""
    return _NAME.fullmatch(name) is not None


def is_read_only(method: str) -> bool:
    return method in READ_ONLY


def permitted(method: str, allow: frozenset[str] | None) -> bool:
    """Whether a gateway client whose ``allow`` list is ``allow`` may call ``method``: only the
    listed methods when there is a list, else every known method but :data:`NAMED_ONLY`."""
    if allow is None:
        return method in KNOWN_PRIVATE and method not in NAMED_ONLY
    return method in allow


def method_label(method: str, *, private: bool) -> str:
    """The ``method`` label for metrics: the name when known, else ``other``."""
    known = KNOWN_PRIVATE if private else KNOWN_PUBLIC
    return method if method in known else OTHER
