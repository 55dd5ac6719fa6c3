"""Balances as Kraken sent them, valued in USD: per asset, per account, the fleet; history."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import cast

import altair as alt
import pandas as pd

from dashboard.monitor import events as ev
from dashboard.monitor.events import Event
from dashboard.monitor.valuation import (
    AssetValue,
    FleetValue,
    describe_account,
    describe_fleet,
    format_usd,
)
from dashboard.views.markdown import escape, table

__all__ = ["balance_chart", "balance_history", "balance_rows", "totals_table"]


def balance_rows(fleet: FleetValue) -> pd.DataFrame:
    """One row per account and asset: the exact string Kraken sent, its USD price and value
    (why an asset has no price is said by :func:`totals_table`)."""
    rows: list[tuple[str, str, str, str, str]] = []
    for account in fleet.accounts:
        if account.error is not None:
            rows.append((account.label, "-", f"unknown ({account.error})", "", ""))
            continue
        for a in account.assets:
            price = "" if a.price is None else f"{a.price}"
            value = "no price" if a.value is None else format_usd(a.value)
            rows.append((account.label, a.asset, a.amount, price, value))
    return pd.DataFrame(rows, columns=["account", "asset", "balance", "USD price", "USD value"])


def totals_table(fleet: FleetValue) -> str:
    """Per-account and fleet totals (markdown): a number only where every price is known."""

    def no_price(unpriced: Sequence[AssetValue]) -> str:
        reasons = {a.asset: a.missing for a in unpriced}
        return ", ".join(f"{asset} ({why})" for asset, why in reasons.items()) or "–"

    rows = [
        [escape(a.label), escape(describe_account(a)), escape(no_price(a.unpriced))]
        for a in fleet.accounts
    ]
    rows.append(
        [
            "**all accounts**",
            f"**{escape(describe_fleet(fleet))}**",
            escape(no_price(fleet.unpriced)),
        ]
    )
    return table(["account", "value (USD)", "no price"], rows)


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
