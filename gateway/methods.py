"""Kraken REST method names as the gateway sees them: which are read-only, which are known, and
which names are acceptable at all.

* :data:`READ_ONLY` — private methods that only read. A byte-identical repeat of one of them is
  forwarded again (two threads of an unmodified krakenex can send identical ``Balance`` bodies in
  the same millisecond, and both want their balance). Every other private method, known or not,
  is treated as state-changing: a byte-identical repeat within the replay window is refused.
* :data:`MOVES_FUNDS` — private methods that move funds out of the account or between wallets and
  accounts, create (sub)accounts or deposit addresses, or allocate/stake: a gateway client
  credential may call them only when its ``allow`` list names them (see :func:`permitted`).
  Decided by name, whatever the parameters (``DepositAddresses`` only creates an address with
  ``new=true``, but is listed: a bot has no business asking for one).
* :data:`KNOWN_PRIVATE` / :data:`KNOWN_PUBLIC` — the names used as the ``method`` label of the
  metrics; any other (well-formed) name is forwarded but labelled ``other``, so a client cannot
  grow the number of series.
* :func:`valid_method` — CamelCase names, optionally one level deep (``Earn/Allocate``).
"""

from __future__ import annotations

import re

__all__ = [
    "CACHEABLE_PUBLIC",
    "KNOWN_PRIVATE",
    "KNOWN_PUBLIC",
    "MOVES_FUNDS",
    "OTHER",
    "READ_ONLY",
    "is_read_only",
    "method_label",
    "permitted",
    "valid_method",
]

OTHER = "other"

#: private methods that read and change nothing; byte-identical twins of these are both answered
READ_ONLY: frozenset[str] = frozenset(
    {
        "Balance",
        "BalanceEx",
        "CreditLines",
        "TradeBalance",
        "OpenOrders",
        "ClosedOrders",
        "QueryOrders",
        "OrderAmends",
        "TradesHistory",
        "QueryTrades",
        "OpenPositions",
        "Ledgers",
        "QueryLedgers",
        "TradeVolume",
        "ExportStatus",
        "RetrieveExport",
        "GetWebSocketsToken",
        "DepositMethods",
        "DepositStatus",
        "WithdrawMethods",
        "WithdrawAddresses",
        "WithdrawInfo",
        "WithdrawStatus",
        "Earn/Strategies",
        "Earn/Allocations",
        "Earn/AllocateStatus",
        "Earn/DeallocateStatus",
    }
)

#: private methods that move funds (Kraken's Funding, Subaccounts and Earn sections, and the
#: legacy staking calls): refused to gateway clients whose ``allow`` does not name them
MOVES_FUNDS: frozenset[str] = frozenset(
    {
        "Withdraw",  # funds leave the account
        "WithdrawCancel",  # changes the fate of a withdrawal
        "WalletTransfer",  # spot wallet -> futures wallet
        "AccountTransfer",  # between master and subaccounts
        "CreateSubaccount",
        "DepositAddresses",  # new=true creates a deposit address
        "Earn/Allocate",  # funds into an earn strategy
        "Earn/Deallocate",
        "Stake",  # legacy staking (replaced by Earn/Allocate)
        "Unstake",
    }
)

#: private methods that place, edit or cancel orders, move funds, allocate or create something
#: (listed for the metrics labels; anything not in READ_ONLY is treated as state-changing anyway)
_STATE_CHANGING: frozenset[str] = MOVES_FUNDS | frozenset(
    {
        "AddOrder",
        "AddOrderBatch",
        "AmendOrder",
        "EditOrder",
        "CancelOrder",
        "CancelAll",
        "CancelAllOrdersAfter",
        "CancelOrderBatch",
        "AddExport",
        "RemoveExport",
    }
)

KNOWN_PRIVATE: frozenset[str] = READ_ONLY | _STATE_CHANGING

KNOWN_PUBLIC: frozenset[str] = frozenset(
    {
        "Time",
        "SystemStatus",
        "Assets",
        "AssetPairs",
        "Ticker",
        "OHLC",
        "Depth",
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


def valid_method(name: str) -> bool:
    """Whether ``name`` looks like a Kraken method (``Balance``, ``Earn/Allocate``)."""
    return _NAME.fullmatch(name) is not None


def is_read_only(method: str) -> bool:
    return method in READ_ONLY


def permitted(method: str, allow: frozenset[str] | None) -> bool:
    """Whether a gateway client whose ``allow`` list is ``allow`` may call ``method``: only the
    listed methods when there is a list, else every method but those that move funds."""
    if allow is None:
        return method not in MOVES_FUNDS
    return method in allow


def method_label(method: str, *, private: bool) -> str:
    """The ``method`` label for metrics: the name when known, else ``other``."""
    known = KNOWN_PRIVATE if private else KNOWN_PUBLIC
    return method if method in known else OTHER
