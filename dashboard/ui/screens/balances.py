"""Balances: exact strings as Kraken sent them, valued in USD per asset, account and fleet."""

import time

import streamlit as st

from dashboard.monitor import events as ev
from dashboard.monitor.valuation import held_assets, value_fleet
from dashboard.ui.common import REFRESH_EVERY, require_service
from dashboard.views.balances import balance_chart, balance_history, balance_rows, totals_table

service = require_service()
st.title("Balances")
st.caption(
    "Exact decimal strings as Kraken returned them, valued at Kraken's last trade price in USD "
    "(Ticker, refreshed every minute). An unreadable balance shows its error and an asset "
    "without a price says so: neither is ever counted as 0."
)


@st.fragment(run_every=REFRESH_EVERY)
def balances() -> None:
    snapshot = service.snapshot()
    prices = service.prices.usd_prices(held_assets(snapshot.accounts))
    fleet = value_fleet(snapshot.accounts, prices)
    st.subheader("Value")
    st.markdown(totals_table(fleet))
    if prices.fetched_at is not None:
        fetched = time.strftime("%H:%M:%S UTC", time.gmtime(prices.fetched_at))
        st.caption(f"Prices read from Kraken at {fetched}.")
    st.subheader("Per asset")
    st.dataframe(balance_rows(fleet), hide_index=True, width="stretch")
    history = balance_history(
        service.store.query(since=time.time() - 7 * 86400, kinds=[ev.BALANCE])
    )
    st.subheader("History (7 days)")
    if history.empty:
        st.caption("No balance snapshots yet.")
        return
    asset = st.selectbox("Asset", sorted(history["asset"].unique()), key="balance-asset")
    st.altair_chart(balance_chart(history, asset), width="stretch")


balances()
