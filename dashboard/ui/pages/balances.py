"""Balances: exact strings as Kraken sent them, the seed's USD + USDT total, history."""

import time

import altair as alt
import streamlit as st

from dashboard import events as ev
from dashboard.ui.common import REFRESH_EVERY, require_service
from dashboard.views.balances import balance_history, balance_rows

service = require_service()
st.title("Balances")
st.caption(
    "Exact decimal strings as Kraken returned them. An unreadable balance shows its error, never 0."
)


@st.fragment(run_every=REFRESH_EVERY)
def balances() -> None:
    snapshot = service.monitor.snapshot()
    st.dataframe(balance_rows(snapshot.accounts), hide_index=True, width="stretch")
    if service.store is None:
        return
    history = balance_history(
        service.store.query(since=time.time() - 7 * 86400, kinds=[ev.BALANCE])
    )
    st.subheader("History (7 days)")
    if history.empty:
        st.caption("No balance snapshots yet.")
        return
    asset = st.selectbox("Asset", sorted(history["asset"].unique()), key="balance-asset")
    chart = (
        alt.Chart(history[history["asset"] == asset])
        .mark_line(point=True, interpolate="step-after")
        .encode(
            x=alt.X("time:T", title="time (UTC)", axis=alt.Axis(format="%m-%d %H:%M")),
            y=alt.Y("amount:Q", title=asset),
            color="account:N",
            tooltip=["account", "time:T", "amount"],
        )
    )
    st.altair_chart(chart, width="stretch")


balances()
