"""Overview: the verdict, the checklist (failures first) and one card per account."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from ..checklist import Check
from ..status import AccountStatus
from .balances import display_balance

__all__ = ["STATUS_ICONS", "Card", "Verdict", "account_cards", "checks_frame", "verdict"]

STATUS_ICONS = {"pass": "✅", "fail": "❌", "pending": "⏳", "skipped": "➖"}
_ORDER = {"fail": 0, "pending": 1, "pass": 2, "skipped": 3}


@dataclass(frozen=True)
class Verdict:
    ok: bool
    headline: str
    failing: list[Check]
    pending: list[Check]


def verdict(checks: Sequence[Check]) -> Verdict:
    failing = [c for c in checks if c.required and c.status == "fail"]
    pending = [c for c in checks if c.required and c.status == "pending"]
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
    state: str
    since: str
    last_success: str
    balance: str
    invalid_nonces: int
    nonce_unit: str
    key: str
    reason: str


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
        )
        for a in accounts
    ]
