"""What a checklist item is: its id, title, status, detail and remedy.

Every item has a :class:`CheckStatus`: ``pass``, ``fail``, ``pending`` (no data yet) or
``skipped`` (does not apply).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

__all__ = [
    "CHECK_TITLES",
    "Check",
    "CheckStatus",
    "ago",
    "check_title",
    "counted",
    "duration",
]

#: what the pages (and the README's checklist table) call each check; the ids stay in the JSON
#: document and the metrics
CHECK_TITLES: dict[str, str] = {
    "configuration": "Configuration valid",
    "monitor_started": "Monitor started",
    "connected": "Connected to Kraken",
    "balance_fetched": "Balance fetched",
    "no_invalid_nonce": "No invalid-nonce errors",
    "permission_query_funds": "Query Funds permission",
    "permission_query_orders": "Query Open Orders & Trades permission",
    "permission_create_orders": "Create & Modify Orders permission",
    "dedicated_key": "Dedicated API key",
    "trading_active": "Trading active (orders from Kraken)",
    "clock_skew": "Clock skew within bound",
    "kraken_status": "Kraken online",
    "bot_kraken_connected": "Bot: Kraken connected",
    "bot_other_brokers": "Bot: other brokers connected",
    "bot_trading_cycles": "Bot: trading cycles running",
    "bot_no_invalid_nonce": "Bot: no invalid-nonce lines",
    "gateway_kraken_errors": "Gateway: no invalid-nonce or rate-limit answers",
    "gateway_client_auth": "Gateway client signs correctly",
    "halted": "Gateway: trading not halted",
}


class CheckStatus(StrEnum):
    PASS = "pass"  # noqa: S105 (a check status, not a password)
    FAIL = "fail"
    #: no data yet
    PENDING = "pending"
    #: does not apply (not required)
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Check:
    name: str
    account: str | None
    status: CheckStatus
    detail: str
    remedy: str | None = None
    required: bool = True

    @property
    def title(self) -> str:
        """The check's title on the pages (``name`` stays the id)."""
        return check_title(self.name)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON types (the status as its string). Every field is a plain value, so no deep
        copy (``dataclasses.asdict``) is needed: at 200 accounts that was most of the document."""
        found = {name: getattr(self, name) for name in _CHECK_FIELDS}
        found["status"] = str(self.status)
        return found


#: the fields of :class:`Check`, in order (``dataclasses.fields`` is slow to ask per check)
_CHECK_FIELDS = tuple(f.name for f in fields(Check))


def check_title(name: str) -> str:
    """The title of check ``name`` (an unknown id is shown as itself)."""
    return CHECK_TITLES.get(name, name)


def counted(n: int, noun: str) -> str:
    """``"1 check"``, ``"3 checks"``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def ago(seconds: float) -> str:
    """``"12 s ago"``, never negative."""
    return f"{max(0.0, seconds):.0f} s ago"


def duration(seconds: float) -> str:
    """``"1.7 s"``, ``"3 s"``, ``"34 s"``, ``"4 min 10 s"``, ``"2 h 5 min"``, ``"3 d 4 h"``
    (never negative): how long something took or has lasted, for every page."""
    if seconds < 9.95:
        return f"{max(0.0, seconds):.1f}".removesuffix(".0") + " s"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s" if s % 60 else f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min" if s % 3600 // 60 else f"{s // 3600} h"
    return f"{s // 86400} d {s % 86400 // 3600} h" if s % 86400 // 3600 else f"{s // 86400} d"
