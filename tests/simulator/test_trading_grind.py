"""``testkit.grind`` (two krakenex bots grinding one pair on one key) straight against the
simulator's ``grind.toml``: with nothing between them and Kraken, the bots pass the trading
counter's threshold and Kraken answers ``EOrder:Rate limit exceeded``, yet every order is placed
and cancelled in the end. And the shipped scenario files load."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator import Simulator, load_scenario
from simulator.cli import HELP_EPILOG, resolve_scenario
from testkit.grind import grind

SCENARIOS = Path(__file__).resolve().parents[2] / "simulator" / "scenarios"


def test_every_shipped_scenario_loads():
    files = sorted(SCENARIOS.glob("*.toml"))
    assert {f.name for f in files} >= {"example.toml", "grind.toml"}
    for file in files:
        assert resolve_scenario(str(file)).keys, file
    grind_scenario = load_scenario(SCENARIOS / "grind.toml")
    (spec,) = grind_scenario.keys
    assert (grind_scenario.tier, grind_scenario.trading_decay_scale) == ("starter", 20.0)
    assert spec.nonce_window > 0 and "trade" in spec.permissions
    assert "trading_decay_scale" in HELP_EPILOG


def test_two_bots_straight_at_kraken_hit_its_rate_limit():
    scenario = load_scenario(SCENARIOS / "grind.toml")
    (spec,) = scenario.keys
    with Simulator(scenario) as sim:
        result = grind(sim.url, spec.key, spec.secret, bots=2, orders=12)
        assert (result.placed, result.cancelled) == (12, 12)
        assert result.rate_limited_by_kraken >= 1  # 12 x (1 + 8) is well past 60
        assert result.refused_by_gateway == 0 and result.other_errors == {}
        # the simulator saw the same refusals, and nothing is left open
        assert sim.trading_rate_limited(spec.name) == result.rate_limited_by_kraken
        assert sim.open_orders(spec.name) == {}
        assert sim.stats(spec.name).invalid_nonce == 0
        assert result.elapsed_s > 0


def test_without_cancels_the_orders_stay_open():
    scenario = load_scenario(SCENARIOS / "grind.toml")
    (spec,) = scenario.keys
    with Simulator(scenario) as sim:
        result = grind(sim.url, spec.key, spec.secret, bots=3, orders=5, cancel=False)
        assert (result.placed, result.cancelled, result.rate_limited_by_kraken) == (5, 0, 0)
        assert len(sim.open_orders(spec.name)) == 5
        assert sim.trading_counter(spec.name, "XBTUSD") <= 5
    with pytest.raises(ValueError, match="bots"):
        grind(sim.url, spec.key, spec.secret, bots=0)
