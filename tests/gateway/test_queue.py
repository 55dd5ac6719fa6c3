"""The per-key queue: one call in flight per key, bounded, a client that leaves is dropped, a slow
key never holds up another, a call that waits too long is answered by the gateway."""

from __future__ import annotations

import concurrent.futures
import socket
from urllib.parse import urlsplit

import krakenex
import pytest
import requests

from broker.signing import sign
from simulator import KeySpec, Scenario, Simulator
from testkit.gateway import account
from testkit.net import eventually
from testkit.rawclient import form, signed_post
from testkit.sim import make_key

SLOW_MS = 4000.0


def krakenex_call(url: str, key: str, secret: str, method: str = "Balance") -> list[str]:
    api = krakenex.API(key, secret)
    api.uri = url
    return list(api.query_private(method, timeout=60)["error"])


def lane(gw, label: str = "MASTER"):
    return gw.gateway._lane_of[label]


def occupy_the_key(sim: Simulator, key: str, pool, gw, secret: str):
    """One Balance call that takes SLOW_MS at Kraken, once it is there."""
    sim.set_faults(latency_ms=[SLOW_MS, SLOW_MS], count=1)
    slow = pool.submit(krakenex_call, gw.url, key, secret)
    sim.wait_for(key, lambda s: s.in_flight == 1, timeout=10)
    return slow


def test_a_client_that_disconnects_while_queued_is_dropped_and_the_next_one_served(
    sim_key, start_gateway
) -> None:
    sim, key, secret = sim_key
    gw = start_gateway(sim.url)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        slow = occupy_the_key(sim, key, pool, gw, secret)
        # a bot sends its call, then dies while it waits for the key
        parts = urlsplit(gw.url)
        body = form(17).encode()
        head = (
            f"POST /0/private/Balance HTTP/1.1\r\nHost: x\r\nAPI-Key: {key}\r\n"
            f"API-Sign: {sign('/0/private/Balance', '17', body, secret)}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        with socket.create_connection((parts.hostname, parts.port)) as leaving:
            leaving.sendall(head + body)
            eventually(lambda: lane(gw).depth == 1, 10, what="the call to be queued")
            behind = pool.submit(krakenex_call, gw.url, key, secret)  # a second bot, behind it
            eventually(lambda: lane(gw).depth == 2, 10, what="the second call to be queued")
        registry = gw.gateway.metrics.registry
        eventually(
            lambda: (
                registry.get_sample_value(
                    "krakenwatch_gateway_abandoned_total", {"account": "MASTER"}
                )
                == 1
            ),
            10,
            what="the departed client's call to be dropped",
        )
        assert lane(gw).depth == 1
        assert slow.result(60) == [] and behind.result(60) == []
    stats = sim.stats(key)
    assert stats.requests == stats.accepted == 2  # the departed call never reached Kraken
    assert krakenex_call(gw.url, key, secret) == []


def test_a_full_queue_and_a_too_long_wait_are_answered_busy_while_a_call_hangs(
    sim_key, start_gateway
) -> None:
    sim, key, secret = sim_key
    gw = start_gateway(sim.url, max_queue=2, max_queue_wait_s=3.0)
    sim.set_faults(hang=True, methods=["OpenOrders"])
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        hung = pool.submit(krakenex_call, gw.url, key, secret, "OpenOrders")
        sim.wait_for_hanging(1)
        queued = [pool.submit(krakenex_call, gw.url, key, secret) for _ in range(2)]
        eventually(lambda: lane(gw).depth == 2, 10, what="two calls to be queued")
        # the queue is full: refused at once, the key is busy
        refused = signed_post(gw.url, "Balance", key=key, secret=secret, body=form(3), nonce=3)
        assert refused.error == ["EService:Busy"] and refused.headers["x-krakenwatch-gateway"]
        # the two queued calls are refused at their deadline, while the call ahead still hangs
        # (without a rate model, never "EAPI:Rate limit exceeded": the budget was not the cause)
        assert [q.result(30) for q in queued] == [["EService:Busy"]] * 2
        assert not hung.done()
        sim.clear_faults()  # the hung request's connection is closed without an answer
        with pytest.raises(requests.HTTPError, match="504"):
            hung.result(60)
    assert sim.stats(key).requests == 1
    registry = gw.gateway.metrics.registry
    labels = {
        "client": "account-key",
        "account": "MASTER",
        "method": "Balance",
        "outcome": "rejected",
    }
    assert registry.get_sample_value("krakenwatch_gateway_requests_total", labels) == 3
    refusals = "krakenwatch_gateway_queue_refusals_total"
    assert registry.get_sample_value(refusals, {"account": "MASTER", "reason": "queue_full"}) == 1
    assert registry.get_sample_value(refusals, {"account": "MASTER", "reason": "busy"}) == 2
    assert registry.get_sample_value(refusals, {"account": "MASTER", "reason": "wait"}) == 0
    # the key is held a while after the lost answer (EService:Busy meanwhile), then serves again
    eventually(lambda: krakenex_call(gw.url, key, secret) == [], 30, what="the key to serve")


def test_a_slow_key_never_holds_up_another(start_gateway) -> None:
    (slow_key, slow_secret), (fast_key, fast_secret) = make_key("slow"), make_key("fast")
    specs = [
        KeySpec(key=slow_key, secret=slow_secret, name="slow"),
        KeySpec(key=fast_key, secret=fast_secret, name="fast"),
    ]
    with Simulator(Scenario(keys=specs, tier="unlimited", lockout_threshold=0)) as sim:
        gw = start_gateway(
            sim.url, [account(slow_key, slow_secret), account(fast_key, fast_secret, "USER:fast")]
        )
        sim.set_faults(hang=True, methods=["OpenOrders"])
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            stuck = pool.submit(krakenex_call, gw.url, slow_key, slow_secret, "OpenOrders")
            sim.wait_for_hanging(1)
            for _ in range(5):  # the other key goes on while the first one hangs
                assert krakenex_call(gw.url, fast_key, fast_secret) == []
            assert not stuck.done()
            sim.clear_faults()  # the hung request's connection is closed without an answer
            with pytest.raises(requests.HTTPError, match="504"):
                stuck.result(60)
        assert sim.stats("fast").accepted == 5 and sim.stats("fast").max_concurrency == 1
