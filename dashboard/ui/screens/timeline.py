"""Timeline: states per account over a chosen range, with nonce markers, orders and fills, the
gateway's halts and resumes (and other writers, failed dead man's switches), and a line per
deploy, the deploys of the range, and the event list."""

import time

import streamlit as st

from dashboard.monitor import events as ev
from dashboard.ui.common import REFRESH_EVERY, require_service
from dashboard.views.deploys import deploys_between, deploys_table
from dashboard.views.timeline import (
    chart_height,
    deploy_marks,
    events_frame,
    markers,
    segments,
    timeline_chart,
)

RANGES = {
    "15 minutes": 900,
    "1 hour": 3600,
    "6 hours": 6 * 3600,
    "24 hours": 86400,
    "7 days": 7 * 86400,
}
#: the deploys read for a range (the newest ones; a range rarely holds more)
DEPLOYS_READ = 500
#: the markers read for a range (the newest ones: a busy bot places thousands of orders a day)
MARKERS_READ = 5000
MARKER_KINDS = [ev.NONCE_REFRESH, ev.INVALID_NONCE, ev.ORDER, *ev.GUARD_KINDS]

service = require_service()
st.title("Connection timeline")
store = service.store

left, middle, right = st.columns([1, 2, 2])
window = left.selectbox("Range", list(RANGES), index=1)
accounts = middle.multiselect(
    "Accounts", [a.label for a in service.settings.accounts], placeholder="all accounts"
)
kinds = right.multiselect("Event kinds", list(ev.KINDS), placeholder="all kinds")


@st.fragment(run_every=REFRESH_EVERY)
def timeline() -> None:
    end = time.time()
    start = end - RANGES[window]
    chosen = accounts or None
    state_events = store.query(since=start, until=end + 1, kinds=[ev.STATE], accounts=chosen)
    before = {
        label: str(e.data.get("state"))
        for label in (chosen or [a.label for a in service.settings.accounts])
        if (e := store.latest(ev.STATE, label, before=start)) is not None
    }
    segs = segments(state_events, start, end, before)
    marks = markers(
        store.query(
            since=start, kinds=MARKER_KINDS, accounts=chosen, limit=MARKERS_READ, newest_first=True
        )
    )
    deploys = deploys_between(service.deploys.recent(DEPLOYS_READ), start, end)
    if segs.empty:
        st.info("No state changes recorded in this range yet.")
    else:
        chart = timeline_chart(segs, marks, deploy_marks(deploys))
        st.altair_chart(chart, width="stretch", height=chart_height(segs, marks))
    if deploys:
        st.markdown(f"**Deploys in this range ({len(deploys)})**")
        st.markdown(deploys_table(deploys, end))
    listed = store.query(
        since=start, kinds=kinds or None, accounts=chosen, limit=5000, newest_first=True
    )
    frame = events_frame(list(reversed(listed)))
    st.subheader(f"Events ({len(frame)})")
    st.dataframe(frame, hide_index=True, width="stretch", height=400)
    st.download_button(
        "Download CSV",
        frame.to_csv(index=False),
        file_name="krakenwatch-events.csv",
        mime="text/csv",
    )


timeline()
