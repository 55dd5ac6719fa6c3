"""The trading guard's parts on their own: what a trading call costs on the per-pair counters, what
its answer teaches, the budget's arithmetic on a real store (SQLite), pair names, and the
dead man's switch's re-arm rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.deadman import DeadMan, trigger_time
from gateway.guardstore import FileGuardStore, OrderSeen
from gateway.pairnames import PairNames
from gateway.tradeplan import charges, learn, plan_for
from gateway.tradingbudget import DECAY_SHARE, HEADROOM, TradingBudget

PAIRS = json.dumps(
    {
        "error": [],
        "result": {
            "XXBTZUSD": {"altname": "XBTUSD", "wsname": "XBT/USD"},
            "XETHZUSD": {"altname": "ETHUSD", "wsname": "ETH/USD"},
        },
    }
).encode()


def names() -> PairNames:
    pairs = PairNames()
    assert pairs.load(PAIRS) == 2
    return pairs


def test_every_spelling_of_a_pair_is_one_pair() -> None:
    pairs = names()
    for spelled in ("XBTUSD", "xbtusd", "XXBTZUSD", "XBT/USD", "BTC/USD", "btc/usd"):
        assert pairs.canonical(spelled) == "XXBTZUSD", spelled
    assert pairs.canonical("DOGE/EUR") == "DOGEEUR"  # not listed: as spelled, without its slash
    assert PairNames().load(b"<html>") == 0


def form(**fields: str) -> bytes:
    return "&".join(f"{k}={v}" for k, v in fields.items()).encode()


def test_what_each_trading_call_costs_by_the_age_of_its_orders() -> None:
    canonical = names().canonical
    now = 1000.0
    young = OrderSeen("O1", "XXBTZUSD", now - 2, userref="7")  # 2 s old
    older = OrderSeen("O2", "XXBTZUSD", now - 12)  # 12 s old
    eth = OrderSeen("O3", "XETHZUSD", now - 100)  # 100 s old
    orders = [young, older, eth]

    def cost(method: str, **fields: str) -> dict[str, float]:
        plan = plan_for(method, form(**fields), canonical)
        assert plan is not None, method
        return charges(plan, orders, now)

    assert cost("AddOrder", pair="XBTUSD") == {"XXBTZUSD": 1.0}
    assert cost("AddOrderBatch", pair="XBTUSD", **{"orders[0][type]": "buy", "orders[1][type]": "sell", "orders[2][type]": "buy"}) == {"XXBTZUSD": 1.5}  # fmt: skip
    assert cost("CancelOrder", txid="O1") == {"XXBTZUSD": 8.0}
    assert cost("CancelOrder", txid="7") == {"XXBTZUSD": 8.0}  # by userref
    assert cost("CancelOrder", txid="O2") == {"XXBTZUSD": 5.0}
    assert cost("CancelOrder", txid="O3") == {"XETHZUSD": 1.0}
    assert cost("CancelOrder", txid="NOT-SEEN") == {}  # its age is not known
    assert cost("EditOrder", txid="O1", pair="XBTUSD") == {"XXBTZUSD": 7.0}
    assert cost("AmendOrder", txid="O2") == {"XXBTZUSD": 2.0}  # 12 s: +1 +1
    assert cost("CancelAll") == {"XXBTZUSD": 13.0, "XETHZUSD": 1.0}
    validated = plan_for("AddOrder", form(pair="XBTUSD", validate="true"), canonical)
    assert validated is not None and validated.halts and charges(validated, orders, now) == {}
    # two validate fields: Kraken may place it, so it counts
    doubled = plan_for("AddOrder", b"pair=XBTUSD&validate=true&validate=false", canonical)
    assert doubled is not None and charges(doubled, orders, now) == {"XXBTZUSD": 1.0}
    token = plan_for("GetWebSocketsToken", b"", canonical)
    assert token is not None and token.halts and charges(token, orders, now) == {}
    assert plan_for("Balance", b"", canonical) is None


def test_answers_teach_the_orders_opened_and_closed() -> None:
    canonical = names().canonical
    added = plan_for("AddOrder", form(pair="XBTUSD", userref="9"), canonical)
    assert added is not None
    body = json.dumps({"error": [], "result": {"txid": ["OA"]}}).encode()
    learned = learn(added, body, form(pair="XBTUSD", userref="9"), [], 50.0)
    assert learned.opened == [OrderSeen("OA", "XXBTZUSD", 50.0, "9", None)]
    failed = json.dumps({"error": ["EOrder:Insufficient funds"]}).encode()
    assert learn(added, failed, b"pair=XBTUSD", [], 50.0).opened == []
    seen = [OrderSeen("OA", "XXBTZUSD", 40.0)]
    edit = plan_for("EditOrder", form(txid="OA", pair="XBTUSD"), canonical)
    assert edit is not None
    body = json.dumps({"error": [], "result": {"txid": "OB", "originaltxid": "OA"}}).encode()
    learned = learn(edit, body, form(txid="OA", pair="XBTUSD"), seen, 60.0)
    assert (learned.opened, learned.closed) == ([OrderSeen("OB", "XXBTZUSD", 60.0)], ["OA"])
    cancel = plan_for("CancelAll", b"", canonical)
    assert cancel is not None
    ok = json.dumps({"error": [], "result": {"count": 1}}).encode()
    assert learn(cancel, ok, b"", seen, 60.0).closed == ["OA"]


def test_the_budget_holds_what_would_overflow_and_shares_a_pair(tmp_path: Path) -> None:
    store = FileGuardStore(tmp_path / "guard.sqlite3")
    clock = [0.0]
    budget = TradingBudget(store, "key", 60.0, 1.0, clock=lambda: clock[0])
    assert budget.take({"P": 50.0}) == 0.0
    assert budget.take({"P": 8.0}) == 0.0  # 58
    wait = budget.take({"P": 8.0})  # 66 > 59: waits until 7 counts decayed
    assert wait == pytest.approx((58 + 8 - (60 - HEADROOM)) / DECAY_SHARE)
    assert budget.take({"Q": 8.0}) == 0.0  # another pair is not held
    clock[0] += wait
    assert budget.take({"P": 8.0}) == 0.0
    budget.give_back({"P": 8.0})
    assert budget.levels()["P"] == pytest.approx(51.0)
    budget.raise_to("P", 60.0)  # Kraken said its counter is full
    assert budget.take({"P": 1.0}) > 0
    assert budget.take({"P": 1.0}, force=True) == 0.0  # CancelAll is never held
    # a client with half the budget has a counter of its own besides the pair's
    shared = TradingBudget(store, "other", 60.0, 1.0, clock=lambda: clock[0])
    assert [shared.take({"P": 1.0}, "grid", 0.5) for _ in range(30)].count(0.0) == 29
    assert shared.take({"P": 1.0}, "maker", 0.5) == 0.0
    assert shared.take({"P": 1.0}) == 0.0


def test_the_dead_mans_switch_rearms_at_most_every_quarter_of_its_timeout() -> None:
    clock = [0.0]
    asked: list[str] = []
    dead_man = DeadMan("MASTER", 60, lambda: asked.append("rearm"), clock=lambda: clock[0])
    dead_man.bot_called()
    dead_man.bot_called()  # one re-arm in flight is enough
    assert asked == ["rearm"]
    dead_man.armed(60.0)
    clock[0] = 14.0
    dead_man.bot_called()  # within S/4 of the last re-arm
    assert asked == ["rearm"]
    clock[0] = 15.0
    dead_man.bot_called()
    assert asked == ["rearm", "rearm"]
    dead_man.failed("EService:Unavailable")
    state = dead_man.state
    assert (state.failures, state.last_error, state.seconds_left(30.0)) == (1, "EService:Unavailable", 30.0)  # fmt: skip
    # a failing re-arm is asked again after 1, 2, 4... s (at most every S/4), not per bot call
    clock[0] = 15.5
    dead_man.bot_called()
    assert len(asked) == 2
    clock[0] = 16.0
    dead_man.bot_called()
    assert len(asked) == 3
    dead_man.failed("EService:Unavailable")
    clock[0] = 17.5
    dead_man.bot_called()
    assert len(asked) == 3  # 2 s after the second failure, not 1.5
    clock[0] = 18.0
    dead_man.bot_called()
    assert len(asked) == 4
    answer = {"error": [], "result": {"currentTime": "x", "triggerTime": "2026-12-06T10:00:00Z"}}
    assert trigger_time(json.dumps(answer).encode()) == 1796551200.0
    off = {"error": [], "result": {"currentTime": "x", "triggerTime": "0"}}
    assert trigger_time(json.dumps(off).encode()) is None
