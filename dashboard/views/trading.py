"""The Trading page's data: each account's live stream (Kraken WebSocket v2), its open orders,
Kraken's trading rate counter per pair, and the orders and fills as events; and the stream's one
line on the Overview's account cards.

Built from :class:`~dashboard.monitor.streamstatus.StreamStatus` (in each account's status) and
the monitor's ``order`` events (no Streamlit calls here).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import altair as alt
import pandas as pd

from dashboard.checks.item import duration
from dashboard.monitor import events as ev
from dashboard.monitor.events import Event
from dashboard.monitor.status import AccountStatus
from dashboard.monitor.streamstatus import (
    NOT_YET,
    ONE_SHOT,
    ORDER_EVENTS,
    StreamActivity,
    StreamState,
    StreamStatus,
)
from dashboard.views.markdown import escape, table

__all__ = [
    "NEAR_LIMIT",
    "RATE_LIMIT_CODE",
    "STREAM_ICONS",
    "NoStream",
    "StreamFacts",
    "duration",
    "has_stream",
    "no_stream",
    "open_orders_frame",
    "order_counts",
    "order_detail",
    "order_events_frame",
    "rate_chart",
    "rate_frame",
    "rate_level",
    "rate_table",
    "stream_facts",
    "stream_summary",
    "streams_table",
]

#: Kraken's answer to an order that would take the pair's counter over the threshold
RATE_LIMIT_CODE = "EOrder:Rate limit exceeded"
#: from this share of the threshold on, a counter is shown as near the limit
NEAR_LIMIT = 0.8
#: the stream's state as a coloured Material icon (markdown)
STREAM_ICONS = {
    StreamState.UP: ":green[:material/sensors:]",
    StreamState.CONNECTING: ":gray[:material/sync:]",
    StreamState.DOWN: ":red[:material/sensors_off:]",
    StreamState.REFUSED: ":orange[:material/block:]",
    StreamState.OFF: ":gray[:material/sensors_off:]",
}
#: a rate counter's level -> its colour (the chart) and what it means (the table)
RATE_LEVELS = {
    "ok": ("#2e7d32", "room to trade"),
    "near the limit": (
        "#ef6c00",
        f"over {NEAR_LIMIT:.0%} of the threshold: at 100 % Kraken refuses new orders on this "
        f"pair with {RATE_LIMIT_CODE}",
    ),
    "at the limit": (
        "#c62828",
        f"new orders on this pair are refused with {RATE_LIMIT_CODE} until the counter decays",
    ),
    "threshold unknown": ("#90a4ae", "Kraken has not sent this pair's threshold yet"),
}
#: the table's colour of each level (markdown)
_LEVEL_MARKS = {
    "ok": ":green[ok]",
    "near the limit": ":orange[**:material/warning: near the limit**]",
    "at the limit": ":red[**:material/block: at the limit**]",
    "threshold unknown": ":gray[threshold unknown]",
}


def _ago(now: float, ts: float | None) -> str:
    return "never" if ts is None else f"{duration(now - ts)} ago"


def _utc(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def stream_summary(s: StreamStatus, now: float) -> str:
    """The stream in a few words: ``up for 42 s``, ``down for 12 s: reason``, ``refused:
    reason``, ``off: reason``, ``connecting``."""
    if s.state == StreamState.UP:
        return f"up for {duration(now - (s.connected_since or s.since or now))}"
    reason = f": {s.reason}" if s.reason else ""
    if s.state == StreamState.DOWN:
        since = s.down_since or s.since
        return f"down for {duration(now - since)}{reason}" if since else f"down{reason}"
    if s.state == StreamState.CONNECTING:
        return "connecting" + (f" (reconnect {s.reconnects})" if s.reconnects else "")
    if s.state == StreamState.OFF and not s.reason:
        return "off: opens after the account's first successful call"
    return f"{s.state}{reason}"


def has_stream(s: StreamStatus) -> bool:
    """The account has a stream (up, or getting there): its orders can be shown. Off and
    refused streams have none: the page says why instead."""
    return s.state in (StreamState.UP, StreamState.CONNECTING, StreamState.DOWN)


def order_detail(data: dict[str, Any], *, with_id: bool = True) -> str:
    """An order event in one line: ``fill buy 0.0100 XBT/USD @ 50000.0 (O1)`` (without
    ``(O1)`` unless ``with_id``)."""
    event = str(data.get("event") or "order")
    words = [event, str(data.get("side") or "")]
    if event == "placed":
        words.append(str(data.get("order_type") or ""))
    words += [str(data.get("volume") or ""), str(data.get("pair") or "")]
    if data.get("price"):
        words.append(f"@ {data['price']}")
    line = " ".join(w for w in words if w)
    return f"{line} ({data['order_id']})" if with_id and data.get("order_id") else line


@dataclass(frozen=True)
class StreamFacts:
    """An account's stream in figures, as the Trading page shows them."""

    label: str
    state: StreamState
    icon: str
    summary: str
    connected_since: str
    reconnects: int
    tokens: int
    last_message: str
    #: messages per channel: ``"balances 3 · executions 12 · heartbeat 40"``
    messages: str
    reconciled: str
    mismatches: int
    open_orders: int


def stream_facts(
    a: AccountStatus, now: float, activity: StreamActivity | None = None
) -> StreamFacts:
    """``a``'s stream in figures; ``activity``: what it received (the snapshot's)."""
    s = a.stream
    activity = activity or StreamActivity()
    connected = (
        f"{_utc(s.connected_since)} ({_ago(now, s.connected_since)})"
        if s.connected_since is not None
        else "never"
    )
    messages = " · ".join(f"{channel} {n}" for channel, n in sorted(activity.messages.items()))
    return StreamFacts(
        label=a.label,
        state=s.state,
        icon=STREAM_ICONS.get(s.state, ""),
        summary=stream_summary(s, now),
        connected_since=connected,
        reconnects=s.reconnects,
        tokens=s.tokens,
        last_message=_ago(now, activity.last_message_at),
        messages=messages or "none yet",
        reconciled=_ago(now, s.last_reconciled_at),
        mismatches=s.balance_mismatches,
        open_orders=len(s.open_orders),
    )


@dataclass(frozen=True)
class NoStream:
    """Why an account has no stream, and what to do about it (markdown)."""

    why: str
    what: str


_CONSEQUENCE = (
    "Without it, balances are polled over REST and orders are not seen: no open orders, no "
    "trading counter, and the `trading_active` check waits."
)


def no_stream(a: AccountStatus) -> NoStream | None:
    """``None`` while the account has a stream; else why not and what to do."""
    s = a.stream
    if has_stream(s):
        return None
    reason = s.reason or "not started"
    why = f"**{escape(a.label)} has no stream:** {escape(reason)}."
    if s.reason == ONE_SHOT:
        return NoStream(why, "Open the dashboard of `krakenwatch up` to see the streams.")
    if "KRAKENWATCH_STREAMS" in s.reason:
        what = "Streams are switched off: unset `KRAKENWATCH_STREAMS` (or set it to 1) and restart."
    elif "URL" in s.reason:
        what = (
            "Set `KRAKEN_WS_AUTH_URL` to the WebSocket endpoint that goes with `KRAKEN_API_URL` "
            "(Kraken's own: `wss://ws-auth.kraken.com/v2`) and restart."
        )
    elif s.state == StreamState.REFUSED:
        what = (
            "Grant the key **Access WebSocket API** in Kraken's API key settings, then press "
            "**Retry now**."
        )
    elif not s.reason or s.reason == NOT_YET:
        what = "The stream opens once the account's first private call succeeds (see Overview)."
    else:
        what = (
            "Check that the key has **Access WebSocket API**, that `KRAKEN_WS_AUTH_URL` is "
            "reachable, and that `KRAKENWATCH_STREAMS` is not 0."
        )
    return NoStream(why, f"**What to do:** {what} {_CONSEQUENCE}")


def open_orders_frame(s: StreamStatus, now: float) -> pd.DataFrame:
    """The open orders, newest first: pair, side, type, volume, price, filled, status, age."""
    orders = sorted(s.open_orders.values(), key=lambda o: (-o.opened_at, o.order_id))
    rows = [
        (
            o.pair,
            o.side,
            o.order_type,
            o.volume,
            o.price or "market",
            o.filled,
            o.status,
            duration(now - o.opened_at),
            o.order_id,
        )
        for o in orders
    ]
    columns = ["pair", "side", "type", "volume", "price", "filled", "status", "age", "order id"]
    return pd.DataFrame(rows, columns=columns)


def order_counts(s: StreamStatus) -> str:
    """The orders since start per event: ``"3 placed · 5 fill · 0 filled ..."``."""
    totals = dict.fromkeys(ORDER_EVENTS, 0)
    for (_, event), n in s.orders.items():
        totals[event] = totals.get(event, 0) + n
    return " · ".join(f"{n} {event}" for event, n in totals.items())


def rate_level(share: float | None) -> str:
    """``ok``, ``near the limit`` (from :data:`NEAR_LIMIT`), ``at the limit`` (100 %), or
    ``threshold unknown``."""
    if share is None:
        return "threshold unknown"
    if share >= 1:
        return "at the limit"
    return "near the limit" if share >= NEAR_LIMIT else "ok"


def rate_frame(s: StreamStatus) -> pd.DataFrame:
    """Kraken's trading rate counter per pair: ``pair, counter, threshold, share, level``
    (busiest first)."""
    rows = [
        (pair, c.count, c.threshold, c.share, rate_level(c.share))
        for pair, c in s.rate_counters.items()
    ]
    rows.sort(key=lambda r: (-(r[3] if r[3] is not None else -1), r[0]))
    return pd.DataFrame(rows, columns=["pair", "counter", "threshold", "share", "level"])


def rate_table(frame: pd.DataFrame) -> str:
    """:func:`rate_frame` as a markdown table, over 80 % highlighted with what it means."""
    rows = []
    for r in frame.itertuples():
        threshold = "unknown" if pd.isna(r.threshold) else f"{r.threshold:g}"
        share = "–" if pd.isna(r.share) else f"{100 * r.share:.0f} %"
        mark, meaning = _LEVEL_MARKS[r.level], RATE_LEVELS[r.level][1]
        if r.level in ("near the limit", "at the limit"):
            share = f"**{share}**"
        rows.append([escape(r.pair), f"{round(r.counter, 1):g}", threshold, share, mark, meaning])
    return table(["pair", "counter", "threshold", "share", "level", "what it means"], rows)


def rate_chart(frame: pd.DataFrame) -> alt.LayerChart:
    """A bar per pair: its counter's share of the threshold, coloured by level, with a dashed
    rule at :data:`NEAR_LIMIT` and a solid one at 100 %."""
    known = frame.dropna(subset=["share"])
    top = max(1.0, float(known["share"].max())) if not known.empty else 1.0
    bars = (
        alt.Chart(known)
        .mark_bar()
        .encode(
            x=alt.X(
                "share:Q",
                title="share of the threshold",
                scale=alt.Scale(domain=[0, top]),
                axis=alt.Axis(format="%", values=[0, 0.2, 0.4, 0.6, NEAR_LIMIT, 1.0]),
            ),
            y=alt.Y("pair:N", title=None, sort="-x"),
            color=alt.Color(
                "level:N",
                scale=alt.Scale(
                    domain=list(RATE_LEVELS), range=[c for c, _ in RATE_LEVELS.values()]
                ),
                legend=alt.Legend(orient="bottom", title="level"),
            ),
            tooltip=["pair:N", "counter:Q", "threshold:Q", alt.Tooltip("share:Q", format=".0%")],
        )
    )
    limits = pd.DataFrame({"share": [NEAR_LIMIT, 1.0], "dash": ["80 %", "100 %"]})
    rules = (
        alt.Chart(limits)
        .mark_rule(color="#c62828")
        .encode(
            x="share:Q",
            strokeDash=alt.StrokeDash(
                "dash:N",
                scale=alt.Scale(domain=["80 %", "100 %"], range=[[4, 3], [1, 0]]),
                legend=None,
            ),
        )
    )
    height = 40 + 28 * max(1, len(known))
    return cast(alt.LayerChart, alt.layer(bars, rules).properties(height=height))


def _ts(value: float) -> pd.Timestamp:
    return pd.Timestamp(value, unit="s", tz="UTC")


def order_events_frame(events: Sequence[Event]) -> pd.DataFrame:
    """The ``order`` events among ``events``, newest first: time, account, event, pair, side,
    type, volume, price, order id (a fill: its own volume and price)."""
    rows = [
        (
            _ts(e.ts),
            e.account or "-",
            str(e.data.get("event", "")),
            str(e.data.get("pair") or ""),
            str(e.data.get("side") or ""),
            str(e.data.get("order_type") or ""),
            str(e.data.get("volume") or ""),
            str(e.data.get("price") or ""),
            str(e.data.get("order_id") or ""),
        )
        for e in sorted(events, key=lambda e: (e.ts, e.id or 0), reverse=True)
        if e.kind == ev.ORDER
    ]
    columns = ["time", "account", "event", "pair", "side", "type", "volume", "price", "order id"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)  # a datetime column even when empty
    return frame


def _busiest(s: StreamStatus) -> str:
    counters = [(c.share, pair) for pair, c in s.rate_counters.items() if c.share is not None]
    if not counters:
        return "–"
    share, pair = max(counters)
    return f"{escape(pair)} {100 * share:.0f} %"


def streams_table(accounts: Sequence[AccountStatus], now: float) -> str:
    """Every account's stream in one markdown table: state, open orders, orders since start,
    the busiest trading counter."""
    rows = []
    for a in accounts:
        s = a.stream
        shown = has_stream(s)
        rows.append(
            [
                f"**{escape(a.label)}**",
                f"{STREAM_ICONS.get(s.state, '')} {escape(stream_summary(s, now))}",
                str(len(s.open_orders)) if shown else "–",
                escape(order_counts(s)) if shown else "–",
                _busiest(s),
            ]
        )
    return table(["account", "stream", "open orders", "orders since start", "busiest pair"], rows)
