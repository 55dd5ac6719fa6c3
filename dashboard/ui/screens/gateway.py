"""Gateway: the signing gateway (``up --gateway``): its trading guard (halts with their Resume
buttons, the halt form, dead man's switches, trading counters, other writers; drawn by
``dashboard.ui.guard``), then its traffic: calls per account and client, the client
credentials, outcomes over time, queue waits, the last errors."""

import streamlit as st

from dashboard.ui.common import REFRESH_EVERY, require_service
from dashboard.ui.guard import guard_status, halt_form
from dashboard.views.gateway import (
    calls_frame,
    clients_frame,
    errors_frame,
    outcomes_chart,
    outcomes_frame,
    queue_frame,
    totals,
)
from dashboard.web.embedded_gateway import EmbeddedGateway
from gateway.traffic import TrafficSnapshot

service = require_service()
st.title("Gateway")
embedded = service.gateway
demo = service.command == "krakenwatch demo"
if embedded is None:
    elsewhere = "" if demo else " (or run `krakenwatch gateway` on its own)"
    st.info(
        f"No signing gateway runs in this process. Start it with `{service.command} --gateway`"
        f"{elsewhere} and point your bots at it instead of https://api.kraken.com."
    )
    st.stop()
st.caption(
    f"Bots use **{embedded.url}** instead of https://api.kraken.com. The monitor's own calls take "
    "their turn in the same lanes (client `monitor`)."
)


def client_credentials(embedded: EmbeddedGateway, traffic: TrafficSnapshot) -> None:
    credentials = embedded.gateway.credentials
    if credentials is None:
        return
    st.subheader("Client credentials")
    if credentials.problem:
        st.error(f"{credentials.problem}. The previous credentials stay in use.")
    for reason in credentials.table.skipped:
        st.warning(reason)
    clients = credentials.table.clients
    if clients:
        st.table(clients_frame(clients, traffic), hide_index=True)
    else:
        how = (
            " (the demo printed one at start, with a snippet to try)."
            if demo
            else ". Issue one per bot with `krakenwatch gateway add-client NAME --account LABEL`."
        )
        st.caption("No client credential: bots sign with the account's own key" + how)
    st.caption(f"From {credentials.path}, re-read when it changes.")


@st.fragment(run_every=REFRESH_EVERY)
def trading_guard(embedded: EmbeddedGateway) -> None:
    guard_status(embedded.gateway)


@st.fragment(run_every=REFRESH_EVERY)
def gateway_page(embedded: EmbeddedGateway) -> None:
    traffic = embedded.gateway.metrics.traffic.snapshot()
    _, health = embedded.gateway.health()
    summary = totals(traffic)
    calls, ok, refused = st.columns(3)
    calls.metric("Private calls", summary.calls)
    ok.metric("Answered ok", summary.ok_share)
    refused.metric(
        "Kraken's invalid-nonce / rate-limit answers",
        summary.prevented_failed,
        help="What the gateway exists to prevent; anything but 0 means another program uses the key",
    )
    st.subheader("Calls per account and client")
    st.table(calls_frame(traffic), hide_index=True)
    client_credentials(embedded, traffic)
    st.subheader("Outcomes over time (last hour, per 10 s)")
    outcomes = outcomes_frame(traffic)
    if outcomes.empty:
        st.caption("No call through the gateway yet.")
    else:
        st.altair_chart(outcomes_chart(outcomes), width="stretch")
    st.subheader("Queue")
    st.dataframe(queue_frame(traffic, health["accounts"]), hide_index=True, width="stretch")
    st.subheader("Last errors")
    errors = errors_frame(traffic)
    if errors.empty:
        st.caption("No error since the gateway started.")
    else:
        st.table(errors, hide_index=True)


trading_guard(embedded)
halt_form(embedded.gateway)  # outside the refreshing fragments: a refresh never resets it
st.subheader("Traffic")
gateway_page(embedded)
