"""The private stream client against the simulator's WebSocket v2 endpoint, over real WebSockets
on 127.0.0.1. Every stream is given the simulator's URL: no test can reach the real Kraken."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from websockets.asyncio.server import ServerConnection, serve

from broker import (
    AccountStream,
    Backoff,
    BalancesSnapshot,
    BalanceUpdate,
    ConfigurationError,
    Execution,
    Heartbeat,
    InvalidNonceError,
    KrakenClient,
    KrakenError,
    OrdersSnapshot,
    RateCount,
    RateLimitError,
    ServiceUnavailableError,
    StreamEvent,
    StreamHub,
    StreamStateChanged,
    SystemStatus,
    TemporaryLockoutError,
    stream_events,
    with_rest_names,
)
from simulator import KeySpec, Scenario, Simulator
from testkit.sim import make_key, one_key_simulator

E = TypeVar("E")
FAST = Backoff(0.05, 0.5)


class Events:
    """A thread-safe ``on_event`` that remembers everything and can be waited on."""

    def __init__(self) -> None:
        self.items: list[StreamEvent] = []
        self._changed = threading.Condition()

    def __call__(self, event: StreamEvent) -> None:
        with self._changed:
            self.items.append(event)
            self._changed.notify_all()

    def of(self, kind: type[E]) -> list[E]:
        with self._changed:
            return [e for e in self.items if isinstance(e, kind)]

    def states(self) -> list[str]:
        return [e.state for e in self.of(StreamStateChanged)]

    def wait(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        with self._changed:
            return self._changed.wait_for(predicate, timeout)

    def first(self, kind: type[E], test: Callable[[E], bool] = lambda _: True) -> E:
        found: list[E] = []

        def seen() -> bool:
            found[:] = [e for e in self.items if isinstance(e, kind) and test(e)]
            return bool(found)

        assert self.wait(seen), f"no {kind.__name__} within 5 s; got {self.items[-5:]}"
        return found[0]


def until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes (for simulator counters)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def client_for(
    sim: Simulator, key: str, secret: str, store: Path, account: str = "MASTER"
) -> KrakenClient:
    return KrakenClient(key, secret, account=account, base_url=sim.url, store_dir=store)


@contextmanager
def hub() -> Iterator[StreamHub]:
    before = set(threading.enumerate())
    with StreamHub() as h:
        yield h
    assert not h.thread.is_alive()
    assert {
        t for t in threading.enumerate() if t.name.startswith("kraken-stream")
    } - before == set()


def decimals(balances: dict[str, str]) -> dict[str, Decimal]:
    return {asset: Decimal(amount) for asset, amount in balances.items()}


# -- data ------------------------------------------------------------------------------------


def test_snapshots_then_the_events_of_a_fill(tmp_path: Path) -> None:
    with one_key_simulator("stream-fill", balances={"ZUSD": "1000.0000"}) as (sim, key, secret):
        resting = sim.place_order(key, "XBTUSD", "buy", "0.001", price="25000")
        client = client_for(sim, key, secret, tmp_path)
        events = Events()
        with hub() as h:
            handle = h.open(client, events, url=sim.ws_url)
            assert handle.wait_for("up", timeout=5), handle.info()
            status = events.first(SystemStatus)
            assert status.system == "online"
            snapshot = events.first(BalancesSnapshot)
            rest = client.call_private("Balance")
            assert decimals(with_rest_names(snapshot.balances, rest)) == decimals(rest)
            orders = events.first(OrdersSnapshot)
            assert [o.order_id for o in orders.orders] == [resting]
            assert orders.orders[0].symbol == "BTC/USD"
            assert Decimal(orders.orders[0].limit_price or "0") == 25000

            txid = sim.place_order(key, "XBTUSD", "buy", "0.01", price="30000")
            sim.fill_order(key, txid)
            events.first(Execution, lambda e: e.order_id == txid and e.exec_type == "filled")
            kinds = [e.exec_type for e in events.of(Execution) if e.order_id == txid]
            assert kinds == ["pending_new", "new", "trade", "filled"]
            trade = next(e for e in events.of(Execution) if e.exec_type == "trade")
            assert (trade.symbol, trade.side) == ("BTC/USD", "buy")
            assert (Decimal(trade.last_qty or "0"), Decimal(trade.last_price or "0")) == (
                Decimal("0.01"),
                Decimal("30000"),
            )
            assert trade.fees and trade.fees[0][0] == "USD"
            rate = events.first(RateCount)
            assert rate.symbol == "BTC/USD" and rate.max_count is not None and rate.count >= 0

            def updated(asset: str) -> Decimal:
                entry = events.first(BalanceUpdate, lambda e: e.asset == asset)
                assert entry.kind == "trade" and entry.ledger_id
                return Decimal(entry.balance)

            rest = decimals(client.call_private("Balance"))
            assert updated("USD") == rest["ZUSD"]
            assert updated("BTC") == rest["XXBT"] == Decimal("0.01")
            assert events.first(Heartbeat).account == "MASTER"
            info = handle.info()
            assert info.connected_since is not None and info.last_message_at is not None
            assert info.last_message_at >= info.connected_since
            assert (info.tokens, info.reconnects, info.malformed) == (1, 0, 0)


# -- permission ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("permissions", "said"),
    [
        (["funds", "orders", "trade"], "Permission denied"),  # the token call is refused
        (["orders", "websocket"], "subscribe balances: EAccount:Invalid permissions"),
    ],
)
def test_refused_without_permission_and_no_retry_storm(
    tmp_path: Path, permissions: list[str], said: str
) -> None:
    with one_key_simulator("stream-refused", permissions=permissions) as (sim, key, secret):
        client = client_for(sim, key, secret, tmp_path)
        events = Events()
        with hub() as h:
            # a backoff of 10 ms: a stream that kept trying would try many times below
            handle = h.open(client, events, url=sim.ws_url, backoff=Backoff(0.01, 0.01))
            assert handle.wait_for("refused", timeout=5), handle.info()
            assert said in (handle.reason or "")
            assert not until(lambda: sim.stats(key).requests > 1, timeout=0.5)
            assert (handle.tokens, handle.reconnects, sim.stats(key).requests) == (1, 0, 1)
            assert "up" not in events.states()
            # the operator grants the permission, then restarts the stream
            sim.update_key(key, permissions=["funds", "orders", "websocket"])
            handle.restart()
            assert handle.wait_for("up", timeout=5), handle.info()
            assert handle.tokens == 2


# -- reconnects ------------------------------------------------------------------------------


def test_a_dropped_stream_reconnects_with_a_fresh_token_and_a_new_snapshot(tmp_path: Path) -> None:
    with one_key_simulator("stream-drop") as (sim, key, secret):
        client = client_for(sim, key, secret, tmp_path)
        events = Events()
        with hub() as h:
            handle = h.open(client, events, url=sim.ws_url)
            assert handle.wait_for("up", timeout=5)
            first_since = handle.connected_since
            assert sim.drop_streams(key) == 1
            dropped = time.monotonic()
            assert handle.wait_for("down", "connecting", timeout=5)
            assert handle.wait_for("up", timeout=5), handle.info()
            assert time.monotonic() - dropped < 5.0
            assert events.states() == ["connecting", "up", "down", "connecting", "up"]
            down = events.of(StreamStateChanged)[2]
            assert down.reason == "connection lost"
            assert (handle.tokens, handle.reconnects) == (2, 1)
            stats = sim.stream_stats(key)
            assert (stats.tokens_issued, stats.connections_opened, stats.connections_open) == (
                2,
                2,
                1,
            )
            # the snapshots follow their acknowledgements
            assert events.wait(lambda: len(events.of(OrdersSnapshot)) == 2)
            assert len(events.of(BalancesSnapshot)) == 2
            assert handle.connected_since is not None and first_since is not None
            assert handle.connected_since > first_since


def test_restart_drops_a_healthy_connection_for_a_fresh_one(tmp_path: Path) -> None:
    with one_key_simulator("stream-restart") as (sim, key, secret):
        client = client_for(sim, key, secret, tmp_path)
        events = Events()
        with hub() as h:
            handle = h.open(
                client, events, url=sim.ws_url, backoff=Backoff(30.0, 30.0, random=lambda: 1.0)
            )
            assert handle.wait_for("up", timeout=5)
            handle.restart()
            # no backoff wait after a restart (the backoff here would wait up to 30 s)
            events.first(StreamStateChanged, lambda e: e.state == "up" and e.tokens == 2)
            assert events.states() == ["connecting", "up", "down", "connecting", "up"]
            assert events.of(StreamStateChanged)[2].reason == "restarting"
            assert (
                sim.wait_for_streams(key, lambda s: s.connections_open == 1).connections_opened == 2
            )


def test_a_stalled_stream_is_caught_by_the_watchdog(tmp_path: Path) -> None:
    with one_key_simulator("stream-stall", ws_heartbeat_s=0.1) as (sim, key, secret):
        client = client_for(sim, key, secret, tmp_path)
        events = Events()
        with hub() as h:
            handle = h.open(
                client, events, url=sim.ws_url, heartbeat_timeout_s=2.0, ping_interval_s=0.2
            )
            assert handle.wait_for("up", timeout=5)
            try:
                assert sim.stall_streams(key) == 1
                stalled = time.monotonic()
                down = events.first(StreamStateChanged, lambda e: e.state == "down")
                assert down.reason == "no message for 2 s"
                # 20 heartbeats missed, not one late one (a busy machine stays well inside)
                assert 1.5 < time.monotonic() - stalled < 15.0
                events.first(StreamStateChanged, lambda e: e.state == "up" and e.tokens == 2)
            finally:
                sim.resume_streams()
            assert handle.reconnects == 1


def test_an_invalid_session_costs_a_fresh_token(tmp_path: Path) -> None:
    with one_key_simulator("stream-session") as (sim, key, secret):
        client = client_for(sim, key, secret, tmp_path)
        events = Events()
        with hub() as h:
            handle = h.open(client, events, url=sim.ws_url)
            assert handle.wait_for("up", timeout=5)
            assert sim.invalidate_sessions(key) == 1
            down = events.first(StreamStateChanged, lambda e: e.state == "down")
            assert "ESession:Invalid session" in (down.reason or "")
            events.first(StreamStateChanged, lambda e: e.state == "up" and e.tokens == 2)
            assert sim.stream_stats(key).tokens_issued == 2
            assert sim.stats(key).invalid_nonce == 0


def test_a_refused_handshake_is_retried_with_backoff(tmp_path: Path) -> None:
    with one_key_simulator("stream-503") as (sim, key, secret):
        client = client_for(sim, key, secret, tmp_path)
        events = Events()
        sim.refuse_streams(True)
        with hub() as h:
            handle = h.open(client, events, url=sim.ws_url, backoff=FAST)
            down = events.first(StreamStateChanged, lambda e: e.state == "down")
            assert "cannot connect" in (down.reason or "") and "503" in (down.reason or "")
            assert events.wait(lambda: handle.reconnects >= 2)
            sim.refuse_streams(False)
            assert handle.wait_for("up", timeout=5), handle.info()
            assert handle.tokens == handle.reconnects + 1 == sim.stream_stats(key).tokens_issued


# -- lifecycle -------------------------------------------------------------------------------


def test_stop_is_prompt_and_clean(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with one_key_simulator("stream-stop") as (sim, key, secret):
        client = client_for(sim, key, secret, tmp_path)
        events = Events()
        with hub() as h:
            handle = h.open(client, events, url=sim.ws_url)
            assert handle.wait_for("up", timeout=5)
            started = time.monotonic()
            assert handle.stop(timeout=3.0)
            # prompt: no heartbeat timeout (5 s) or backoff (up to 30 s) is waited out
            assert time.monotonic() - started < 4.0
            assert handle.state == "stopped" and not handle.running
            assert events.states()[-1] == "stopped" and "down" not in events.states()
            sim.wait_for_streams(key, lambda s: s.connections_open == 0, timeout=5)
            assert h.handles == []
        gc.collect()
    assert not [r for r in caplog.records if r.name == "asyncio" and r.levelno >= logging.ERROR]
    assert "Task was destroyed" not in caplog.text


def test_closing_the_hub_stops_streams_in_every_state(tmp_path: Path) -> None:
    """Streams connecting, up, refused and backing off all end when the hub closes."""
    key2, secret2 = make_key("stream-close-2")
    refused = KeySpec(key=key2, secret=secret2, name="refused", permissions={"funds"})
    with one_key_simulator("stream-close") as (sim, key, secret):
        sim.add_key(refused)
        events = Events()
        h = StreamHub()
        up = h.open(client_for(sim, key, secret, tmp_path), events, url=sim.ws_url)
        no = h.open(client_for(sim, key2, secret2, tmp_path, "USER:no"), events, url=sim.ws_url)
        nowhere = h.open(
            client_for(sim, key, secret, tmp_path, "USER:nowhere"),
            events,
            url="ws://127.0.0.1:9/v2",
            backoff=Backoff(30.0, 30.0, random=lambda: 1.0),
        )
        assert up.wait_for("up", timeout=5) and no.wait_for("refused", timeout=5)
        assert nowhere.wait_for("down", timeout=5)
        started = time.monotonic()
        h.close()
        assert time.monotonic() - started < 10.0  # not the 30 s backoff of "nowhere"
        assert not h.thread.is_alive()
        assert {up.state, no.state, nowhere.state} == {"stopped"}
        with pytest.raises(RuntimeError):
            h.open(client_for(sim, key, secret, tmp_path), events, url=sim.ws_url)
        h.close()  # idempotent


def test_many_streams_share_one_thread(tmp_path: Path) -> None:
    keys = [make_key(f"stream-many-{i}") for i in range(50)]
    specs = [KeySpec(key=k, secret=s, name=f"u{i}") for i, (k, s) in enumerate(keys)]
    scenario = Scenario(keys=specs, tier="unlimited", lockout_threshold=0)
    with Simulator(scenario) as sim:
        events = Events()
        with hub() as h:
            handles = [
                h.open(client_for(sim, k, s, tmp_path, f"USER:u{i}"), events, url=sim.ws_url)
                for i, (k, s) in enumerate(keys)
            ]
            assert all(handle.wait_for("up", timeout=20) for handle in handles)
            assert len({e.account for e in events.of(BalancesSnapshot)}) == 50
            # one thread for all the streams (plus the loop's workers for the token calls)
            names = [t.name for t in threading.enumerate()]
            assert names.count("kraken-streams") == 1
            assert len([n for n in names if n.startswith("asyncio_")]) <= 32
            sim.drop_streams()
            assert events.wait(lambda: len(events.of(BalancesSnapshot)) == 100, timeout=20)
            assert all(handle.wait_for("up", timeout=20) for handle in handles)
            assert sum(handle.tokens for handle in handles) == 100
        assert all(handle.state == "stopped" for handle in handles)


def test_a_bot_iterates_over_events(tmp_path: Path) -> None:
    with one_key_simulator("stream-bot") as (sim, key, secret):
        client = client_for(sim, key, secret, tmp_path)
        seen: list[str] = []
        for event in stream_events(client, url=sim.ws_url, heartbeat_events=False):
            seen.append(type(event).__name__)
            if isinstance(event, OrdersSnapshot):
                txid = sim.place_order(key, "XBTUSD", "buy", "0.001", price="1000")
            if isinstance(event, Execution) and event.exec_type == "new":
                sim.cancel_order(key, txid)
            if isinstance(event, Execution) and event.exec_type == "canceled":
                break
        assert seen[0] == "StreamStateChanged" and "Heartbeat" not in seen
        assert "BalancesSnapshot" in seen
        assert until(lambda: sim.stream_stats(key).connections_open == 0)
        assert not [t for t in threading.enumerate() if t.name.startswith("kraken-stream")]


def test_the_asyncio_client_runs_until_stopped(tmp_path: Path) -> None:
    with one_key_simulator("stream-async") as (sim, key, secret):
        client = client_for(sim, key, secret, tmp_path)
        seen: list[str] = []

        def on_event(event: StreamEvent) -> None:
            seen.append(type(event).__name__)
            if isinstance(event, OrdersSnapshot):
                stream.stop()

        stream = AccountStream(client, on_event=on_event, url=sim.ws_url)

        async def main() -> None:
            task = asyncio.create_task(stream.run())
            await asyncio.sleep(0)
            with pytest.raises(RuntimeError, match="already running"):
                await stream.run()
            async with asyncio.timeout(10):
                await task

        asyncio.run(main())
        assert "OrdersSnapshot" in seen and seen[-1] == "StreamStateChanged"
        assert stream.state == "stopped" and stream.connected_since is None


# -- configuration and secrets ---------------------------------------------------------------


@pytest.mark.usefixtures("clean_env")
def test_a_client_of_another_server_needs_the_ws_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with one_key_simulator("stream-url") as (sim, key, secret):
        client = client_for(sim, key, secret, tmp_path)
        with pytest.raises(ConfigurationError) as info:
            AccountStream(client, on_event=print)
        assert info.value.variable == "KRAKEN_WS_AUTH_URL"
        with StreamHub() as h, pytest.raises(ConfigurationError):
            h.open(client, print)
        assert sim.stats(key).requests == 0, "no token is fetched for a stream that cannot start"
        monkeypatch.setenv("KRAKEN_WS_AUTH_URL", sim.ws_url)
        assert AccountStream(client, on_event=print).url == sim.ws_url


class TokenSpy(KrakenClient):
    """A real client that remembers the tokens it fetched (to look for them afterwards)."""

    tokens: list[str]

    def call_private(self, method: str, data: Any = None, timeout: Any = None) -> Any:
        result = super().call_private(method, data, timeout)
        if method == "GetWebSocketsToken":
            self.tokens = [*getattr(self, "tokens", []), result["token"]]
        return result


def test_the_token_is_never_shown(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with one_key_simulator("stream-secret") as (sim, key, secret):
        client = TokenSpy(key, secret, base_url=sim.url, store_dir=tmp_path)
        events = Events()
        with hub() as h:
            handle = h.open(client, events, url=sim.ws_url)
            assert handle.wait_for("up", timeout=5)
            sim.invalidate_sessions(key)
            events.first(StreamStateChanged, lambda e: e.state == "up" and e.tokens == 2)
            shown = [caplog.text, repr(handle), repr(handle.stream), repr(handle.info())]
            shown += [repr(e) for e in events.items]
        assert len(client.tokens) == 2
        for token in client.tokens:
            assert not [text for text in shown if token in text]


# -- a server that misbehaves (the simulator never does) -------------------------------------


@contextmanager
def rude_server(script: Callable[[ServerConnection, dict[str, Any]], Any]) -> Iterator[str]:
    """A WebSocket server on 127.0.0.1 that acknowledges subscriptions, then runs ``script``."""
    ready = threading.Event()
    where: dict[str, Any] = {}

    async def handler(ws: ServerConnection) -> None:
        async for raw in ws:
            request = json.loads(raw)
            channel = request["params"]["channel"]
            ack = {"method": "subscribe", "success": True, "req_id": request["req_id"]}
            await ws.send(json.dumps({**ack, "result": {"channel": channel}}))
            if channel == "executions":
                await script(ws, where)

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            where["port"] = server.sockets[0].getsockname()[1]
            where["stop"] = asyncio.Event()
            where["loop"] = asyncio.get_running_loop()
            ready.set()
            await where["stop"].wait()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    ready.wait(5)
    try:
        yield f"ws://127.0.0.1:{where['port']}/v2"
    finally:
        where["loop"].call_soon_threadsafe(where["stop"].set)
        thread.join(5)


def test_garbage_and_unknown_messages_are_counted_and_skipped(tmp_path: Path) -> None:
    async def script(ws: ServerConnection, _: dict[str, Any]) -> None:
        for raw in ["not json", "[1,2]", '{"channel":"executions","type":"update","data":[{}]}']:
            await ws.send(raw)
        await ws.send('{"channel":"ticker","type":"update","data":[]}')
        await ws.send('{"method":"ping_reply_of_nothing","error":"EGeneral:Unknown method"}')
        await ws.send(
            '{"channel":"balances","type":"snapshot","data":[{"asset":"USD","balance":5}]}'
        )
        await ws.close(1011, "going away")

    with one_key_simulator("stream-rude") as (sim, key, secret), rude_server(script) as url:
        client = client_for(sim, key, secret, tmp_path)
        events = Events()
        with hub() as h:
            handle = h.open(client, events, url=url, backoff=Backoff(5.0, 5.0, random=lambda: 1.0))
            down = events.first(StreamStateChanged, lambda e: e.state == "down")
            assert down.reason == "closed by the server (1011: going away)"
            info = handle.info()
            assert (info.malformed, info.unexpected) == (3, 2)
            assert events.first(BalancesSnapshot).balances == {"USD": "5"}
            assert handle.state == "down" and handle.running


def test_on_event_errors_never_stop_the_stream(tmp_path: Path) -> None:
    seen: list[StreamEvent] = []

    def broken(event: StreamEvent) -> None:
        seen.append(event)
        raise ValueError("a bug in the consumer")

    with one_key_simulator("stream-broken") as (sim, key, secret):
        client = client_for(sim, key, secret, tmp_path)
        with hub() as h:
            handle = h.open(client, broken, url=sim.ws_url)
            assert handle.wait_for("up", timeout=5)
            assert until(lambda: any(isinstance(e, Heartbeat) for e in seen))
            assert handle.state == "up"


class _AnsweringClient:
    """A client whose token call Kraken answers with ``error`` (nothing is sent anywhere)."""

    account = "MASTER"
    uri = "https://api.kraken.com"

    def __init__(self, error: Exception):
        self.error = error
        self.calls = 0

    def call_private(self, method: str) -> Any:
        self.calls += 1
        raise self.error


@pytest.mark.parametrize(
    ("error", "at_least"),
    [
        (TemporaryLockoutError("EGeneral:Temporary lockout"), 900.0),
        (RateLimitError("EAPI:Rate limit exceeded"), 60.0),
        (InvalidNonceError("EAPI:Invalid nonce"), 60.0),
        (ServiceUnavailableError("EService:Unavailable"), 0.0),
    ],
)
def test_a_token_call_kraken_held_back_waits_before_the_next(
    error: KrakenError, at_least: float
) -> None:
    """Each token call spends a nonce and call budget: after a lockout, a rate limit or an
    invalid nonce the next waits (a lockout lasts ~15 min and retries prolong it)."""
    client = _AnsweringClient(error)
    stream = AccountStream(
        client,  # type: ignore[arg-type]
        on_event=lambda _e: None,
        url="ws://127.0.0.1:9/v2",  # never reached: the token call fails first
    )

    async def one_attempt() -> float:
        stream._wake = asyncio.Event()
        return await stream._attempt()

    assert asyncio.run(one_attempt()) == at_least
    assert client.calls == 1 and stream.state == "down"
    assert error.code in (stream.reason or "")
