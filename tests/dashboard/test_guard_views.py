"""The trading guard's data for the pages, unit by unit (no Streamlit): the guard's events as
the monitor's and on the timeline, the Gateway page's tables and messages, and the stream's
trading counters handed to the gateway."""

from __future__ import annotations

from typing import Any

import pandas as pd

from broker import Execution, OrdersSnapshot, RateCount
from dashboard.checks.item import duration
from dashboard.config import load_settings
from dashboard.monitor import events as ev
from dashboard.monitor.board import AccountBoard
from dashboard.monitor.events import Event, Publisher
from dashboard.monitor.guard_link import guard_event
from dashboard.monitor.status import AccountStatus
from dashboard.monitor.streaming import StreamFeed
from dashboard.views.guard import (
    EVERY_CALLER,
    client_choices,
    client_of,
    counters_frame,
    dead_man_frame,
    dead_man_warnings,
    foreign_writers_frame,
    halt_problem,
    halt_rows,
    halted_message,
    resumed_message,
)
from dashboard.views.timeline import events_frame, markers, segments, timeline_chart
from gateway.credentials import ClientView
from gateway.guardview import (
    CANCEL_AFTER_FAILED,
    FOREIGN_WRITER,
    GUARD_EVENT_KINDS,
    HALT,
    RESUME,
    DeadManState,
    GuardEvent,
    GuardSnapshot,
    HaltRecord,
    PairCounter,
)
from testkit.sim import make_key

NOW = 1_000_000.0


def test_the_timeline_s_guard_kinds_are_the_guard_s() -> None:
    assert ev.GUARD_KINDS == GUARD_EVENT_KINDS
    assert (ev.HALT, ev.RESUME, ev.FOREIGN_WRITER, ev.CANCEL_AFTER_FAILED) == (
        HALT,
        RESUME,
        FOREIGN_WRITER,
        CANCEL_AFTER_FAILED,
    )
    assert set(GUARD_EVENT_KINDS) <= set(ev.KINDS)


def test_a_guard_event_becomes_the_monitor_s_with_its_reason_and_who_asked() -> None:
    halted = guard_event(
        GuardEvent(
            HALT,
            "MASTER",
            "halted MASTER/grid-bot (cli root@ops): incident",
            {"client": "grid-bot", "reason": "incident", "origin": "cli root@ops"},
            at=NOW - 1,
        ),
        NOW,
    )
    assert (halted.kind, halted.account, halted.ts) == (HALT, "MASTER", NOW - 1)
    assert halted.detail == "halted MASTER/grid-bot: incident (by cli root@ops)"
    assert halted.data == {"client": "grid-bot", "reason": "incident", "origin": "cli root@ops"}
    resumed = guard_event(
        GuardEvent(RESUME, "MASTER", "", {"client": None, "origin": "dashboard"}), NOW
    )
    assert resumed.detail == "resumed MASTER (by dashboard)"
    assert resumed.ts == NOW  # no time from the guard: the monitor's
    foreign = guard_event(
        GuardEvent(
            FOREIGN_WRITER,
            "USER:x",
            "Kraken refused the gateway's nonce on Balance",
            {"method": "Balance", "count": 2, "odd": object()},
            at=NOW,
        ),
        NOW,
    )
    assert foreign.detail == "Kraken refused the gateway's nonce on Balance"
    assert foreign.data["count"] == 2 and isinstance(foreign.data["odd"], str)  # JSON only
    failed = guard_event(
        GuardEvent(CANCEL_AFTER_FAILED, "MASTER", "", {"error": "EService:Unavailable"}), NOW
    )
    assert failed.detail == "dead man's switch of MASTER not re-armed: EService:Unavailable"


def test_the_guard_s_events_are_markers_and_lines_on_the_timeline() -> None:
    events = [
        Event(ev.STATE, "MASTER", "up", {"state": "connected"}, ts=NOW - 100),
        Event(
            ev.HALT,
            "MASTER",
            "halted MASTER: incident (by dashboard)",
            {"client": None, "reason": "incident", "origin": "dashboard"},
            ts=NOW - 50,
        ),
        Event(ev.RESUME, "MASTER", "x", {"client": None, "origin": "cli a@b"}, ts=NOW - 20),
        Event(ev.FOREIGN_WRITER, "MASTER", "another program", {"count": 1}, ts=NOW - 10),
    ]
    frame = events_frame(events)
    assert frame[["kind", "detail"]].values.tolist() == [
        ["foreign_writer", "another program"],
        ["resume", "resumed MASTER (by cli a@b)"],
        ["halt", "halted MASTER: incident (by dashboard)"],
        ["state", "up"],
    ]
    marks = markers(events)
    assert marks["marker"].tolist() == ["halt", "resume", "other writer"]
    chart = timeline_chart(segments(events, NOW - 200, NOW), marks).to_dict()
    shapes = [
        layer["encoding"]["shape"]["scale"]
        for layer in chart["layer"]
        if "shape" in layer.get("encoding", {})
    ]
    assert shapes == [
        {
            "domain": ["halt", "resume", "other writer"],
            "range": ["triangle-right", "triangle-right", "wedge"],
        }
    ]


def guard() -> GuardSnapshot:
    return GuardSnapshot(
        taken_at=NOW,
        halts=(
            HaltRecord("MASTER", None, "incident", "cli root@ops", NOW - 3700),
            HaltRecord("USER:x", "grid-bot", "runaway", "dashboard", NOW - 30),
        ),
        dead_man={
            "MASTER": DeadManState(
                "MASTER", 60.0, armed_at=NOW - 50, trigger_at=NOW + 10, last_bot_call_at=NOW - 50
            ),
            "USER:x": DeadManState(
                "USER:x",
                600.0,
                armed_at=NOW - 100,
                trigger_at=NOW + 500,
                failures=2,
                last_error="EService:Unavailable",
            ),
            "USER:y": DeadManState("USER:y", 120.0),
        },
        foreign_writers={"MASTER": 0, "USER:x": 4},
        foreign_writer_at={"USER:x": NOW - 90},
        trading={
            "MASTER": {"XBTUSD": PairCounter(45.0, 60.0), "ETHUSD": PairCounter(1.234, 60.0)},
            "USER:x": {},
        },
    )


def test_the_halts_in_force_as_the_page_lists_them() -> None:
    master, client = halt_rows(guard(), NOW)
    assert (master.key, master.scope, master.since, master.age) == (
        "MASTER/*",
        "MASTER (every caller)",
        "12:45:00 UTC",
        "1 h 1 min",
    )
    assert master.command == "krakenwatch gateway resume MASTER"
    assert (client.key, client.scope, client.client, client.origin) == (
        "USER:x/grid-bot",
        "USER:x/grid-bot",
        "grid-bot",
        "dashboard",
    )
    assert client.command == "krakenwatch gateway resume USER:x --client grid-bot"
    assert halt_rows(GuardSnapshot(NOW), NOW) == []


def test_the_halt_form_s_choices_checks_and_messages() -> None:
    clients = [
        ClientView("zeta", "MASTER", None, "Ab…Cd"),
        ClientView("alpha", "MASTER", ("AddOrder",), "Ef…Gh"),
        ClientView("other", "USER:x", None, "Ij…Kl"),
    ]
    assert client_choices(clients, "MASTER") == [EVERY_CALLER, "alpha", "zeta"]
    assert client_choices(clients, "USER:y") == [EVERY_CALLER]
    assert client_of(EVERY_CALLER) is None and client_of(None) is None
    assert client_of("alpha") == "alpha"
    assert halt_problem("incident", False) is not None  # no confirmation, whatever the reason
    assert "reason is required" in (halt_problem(" \t", True) or "")
    assert halt_problem("incident", True) is None
    record = HaltRecord("MASTER", "alpha", "incident", "dashboard", NOW)
    assert halted_message(record).startswith("Halted MASTER/alpha (client alpha): ")
    assert halted_message(record).endswith("Reason: incident")
    assert "every caller" in halted_message(HaltRecord("MASTER", None, "x", "dashboard", NOW))
    assert resumed_message("MASTER", True) == "Resumed MASTER: the gateway passes its orders again."
    assert "not halted any more" in resumed_message("MASTER", False)


def test_the_dead_man_s_switches_with_their_countdown_and_trouble() -> None:
    frame = dead_man_frame(guard(), NOW)
    rows: list[list[Any]] = frame.values.tolist()
    assert rows[:2] == [
        ["MASTER", 10.0, 60.0, "13:45:50 UTC", "13:45:50 UTC", 0, ""],
        ["USER:x", 500.0, 600.0, "13:45:00 UTC", "-", 2, "EService:Unavailable"],
    ]
    not_armed = rows[2]
    assert not_armed[0] == "USER:y" and pd.isna(not_armed[1])  # no countdown before a re-arm
    assert not_armed[2:] == [120.0, "-", "-", 0, ""]
    warnings = dead_man_warnings(guard(), NOW)
    assert len(warnings) == 2
    assert warnings[0].startswith("MASTER: Kraken cancels the account's open orders in 10 s")
    assert warnings[1] == (
        "USER:x: the dead man's switch could not be re-armed (2 failure(s)): EService:Unavailable"
    )
    assert dead_man_frame(GuardSnapshot(NOW), NOW).empty


def test_the_trading_counters_and_the_other_writers() -> None:
    counters = counters_frame(guard())
    assert counters.values.tolist() == [
        ["MASTER", "ETHUSD", 1.23, 60.0, "2%"],
        ["MASTER", "XBTUSD", 45.0, 60.0, "75%"],
    ]
    writers = foreign_writers_frame(guard(), NOW)
    assert writers.values.tolist() == [["USER:x", 4, "13:45:10 UTC", "1 min 30 s ago"]]
    assert foreign_writers_frame(GuardSnapshot(NOW, foreign_writers={"MASTER": 0}), NOW).empty
    assert [duration(s) for s in (-1, 42, 600, 3 * 3600, 3 * 86400)] == [
        "0 s",
        "42 s",
        "10 min",
        "3 h",
        "3 d",
    ]


def execution(exec_type: str, ratecount: float | None, **fields: Any) -> Execution:
    base: dict[str, Any] = {
        "account": "MASTER",
        "exec_type": exec_type,
        "order_id": "O1",
        "symbol": "BTC/USD",
        "side": "buy",
        "order_type": "limit",
        "order_qty": "0.001",
        "limit_price": "100",
        "order_status": "new",
        "last_qty": None,
        "last_price": None,
        "cost": None,
        "fees": (),
        "cum_qty": None,
        "timestamp": "2026-12-06T21:04:39.630063Z",
        "ratecount": ratecount,
        "at": NOW,
    }
    return Execution(**{**base, **fields})


def test_the_stream_hands_kraken_s_trading_counters_to_the_gateway() -> None:
    status = AccountStatus("MASTER", "AbCd…wXyZ", "k", "us", "connected", 0.0)  # type: ignore[arg-type]
    published: list[Event] = []
    told: list[tuple[str, str, float]] = []
    board = AccountBoard([status], Publisher(published.append, clock=lambda: NOW))
    feed = StreamFeed(
        "MASTER",
        board,
        Publisher(published.append, clock=lambda: NOW),
        on_counter=lambda *said: told.append(said),
    )
    feed(RateCount("MASTER", "BTC/USD", 12.5, 60, NOW))
    feed(execution("new", 13.5))
    feed(execution("new", None, order_id="O2"))  # no counter on this one: nothing to tell
    assert board.stream("MASTER").rate_counters["BTC/USD"].count == 13.5  # the page's, as before
    # a snapshot's old trades are told late: their counters are old, never handed on
    old = execution("trade", 40.0, order_id="O3", exec_id="T1", last_qty="0.001")
    feed(OrdersSnapshot("MASTER", (old,), NOW))
    feed(OrdersSnapshot("MASTER", (execution("trade", 41.0, exec_id="T2"),), NOW))
    assert told == [("MASTER", "BTC/USD", 12.5), ("MASTER", "BTC/USD", 13.5)]

    # without a gateway the feed works as it always did
    quiet = StreamFeed("MASTER", board, Publisher(published.append, clock=lambda: NOW))
    quiet(RateCount("MASTER", "ETH/USD", 2.0, 60, NOW))
    assert board.stream("MASTER").rate_counters["ETH/USD"].count == 2.0


def test_the_settings_page_shows_each_account_s_dead_man_s_switch() -> None:
    (key, secret), (other, other_secret) = make_key("dms-a"), make_key("dms-b")
    env = {
        "KRAKEN_API_URL": "http://127.0.0.1:9",
        "KRAKEN_MASTER_API_KEY": key,
        "KRAKEN_MASTER_API_SECRET": secret,
        "KRAKEN_MASTER_CANCEL_AFTER": "60",
        "KRAKEN_USER_X_API_KEY": other,
        "KRAKEN_USER_X_API_SECRET": other_secret,
    }
    shown = dict(load_settings(env, use_dotenv=False).variables())
    assert shown["KRAKEN_MASTER_CANCEL_AFTER"] == "60 s (the gateway's dead man's switch)"
    assert shown["KRAKEN_USER_X_CANCEL_AFTER"] == "off"
