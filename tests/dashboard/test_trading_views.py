"""The stream's views, unit by unit (no Streamlit): the Trading page's tables and chart, the
Overview card's stream line, and the Timeline's orders, from real statuses and events."""

from __future__ import annotations

from typing import Any

import pandas as pd

from dashboard.monitor import events as ev
from dashboard.monitor.status import AccountStatus
from dashboard.monitor.streamstatus import (
    ONE_SHOT,
    OpenOrder,
    RateCounter,
    StreamActivity,
    StreamState,
    StreamStatus,
)
from dashboard.views.overview import account_cards, stream_line
from dashboard.views.timeline import (
    MARKER_STYLES,
    event_detail,
    events_frame,
    markers,
    segments,
    timeline_chart,
)
from dashboard.views.trading import (
    RATE_LIMIT_CODE,
    duration,
    no_stream,
    open_orders_frame,
    order_counts,
    order_events_frame,
    rate_chart,
    rate_frame,
    rate_level,
    rate_table,
    stream_facts,
    stream_summary,
    streams_table,
)

NOW = 1_000_000.0


def account(label: str = "MASTER", stream: StreamStatus | None = None) -> AccountStatus:
    return AccountStatus(
        label=label,
        masked_key="AbCd…wXyZ",
        key_id="k",
        nonce_unit="us",
        state="connected",  # type: ignore[arg-type]
        since=0.0,
        stream=stream or StreamStatus(),
    )


def order(order_id: str, pair: str, opened_at: float, price: str | None = "50000.0") -> OpenOrder:
    return OpenOrder(order_id, pair, "buy", "limit", "0.0100", price, "new", "0", opened_at)


def up_stream() -> StreamStatus:
    return StreamStatus(
        state=StreamState.UP,
        since=NOW - 42,
        connected_since=NOW - 42,
        reconnects=2,
        tokens=3,
        open_orders={
            "O1": order("O1", "XBT/USD", NOW - 300),
            "O2": order("O2", "ETH/USD", NOW - 20, price=None),
        },
        orders={("XBT/USD", "placed"): 3, ("XBT/USD", "fill"): 5, ("ETH/USD", "placed"): 1},
        rate_counters={
            "XBT/USD": RateCounter(50, 60, NOW - 1),
            "ETH/USD": RateCounter(6, 60, NOW - 1),
            "SOL/USD": RateCounter(60, 60, NOW - 1),
            "DOT/USD": RateCounter(4, None, NOW - 1),
        },
        last_trade_activity_at=NOW - 5,
        balance_mismatches=1,
        last_reconciled_at=NOW - 200,
    )


def order_event(event: str, ts: float, **data: Any) -> ev.Event:
    fields = {
        "event": event,
        "order_id": "O1",
        "pair": "XBT/USD",
        "side": "buy",
        "order_type": "limit",
        "volume": "0.0100",
        "price": "50000.0",
        **data,
    }
    return ev.Event(ev.ORDER, "MASTER", f"{event} (O1)", fields, ts=ts)


def test_durations_and_each_state_in_a_few_words() -> None:
    assert [duration(s) for s in (-5, 42, 180, 7500, 3 * 86400 + 3600)] == [
        "0 s",
        "42 s",
        "3 min",
        "2 h 5 min",
        "3 d 1 h",
    ]
    assert stream_summary(up_stream(), NOW) == "up for 42 s"
    down = StreamStatus(StreamState.DOWN, "heartbeat lost", since=NOW - 9, down_since=NOW - 12)
    assert stream_summary(down, NOW) == "down for 12 s: heartbeat lost"
    refused = StreamStatus(StreamState.REFUSED, "EGeneral:Permission denied")
    assert stream_summary(refused, NOW) == "refused: EGeneral:Permission denied"
    off = StreamStatus(StreamState.OFF, "KRAKENWATCH_STREAMS=0: polling only")
    assert stream_summary(off, NOW) == "off: KRAKENWATCH_STREAMS=0: polling only"
    assert stream_summary(StreamStatus(), NOW) == (
        "off: opens after the account's first successful call"
    )
    connecting = StreamStatus(StreamState.CONNECTING, reconnects=4)
    assert stream_summary(connecting, NOW) == "connecting (reconnect 4)"


def test_the_stream_in_figures() -> None:
    activity = StreamActivity({"heartbeat": 40, "executions": 12, "balances": 3}, NOW - 3)
    facts = stream_facts(account(stream=up_stream()), NOW, activity)
    assert facts.summary == "up for 42 s"
    assert (facts.reconnects, facts.tokens, facts.open_orders) == (2, 3, 2)
    assert facts.last_message == "3 s ago"
    assert facts.messages == "balances 3 · executions 12 · heartbeat 40"
    assert facts.connected_since.endswith("(42 s ago)")
    assert (facts.reconciled, facts.mismatches) == ("3 min 20 s ago", 1)
    never = stream_facts(account(), NOW)
    assert (never.connected_since, never.last_message, never.messages) == (
        "never",
        "never",
        "none yet",
    )


def test_without_a_stream_the_page_says_why_and_what_to_do() -> None:
    assert no_stream(account(stream=up_stream())) is None
    assert no_stream(account(stream=StreamStatus(StreamState.DOWN, "timeout"))) is None
    refused = no_stream(
        account(stream=StreamStatus(StreamState.REFUSED, "EGeneral:Permission denied"))
    )
    assert refused is not None
    assert "EGeneral:Permission denied" in refused.why
    assert "**Access WebSocket API**" in refused.what and "Retry now" in refused.what
    switched_off = no_stream(
        account(stream=StreamStatus(StreamState.OFF, "KRAKENWATCH_STREAMS=0: polling only"))
    )
    assert switched_off is not None and "unset `KRAKENWATCH_STREAMS`" in switched_off.what
    no_url = no_stream(
        account(stream=StreamStatus(StreamState.OFF, "KRAKEN_API_URL is invalid: nothing is sent"))
    )
    assert no_url is not None and "`KRAKEN_WS_AUTH_URL`" in no_url.what
    unknown = no_stream(account(stream=StreamStatus(StreamState.OFF, "stopped")))
    assert unknown is not None
    for remedy in ("Access WebSocket API", "KRAKEN_WS_AUTH_URL", "KRAKENWATCH_STREAMS"):
        assert remedy in unknown.what
    not_yet = no_stream(account())
    assert not_yet is not None and "first private call succeeds" in not_yet.what
    one_shot = no_stream(account(stream=StreamStatus(StreamState.OFF, ONE_SHOT)))
    assert one_shot is not None and "krakenwatch up" in one_shot.what


def test_open_orders_newest_first_with_their_age() -> None:
    frame = open_orders_frame(up_stream(), NOW)
    assert list(frame.columns) == [
        "pair",
        "side",
        "type",
        "volume",
        "price",
        "filled",
        "status",
        "age",
        "order id",
    ]
    assert list(frame["order id"]) == ["O2", "O1"]
    assert list(frame["price"]) == ["market", "50000.0"]
    assert list(frame["age"]) == ["20 s", "5 min"]
    assert open_orders_frame(StreamStatus(), NOW).empty
    assert order_counts(up_stream()) == "4 placed · 5 fill · 0 filled · 0 cancelled · 0 expired"


def test_rate_counters_against_the_threshold_over_80_percent_highlighted() -> None:
    assert [rate_level(s) for s in (None, 0.1, 0.79, 0.8, 0.99, 1.0, 1.2)] == [
        "threshold unknown",
        "ok",
        "ok",
        "near the limit",
        "near the limit",
        "at the limit",
        "at the limit",
    ]
    frame = rate_frame(up_stream())
    assert list(frame["pair"]) == ["SOL/USD", "XBT/USD", "ETH/USD", "DOT/USD"]  # busiest first
    assert list(frame["level"]) == ["at the limit", "near the limit", "ok", "threshold unknown"]
    rows = {line.split(" | ")[0].strip("| "): line for line in rate_table(frame).splitlines()[2:]}
    assert "**83 %**" in rows["XBT/USD"] and ":orange[" in rows["XBT/USD"]
    assert RATE_LIMIT_CODE in rows["XBT/USD"] and RATE_LIMIT_CODE in rows["SOL/USD"]
    assert ":red[" in rows["SOL/USD"] and "**100 %**" in rows["SOL/USD"]
    assert "| 10 % |" in rows["ETH/USD"] and RATE_LIMIT_CODE not in rows["ETH/USD"]
    assert "| unknown | – |" in rows["DOT/USD"]
    spec = rate_chart(frame).to_dict()
    bars, rules = spec["layer"]
    assert bars["encoding"]["color"]["scale"]["domain"][:3] == [
        "ok",
        "near the limit",
        "at the limit",
    ]
    shown = [row["pair"] for row in spec["datasets"][bars["data"]["name"]]]
    assert sorted(shown) == ["ETH/USD", "SOL/USD", "XBT/USD"]  # no bar without a threshold
    assert [row["share"] for row in spec["datasets"][rules["data"]["name"]]] == [0.8, 1.0]


def test_recent_orders_and_fills_newest_first() -> None:
    events = [
        order_event("placed", NOW - 30),
        ev.Event(ev.BALANCE, "MASTER", "2 assets", ts=NOW - 20),
        order_event("fill", NOW - 10, volume="0.0040", price="49990.0", order_type=None),
        order_event("cancelled", NOW - 5, volume=None, price=None),
    ]
    frame = order_events_frame(events)
    assert list(frame["event"]) == ["cancelled", "fill", "placed"]
    fill = frame.iloc[1]
    assert (fill["pair"], fill["side"], fill["volume"], fill["price"], fill["order id"]) == (
        "XBT/USD",
        "buy",
        "0.0040",
        "49990.0",
        "O1",
    )
    assert str(frame["time"].dtype).startswith("datetime64")
    assert order_events_frame([]).empty


def test_every_accounts_stream_in_one_table() -> None:
    refused = StreamStatus(StreamState.REFUSED, "EGeneral:Permission denied")
    text = streams_table([account(stream=up_stream()), account("USER:x", refused)], NOW)
    master, user = text.splitlines()[2:]
    assert "up for 42 s" in master and "| 2 |" in master and "SOL/USD 100 %" in master
    assert "4 placed · 5 fill" in master
    assert "refused: EGeneral:Permission denied" in user
    assert "| – | – | – |" in user  # no count made up without a stream


def test_the_overview_card_says_the_stream_open_orders_and_last_order() -> None:
    last = order_event("fill", NOW - 12, volume="0.0040", price="49990.0")
    line = stream_line(account(stream=up_stream()), NOW, last)
    assert line == (
        ":green[:material/sensors:] Stream up for 42 s · **2** open orders · "
        "last order: fill buy 0.0040 XBT/USD @ 49990.0, 12 s ago"
    )
    refused = StreamStatus(StreamState.REFUSED, "EGeneral:Permission denied")
    line = stream_line(account(stream=refused), NOW)
    assert line == ":orange[:material/block:] Stream refused: EGeneral:Permission denied"
    from dashboard.monitor.valuation import UsdPrices

    (card,) = account_cards([account(stream=up_stream())], NOW, UsdPrices({}, {}), {"MASTER": last})
    assert card.stream.startswith(":green[:material/sensors:] Stream up for 42 s")
    (plain,) = account_cards([account()], NOW, UsdPrices({}, {}))
    assert "open order" not in plain.stream and "last order" not in plain.stream


def test_the_timeline_reads_orders_stream_changes_and_mismatches() -> None:
    placed = order_event("placed", NOW - 30)
    events = [
        ev.Event(ev.NONCE_REFRESH, "MASTER", "refresh", ts=NOW - 40),
        placed,
        order_event("fill", NOW - 20, volume="0.0040", price="49990.0"),
        order_event("filled", NOW - 19),
        order_event("expired", NOW - 18),
        order_event("amended", NOW - 17),  # not an order event the pages show
        ev.Event(
            ev.STREAM,
            "MASTER",
            "stream up -> down",
            {"state": "down", "previous": "up", "reason": "heartbeat lost"},
            ts=NOW - 10,
        ),
        ev.Event(
            ev.BALANCE_MISMATCH,
            "MASTER",
            "REST Balance differs from the stream's: XXBT",
            {"assets": {"XXBT": {"stream": "0.5000", "rest": "0.6000"}, "KFEE": {"rest": "1"}}},
            ts=NOW - 5,
        ),
    ]
    marks = markers(events)
    assert list(marks["marker"]) == ["nonce refresh", "placed", "fill", "filled", "expired"]
    assert marks["detail"].iloc[2] == "fill buy 0.0040 XBT/USD @ 49990.0 (O1)"
    assert event_detail(placed) == "placed buy limit 0.0100 XBT/USD @ 50000.0 (O1)"
    details = list(events_frame(events)["detail"])  # newest first
    assert details[0] == (
        "REST Balance differs from the stream's: XXBT stream 0.5000, REST 0.6000; "
        "KFEE stream none, REST 1"
    )
    assert details[1] == "stream up -> down: heartbeat lost"
    segs = segments(
        [ev.Event(ev.STATE, "MASTER", "", {"state": "connected"}, ts=NOW - 60)], NOW - 60, NOW
    )
    spec = timeline_chart(segs, marks).to_dict()
    assert spec["resolve"]["scale"] == {"color": "independent", "shape": "independent"}
    points = spec["layer"][1]["encoding"]
    shown = ["nonce refresh", "placed", "fill", "filled", "expired"]
    assert points["shape"]["scale"]["domain"] == shown
    assert points["shape"]["scale"]["range"] == [MARKER_STYLES[m][0] for m in shown]
    assert points["color"]["scale"]["range"] == [MARKER_STYLES[m][1] for m in shown]
    assert len({MARKER_STYLES[m] for m in MARKER_STYLES}) == len(MARKER_STYLES)  # all distinct
    assert isinstance(marks["time"].iloc[0], pd.Timestamp)
