"""The order book over REST, the Python API and the admin routes: placing, filling, cancelling,
balances and fees, funds, Kraken's per-pair trading counter, and the scenario fields."""

from __future__ import annotations

import json
import re

import pytest

from simulator import TRADING_TIERS, OrderError, Scenario, ScenarioError, TradingSpec
from simulator.scenario_file import scenario_from_mapping
from simulator.tokens import TokenBook
from testkit.rawclient import raw_request
from testkit.sim import call, master_environment, scenario_simulator, ws_url_for

TXID = re.compile(r"O[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{6}")
BALANCES = {"ZUSD": "1000.0000", "XXBT": "0.5000000000"}
LIMIT = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "price": "40000", "volume": "0.01"}


@pytest.fixture
def account(start_simulator, make_keyspec):
    spec = make_keyspec("trader", balances=dict(BALANCES))
    return start_simulator(Scenario(keys=[spec], tier="starter")), spec


def test_add_order_places_a_limit_order_that_rests(account):
    sim, spec = account
    reply = call(sim, spec, 1, "AddOrder", **LIMIT).json()
    assert reply["error"] == []
    (txid,) = reply["result"]["txid"]
    assert TXID.fullmatch(txid)
    assert reply["result"]["descr"] == {"order": "buy 0.01 XBTUSD @ limit 40000"}
    listed = call(sim, spec, 2, "OpenOrders").json()["result"]["open"]
    assert list(listed) == [txid]
    entry = listed[txid]
    assert entry["status"] == "open" and entry["userref"] == 0
    assert (entry["vol"], entry["vol_exec"], entry["cost"]) == (
        "0.01000000",
        "0.00000000",
        "0.00000",
    )
    assert entry["descr"]["pair"] == "XBTUSD" and entry["descr"]["price"] == "40000.0"
    assert entry["descr"]["type"] == "buy" and entry["descr"]["ordertype"] == "limit"
    assert isinstance(entry["opentm"], float) and entry["trades"] == []
    assert call(sim, spec, 3).json()["result"] == BALANCES  # resting: nothing moved yet

    assert call(sim, spec, 4, "CancelOrder", txid=txid).json() == {
        "error": [],
        "result": {"count": 1},
    }
    assert call(sim, spec, 5, "CancelOrder", txid=txid).error == ["EOrder:Unknown order"]
    assert call(sim, spec, 6, "CancelOrder", txid="OAAAAA-BBBBB-CCCCCC").error == [
        "EOrder:Unknown order"
    ]
    assert call(sim, spec, 7, "CancelOrder").error == ["EGeneral:Invalid arguments:txid"]
    assert call(sim, spec, 8, "OpenOrders").json()["result"] == {"open": {}}
    assert sim.order_status("trader", txid) == "canceled"


def test_a_market_order_fills_at_once_at_the_simulators_price(account):
    sim, spec = account
    market = {"pair": "XXBTZUSD", "type": "sell", "ordertype": "market", "volume": "0.1"}
    reply = call(sim, spec, 1, "AddOrder", **market).json()
    assert reply["result"]["descr"] == {"order": "sell 0.1 XXBTZUSD @ market"}
    (txid,) = reply["result"]["txid"]
    assert sim.order_status("trader", txid) == "closed"
    # 0.1 XBT at 50000.0: 5000 USD, minus the 0.40 % taker fee (20 USD)
    assert call(sim, spec, 2).json()["result"] == {"ZUSD": "5980.0000", "XXBT": "0.4000000000"}
    assert call(sim, spec, 3, "OpenOrders").json()["result"] == {"open": {}}


def test_limit_orders_fill_in_parts_at_their_price_with_the_maker_fee(account):
    sim, spec = account
    txid = sim.place_order("trader", "XBTUSD", "buy", "0.02", price="45000")
    sim.fill_order("trader", txid, "0.005")
    entry = sim.open_orders("trader")[txid]
    assert (entry["vol_exec"], entry["cost"], entry["fee"]) == (
        "0.00500000",
        "225.00000",
        "0.56250",
    )
    assert entry["price"] == "45000.0" and len(entry["trades"]) == 1
    with pytest.raises(OrderError, match="volume"):
        sim.fill_order("trader", txid, "0.5")  # more than remains
    sim.fill_order("trader", txid)
    assert sim.order_status("trader", txid) == "closed" and sim.open_orders("trader") == {}
    # 900 USD for 0.02 XBT, plus 0.25 % (2.25 USD)
    assert call(sim, spec, 1).json()["result"] == {"ZUSD": "97.7500", "XXBT": "0.5200000000"}
    with pytest.raises(OrderError, match="EOrder:Unknown order"):
        sim.fill_order("trader", txid)


def test_a_new_asset_gets_its_kraken_code(start_simulator, make_keyspec):
    spec = make_keyspec("usd-only", balances={"ZUSD": "100.0000"})
    sim = start_simulator(Scenario(keys=[spec], maker_fee_pct="0", taker_fee_pct="0"))
    sim.place_order("usd-only", "ETHUSD", "buy", "0.01", ordertype="market")
    assert call(sim, spec, 1).json()["result"] == {"ZUSD": "70.0000", "XETH": "0.0100000000"}


def test_orders_the_balance_cannot_cover_are_refused(account):
    sim, spec = account
    too_big = dict(LIMIT, volume="0.03")  # 1200 USD
    assert call(sim, spec, 1, "AddOrder", **too_big).error == ["EOrder:Insufficient funds"]
    sell = dict(LIMIT, type="sell", volume="0.6", price="60000")
    assert call(sim, spec, 2, "AddOrder", **sell).error == ["EOrder:Insufficient funds"]
    # an open order holds its funds: 600 USD held, 400 left, a second 600 USD order is refused
    sim.place_order("trader", "XBTUSD", "buy", "0.015", price="40000")
    with pytest.raises(OrderError, match="EOrder:Insufficient funds"):
        sim.place_order("trader", "XBTUSD", "buy", "0.015", price="40000")
    market = {"pair": "XBTUSD", "type": "buy", "ordertype": "market", "volume": "1"}
    assert call(sim, spec, 3, "AddOrder", **market).error == ["EOrder:Insufficient funds"]
    assert call(sim, spec, 4).json()["result"] == BALANCES


def test_the_arguments_are_checked_like_a_validate_only_order(account):
    sim, spec = account
    assert call(sim, spec, 1, "AddOrder", **dict(LIMIT, pair="DOGEUSD")).error == [
        "EQuery:Unknown asset pair"
    ]
    assert call(sim, spec, 2, "AddOrder", **dict(LIMIT, price="")).error == [
        "EGeneral:Invalid arguments:price"
    ]
    stop = dict(LIMIT, ordertype="stop-loss")
    assert call(sim, spec, 3, "AddOrder", **stop).error == ["EGeneral:Invalid arguments:ordertype"]
    sim.set_system_status("cancel_only")
    assert call(sim, spec, 4, "AddOrder", **LIMIT).error == ["EService:Market in cancel_only mode"]
    sim.set_system_status("maintenance")
    assert call(sim, spec, 5, "AddOrder", **LIMIT).error == ["EService:Unavailable"]
    with pytest.raises(OrderError, match="EService:Unavailable"):
        sim.place_order("trader", "XBTUSD", "buy", "0.01", price="40000")
    sim.set_system_status("online")
    with pytest.raises(ValueError, match="volume"):
        sim.place_order("trader", "XBTUSD", "buy", "-1", price="40000")


def test_order_methods_need_their_permissions(start_simulator, make_keyspec):
    spec = make_keyspec("viewer", permissions={"funds", "orders"}, balances=dict(BALANCES))
    sim = start_simulator(Scenario(keys=[spec]))
    assert call(sim, spec, 1, "AddOrder", **LIMIT).error == ["EGeneral:Permission denied"]
    assert call(sim, spec, 2, "CancelOrder", txid="OAAAAA-BBBBB-CCCCCC").error == [
        "EGeneral:Permission denied"
    ]
    assert call(sim, spec, 3, "OpenOrders").error == []


def test_the_trading_counter_refuses_at_the_threshold(account):
    sim, spec = account
    assert TRADING_TIERS == {
        "starter": (60.0, 1.0),
        "intermediate": (125.0, 2.34),
        "pro": (180.0, 3.75),
        "unlimited": (180.0, 3.75),
    }
    placed = [sim.place_order("trader", "XBTUSD", "buy", "0.0001", price="100") for _ in range(52)]
    # AddOrder +1 each (decaying 1/s): ~52; cancelling an order younger than 5 s adds 8
    assert call(sim, spec, 1, "CancelOrder", txid=placed[0]).error == []
    assert call(sim, spec, 2, "CancelOrder", txid=placed[1]).error == ["EOrder:Rate limit exceeded"]
    sim.set_clock_offset(400)  # the orders are now over 300 s old: a cancel costs nothing more
    assert call(sim, spec, 3, "CancelOrder", txid=placed[1]).error == []
    # the count applies on receipt, even to an order that then fails its checks
    assert call(sim, spec, 4, "AddOrder", **dict(LIMIT, volume="-1")).error == [
        "EOrder:Rate limit exceeded"
    ]
    with pytest.raises(OrderError, match="EOrder:Rate limit exceeded"):
        sim.place_order("trader", "XBTUSD", "buy", "0.0001", price="100")
    # one counter per pair
    assert sim.place_order("trader", "ETHUSD", "buy", "0.001", price="100")


def test_the_unlimited_tier_counts_but_never_refuses(start_simulator, make_keyspec):
    spec = make_keyspec("free", balances=dict(BALANCES))
    sim = start_simulator(Scenario(keys=[spec], tier="unlimited"))
    for _ in range(200):
        sim.place_order("free", "XBTUSD", "buy", "0.0001", price="100")
    assert len(sim.open_orders("free")) == 200


def test_orders_over_the_admin_routes(account):
    sim, spec = account

    def admin(verb: str, route: str, doc: dict | None = None) -> tuple[int, dict]:
        body = json.dumps(doc) if doc is not None else ""
        reply = raw_request(sim.url, verb, f"/_sim/orders/{route}", body)
        return reply.status, reply.json()

    status, doc = admin(
        "POST", "trader", {"pair": "XBTUSD", "side": "buy", "volume": "0.01", "price": "40000"}
    )
    assert status == 200
    (txid,) = doc["txid"]
    assert list(admin("GET", "trader")[1]["open"]) == [txid]
    assert admin("POST", f"trader/{txid}/fill", {"volume": "0.004"}) == (
        200,
        {"txid": txid, "status": "open"},
    )
    assert admin("POST", f"trader/{txid}/fill") == (200, {"txid": txid, "status": "closed"})
    assert admin("POST", f"trader/{txid}/cancel") == (409, {"error": "EOrder:Unknown order"})
    other = admin(
        "POST", "trader", {"pair": "XBTUSD", "side": "buy", "volume": "0.001", "price": "40000"}
    )
    (second,) = other[1]["txid"]
    assert admin("POST", f"trader/{second}/expire") == (200, {"txid": second, "status": "expired"})
    assert admin(
        "POST", "trader", {"pair": "XBTUSD", "side": "buy", "volume": "9", "price": "40000"}
    ) == (
        409,
        {"error": "EOrder:Insufficient funds"},
    )
    assert admin("POST", "trader", {"pair": "XBTUSD", "volume": "1"})[0] == 400
    assert (
        admin("POST", "trader", {"pair": "XBTUSD", "side": "buy", "volume": "1", "x": 1})[0] == 400
    )
    assert admin("GET", "nobody")[0] == 404
    assert admin("POST", f"trader/{txid}/explode")[0] == 404
    assert call(sim, spec, 1).json()["result"]["XXBT"] == "0.5100000000"


def test_scenario_files_say_how_keys_trade_and_what_fills_cost():
    secret = "a" * 88
    base = {"key": "SIMfileKey", "secret": secret, "name": "MASTER"}
    scenario = scenario_from_mapping(
        {
            "token_ttl_s": 30,
            "ws_heartbeat_s": 0.5,
            "maker_fee_pct": "0.1",
            "taker_fee_pct": "0.2",
            "keys": [
                {**base, "trading": {"orders_per_minute": 6, "pair": "ETHUSD", "volume": "0.01"}}
            ],
        },
        "s.json",
    )
    assert (scenario.token_ttl_s, scenario.ws_heartbeat_s) == (30.0, 0.5)
    assert (scenario.maker_fee_pct, scenario.taker_fee_pct) == ("0.1", "0.2")
    assert scenario.keys[0].trading == TradingSpec(
        orders_per_minute=6, pair="ETHUSD", volume="0.01"
    )
    bad = [
        ({"trading": {"pair": "DOGEUSD"}}, "'keys[0].trading.pair'"),
        ({"trading": {"volume": 0.01}}, "'keys[0].trading.volume'"),
        ({"trading": {"orders_per_minute": 0}}, "'keys[0].trading.orders_per_minute'"),
        ({"trading": {"speed": 1}}, "'keys[0].trading.speed'"),
        ({"trading": "often"}, "'keys[0].trading'"),
    ]
    for extra, field in bad:
        with pytest.raises(ScenarioError) as caught:
            scenario_from_mapping({"keys": [{**base, **extra}]}, "s.json")
        assert field in str(caught.value) and secret not in str(caught.value)
    for top, field in (
        ({"token_ttl_s": 0}, "'token_ttl_s'"),
        ({"maker_fee_pct": "lots"}, "'maker_fee_pct'"),
    ):
        with pytest.raises(ScenarioError, match=field):
            scenario_from_mapping({**top, "keys": []}, "s.json")


def test_tokens_expire_by_the_simulators_clock():
    now = [1000.0]
    book = TokenBook(ttl_s=10, clock=lambda: now[0])
    token = book.issue("k")
    assert book.key_of(token) == "k" and book.claim(token) == "k"
    now[0] += 60
    assert book.key_of(token) == "k"  # held by a subscription
    book.release(token)
    now[0] += 9.9
    assert book.key_of(token) == "k"
    now[0] += 0.1
    assert book.key_of(token) is None and book.claim(token) is None
    fresh = book.issue("k")
    assert book.invalidate("k") == 1 and book.key_of(fresh) is None


def test_test_environments_point_at_the_simulators_websocket():
    with scenario_simulator("healthy") as (sim, env):
        assert env["KRAKEN_WS_AUTH_URL"] == sim.ws_url
        assert env["KRAKEN_API_URL"] == sim.url
        assert master_environment(sim.url, "k", "s")["KRAKEN_WS_AUTH_URL"] == sim.ws_url
    assert ws_url_for(sim.url) == "ws://127.0.0.1:9/v2"  # stopped: nothing to reach
    assert master_environment("http://127.0.0.1:9", "k", "s")["KRAKEN_WS_AUTH_URL"].startswith(
        "ws://127.0.0.1:9/"
    )
    with scenario_simulator("demo") as (sim, _):
        assert all(spec.trading is None for spec in sim.scenario.keys)  # still, for page tests
