"""The private WebSocket v2 endpoint over real sockets: tokens, status, ping, heartbeats, the
balances and executions channels, the faults and the demo trader."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from decimal import Decimal

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from simulator import Scenario, TradingSpec, builtin_scenario
from testkit.env import subprocess_environ
from testkit.rawclient import raw_request
from testkit.sim import StreamClient, call, scenario_values, ws_token

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
BALANCES = {"ZUSD": "1000.0000", "XXBT": "0.5000000000", "USDT": "50.00000000"}
ERROR_FIELDS = {"error", "method", "req_id", "success", "time_in", "time_out"}


@pytest.fixture
def account(start_simulator, make_keyspec):
    """A simulator with one key (all permissions) and fast heartbeats."""
    spec = make_keyspec("trader", balances=dict(BALANCES))
    sim = start_simulator(Scenario(keys=[spec], tier="starter", ws_heartbeat_s=0.05))
    return sim, spec


def subscribe(client: StreamClient, channel: str, token: str, req_id: int, **params):
    return client.request("subscribe", req_id, channel=channel, token=token, **params)


def channel(name: str, kind: str | None = None):
    return lambda m: m.get("channel") == name and (kind is None or m.get("type") == kind)


def execution(exec_type: str):
    return lambda m: (
        m.get("channel") == "executions"
        and bool(m["data"])
        and m["data"][0]["exec_type"] == exec_type
    )


def test_ws_url_status_ping_and_heartbeats(account):
    sim, _ = account
    assert re.fullmatch(r"ws://127\.0\.0\.1:\d+/v2", sim.ws_url)
    with StreamClient(sim.ws_url) as client:
        status = client.next()
        assert status["channel"] == "status" and status["type"] == "update"
        (data,) = status["data"]
        assert data["api_version"] == "v2" and data["system"] == "online"
        assert isinstance(data["connection_id"], int) and isinstance(data["version"], str)
        pong = client.request("ping", 42)
        assert set(pong) == {"method", "req_id", "time_in", "time_out"}
        assert pong["method"] == "pong" and pong["req_id"] == 42
        assert RFC3339.fullmatch(pong["time_in"]) and pong["time_in"] <= pong["time_out"]
        beats = [client.next(heartbeats=True, timeout=2) for _ in range(2)]
        assert beats == [{"channel": "heartbeat"}, {"channel": "heartbeat"}]


def test_a_new_system_status_is_announced(account):
    sim, _ = account
    with StreamClient(sim.ws_url) as client:
        assert client.next(channel("status"))["data"][0]["system"] == "online"
        sim.set_system_status("maintenance")
        assert client.next(channel("status"))["data"][0]["system"] == "maintenance"
        client.send({"req_id": 9})
        assert client.next(lambda m: m.get("req_id") == 9)["method"] == "error"


def test_another_path_is_not_a_websocket(account):
    sim, _ = account
    with pytest.raises(InvalidStatus) as refused:
        StreamClient(sim.ws_url.removesuffix("/v2") + "/v1")
    assert refused.value.response.status_code == 404


def test_token_is_issued_for_the_key_and_never_shown(account):
    sim, spec = account
    reply = call(sim, spec, 1, "GetWebSocketsToken").json()
    token = reply["result"]["token"]
    assert reply["result"]["expires"] == 900 and re.fullmatch(r"[A-Za-z0-9+/]{43}", token)
    assert sim.stream_stats(spec.name).tokens_issued == 1
    stats = raw_request(sim.url, "GET", "/_sim/stats").body.decode()
    assert (
        token not in stats and json.loads(stats)["keys"]["trader"]["streams"]["tokens_issued"] == 1
    )


def test_a_key_without_the_websocket_permission_gets_no_token(start_simulator, make_keyspec):
    spec = make_keyspec("nows", permissions={"funds", "orders", "trade"})
    sim = start_simulator(Scenario(keys=[spec]))
    assert call(sim, spec, 1, "GetWebSocketsToken").error == ["EGeneral:Permission denied"]
    assert sim.stream_stats("nows").tokens_issued == 0


def test_an_unknown_token_is_an_invalid_session(account):
    sim, _ = account
    with StreamClient(sim.ws_url) as client:
        answer = subscribe(client, "balances", "not-a-token", 3)
    assert set(answer) == ERROR_FIELDS
    assert answer["error"] == "ESession:Invalid session"
    assert (answer["method"], answer["success"], answer["req_id"]) == ("subscribe", False, 3)


def test_a_token_expires_unused_but_not_while_held(start_simulator, make_keyspec):
    spec = make_keyspec("ttl", balances=dict(BALANCES))
    sim = start_simulator(Scenario(keys=[spec], token_ttl_s=60))
    unused, held = ws_token(sim, spec, 1), ws_token(sim, spec, 2)
    assert call(sim, spec, 3, "GetWebSocketsToken").json()["result"]["expires"] == 60
    with StreamClient(sim.ws_url) as client:
        assert subscribe(client, "balances", held, 1)["success"] is True
        sim.set_clock_offset(61)  # a minute later (the simulator's clock): unused is expired
        assert subscribe(client, "executions", unused, 2)["error"] == "ESession:Invalid session"
        assert subscribe(client, "executions", held, 3)["success"] is True  # held: still valid
        for req_id, name in ((4, "balances"), (5, "executions")):
            assert client.request("unsubscribe", req_id, channel=name, token=held)["success"]
        sim.set_clock_offset(122)  # released a minute ago: expired now
        assert subscribe(client, "balances", held, 6)["error"] == "ESession:Invalid session"
        fresh = ws_token(sim, spec, 4)
        assert subscribe(client, "balances", fresh, 7)["success"] is True


def test_subscribe_needs_funds_for_balances_and_orders_for_executions(
    start_simulator, make_keyspec
):
    spec = make_keyspec("partial", permissions={"websocket", "orders"})
    sim = start_simulator(Scenario(keys=[spec]))
    token = ws_token(sim, spec, 1)
    with StreamClient(sim.ws_url) as client:
        refused = subscribe(client, "balances", token, 1)
        assert refused["error"] == "EAccount:Invalid permissions" and refused["success"] is False
        assert subscribe(client, "executions", token, 2)["success"] is True
        sim.update_key("partial", permissions=["websocket", "funds"])
        assert client.request("unsubscribe", 3, channel="executions")["success"] is True
        assert subscribe(client, "executions", token, 4)["error"] == "EAccount:Invalid permissions"
        assert subscribe(client, "balances", token, 5)["success"] is True


def test_requests_the_endpoint_does_not_know(account):
    sim, spec = account
    token = ws_token(sim, spec, 1)
    with StreamClient(sim.ws_url) as client:
        assert client.request("explode", 1)["error"] == "EGeneral:Unknown method"
        assert subscribe(client, "book", token, 2)["error"] == "EGeneral:Invalid arguments:channel"
        assert subscribe(client, "balances", token, 3, snapshot="yes")["error"] == (
            "EGeneral:Invalid arguments:snapshot"
        )
        assert client.request("subscribe", 4, channel="balances")["error"] == (
            "EGeneral:Invalid arguments:token"
        )
        assert subscribe(client, "balances", token, 5)["success"] is True
        assert subscribe(client, "balances", token, 6)["error"] == "Already subscribed"
        missing = client.request("unsubscribe", 7, channel="executions")
        assert missing["error"] == "Subscription Not Found" and missing["success"] is False
        client.ws.send("{not json")
        assert client.next(lambda m: m.get("method") == "error")["error"] == "Malformed request"


def test_balances_snapshot_then_a_ledger_update_per_fill(account):
    sim, spec = account
    token = ws_token(sim, spec, 1)
    with StreamClient(sim.ws_url) as client:
        ack = subscribe(client, "balances", token, 1)
        assert ack["result"] == {"channel": "balances", "snapshot": True}
        snapshot = client.next(channel("balances"))
        assert snapshot["type"] == "snapshot" and snapshot["sequence"] == 1
        assert {e["asset"]: e["balance"] for e in snapshot["data"]} == {
            "USD": 1000.0,
            "BTC": 0.5,
            "USDT": 50.0,
        }
        btc = next(e for e in snapshot["data"] if e["asset"] == "BTC")
        assert btc["asset_class"] == "currency"
        assert btc["wallets"] == [{"type": "spot", "id": "main", "balance": 0.5}]

        txid = sim.place_order("trader", "XBTUSD", "buy", "0.01", price="40000")
        sim.fill_order("trader", txid)
        update = client.next(channel("balances"))
        assert update["type"] == "update" and update["sequence"] == 2
        (usd,) = (e for e in update["data"] if e["asset"] == "USD")
        (btc,) = (e for e in update["data"] if e["asset"] == "BTC")
        assert (usd["amount"], usd["fee"], usd["balance"]) == (-400.0, 1.0, 599.0)  # 0.25 %
        assert (btc["amount"], btc["fee"], btc["balance"]) == (0.01, 0.0, 0.51)
        for entry in (usd, btc):
            assert entry["type"] == entry["category"] == "trade"
            assert (entry["wallet_type"], entry["wallet_id"]) == ("spot", "main")
            assert re.fullmatch(r"L[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{6}", entry["ledger_id"])
            assert RFC3339.fullmatch(entry["timestamp"]) and entry["ref_id"] == usd["ref_id"]
        assert call(sim, spec, 2).json()["result"]["ZUSD"] == "599.0000"

        sim.update_key("trader", balances={**BALANCES, "ZUSD": "599.0000", "XXBT": "0.6100000000"})
        adjustment = client.next(channel("balances"))["data"]
        assert [(e["asset"], e["amount"], e["balance"], e["type"]) for e in adjustment] == [
            ("BTC", 0.1, 0.61, "adjustment")
        ]


def test_executions_snapshot_and_every_transition(account):
    sim, spec = account
    resting = sim.place_order("trader", "XBTUSD", "sell", "0.2", price="60000", userref=9)
    sim.fill_order("trader", resting, "0.05")
    token = ws_token(sim, spec, 1)
    with StreamClient(sim.ws_url) as client:
        assert subscribe(client, "executions", token, 1)["result"] == {
            "channel": "executions",
            "snapshot": True,
        }
        (open_order,) = client.next(channel("executions", "snapshot"))["data"]
        assert open_order["order_id"] == resting and open_order["exec_type"] == "new"
        assert open_order["order_status"] == "partially_filled" and open_order["cum_qty"] == 0.05
        assert (open_order["symbol"], open_order["side"], open_order["order_type"]) == (
            "BTC/USD",
            "sell",
            "limit",
        )
        assert (open_order["order_qty"], open_order["limit_price"]) == (0.2, 60000.0)
        assert open_order["order_userref"] == 9 and "ratecount" not in open_order

        txid = sim.place_order("trader", "XBTUSD", "buy", "0.02", price="45000")
        pending = client.next(execution("pending_new"))["data"][0]
        assert (pending["order_id"], pending["order_status"]) == (txid, "pending_new")
        assert (pending["order_qty"], pending["limit_price"], pending["symbol"]) == (
            0.02,
            45000.0,
            "BTC/USD",
        )
        assert RFC3339.fullmatch(pending["timestamp"]) and "ratecount" not in pending
        assert client.next(channel("executions"))["data"][0]["exec_type"] == "new"

        sim.fill_order("trader", txid, "0.005")
        trade = client.next(channel("executions"))["data"][0]
        assert trade["exec_type"] == "trade" and trade["order_status"] == "partially_filled"
        assert (trade["last_qty"], trade["last_price"], trade["cost"]) == (0.005, 45000.0, 225.0)
        assert trade["fees"] == [{"asset": "USD", "qty": 0.5625}] and trade["liquidity_ind"] == "m"
        assert re.fullmatch(r"T[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{6}", trade["exec_id"])
        assert isinstance(trade["trade_id"], int)

        sim.fill_order("trader", txid)
        last = client.next(channel("executions"))["data"][0]
        assert (last["exec_type"], last["order_status"], last["last_qty"]) == (
            "trade",
            "filled",
            0.015,
        )
        filled = client.next(channel("executions"))["data"][0]
        assert (filled["exec_type"], filled["order_status"], filled["order_id"]) == (
            "filled",
            "filled",
            txid,
        )
        assert (filled["cum_qty"], filled["cum_cost"], filled["avg_price"]) == (
            0.02,
            900.0,
            45000.0,
        )

        sim.cancel_order("trader", resting)
        canceled = client.next(channel("executions"))["data"][0]
        assert (canceled["exec_type"], canceled["order_status"]) == ("canceled", "canceled")
        assert canceled["cancel_reason"] == "User requested" and canceled["cum_qty"] == 0.05

        expiring = sim.place_order("trader", "XBTUSD", "buy", "0.001", price="30000")
        sim.expire_order("trader", expiring)
        expired = client.next(execution("expired"))["data"][0]
        assert (expired["order_id"], expired["order_status"]) == (expiring, "expired")
    assert sim.open_orders("trader") == {}


def test_order_status_false_sends_only_open_and_close_transitions(account):
    sim, spec = account
    token = ws_token(sim, spec, 1)
    with StreamClient(sim.ws_url) as client:
        subscribe(client, "executions", token, 1, order_status=False, snap_orders=False)
        txid = sim.place_order("trader", "XBTUSD", "buy", "0.001", price="45000")
        sim.cancel_order("trader", txid)
        seen = [client.next(channel("executions"))["data"][0]["exec_type"] for _ in range(2)]
    assert seen == ["new", "canceled"]


def test_ratecounter_shows_the_threshold_and_the_pairs_counter(account):
    sim, spec = account
    token = ws_token(sim, spec, 1)
    with StreamClient(sim.ws_url) as client:
        ack = subscribe(client, "executions", token, 1, ratecounter=True)
        assert ack["result"]["maxratecount"] == 60  # the starter tier's threshold
        txid = sim.place_order("trader", "XBTUSD", "buy", "0.001", price="45000")
        pending = client.next(execution("pending_new"))["data"][0]
        assert 0.9 < pending["ratecount"] <= 1.0  # AddOrder +1, decaying 1/s
        sim.cancel_order("trader", txid)  # a cancel within 5 s of the order: +8
        canceled = client.next(execution("canceled"))["data"][0]
        assert 8.5 < canceled["ratecount"] <= 9.0


def test_unsubscribe_stops_the_channel(account):
    sim, spec = account
    token = ws_token(sim, spec, 1)
    with StreamClient(sim.ws_url) as client:
        subscribe(client, "balances", token, 1, snapshot=False)
        subscribe(client, "executions", token, 2, snap_orders=False)
        assert sim.stream_stats("trader").subscriptions_active == 2
        answer = client.request("unsubscribe", 3, channel="balances", token=token)
        assert answer["result"] == {"channel": "balances"} and answer["success"] is True
        assert sim.stream_stats("trader").subscriptions_active == 1
        sim.place_order("trader", "XBTUSD", "sell", "0.001", ordertype="market")
        seen = []
        while not seen or seen[-1] != "executions:filled":
            message = client.next()
            seen.append(message["channel"] + ":" + message["data"][0].get("exec_type", ""))
    assert seen == ["executions:pending_new", "executions:trade", "executions:filled"]


def test_drop_cuts_the_connection_without_a_close_frame(account):
    sim, spec = account
    token = ws_token(sim, spec, 1)
    with StreamClient(sim.ws_url) as client:
        subscribe(client, "balances", token, 1)
        assert sim.stream_stats("trader").connections_open == 1
        assert sim.drop_streams("trader") == 1
        with pytest.raises(ConnectionClosed) as closed:
            client.next(channel("nothing"))
        assert closed.value.rcvd is None  # no close frame
    sim.wait_for_streams(
        "trader", lambda s: s.connections_open == 0 and s.subscriptions_active == 0
    )
    assert sim.stream_stats("trader").connections_opened == 1


def test_stall_sends_nothing_until_resumed(account):
    sim, spec = account
    token = ws_token(sim, spec, 1)
    with StreamClient(sim.ws_url) as client:
        subscribe(client, "executions", token, 1, snap_orders=False)
        client.next(heartbeats=True)  # the stream flows
        assert sim.stall_streams("trader") == 1
        txid = sim.place_order("trader", "XBTUSD", "buy", "0.001", price="45000")
        late: list[dict] = []  # at most a heartbeat already on its way when the stall began
        with pytest.raises(TimeoutError):  # otherwise a heartbeat every 0.05 s
            for _ in range(4):
                late.append(client.next(heartbeats=True, timeout=0.5))
        assert len(late) <= 1 and all(m == {"channel": "heartbeat"} for m in late)
        sim.resume_streams()
        resumed = client.next()["data"][0]
        assert (resumed["order_id"], resumed["exec_type"]) == (txid, "pending_new")


def test_invalidated_sessions_are_told_and_closed(account):
    sim, spec = account
    token = ws_token(sim, spec, 1)
    with StreamClient(sim.ws_url) as client:
        subscribe(client, "balances", token, 1)
        assert sim.invalidate_sessions("trader") == 1
        told = client.next(lambda m: "error" in m)
        assert told["error"] == "ESession:Invalid session" and told["success"] is False
        with pytest.raises(ConnectionClosed) as closed:
            client.next(channel("nothing"))
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    with StreamClient(sim.ws_url) as again:
        assert subscribe(again, "balances", token, 2)["error"] == "ESession:Invalid session"
        assert subscribe(again, "balances", ws_token(sim, spec, 2), 3)["success"] is True


def test_refused_handshakes_then_accepted_again(account):
    sim, _ = account
    sim.refuse_streams()
    with pytest.raises(InvalidStatus) as refused:
        StreamClient(sim.ws_url)
    assert refused.value.response.status_code == 503
    sim.refuse_streams(False)
    with StreamClient(sim.ws_url) as client:
        assert client.next()["channel"] == "status"


def test_stream_faults_over_the_admin_routes(account):
    sim, spec = account

    def admin(route: str, doc: dict) -> tuple[int, dict]:
        reply = raw_request(sim.url, "POST", f"/_sim/streams/{route}", json.dumps(doc))
        return reply.status, reply.json()

    token = ws_token(sim, spec, 1)
    with StreamClient(sim.ws_url) as client:
        subscribe(client, "balances", token, 1)
        assert admin("stall", {"key": "trader"}) == (200, {"connections": 1})
        assert admin("resume", {}) == (200, {"resumed": True})
        assert admin("drop", {"key": "nobody"})[0] == 404
        assert admin("explode", {})[0] == 404
        assert admin("drop", {}) == (200, {"connections": 1})
        with pytest.raises(ConnectionClosed):
            client.next(channel("nothing"))
    assert admin("refuse", {"on": "yes"})[0] == 400
    sim.wait_for_streams("trader", lambda s: s.connections_open == 0)
    assert admin("invalidate", {"key": "trader"}) == (200, {"connections": 0})
    stats = json.loads(raw_request(sim.url, "GET", "/_sim/stats").body)
    streams = stats["keys"]["trader"]["streams"]
    assert streams["connections_opened"] == 1 and streams["messages_sent"] >= 2
    assert stats["ws_url"] == sim.ws_url


def test_updates_reach_every_connection_of_the_key(account):
    sim, spec = account
    clients = [StreamClient(sim.ws_url) for _ in range(2)]
    try:
        for n, client in enumerate(clients):
            subscribe(client, "executions", ws_token(sim, spec, n + 1), 1, snap_orders=False)
        sim.wait_for_streams("trader", lambda s: s.connections_open == 2)
        txid = sim.place_order("trader", "XBTUSD", "buy", "0.001", price="45000")
        for client in clients:
            assert client.next(execution("new"))["data"][0]["order_id"] == txid
    finally:
        for client in clients:
            client.close()


def test_a_trading_key_places_and_fills_orders_by_itself(start_simulator, make_keyspec):
    spec = make_keyspec(
        "bot",
        balances=dict(BALANCES),
        trading=TradingSpec(orders_per_minute=600, pair="XBTUSD", volume="0.002", cancel_ratio=0),
    )
    sim = start_simulator(Scenario(keys=[spec]), seed=7)
    token = ws_token(sim, spec, 1)
    with StreamClient(sim.ws_url) as client:
        subscribe(client, "executions", token, 1, snap_orders=False)
        subscribe(client, "balances", token, 2, snapshot=False)
        placed = client.next(execution("pending_new"))["data"][0]
        assert placed["order_type"] == "limit" and placed["limit_price"] == 50000.0
        fill = client.next(execution("trade"))["data"][0]
        assert fill["order_id"] == placed["order_id"] and fill["last_qty"] == 0.001
        assert client.next(channel("balances"))["data"][0]["type"] == "trade"
        filled = client.next(execution("filled"))["data"][0]
        assert filled["cum_qty"] == 0.002


def test_the_demo_scenario_trades_without_changing_the_accounts_values(start_simulator):
    scenario = builtin_scenario("demo")
    assert {k.account: k.trading is not None for k in scenario.keys} == {
        "MASTER": True,
        "USER:daivon": True,
        "USER:tania_gilbert": True,
    }
    assert all("websocket" in k.permissions for k in scenario.keys)
    assert (scenario.maker_fee_pct, scenario.taker_fee_pct) == ("0", "0")
    master = scenario.keys[0]
    assert master.trading is not None
    master.trading.orders_per_minute = 600  # ten a second, so the test need not wait
    master.trading.cancel_ratio = 0
    worth = scenario_values(scenario)["MASTER"].priced
    sim = start_simulator(scenario, seed=3)
    with StreamClient(sim.ws_url) as client:
        subscribe(client, "executions", ws_token(sim, master, 1), 1, snap_orders=False)
        for _ in range(2):  # a buy, then a sell
            client.next(execution("filled"))
    value = call(sim, master, 2, "TradeBalance").json()["result"]["eb"]
    assert Decimal(value) == worth.quantize(Decimal("0.0001"))


def test_the_cli_prints_the_websocket_url_and_its_variable():
    command = [sys.executable, "-m", "simulator", "--port", "0", "--print-env"]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_environ()
    )
    try:
        assert proc.stdout is not None
        rest, ws = proc.stdout.readline().split(), proc.stdout.readline().split()
        assert rest[:2] == ["listening", "on"] and rest[2].startswith("http://127.0.0.1:")
        assert ws[:2] == ["listening", "on"] and re.fullmatch(r"ws://127\.0\.0\.1:\d+/v2", ws[2])
        env = dict(proc.stdout.readline().strip().split("=", 1) for _ in range(2))
        assert env == {"KRAKEN_API_URL": rest[2], "KRAKEN_WS_AUTH_URL": ws[2]}
        with StreamClient(ws[2]) as client:
            assert client.next()["channel"] == "status"
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
