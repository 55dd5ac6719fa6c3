"""Kraken's rate limit, modelled by the gateway: a burst never earns Kraken's rate-limit error.

The simulator enforces the Starter tier (15, decaying 0.33/s) and counts every rate-limited call;
the contrast sends the same burst straight to it.
"""

from __future__ import annotations

from collections import Counter

from testkit.bots import run_threads
from testkit.gateway import account
from testkit.rawclient import form, fresh_nonce, signed_post
from testkit.sim import one_key_simulator

GATEWAY_REFUSAL = "EAPI:Rate limit exceeded (gateway)"
ORDER = {"pair": "XBTUSD", "type": "buy", "ordertype": "market", "volume": "1", "validate": "true"}


def burst(url: str, key: str, secret: str) -> Counter[str]:
    """40 krakenex calls from 4 threads (one client object each: no nonce clashes), at once."""
    return run_threads("krakenex", [(key, secret)], url, threads=4, calls=10, shared=False)


def test_a_burst_on_a_starter_key_never_earns_krakens_rate_limit_error(start_gateway) -> None:
    with one_key_simulator("starter", tier="starter") as (sim, key, secret):
        gw = start_gateway(
            sim.url, [account(key, secret, tier="starter")], rate_limited=True, max_queue_wait_s=2.0
        )
        through = burst(gw.url, key, secret)
        stats = sim.stats(key)
        assert stats.rate_limited == 0 and stats.invalid_nonce == 0
        assert set(through) <= {"ok", GATEWAY_REFUSAL}, through
        assert through["ok"] == stats.accepted >= 12  # the budget was used, not wasted
        assert sum(through.values()) == 40
        assert gw.gateway.rate_model("MASTER").level() <= gw.gateway.rate_model("MASTER").limit
    # the contrast: the same burst straight at the simulator
    with one_key_simulator("starter-direct", tier="starter") as (sim, key, secret):
        direct = burst(sim.url, key, secret)
        assert sim.stats(key).rate_limited > 0 and direct["EAPI:Rate limit exceeded"] > 0


def test_krakens_own_rate_limit_answers_are_passed_through_counted_and_respected(
    start_gateway,
) -> None:
    with one_key_simulator("limits", tier="unlimited") as (sim, key, secret):
        gw = start_gateway(
            sim.url, [account(key, secret, tier="starter")], rate_limited=True, max_queue_wait_s=2.0
        )
        registry = gw.gateway.metrics.registry

        def kraken_errors(code: str) -> float:
            return (
                registry.get_sample_value(
                    "krakenwatch_gateway_kraken_errors_total", {"account": "MASTER", "code": code}
                )
                or 0.0
            )

        # the per-pair trading limiter: passed through and counted, the call counter untouched
        sim.set_faults(api_error="EOrder:Rate limit exceeded", methods=["AddOrder"], count=1)
        placed = fresh_nonce()
        order = signed_post(
            gw.url, "AddOrder", key=key, secret=secret, body=form(placed, **ORDER), nonce=placed
        )
        assert (
            order.error == ["EOrder:Rate limit exceeded"]
            and "x-krakenwatch-gateway" not in order.headers
        )
        assert kraken_errors("EOrder:Rate limit exceeded") == 1
        # another program spent the key's budget: Kraken says so once, the gateway then holds back
        sim.set_faults(api_error="EAPI:Rate limit exceeded", count=1)
        first = signed_post(gw.url, "Balance", key=key, secret=secret, body=form(2), nonce=2)
        assert (
            first.error == ["EAPI:Rate limit exceeded"]
            and "x-krakenwatch-gateway" not in first.headers
        )
        held = signed_post(gw.url, "Balance", key=key, secret=secret, body=form(3), nonce=3)
        assert (
            held.error == ["EAPI:Rate limit exceeded"]
            and held.headers["x-krakenwatch-gateway"] == "answered"
        )
        assert kraken_errors("EAPI:Rate limit exceeded") == 1
        assert sim.stats(key).requests == 2
