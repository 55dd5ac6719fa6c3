"""Balances as Kraken sent them: exact decimal strings, the USD + USDT total, history and chart."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import cast

import altair as alt
import pandas as pd

from .. import events as ev
from ..events import Event
from ..status import AccountStatus

__all__ = [
    "USD_ASSETS",
    "balance_chart",
    "balance_history",
    "balance_rows",
    "display_balance",
    "usd_total",
]

#: the assets of the dollar total: US dollars (legacy and new asset codes) and Tether
USD_ASSETS = ("ZUSD", "USD", "USDT")


def usd_total(balances: dict[str, str] | None) -> Decimal | None:
    """USD + USDT as an exact Decimal, or ``None`` when the balance is unknown."""
    if balances is None:
        return None
    total = Decimal(0)
    for asset in USD_ASSETS:
        try:
            total += Decimal(balances.get(asset, "0"))
        except InvalidOperation:
            return None
    return total


def display_balance(status: AccountStatus) -> str:
    """The one-line balance of a card: the total, or ``unknown (error …)`` — never a made-up 0."""
    if status.balance_error:
        return f"unknown ({status.balance_error})"
    total = usd_total(status.balances)
    if total is None:
        return "unknown (not read yet)"
    return f"${total:,.2f} (USD + USDT)"


def balance_rows(accounts: Sequence[AccountStatus]) -> pd.DataFrame:
    """One row per account and asset, balances as the exact strings Kraken sent."""
    rows: list[tuple[str, str, str, str]] = []
    for a in accounts:
        if a.balance_error or a.balances is None:
            rows.append((a.label, "-", f"unknown ({a.balance_error or 'not read yet'})", ""))
            continue
        for asset, amount in sorted(a.balances.items()):
            rows.append((a.label, asset, amount, ""))
        total = usd_total(a.balances)
        rows.append(
            (a.label, "USD + USDT", f"{total}" if total is not None else "unknown", "total")
        )
    return pd.DataFrame(rows, columns=["account", "asset", "balance", "note"])


def balance_history(events: Sequence[Event]) -> pd.DataFrame:
    """``time, account, asset, amount`` from balance snapshots (float for the chart only)."""
    rows = []
    for e in events:
        if e.kind != ev.BALANCE or e.account is None:
            continue
        for asset, amount in (e.data.get("balances") or {}).items():
            try:
                rows.append(
                    (
                        pd.Timestamp(e.ts, unit="s", tz="UTC"),
                        e.account,
                        asset,
                        float(Decimal(str(amount))),
                    )
                )
            except (InvalidOperation, ValueError):
                continue
    return pd.DataFrame(rows, columns=["time", "account", "asset", "amount"])


def balance_chart(history: pd.DataFrame, asset: str) -> alt.Chart:
    """One line per account for ``asset`` (a step per balance snapshot)."""
    chart = (
        alt.Chart(history[history["asset"] == asset])
        .mark_line(point=True, interpolate="step-after")
        .encode(
            x=alt.X("time:T", title="time (UTC)", axis=alt.Axis(format="%m-%d %H:%M")),
            y=alt.Y("amount:Q", title=asset),
            color="account:N",
            tooltip=["account:N", "time:T", "amount:Q"],
        )
    )
    return cast(alt.Chart, chart)
