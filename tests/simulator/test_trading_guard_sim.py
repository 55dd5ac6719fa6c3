"""Kraken's per-pair trading counter in the simulator, over real HTTP: what ``AddOrder``,
``AmendOrder``, ``EditOrder``, ``AddOrderBatch`` and the cancels add to it by the order's age,
their answers, the threshold of each tier, the ``trading_decay_scale`` scenario option and the
test hooks (``trading_counter``, ``trading_rate_limited``, ``order_ages``, ``/_sim/trading/``).

Ages are set with the simulator's clock (``set_clock_offset``); a decay scale of 1e-9 freezes
the counters so their values are exact."""

from __future__ import annotations

import json
import math
import re
import time
from typing import Any

import pytest

from broker.limits import call_cost
from simulator import Scenario, ScenarioError
from simulator.scenario_file import scenario_from_mapping
from testkit.rawclient import form, raw_request
from testkit.sim import StreamClient, call, one_key_simulator, ws_token

FROZEN = 1e-9  # a decay scale that keeps every count for the length of a test
BALANCES = {"ZUSD": "1000.0000", "XXBT": "0.5000000000"}
LIMIT = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "price": "100", "volume": "0.001"}
RATE_LIMIT = "EOrder:Rate limit exceeded"
TXID = re.compile(r"O[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{6}")
AMEND_ID = re.compile(r"T[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{6}")


class Rest:
    """Signed REST calls of one key, each with the next nonce."""

    def __init__(self, sim: Any, spec: Any) -> None:
        self.sim, self.spec, self.nonce = sim, spec, 0

    def next_nonce(self) -> int:
        self.nonce += 1
        return self.nonce

    def __call__(self, method: str, **fields: str) -> dict[str, Any]:
        nonce = self.next_nonce()  # the body is built here: a field may be named "timeout"
        reply = call(self.sim, self.spec, nonce, method, body=form(nonce, **fields))
        return dict(reply.json())

    def ok(self, method: str, **fields: str) -> dict[str, Any]:
        reply = self(method, **fields)
        assert reply["error"] == [], reply
        return dict(reply["result"])

    def place(self, **fields: str) -> str:
        return str(self.ok("AddOrder", **{**LIMIT, **fields})["txid"][0])


def counter(sim: Any, pair: str = "XBTUSD") -> float:
    return float(sim.trading_counter("trader", pair))


@pytest.fixture
def trader(start_simulator, make_keyspec):
    """A factory: a simulator with one key ``trader`` on ``tier`` and a frozen trading decay."""

    def start(tier: str = "pro", scale: float = FROZEN) -> tuple[Any, Rest]:
        spec = make_keyspec("trader", balances=dict(BALANCES))
        sim = start_simulator(Scenario(keys=[spec], tier=tier, trading_decay_scale=scale))
        return sim, Rest(sim, spec)

    return start


def batch_fields(*orders: dict[str, str], **extra: str) -> dict[str, str]:
    fields = {"pair": "XBTUSD", **extra}
    for i, order in enumerate(orders):
        fields.update({f"orders[{i}][{name}]": value for name, value in order.items()})
    return fields


ORDER = {"type": "buy", "ordertype": "limit", "price": "100", "volume": "0.001"}


# ------------------------------------------------------------------------ the scenario option
def test_trading_decay_scale_is_a_scenario_option():
    assert Scenario().trading_decay_scale == 1.0
    base = {"keys": []}
    assert (
        scenario_from_mapping({**base, "trading_decay_scale": 20}, "s.toml").trading_decay_scale
        == 20
    )
    for bad in (0, -1, "fast", True, math.nan, math.inf):
        with pytest.raises(ScenarioError, match=r"s\.toml: field 'trading_decay_scale'"):
            scenario_from_mapping({**base, "trading_decay_scale": bad}, "s.toml")
        with pytest.raises(ScenarioError, match="trading_decay_scale"):
            Scenario(trading_decay_scale=bad)


def test_the_decay_scale_speeds_the_counters_decay():
    # through testkit's one-key helper (scenario kwargs): starter decays 1/s, here 100/s
    with one_key_simulator("trader", tier="starter", trading_decay_scale=100) as (sim, _, _):
        assert sim.scenario.trading_decay_scale == 100.0
        started = time.monotonic()
        for _ in range(60):
            sim.place_order("trader", "XBTUSD", "buy", "0.0001", price="100")
        assert counter(sim) <= 60
        while counter(sim) > 0:  # at 1/s this would take a minute
            assert time.monotonic() - started < 5, counter(sim)
            time.sleep(0.01)
        # 60 counted can decay no faster than 100/s
        assert time.monotonic() - started >= 0.6


# ------------------------------------------------------------------------ increments by age
#: age of the order (s) -> what AmendOrder, EditOrder and CancelOrder add (kraken-api.md)
AGES = [
    (2, 4, 7, 8),
    (7, 3, 6, 6),
    (12, 2, 5, 5),
    (30, 1, 3, 4),
    (60, 1, 2, 2),
    (120, 1, 1, 1),
    (400, 1, 1, 0),
]


def test_each_transaction_adds_by_the_orders_age(trader):
    sim, rest = trader()
    offset = 0.0
    for age, amend, edit, cancel in AGES:
        for method, expected in (
            ("AmendOrder", amend),
            ("EditOrder", edit),
            ("CancelOrder", cancel),
        ):
            before = counter(sim)
            txid = rest.place()
            assert counter(sim) == pytest.approx(before + 1, abs=1e-6)  # AddOrder: +1
            offset += age
            sim.set_clock_offset(offset)
            extra = {
                "AmendOrder": {"limit_price": "101"},
                "EditOrder": {"pair": "XBTUSD", "price": "102"},
                "CancelOrder": {},
            }[method]
            rest.ok(method, txid=txid, **extra)
            added = counter(sim) - before - 1
            assert added == pytest.approx(expected, abs=1e-6), (method, age)


def test_amend_order_keeps_the_txid_and_starts_the_age_again(trader):
    sim, rest = trader()
    txid = rest.place(cl_ord_id="grind-1")
    opened = sim.open_orders("trader")[txid]["opentm"]
    sim.set_clock_offset(12)
    token = ws_token(sim, rest.spec, rest.next_nonce())
    with StreamClient(sim.ws_url) as client:
        client.request("subscribe", 1, channel="executions", token=token, snap_orders=False)
        result = rest.ok("AmendOrder", txid=txid, order_qty="0.002", limit_price="99.5")
        amended = client.next(lambda m: m.get("channel") == "executions")["data"][0]
    assert set(result) == {"amend_id"} and AMEND_ID.fullmatch(result["amend_id"])
    assert counter(sim) == pytest.approx(1 + 2)  # AddOrder, then AmendOrder at 12 s: 1 + 1
    entry = sim.open_orders("trader")[txid]
    assert (entry["vol"], entry["descr"]["price"], entry["amended"]) == ("0.00200000", "99.5", True)
    assert entry["opentm"] == opened and entry["cl_ord_id"] == "grind-1"
    assert amended["exec_type"] == "amended" and amended["order_id"] == txid
    assert (amended["order_qty"], amended["limit_price"]) == (0.002, 99.5)
    (age,) = sim.order_ages("trader")
    assert age.txid == txid and age.amended is not None and age.age_s < 2
    # by cl_ord_id, at once: the age started again at the last amend, so < 5 s: 1 + 3
    assert AMEND_ID.fullmatch(
        rest.ok("AmendOrder", cl_ord_id="grind-1", order_qty="0.003")["amend_id"]
    )
    assert counter(sim) == pytest.approx(3 + 4)
    # refusals: a bad argument still gets the fixed count; an unknown order counts nothing
    assert rest("AmendOrder", txid=txid, order_qty="-1")["error"] == [
        "EGeneral:Invalid arguments:order_qty"
    ]
    assert counter(sim) == pytest.approx(8)
    assert rest("AmendOrder", txid="OAAAAA-BBBBB-CCCCCC", order_qty="1")["error"] == [
        "EOrder:Unknown order"
    ]
    assert rest("AmendOrder", order_qty="1")["error"] == ["EGeneral:Invalid arguments:txid"]
    assert rest("AmendOrder", txid=txid, cl_ord_id="grind-1", order_qty="1")["error"] == [
        "EGeneral:Invalid arguments:txid"
    ]
    assert rest("AmendOrder", txid=txid, order_qty="20")["error"] == ["EOrder:Insufficient funds"]
    assert (
        counter(sim) == pytest.approx(9) and sim.open_orders("trader")[txid]["vol"] == "0.00300000"
    )


def test_edit_order_cancels_the_order_and_opens_a_new_one(trader):
    sim, rest = trader()
    old = rest.place(userref="42")
    sim.set_clock_offset(30)
    result = rest.ok("EditOrder", txid="42", pair="XBTUSD", volume="0.002", price="95", userref="7")
    assert set(result) == {
        "status",
        "txid",
        "originaltxid",
        "volume",
        "price",
        "price2",
        "orders_cancelled",
        "descr",
    }
    new = result["txid"]
    assert TXID.fullmatch(new) and new != old and result["originaltxid"] == old
    assert (result["status"], result["orders_cancelled"]) == ("ok", 1)
    assert (result["volume"], result["price"]) == ("0.00200000", "95.0")
    assert result["descr"] == {"order": "buy 0.00200000 XXBTZUSD @ limit 95.0"}
    assert counter(sim) == pytest.approx(1 + 3)  # AddOrder, then EditOrder at 30 s: 1 + 2
    assert sim.order_status("trader", old) == "canceled"
    assert list(sim.open_orders("trader")) == [new]
    assert sim.open_orders("trader")[new]["userref"] == 7
    (age,) = sim.order_ages("trader")
    assert age.txid == new and age.age_s < 2  # a new order: a new age
    assert rest("EditOrder", txid=new, pair="ETHUSD", price="1")["error"] == [
        "EGeneral:Invalid arguments:pair"
    ]
    assert rest("EditOrder", txid=new, pair="DOGEUSD")["error"] == ["EQuery:Unknown asset pair"]
    assert rest("EditOrder", txid=old, pair="XBTUSD")["error"] == ["EOrder:Unknown order"]
    validated = rest.ok("EditOrder", txid=new, pair="XBTUSD", price="90", validate="true")
    assert "txid" not in validated and validated["orders_cancelled"] == 0
    assert list(sim.open_orders("trader")) == [new] and counter(sim) == pytest.approx(4)


# ------------------------------------------------------------------------ batches and cancels
def test_add_order_batch_counts_half_an_order_each(trader):
    sim, rest = trader()
    big = {**ORDER, "price": "40000", "volume": "1"}  # 40000 USD: more than the key holds
    result = rest.ok("AddOrderBatch", **batch_fields(ORDER, {**ORDER, "cl_ord_id": "b-2"}, big))
    first, second, third = result["orders"]
    assert set(first) == {"txid", "descr"} and TXID.fullmatch(first["txid"])
    assert first["descr"] == {"order": "buy 0.001 XBTUSD @ limit 100"}
    assert third == {"error": "EOrder:Insufficient funds"}  # refused alone
    assert counter(sim) == pytest.approx(1.5)  # Kraken's +(n/2)
    assert set(sim.open_orders("trader")) == {first["txid"], second["txid"]}
    assert sim.open_orders("trader")[second["txid"]]["cl_ord_id"] == "b-2"
    # an order that fails its checks rejects the whole batch (counted on receipt)
    bad = rest("AddOrderBatch", **batch_fields(ORDER, {**ORDER, "type": "hold"}))
    assert bad["error"] == ["EGeneral:Invalid arguments:type"] and counter(sim) == pytest.approx(
        2.5
    )
    assert len(sim.open_orders("trader")) == 2
    validated = rest.ok("AddOrderBatch", **batch_fields(ORDER, ORDER, validate="true"))
    assert validated == {"orders": [{"descr": {"order": "buy 0.001 XBTUSD @ limit 100"}}] * 2}
    for orders in ([ORDER], [ORDER] * 16):
        reply = rest("AddOrderBatch", **batch_fields(*orders))
        assert reply["error"] == ["EGeneral:Invalid arguments:orders"]
    gap = {"pair": "XBTUSD", **{f"orders[{i}][{k}]": v for i in (0, 2) for k, v in ORDER.items()}}
    assert rest("AddOrderBatch", **gap)["error"] == ["EGeneral:Invalid arguments:orders"]
    assert counter(sim) == pytest.approx(2.5) and len(sim.open_orders("trader")) == 2


def test_cancel_by_userref_and_by_cl_ord_id(trader):
    sim, rest = trader()
    a, b = rest.place(userref="42"), rest.place(userref="42")
    c = rest.place(cl_ord_id="6d1b345e-2821-40e2-ad83-4ecb18a06876")
    for fields in ({"cl_ord_id": "6d1b345e-2821-40e2-ad83-4ecb18a06876"}, {"cl_ord_id": "x" * 19}):
        assert rest("AddOrder", **LIMIT, **fields)["error"] == [
            "EGeneral:Invalid arguments:cl_ord_id"
        ]
    both = rest("AddOrder", **LIMIT, userref="1", cl_ord_id="other")
    assert both["error"] == ["EGeneral:Invalid arguments:cl_ord_id"]  # mutually exclusive
    assert counter(sim) == pytest.approx(6)
    assert rest.ok("CancelOrder", txid="42") == {"count": 2}
    assert counter(sim) == pytest.approx(6 + 16)
    assert rest.ok("CancelOrder", cl_ord_id="6d1b345e-2821-40e2-ad83-4ecb18a06876") == {"count": 1}
    assert {sim.order_status("trader", t) for t in (a, b, c)} == {"canceled"}
    assert rest("CancelOrder", txid="42")["error"] == ["EOrder:Unknown order"]
    assert rest("CancelOrder", txid=a, cl_ord_id="x")["error"] == [
        "EGeneral:Invalid arguments:txid"
    ]


def test_the_threshold_of_each_tier(trader):
    for tier, threshold in (("starter", 60), ("intermediate", 125), ("pro", 180)):
        sim, rest = trader(tier=tier)
        txids = [
            sim.place_order("trader", "XBTUSD", "buy", "0.0001", price="100")
            for _ in range(threshold)
        ]
        assert counter(sim) == pytest.approx(threshold)
        assert rest("AddOrder", **LIMIT)["error"] == [RATE_LIMIT]
        assert rest("AmendOrder", txid=txids[0], limit_price="101")["error"] == [RATE_LIMIT]
        assert rest("EditOrder", txid=txids[0], pair="XBTUSD", price="101")["error"] == [RATE_LIMIT]
        assert rest("CancelOrder", txid=txids[0])["error"] == [RATE_LIMIT]
        # refused: nothing changed, nothing counted
        assert counter(sim) == pytest.approx(threshold)
        assert len(sim.open_orders("trader")) == threshold
        assert sim.open_orders("trader")[txids[0]]["descr"]["price"] == "100.0"
        assert sim.trading_rate_limited("trader") == 4
        assert sim.stats("trader").trading_rate_limited == 4
        # another pair has its own counter
        assert rest.ok("AddOrder", **{**LIMIT, "pair": "ETHUSD"})["txid"]
        # batch cancels are never refused: each cancel counts (8 under 5 s), past the threshold
        assert rest.ok("CancelOrderBatch", **{"orders[0]": txids[0], "orders[1]": txids[1]}) == {
            "count": 2
        }
        assert counter(sim) == pytest.approx(threshold + 16)
        assert rest.ok("CancelAll") == {"count": threshold - 2 + 1}
        assert counter(sim) == pytest.approx(threshold + 16 + 8 * (threshold - 2))
        assert counter(sim, "ETHUSD") == pytest.approx(1 + 8)
        assert sim.open_orders("trader") == {}
        assert sim.trading_rate_limited("trader") == 4


def test_cancel_order_batch_arguments(trader):
    sim, rest = trader()
    a = rest.place(userref="5")
    b = rest.place(cl_ord_id="c-b")
    fields = {"orders[0]": "5", "orders[1]": "OAAAAA-BBBBB-CCCCCC", "cl_ord_ids[0]": "c-b"}
    assert rest.ok("CancelOrderBatch", **fields) == {"count": 2}  # the unknown one passed over
    assert {sim.order_status("trader", t) for t in (a, b)} == {"canceled"}
    too_many = {f"orders[{i}]": f"{i}" for i in range(51)}
    for bad in ({}, too_many, {"orders[1]": "x"}, {"orders[0]": ""}, {"orders[0][txid]": a}):
        assert rest("CancelOrderBatch", **bad)["error"] == ["EGeneral:Invalid arguments:orders"]
    assert rest.ok("CancelAll") == {"count": 0}


NEW_METHODS = (
    "AmendOrder",
    "EditOrder",
    "AddOrderBatch",
    "CancelOrderBatch",
    "CancelAll",
    "CancelAllOrdersAfter",
)


def test_new_methods_need_trade(start_simulator, make_keyspec):
    viewer = make_keyspec("viewer", permissions={"funds", "orders"}, balances=dict(BALANCES))
    view = Rest(start_simulator(Scenario(keys=[viewer])), viewer)
    for method in NEW_METHODS:
        assert view(method)["error"] == ["EGeneral:Permission denied"], method


def test_the_call_counter_counts_them_as_broker_limits_says(start_simulator, make_keyspec):
    specs = [make_keyspec(method, balances=dict(BALANCES)) for method in NEW_METHODS]
    sim = start_simulator(Scenario(keys=specs, tier="starter"))  # call counter: 15, 0.33/s
    for method, spec in zip(NEW_METHODS, specs, strict=True):
        rest = Rest(sim, spec)
        # judged before the arguments: a call refused for them has passed the call counter
        errors = [rest(method)["error"] for _ in range(16)]
        limited = ["EAPI:Rate limit exceeded"] in errors
        assert limited == (call_cost(method) > 0), (method, errors[-1])
        assert errors[:15].count(["EAPI:Rate limit exceeded"]) == 0


def test_the_admin_route_shows_the_trading_state(trader):
    sim, rest = trader()
    txid = rest.place()
    rest.ok("CancelAllOrdersAfter", timeout="600")
    reply = raw_request(sim.url, "GET", "/_sim/trading/trader")
    assert reply.status == 200
    doc = reply.json()
    assert doc["counters"] == {"XXBTZUSD": pytest.approx(1)} and doc["maxratecount"] == 180
    assert doc["dead_mans_switch"] == pytest.approx(sim.dead_mans_switch("trader"))
    assert doc["trading_rate_limited"] == 0 and doc["dead_mans_switch_fired"] == 0
    (order,) = doc["orders"]
    assert order["txid"] == txid and order["pair"] == "XXBTZUSD" and 0 <= order["age_s"] < 5
    assert raw_request(sim.url, "GET", "/_sim/trading/nobody").status == 404
    assert raw_request(sim.url, "POST", "/_sim/trading/trader", json.dumps({})).status == 405
