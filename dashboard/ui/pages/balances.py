"""Balances: exact strings as Kraken sent them, the USD + USDT total, history."""

import time

import streamlit as st

from dashboard import events as ev
from dashboard.ui.common import REFRESH_EVERY, require_service
from dashboard.views.balances import balance_chart, balance_history, balance_rows

service = require_service()
st.title("Balances")
st.caption(
    "Exact decimal strings as Kraken returned them. An unreadable balance shows its error, never 0."
)


@st.fragment(run_every=REFRESH_EVERY)
def balances() -> None:
    snapshot = service.monitor.snapshot()
    st.dataframe(balance_rows(snapshot.accounts), hide_index=True, width="stretch")
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
