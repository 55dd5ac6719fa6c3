"""Unmodified krakenex 2.2.2 (only ``uri`` changed) against the simulator."""

from __future__ import annotations

import krakenex

from simulator import Scenario
from testkit.rawclient import LIMIT_ORDER


def _api(sim, spec) -> krakenex.API:
    api = krakenex.API(spec.key, spec.secret)
    api.uri = sim.url
    return api


def test_time_balance_and_validate_only_order(start_simulator, make_keyspec):
    spec = make_keyspec(balances={"ZUSD": "1234.5600", "XXBT": "0.1234567890"})
    sim = start_simulator(Scenario(keys=[spec]))
    api = _api(sim, spec)

    time_doc = api.query_public("Time")
    assert time_doc["error"] == [] and isinstance(time_doc["result"]["unixtime"], int)
    assert api.query_private("Balance") == {
        "error": [],
        "result": {"ZUSD": "1234.5600", "XXBT": "0.1234567890"},
    }
    reply = api.query_private("AddOrder", dict(LIMIT_ORDER))
    assert reply == {"error": [], "result": {"descr": {"order": "buy 1.25 XBTUSD @ limit 37500"}}}
    assert "txid" not in reply["result"]
    stats = sim.stats(spec.name)
    assert stats.accepted == 2 and stats.requests == 2


def test_same_millisecond_nonce_twice_is_rejected(start_simulator, make_keyspec):
    spec = make_keyspec()
    sim = start_simulator(Scenario(keys=[spec]))
    api = _api(sim, spec)
    api._nonce = lambda: 1_800_000_000_000  # two calls in the same millisecond, forced

    assert api.query_private("Balance")["error"] == []
    assert api.query_private("Balance") == {"error": ["EAPI:Invalid nonce"]}
    stats = sim.stats(spec.name)
    assert (stats.accepted, stats.invalid_nonce, stats.last_nonce) == (1, 1, 1_800_000_000_000)


def test_krakenex_list_values_are_an_invalid_signature(start_simulator, make_keyspec):
    # krakenex signs a list one way (urlencode without doseq) and requests sends it another
    spec = make_keyspec()
    sim = start_simulator(Scenario(keys=[spec]))
    reply = _api(sim, spec).query_private("TradeBalance", {"asset": ["ZUSD", "USD"]})
    assert reply == {"error": ["EAPI:Invalid signature"]}


def test_public_assets_describes_a_few_assets(start_simulator):
    sim = start_simulator(Scenario())
    api = krakenex.API()
    api.uri = sim.url
    reply = api.query_public("Assets")
    assert reply["error"] == []
    assert reply["result"]["ZUSD"]["decimals"] == 4 and reply["result"]["XXBT"]["altname"] == "XBT"
    assert {asset["status"] for asset in reply["result"].values()} == {"enabled"}
