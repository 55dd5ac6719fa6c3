"""Deploys: the deploy history (newest first), one deploy's verdict in full, and how to mark one
(marking stays an authenticated API and command-line action: no button here)."""

import time

import streamlit as st

from dashboard.ui.common import ALERTS, REFRESH_EVERY, require_service
from dashboard.views.deploys import (
    HOW_TO_MARK,
    deploy_banner,
    history_frame,
    mark_access,
    mark_commands,
)

#: the deploys the table lists
HISTORY_LIMIT = 200

service = require_service()
st.title("Deploys")


@st.fragment(run_every=REFRESH_EVERY)
def history() -> None:
    deploys = service.deploys.recent(HISTORY_LIMIT)
    if not deploys:
        st.info(HOW_TO_MARK)
        return
    by_id = {d.id: d for d in deploys}
    # the options are the ids and titles (stable while a deploy is judged): the choice stays
    shown = st.selectbox(
        "Deploy",
        list(by_id),
        format_func=lambda i: f"#{i} {by_id[i].title}",
        help="One deploy's verdict, with the checks it waited for or that failed",
    )
    if shown is not None:
        banner = deploy_banner(by_id[shown], time.time())
        ALERTS[banner.tone](banner.body, icon=banner.icon)
    st.subheader(f"History ({len(deploys)})")
    st.dataframe(history_frame(deploys), hide_index=True, width="stretch")


history()

st.subheader("Mark a deploy")
settings = service.settings
st.markdown(mark_access(settings.admin_token is not None, settings.password is not None))
labels = [a.label for a in settings.accounts]
st.code(mark_commands(labels[0] if labels else None), language="bash")
