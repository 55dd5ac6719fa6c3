"""The stream on the pages, run for real with AppTest: the Trading page against a live service
whose accounts stream from the simulator (an order placed, filled, cancelled through the
simulator's own hooks), the Trading page without a stream, the Overview's stream line, and the
Timeline's orders from a known store."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

from dashboard.config import load_settings
from dashboard.monitor import events as ev
from dashboard.monitor.streamstatus import StreamState
from dashboard.views.markdown import escape
from dashboard.web.service import Service
from dashboard.web.streamlit_app import set_service
from simulator import Simulator, builtin_scenario
from testkit.net import eventually
from testkit.sim import master_environment, one_key_simulator, scenario_simulator
from tests.dashboard.test_pages import run_page

UI = Path(__file__).resolve().parents[2] / "dashboard" / "ui"


def page_text(at: AppTest) -> str:
    parts: list[Any] = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [i.value for i in at.info] + [w.value for w in at.warning]
    parts += [f"{m.label}: {m.value}" for m in at.metric]
    return "\n".join(str(p) for p in parts)


def chart_specs(at: AppTest) -> list[dict[str, Any]]:
    """Each chart's Vega-Lite spec, with its named datasets (sent apart, as Arrow) put back in
    as ``spec["datasets"][name]``: a list of rows."""
    charts = at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")
    specs = []
    for chart in charts:
        spec = json.loads(chart.proto.spec)
        spec["datasets"] = {
            d.name: convert_arrow_bytes_to_pandas_df(d.data.data).to_dict("records")
            for d in chart.proto.datasets
        }
        specs.append(spec)
    return specs


@contextmanager
def installed(settings_env: dict[str, str], *, start: bool = True) -> Iterator[Service]:
    service = Service.create(load_settings(settings_env, use_dotenv=False))
    try:
        if start:
            service.start()
        set_service(service)
        yield service
    finally:
        set_service(None)
        service.stop()


# -- without a live stream --------------------------------------------------------------------


def test_the_router_serves_the_trading_page(tmp_path: Path) -> None:
    with installed({"KRAKENWATCH_DATA_DIR": str(tmp_path)}, start=False):
        at = AppTest.from_file(str(UI / "main.py"), default_timeout=30)
        at.run()
        at.switch_page("screens/trading.py").run()
        assert not at.exception, [e.value for e in at.exception]
        assert [t.value for t in at.title] == ["Trading"]
        assert "No Kraken account is configured" in page_text(at)


def test_streams_switched_off_the_page_says_why_and_what_to_do(tmp_path: Path) -> None:
    with one_key_simulator("no-streams") as (sim, key, secret):
        env = master_environment(
            sim.url,
            key,
            secret,
            KRAKENWATCH_DATA_DIR=str(tmp_path),
            KRAKENWATCH_POLL_INTERVAL="1",
            KRAKENWATCH_STREAMS="0",
        )
        with installed(env) as service:
            eventually(lambda: service.monitor.snapshot().account("MASTER").last_success_at)
            at = run_page("trading.py")
            assert [i.value for i in at.info] == [
                "**MASTER has no stream:** KRAKENWATCH_STREAMS=0: polling only."
            ]
            text = page_text(at)
            assert "**What to do:** Streams are switched off: unset `KRAKENWATCH_STREAMS`" in text
            assert not at.dataframe and not at.metric, "no empty tables without a stream"
            assert not at.button, "nothing to retry: the stream is switched off, not refused"
            summary = at.markdown[0].value
            assert "| **MASTER** | :gray[:material/sensors_off:] off: KRAKENWATCH_STREAMS=0" in (
                summary
            )
            overview = page_text(run_page("overview.py"))
            assert "Stream off: KRAKENWATCH_STREAMS=0: polling only" in overview
            assert "open order" not in overview  # not known without a stream: no 0 made up


def test_the_timeline_shows_orders_stream_changes_and_mismatches(tmp_path: Path) -> None:
    env = {
        "KRAKEN_MASTER_API_KEY": "SIM" + "k" * 53,
        "KRAKEN_MASTER_API_SECRET": "c2VjcmV0c2VjcmV0",
        "KRAKENWATCH_DATA_DIR": str(tmp_path),
    }
    with installed(env, start=False) as service:
        now = time.time()
        order = {"order_id": "OQCLML-BW3P3-BUCMWZ", "pair": "XBT/USD", "side": "buy"}
        service.store.append_many(
            [
                ev.Event(ev.STATE, "MASTER", "up", {"state": "connected"}, ts=now - 600),
                ev.Event(ev.NONCE_REFRESH, "MASTER", "baseline", {"baseline": 1}, ts=now - 599),
                ev.Event(
                    ev.STREAM,
                    "MASTER",
                    "stream off -> up",
                    {"state": "up", "previous": "connecting", "reason": ""},
                    ts=now - 590,
                ),
                ev.Event(
                    ev.ORDER,
                    "MASTER",
                    "placed",
                    {**order, "event": "placed", "order_type": "limit", "volume": "0.0100"}
                    | {"price": "50000.0"},
                    ts=now - 500,
                ),
                ev.Event(
                    ev.ORDER,
                    "MASTER",
                    "fill",
                    {**order, "event": "fill", "volume": "0.0040", "price": "50000.0"},
                    ts=now - 400,
                ),
                ev.Event(
                    ev.ORDER,
                    "MASTER",
                    "cancelled",
                    {**order, "event": "cancelled", "volume": "0.0100", "price": "50000.0"},
                    ts=now - 300,
                ),
                ev.Event(
                    ev.BALANCE_MISMATCH,
                    "MASTER",
                    "REST Balance differs from the stream's: XXBT",
                    {"assets": {"XXBT": {"stream": "0.5000", "rest": "0.5040"}}},
                    ts=now - 200,
                ),
            ]
        )
        at = run_page("timeline.py")
        frame = at.dataframe[0].value
        details = dict(zip(frame["kind"], frame["detail"], strict=False))
        assert details["balance_mismatch"] == (
            "REST Balance differs from the stream's: XXBT stream 0.5000, REST 0.5040"
        )
        assert details["stream"] == "stream connecting -> up"
        orders = list(frame[frame["kind"] == "order"]["detail"])
        assert orders == [
            "cancelled buy 0.0100 XBT/USD @ 50000.0 (OQCLML-BW3P3-BUCMWZ)",
            "fill buy 0.0040 XBT/USD @ 50000.0 (OQCLML-BW3P3-BUCMWZ)",
            "placed buy limit 0.0100 XBT/USD @ 50000.0 (OQCLML-BW3P3-BUCMWZ)",
        ]
        (spec,) = chart_specs(at)
        (points,) = [layer for layer in spec["layer"] if layer["mark"]["type"] == "point"]
        assert points["encoding"]["shape"]["scale"]["domain"] == [
            "nonce refresh",
            "placed",
            "fill",
            "cancelled",
        ]
        drawn = spec["datasets"][points["data"]["name"]]
        assert [d["marker"] for d in drawn].count("fill") == 1
        kinds = at.multiselect[1]
        assert {"order", "stream", "balance_mismatch"} <= set(kinds.options)
        kinds.set_value(["order"]).run()
        assert list(at.dataframe[0].value["kind"]) == ["order"] * 3


# -- a live stream ----------------------------------------------------------------------------


def stream_up(service: Service, label: str) -> bool:
    return service.monitor.snapshot().account(label).stream.state == StreamState.UP


def recent_orders(at: AppTest) -> pd.DataFrame:
    """The "Recent orders and fills" table of the page's first account section."""
    frames = [d.value for d in at.dataframe]
    (found,) = [f for f in frames if "event" in f.columns]
    return found


def open_orders(at: AppTest) -> pd.DataFrame | None:
    found = [d.value for d in at.dataframe if "filled" in d.value.columns]
    return found[0] if found else None


@contextmanager
def streaming(tmp_path: Path, scenario: str = "healthy") -> Iterator[Simulator]:
    """A service whose accounts stream from the simulator's WebSocket endpoint, once MASTER's
    stream is up."""
    with scenario_simulator(scenario) as (sim, env):
        env = {
            **env,
            "KRAKEN_WS_AUTH_URL": sim.ws_url,
            "KRAKENWATCH_DATA_DIR": str(tmp_path / "data"),
            "KRAKENWATCH_POLL_INTERVAL": "1",
        }
        with installed(env) as service:
            eventually(lambda: stream_up(service, "MASTER"), what="MASTER's stream to be up")
            yield sim


def master_key(scenario: str = "healthy") -> str:
    return next(k.key for k in builtin_scenario(scenario).keys if k.account == "MASTER")


def shown(at: AppTest, probe: Callable[[AppTest], object], what: str) -> AppTest:
    """Rerun the page until ``probe`` finds what it waits for on it (its widgets kept)."""

    def rerun() -> object:
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return probe(at)

    eventually(rerun, timeout=30, interval=0.2, what=what)
    return at


def order_row(at: AppTest, txid: str) -> pd.Series | None:
    frame = open_orders(at)
    if frame is None or txid not in set(frame["order id"]):
        return None
    row: pd.Series = frame[frame["order id"] == txid].iloc[0]
    return row


def order_history(at: AppTest, txid: str) -> list[str]:
    """The events of ``txid`` in the page's recent orders, newest first."""
    frames = [d.value for d in at.dataframe if "event" in d.value.columns]
    if not frames:
        return []
    (frame,) = frames
    return list(frame[frame["order id"] == txid]["event"])


def recent_line(at: AppTest) -> str:
    """The heading of the recent orders, with the counts since start (from the stream)."""
    return next((m.value for m in at.markdown if m.value.startswith("**Recent orders")), "")


def test_the_trading_page_follows_an_order_from_placed_to_filled(tmp_path: Path) -> None:
    with streaming(tmp_path) as sim:
        key = master_key()
        at = run_page("trading.py")
        assert [t.value for t in at.title] == ["Trading"]
        summary = at.markdown[0].value
        for label in ("MASTER", "USER:daivon", "USER:tania_gilbert"):
            assert f"| **{label}** | :green[:material/sensors:] up for " in summary
        at.multiselect[0].set_value(["MASTER"]).run()  # one account's section
        assert [m.value for m in at.metric if m.label == "Stream"] == ["up"]
        assert "No open order." in [c.value for c in at.caption]
        assert not at.info, "the stream is up: nothing to explain"

        txid = sim.place_order(key, "XBTUSD", "buy", "0.0100", price="10000")
        shown(
            at,
            lambda at: order_row(at, txid) is not None and order_history(at, txid) == ["placed"],
            "the open order on the page",
        )
        row = order_row(at, txid)
        assert row is not None
        pair = row["pair"]
        assert pair in ("XBT/USD", "BTC/USD"), pair  # Kraken's v2 symbol of XXBTZUSD
        assert (row["side"], row["type"]) == ("buy", "limit")
        assert (Decimal(row["volume"]), Decimal(row["price"]), Decimal(row["filled"])) == (
            Decimal("0.01"),
            Decimal(10000),
            0,
        )
        assert [m.value for m in at.metric if m.label == "Open orders"] == ["1"]
        assert order_history(at, txid) == ["placed"]
        counters = next(m.value for m in at.markdown if m.value.startswith("| pair | counter |"))
        assert f"| {escape(row['pair'])} | 1 | 60 | 2 % | :green[ok] |" in counters

        sim.fill_order(key, txid, "0.004")
        shown(
            at,
            lambda at: (
                order_history(at, txid) == ["fill", "placed"]
                and (row := order_row(at, txid)) is not None
                and row["status"] != "new"
            ),
            "the partial fill",
        )
        row = order_row(at, txid)
        assert row is not None and Decimal(row["filled"]) == Decimal("0.004")
        frame = next(d.value for d in at.dataframe if "event" in d.value.columns)
        fill = frame[frame["event"] == "fill"].iloc[0]
        assert (Decimal(fill["volume"]), Decimal(fill["price"])) == (Decimal("0.004"), 10000)

        sim.fill_order(key, txid)
        shown(
            at,
            lambda at: order_history(at, txid)[:1] == ["filled"] and order_row(at, txid) is None,
            "the order filled",
        )
        assert order_row(at, txid) is None
        assert order_history(at, txid) == ["filled", "fill", "fill", "placed"]
        assert "No open order." in [c.value for c in at.caption]

        cancelled = sim.place_order(key, "XBTUSD", "sell", "0.0100", price="900000")
        sim.cancel_order(key, cancelled)
        shown(
            at,
            lambda at: (
                order_history(at, cancelled) == ["cancelled", "placed"]
                and "1 cancelled" in recent_line(at)
            ),
            "the cancel",
        )
        assert recent_line(at) == (
            "**Recent orders and fills** (2 placed · 2 fill · 1 filled · 1 cancelled · 0 expired "
            "since start)"
        )

        text = page_text(run_page("overview.py"))
        assert "Stream up for " in text
        assert re.search(r"last order: cancelled sell [\d.]+ \S+ @ 900000(\.0)?, \d+ s ago", text)

        timeline = run_page("timeline.py")
        (spec,) = chart_specs(timeline)
        (points,) = [layer for layer in spec["layer"] if layer["mark"]["type"] == "point"]
        drawn = [d["marker"] for d in spec["datasets"][points["data"]["name"]]]
        assert sorted(m for m in drawn if m != "nonce refresh") == sorted(
            ["placed", "fill", "fill", "filled", "placed", "cancelled"]
        )
        events = timeline.dataframe[0].value
        details = list(events[events["kind"] == "order"]["detail"])
        placed = re.fullmatch(r"placed buy limit ([\d.]+) (\S+) @ ([\d.]+) \((\S+)\)", details[-1])
        assert placed is not None, details[-1]
        assert (Decimal(placed[1]), placed[2], Decimal(placed[3]), placed[4]) == (
            Decimal("0.01"),
            pair,
            10000,
            txid,
        )


def test_a_pair_near_kraken_s_trading_limit_is_highlighted(tmp_path: Path) -> None:
    with streaming(tmp_path) as sim:
        key = master_key()
        placed = [sim.place_order(key, "XBTUSD", "buy", "0.0001", price="10000") for _ in range(54)]
        last = placed[-1]

        def near(at: AppTest) -> str | None:
            tables = [m.value for m in at.markdown if m.value.startswith("| pair | counter |")]
            return next((t for t in tables if "near the limit" in t), None)

        at = AppTest.from_file(str(UI / "screens" / "trading.py"), default_timeout=30)
        at.run()
        at.multiselect[0].set_value(["MASTER"]).run()
        shown(at, lambda at: order_row(at, last) is not None and near(at), "the counter near 60")
        table = near(at)
        assert table is not None
        (row,) = [line for line in table.splitlines()[2:]]
        counter, threshold = (float(cell) for cell in row.split(" | ")[1:3])
        assert threshold == 60 and counter >= 0.8 * 60, row
        assert ":orange[**:material/warning: near the limit**]" in row
        assert "EOrder:Rate limit exceeded" in row
        busiest = re.search(r" (\d+) % \|$", at.markdown[0].value.splitlines()[2])
        assert busiest is not None and int(busiest[1]) >= 80, at.markdown[0].value


def test_a_key_without_the_websocket_permission_is_explained_then_retried(tmp_path: Path) -> None:
    with one_key_simulator("no-ws", permissions=["funds", "orders", "trade"]) as (sim, key, secret):
        env = master_environment(
            sim.url,
            key,
            secret,
            KRAKEN_WS_AUTH_URL=sim.ws_url,
            KRAKENWATCH_DATA_DIR=str(tmp_path),
            KRAKENWATCH_POLL_INTERVAL="1",
        )
        with installed(env) as service:
            refused = eventually(
                lambda: (
                    (s := service.monitor.snapshot().account("MASTER").stream).state
                    == StreamState.REFUSED
                    and s
                ),
                what="the stream refused",
            )
            at = run_page("trading.py")
            assert at.info[0].value == f"**MASTER has no stream:** {escape(refused.reason)}."
            assert "Grant the key **Access WebSocket API**" in page_text(at)
            assert not at.dataframe and not at.metric
            sim.update_key(key, permissions=["funds", "orders", "trade", "websocket"])
            at.button(key="stream-retry-MASTER").click().run()
            assert not at.exception
            eventually(lambda: stream_up(service, "MASTER"), what="the stream up after a retry")
            shown(at, lambda at: not at.info and at.metric, "the stream's section")
            assert [m.value for m in at.metric if m.label == "Stream"] == ["up"]
