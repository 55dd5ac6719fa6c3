"""Nonce & clock: per-key nonce state, refreshes and rejections over time, skew, diagnoses."""

import time

import streamlit as st

from dashboard.monitor import events as ev
from dashboard.ui.common import REFRESH_EVERY, require_service
from dashboard.views.nonce import (
    diagnose,
    nonce_activity,
    nonce_activity_chart,
    nonce_stores,
    nonce_table,
    skew_chart,
    skew_history,
)
from dashboard.views.timeline import chart_height

service = require_service()
st.title("Nonce & clock")


@st.fragment(run_every=REFRESH_EVERY)
def nonce_page() -> None:
    snapshot = service.snapshot()
    problems = diagnose(snapshot, service.settings.max_skew_s)
    if problems:
        for problem in problems:
            where = problem.account or "this host"
            with st.container(border=True):
                st.markdown(f"**{where}: {problem.cause.replace('_', ' ')}** — {problem.detail}")
                st.markdown(f"**What to do:** {problem.remedy}")
    else:
        st.success("No nonce or clock problem detected.", icon=":material/check_circle:")
    st.subheader("Per key")
    st.dataframe(nonce_table(snapshot), hide_index=True, width="stretch")
    for store, lost in nonce_stores(snapshot):
        if lost:
            st.warning(f"Nonce store: {store}")
        else:
            st.caption(f"Nonces are coordinated through the {store}.")
    since = time.time() - 6 * 3600
    activity = nonce_activity(
        service.store.query(since=since, kinds=[ev.NONCE_REFRESH, ev.INVALID_NONCE])
    )
    st.subheader("Refreshes and rejections (6 hours, per minute)")
    if activity.empty:
        st.caption("None recorded yet.")
    else:
        st.altair_chart(
            nonce_activity_chart(activity), width="stretch", height=chart_height(activity)
        )
    skew = skew_history(service.store.query(since=time.time() - 86400, kinds=[ev.SKEW]))
    st.subheader("Clock skew, local − Kraken (24 hours)")
    if skew.empty:
        st.caption("No clock sample yet.")
    else:
        st.altair_chart(skew_chart(skew), width="stretch")


nonce_page()
