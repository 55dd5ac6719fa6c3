"""Permissions, the rate limit and the temporary lockout."""

from __future__ import annotations

import time

from simulator import Scenario, builtin_scenario
from testkit.rawclient import form, signed_post
from testkit.sim import call

ORDER = {
    "pair": "XBTUSD",
    "type": "buy",
    "ordertype": "market",
    "volume": "0.01",
    "validate": "true",
}


def test_each_method_needs_its_permission(start_simulator):
    scenario = builtin_scenario("permission-denied")  # no "funds"
    sim = start_simulator(scenario)
    spec = scenario.keys[0]
    assert call(sim, spec, 1, "Balance").error == ["EGeneral:Permission denied"]
    assert call(sim, spec, 2, "BalanceEx").error == ["EGeneral:Permission denied"]
    assert call(sim, spec, 3, "TradeBalance").error == ["EGeneral:Permission denied"]
    assert call(sim, spec, 4, "OpenOrders").json() == {"error": [], "result": {"open": {}}}
    assert call(sim, spec, 5, "AddOrder", **ORDER).error == []
    assert sim.stats("MASTER").permission_denied == 3

    sim.update_key("MASTER", permissions=["funds"])
    assert call(sim, spec, 6, "Balance").error == []
    assert call(sim, spec, 7, "OpenOrders").error == ["EGeneral:Permission denied"]
    assert call(sim, spec, 8, "AddOrder", **ORDER).error == ["EGeneral:Permission denied"]


def test_demo_user_without_orders_permission(start_simulator):
    scenario = builtin_scenario("demo")
    sim = start_simulator(scenario)
    tania = next(k for k in scenario.keys if k.account == "USER:tania_gilbert")
    assert call(sim, tania, 1, "Balance").error == []
    assert call(sim, tania, 2, "OpenOrders").error == ["EGeneral:Permission denied"]
    for spec in scenario.keys:
        if spec is not tania:
            assert call(sim, spec, 1, "OpenOrders").error == [], spec.name


def test_starter_tier_limits_the_sixteenth_quick_call(start_simulator, make_keyspec):
    spec = make_keyspec()
    sim = start_simulator(Scenario(tier="starter", keys=[spec]))
    answers = [call(sim, spec, n).error for n in range(1, 17)]
    assert answers[:15] == [[]] * 15
    assert answers[15] == ["EAPI:Rate limit exceeded"]
    stats = sim.stats(spec.name)
    assert stats.rate_limited == 1
    assert stats.last_nonce == 15, "a rate-limited call does not consume its nonce"
    # AddOrder uses the (unsimulated) trading counter: not limited; and nonce 16 is still free
    assert call(sim, spec, 16, "AddOrder", **ORDER).error == []


def test_unlimited_tier_is_not_rate_limited(start_simulator, make_keyspec):
    spec = make_keyspec()
    sim = start_simulator(Scenario(tier="unlimited", keys=[spec]))
    assert all(call(sim, spec, n).error == [] for n in range(1, 41))


def test_repeated_failures_lock_the_key_out_then_it_clears(start_simulator, make_keyspec):
    spec, other = make_keyspec("locked"), make_keyspec("other")
    sim = start_simulator(
        Scenario(lockout_threshold=3, lockout_seconds=0.8, tier="unlimited", keys=[spec, other])
    )
    bad = "A" * 88
    assert call(sim, spec, 1, api_sign=bad).error == ["EAPI:Invalid signature"]
    assert call(sim, spec, 2, api_sign=bad).error == ["EAPI:Invalid signature"]
    assert call(sim, spec, 10).error == []
    assert call(sim, spec, 5).error == ["EAPI:Invalid nonce"]  # the third failure
    locked_at = time.monotonic()
    assert call(sim, spec, 11).error == ["EGeneral:Temporary lockout"]
    assert call(sim, other, 1).error == [], "a lockout is per key"
    assert sim.stats("locked").locked_out == 1
    assert sim.stats("locked").last_nonce == 10
    time.sleep(max(0.0, 0.85 - (time.monotonic() - locked_at)))  # the lockout is time-based
    assert call(sim, spec, 11).error == []


def test_lockout_disabled_with_threshold_zero(start_simulator, make_keyspec):
    spec = make_keyspec()
    sim = start_simulator(Scenario(lockout_threshold=0, tier="unlimited", keys=[spec]))
    for n in range(30):
        assert call(sim, spec, n + 1, api_sign="A" * 88).error == ["EAPI:Invalid signature"]
    assert call(sim, spec, 1).error == []


def test_unknown_keys_do_not_lock_anything(start_simulator, make_keyspec):
    spec = make_keyspec()
    sim = start_simulator(Scenario(lockout_threshold=2, keys=[spec]))
    for n in range(5):
        reply = signed_post(
            sim.url, "Balance", key="SIMnobody", secret=spec.secret, body=form(n + 1), nonce=n + 1
        )
        assert reply.error == ["EAPI:Invalid key"]
    assert call(sim, spec, 1).error == []
    assert sim.total_stats().invalid_key == 5
