"""The dead man's switch (``CancelAllOrdersAfter``) over real HTTP: arming, re-arming and
disarming it, its arguments, and its firing on its own (no request needed) at the trigger time:
every open order cancelled, on the ``executions`` stream with its reason, counted on the trading
counters. Waits are for conditions, with deadlines; the simulator's clock brings a trigger near."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest

from simulator import Scenario
from testkit.sim import StreamClient, ws_token

from .test_trading_guard_sim import BALANCES, FROZEN, Rest

REASON = "Dead man's switch"


def parse(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@pytest.fixture
def accounts(start_simulator, make_keyspec):
    """Two keys (``alice``, ``bob``) on the pro tier, trading counters frozen."""
    specs = [make_keyspec(name, balances=dict(BALANCES)) for name in ("alice", "bob")]
    sim = start_simulator(Scenario(keys=specs, tier="pro", trading_decay_scale=FROZEN))
    return sim, Rest(sim, specs[0]), Rest(sim, specs[1])


def place(sim: Any, key: str, pair: str = "XBTUSD") -> str:
    return str(sim.place_order(key, pair, "buy", "0.001", price="100"))


def test_arming_answers_and_disarming(accounts):
    sim, alice, _ = accounts
    assert sim.dead_mans_switch("alice") is None
    before = time.time()
    armed = alice.ok("CancelAllOrdersAfter", timeout="60")
    assert set(armed) == {"currentTime", "triggerTime"}
    current, trigger = parse(armed["currentTime"]), parse(armed["triggerTime"])
    assert before - 1 <= current <= time.time() + 1
    assert trigger - current == pytest.approx(60, abs=1e-3)
    assert sim.dead_mans_switch("alice") == pytest.approx(trigger, abs=1e-3)
    rearmed = alice.ok("CancelAllOrdersAfter", timeout="86399")  # Kraken: below 86400
    assert parse(rearmed["triggerTime"]) - parse(rearmed["currentTime"]) == pytest.approx(86399)
    off = alice.ok("CancelAllOrdersAfter", timeout="0")
    assert off["triggerTime"] == "0" and parse(off["currentTime"]) >= current
    assert sim.dead_mans_switch("alice") is None
    for bad in ("86400", "-1", "1.5", "soon", ""):
        assert alice("CancelAllOrdersAfter", timeout=bad)["error"] == [
            "EGeneral:Invalid arguments:timeout"
        ], bad
    assert alice("CancelAllOrdersAfter")["error"] == ["EGeneral:Invalid arguments:timeout"]
    assert sim.dead_mans_switch("alice") is None and sim.dead_mans_switch_fired("alice") == 0


def test_it_fires_on_its_own_at_the_trigger_time(accounts):
    sim, alice, _ = accounts
    xbt = [place(sim, "alice"), place(sim, "alice")]
    eth = place(sim, "alice", "ETHUSD")
    token = ws_token(sim, alice.spec, alice.next_nonce())
    with StreamClient(sim.ws_url) as client:
        ack = client.request(
            "subscribe", 1, channel="executions", token=token, snap_orders=False, ratecounter=True
        )
        assert ack["success"] is True
        armed = alice.ok("CancelAllOrdersAfter", timeout="1")
        started = time.monotonic()
        # no further request: the switch fires by itself
        sim.wait_for_orders("alice", lambda orders: not orders, timeout=5)
        elapsed = time.monotonic() - started
        cancels = [
            client.next(lambda m: m.get("channel") == "executions")["data"][0] for _ in range(3)
        ]
    assert 0.9 <= elapsed < 5, elapsed
    assert time.time() >= parse(armed["triggerTime"]) - 0.01
    assert {c["order_id"] for c in cancels} == {*xbt, eth}
    assert {(c["exec_type"], c["cancel_reason"], c["reason"]) for c in cancels} == {
        ("canceled", REASON, REASON)
    }
    assert {sim.order_status("alice", txid) for txid in (*xbt, eth)} == {"canceled"}
    # counted like cancels of orders under 5 s old: 8 each, on each pair's counter
    assert sim.trading_counter("alice", "XBTUSD") == pytest.approx(2 + 16, abs=1e-3)
    assert sim.trading_counter("alice", "ETHUSD") == pytest.approx(1 + 8, abs=1e-3)
    assert max(c["ratecount"] for c in cancels if c["symbol"] == "BTC/USD") == pytest.approx(18)
    # then it is off until armed again
    assert sim.dead_mans_switch("alice") is None and sim.dead_mans_switch_fired("alice") == 1


def test_it_follows_the_simulators_clock_and_only_armed_keys_fire(accounts):
    sim, alice, bob = accounts
    kept, gone = place(sim, "alice"), place(sim, "bob")
    alice.ok("CancelAllOrdersAfter", timeout="600")
    alice.ok("CancelAllOrdersAfter", timeout="0")  # disarmed: must not fire
    bob.ok("CancelAllOrdersAfter", timeout="600")
    sim.set_clock_offset(601)  # ten minutes later on the simulator's clock
    sim.wait_for_orders("bob", lambda orders: not orders, timeout=3)
    # bob's trigger time has been passed and handled: alice's orders stay
    assert sim.order_status("bob", gone) == "canceled"
    assert list(sim.open_orders("alice")) == [kept]
    assert sim.dead_mans_switch_fired("alice") == 0 and sim.dead_mans_switch_fired("bob") == 1
    # re-armed after firing, it fires again
    again = place(sim, "bob")
    bob.ok("CancelAllOrdersAfter", timeout="30")
    assert sim.dead_mans_switch("bob") == pytest.approx(time.time() + 601 + 30, abs=2)
    sim.set_clock_offset(601 + 31)
    sim.wait_for_orders("bob", lambda orders: not orders, timeout=3)
    assert sim.order_status("bob", again) == "canceled"
    assert sim.dead_mans_switch_fired("bob") == 2


def test_rearming_pushes_the_trigger_back(accounts):
    sim, alice, bob = accounts
    kept, gone = place(sim, "alice"), place(sim, "bob")
    alice.ok("CancelAllOrdersAfter", timeout="60")
    bob.ok("CancelAllOrdersAfter", timeout="60")
    sim.set_clock_offset(50)
    alice.ok("CancelAllOrdersAfter", timeout="60")  # at 50 s: now due at 110 s
    sim.set_clock_offset(70)
    sim.wait_for_orders("bob", lambda orders: not orders, timeout=3)
    assert sim.order_status("bob", gone) == "canceled"
    assert list(sim.open_orders("alice")) == [kept]
    assert sim.dead_mans_switch("alice") == pytest.approx(time.time() + 50 + 60, abs=2)
