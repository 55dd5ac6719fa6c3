"""Trading: each account's live Kraken stream, its open orders, Kraken's trading rate counter per
pair, and the recent orders and fills; without a stream, why and what to do."""

import streamlit as st

from dashboard.monitor import events as ev
from dashboard.monitor.status import AccountStatus
from dashboard.monitor.streamstatus import StreamActivity, StreamState
from dashboard.ui.common import REFRESH_EVERY, how_to_configure, require_service
from dashboard.views.markdown import escape
from dashboard.views.trading import (
    NEAR_LIMIT,
    RATE_LIMIT_CODE,
    no_stream,
    open_orders_frame,
    order_counts,
    order_events_frame,
    rate_chart,
    rate_frame,
    rate_table,
    stream_facts,
    streams_table,
)

#: the order events listed per account (the newest), and how far back
ORDERS_READ = 200
ORDERS_SINCE_S = 86400

service = require_service()
st.title("Trading")
st.caption(
    "From each account's private Kraken WebSocket v2 stream (`balances` and `executions`): the "
    "open orders, every order placed, filled, cancelled or expired as it happens, and Kraken's "
    f"own trading rate counter per pair. Kraken refuses an order with `{RATE_LIMIT_CODE}` when "
    "it would take the pair's counter over the threshold; the counter decays every second."
)
labels = [a.label for a in service.settings.accounts]
chosen = st.multiselect("Accounts", labels, placeholder="all accounts")


def stream_section(a: AccountStatus, now: float, activity: StreamActivity | None) -> None:
    facts = stream_facts(a, now, activity)
    st.markdown(f"{facts.icon} **Stream {escape(facts.summary)}**")
    state, orders, reconnects, last = st.columns(4)
    state.metric("Stream", str(facts.state))
    orders.metric("Open orders", facts.open_orders)
    reconnects.metric("Reconnects", facts.reconnects, help=f"{facts.tokens} tokens fetched")
    last.metric("Last message", facts.last_message)
    st.caption(
        f"Connected since {facts.connected_since} · tokens {facts.tokens} · messages: "
        f"{escape(facts.messages)} · last reconciliation with REST Balance: {facts.reconciled}, "
        f"{facts.mismatches} mismatch{'' if facts.mismatches == 1 else 'es'}"
    )
    if facts.mismatches:
        st.warning(
            f"REST Balance differed from the stream's balances {facts.mismatches} time(s): the "
            "Timeline lists each `balance_mismatch` with both amounts.",
            icon=":material/difference:",
        )
    if a.stream.state == StreamState.DOWN:
        st.warning(
            f"The stream is {escape(facts.summary)}. It reconnects with backoff; balances are "
            "polled over REST meanwhile, and the orders below are as of its last message.",
            icon=":material/sensors_off:",
        )


def orders_section(a: AccountStatus, now: float) -> None:
    st.markdown("**Open orders**")
    orders = open_orders_frame(a.stream, now)
    if orders.empty:
        st.caption("No open order.")
    else:
        st.dataframe(orders, hide_index=True, width="stretch")
    st.markdown("**Trading rate counter per pair**")
    counters = rate_frame(a.stream)
    if counters.empty:
        st.caption("Kraken has sent no trading counter yet (it comes with the first order).")
    else:
        st.markdown(rate_table(counters))
        st.altair_chart(rate_chart(counters), width="stretch")
        st.caption(
            f"Over {NEAR_LIMIT:.0%} is highlighted; at 100 % Kraken answers `{RATE_LIMIT_CODE}`."
        )
    st.markdown(f"**Recent orders and fills** ({escape(order_counts(a.stream))} since start)")
    recent = order_events_frame(
        service.store.query(
            since=now - ORDERS_SINCE_S,
            kinds=[ev.ORDER],
            accounts=[a.label],
            limit=ORDERS_READ,
            newest_first=True,
        )
    )
    if recent.empty:
        st.caption("No order placed, filled, cancelled or expired in the last 24 hours.")
    else:
        st.dataframe(recent.drop(columns="account"), hide_index=True, width="stretch")


def account_section(a: AccountStatus, now: float, activity: StreamActivity | None) -> None:
    st.subheader(a.label)
    missing = no_stream(a)
    if missing is not None:
        st.info(missing.why, icon=":material/sensors_off:")
        st.markdown(missing.what)
        if a.stream.state == StreamState.REFUSED and a.configured:
            st.button(
                "Retry now",
                key=f"stream-retry-{a.label}",
                help="Ask Kraken again for this account's stream (after granting the permission)",
                on_click=service.monitor.retry_now,
                args=(a.label,),
            )
        return
    stream_section(a, now, activity)
    orders_section(a, now)


@st.fragment(run_every=REFRESH_EVERY)
def trading() -> None:
    snapshot = service.snapshot()
    if not snapshot.accounts:
        st.markdown(how_to_configure())
        return
    shown = [a for a in snapshot.accounts if not chosen or a.label in chosen]
    now = snapshot.taken_at
    st.markdown(streams_table(shown, now))
    for a in shown:
        with st.container(border=True):
            account_section(a, now, snapshot.stream_activity.get(a.label))


trading()
