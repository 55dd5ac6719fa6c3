"""Overview: the verdict, the checklist (failures first) and one card per account."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from ..checklist import Check, CheckStatus
from ..status import AccountState, AccountStatus
from .balances import display_balance

__all__ = ["STATUS_ICONS", "Card", "Verdict", "account_cards", "checks_frame", "verdict"]

STATUS_ICONS = {
    CheckStatus.PASS: "✅",
    CheckStatus.FAIL: "❌",
    CheckStatus.PENDING: "⏳",
    CheckStatus.SKIPPED: "➖",
}
#: the checklist table lists failures first, then what is pending
_ORDER = {CheckStatus.FAIL: 0, CheckStatus.PENDING: 1, CheckStatus.PASS: 2, CheckStatus.SKIPPED: 3}


@dataclass(frozen=True)
class Verdict:
    ok: bool
    headline: str
    failing: list[Check]
    pending: list[Check]


def verdict(checks: Sequence[Check]) -> Verdict:
    failing = [c for c in checks if c.required and c.status == CheckStatus.FAIL]
    pending = [c for c in checks if c.required and c.status == CheckStatus.PENDING]
    if failing:
        return Verdict(False, f"Not verified: {len(failing)} check(s) failing", failing, pending)
    if pending:
        return Verdict(
            False, f"Not verified yet: waiting for {len(pending)} check(s)", failing, pending
        )
    return Verdict(True, "Deploy verified: every required check passes", failing, pending)


def checks_frame(checks: Sequence[Check]) -> pd.DataFrame:
    ordered = sorted(checks, key=lambda c: (_ORDER.get(c.status, 9), c.account or "", c.name))
    rows = [
        (
            f"{STATUS_ICONS.get(c.status, '')} {c.status}",
            c.name,
            c.account or "-",
            c.detail,
            c.remedy or "",
            "yes" if c.required else "no",
        )
        for c in ordered
    ]
    return pd.DataFrame(
        rows, columns=["status", "check", "account", "detail", "remedy", "required"]
    )


@dataclass(frozen=True)
class Card:
    label: str
    state: AccountState
    since: str
    last_success: str
    balance: str
    invalid_nonces: int
    nonce_unit: str
    key: str
    reason: str
    #: the monitor waits on authentication failures (or has stopped): offer "Retry now"
    can_retry: bool = False
    #: what to do about the last error, for an account that is not connected
    remedy: str | None = None


def _age(now: float, ts: float | None) -> str:
    if ts is None:
        return "never"
    seconds = max(0, int(now - ts))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))


def account_cards(accounts: Sequence[AccountStatus], now: float) -> list[Card]:
    return [
        Card(
            label=a.label,
            state=a.state,
            since=_age(now, a.since),
            last_success=_age(now, a.last_success_at),
            balance=display_balance(a),
            invalid_nonces=a.invalid_nonce_count,
            nonce_unit=a.nonce_unit,
            key=a.masked_key,
            reason=a.reason,
            can_retry=a.auth_failures > 0,
            remedy=a.last_error.remedy
            if a.last_error and a.state != AccountState.CONNECTED
            else None,
        )
        for a in accounts
    ]
