"""Injected faults, latency, the clock, routing and endpoint results."""

from __future__ import annotations

import http.client
import threading
import time

import krakenex
import pytest
import requests

from simulator import Scenario
from testkit.rawclient import form, raw_request, signed_post
from testkit.sim import call

BAD_GATEWAY = b"<html><body><h1>502 Bad Gateway</h1></body></html>"


def get(sim, method, timeout=5.0):
    return raw_request(sim.url, "GET", f"/0/public/{method}", timeout=timeout)


@pytest.fixture
def one_key(start_simulator, make_keyspec):
    spec = make_keyspec(
        balances={
            "ZUSD": "1234.5600",
            "USDT": "500.00000000",
            "XXBT": "0.1234567890",
            "ETH2.S": "1.0000000000",
        }
    )
    sim = start_simulator(Scenario(tier="unlimited", keys=[spec]))
    return sim, spec


@pytest.mark.parametrize("status, phrase", [(502, "Bad Gateway"), (503, "Service Unavailable")])
def test_http_status_fault_returns_an_html_page(one_key, status, phrase):
    sim, spec = one_key
    sim.set_faults(http_status=status)
    for reply in (get(sim, "Time"), call(sim, spec, 1)):
        assert reply.status == status
        assert reply.headers["content-type"].startswith("text/html")
        assert reply.body == f"<html><body><h1>{status} {phrase}</h1></body></html>".encode()
    assert sim.stats(spec.name).last_nonce == 0, "a CDN error never reaches the nonce check"
    with pytest.raises(requests.HTTPError):
        api = krakenex.API(spec.key, spec.secret)
        api.uri = sim.url
        api.query_public("Time")


@pytest.mark.parametrize("code", ["EService:Unavailable", "EService:Busy"])
def test_api_error_fault(one_key, code):
    sim, spec = one_key
    sim.set_faults(api_error=code)
    reply = call(sim, spec, 1)
    assert (reply.status, reply.json()) == (200, {"error": [code]})
    assert reply.headers["content-type"] == "application/json"
    assert get(sim, "Time").json() == {"error": [code]}


def test_hang_fault_never_answers_until_cleared(one_key):
    sim, spec = one_key
    sim.set_faults(hang=True)
    with pytest.raises(TimeoutError):
        call(sim, spec, 1, timeout=0.3)
    # a hung request is released (its connection closed, no answer) when the faults change
    outcome: list[BaseException] = []

    def waiting_client() -> None:
        try:
            call(sim, spec, 2, timeout=10)
        except (OSError, http.client.HTTPException) as exc:
            outcome.append(exc)

    thread = threading.Thread(target=waiting_client)
    thread.start()
    sim.wait_for_hanging(2)  # the timed-out first request still hangs on the server side
    assert sim.current_faults()["hanging"] == 2
    sim.clear_faults()
    thread.join(timeout=5)
    assert (
        not thread.is_alive()
        and outcome
        and isinstance(outcome[0], http.client.RemoteDisconnected | ConnectionError)
    )
    assert call(sim, spec, 3).error == []


def test_stop_is_prompt_while_requests_hang(start_simulator, make_keyspec):
    spec = make_keyspec()
    sim = start_simulator(Scenario(keys=[spec]))
    sim.set_faults(hang=True)
    errors: list[BaseException] = []

    def client() -> None:
        try:
            call(sim, spec, 1, timeout=30)
        except (OSError, http.client.HTTPException) as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(5)]
    for t in threads:
        t.start()
    sim.wait_for_hanging(5)
    assert sim.stats(spec.name).in_flight == 5
    started = time.monotonic()
    sim.stop()
    assert time.monotonic() - started < 2.0
    for t in threads:
        t.join(timeout=5)
    assert len(errors) == 5


def test_drop_fault_closes_without_an_answer(one_key):
    sim, spec = one_key
    sim.set_faults(drop=True, count=2)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        call(sim, spec, 1)
    api = krakenex.API(spec.key, spec.secret)
    api.uri = sim.url
    with pytest.raises(requests.ConnectionError):
        api.query_private("Balance", timeout=5)
    assert call(sim, spec, 10).error == []


def test_system_status_fault_and_maintenance(one_key):
    sim, spec = one_key
    sim.set_faults(system_status="maintenance")
    assert get(sim, "SystemStatus").json()["result"]["status"] == "maintenance"
    assert call(sim, spec, 1).error == ["EService:Unavailable"]
    sim.clear_faults()
    assert get(sim, "SystemStatus").json()["result"]["status"] == "online"
    sim.set_system_status("cancel_only")
    order = {
        "pair": "XBTUSD",
        "type": "sell",
        "ordertype": "market",
        "volume": "1",
        "validate": "1",
    }
    assert call(sim, spec, 2, "AddOrder", **order).error == ["EService:Market in cancel_only mode"]
    assert call(sim, spec, 3).error == []


def test_count_faults_clear_themselves_and_respect_scope(one_key):
    sim, spec = one_key
    sim.set_faults(api_error="EService:Busy", count=2, scope="private")
    assert get(sim, "Time").json()["error"] == [], "public requests are out of scope"
    assert call(sim, spec, 1).error == ["EService:Busy"]
    assert call(sim, spec, 2).error == ["EService:Busy"]
    assert call(sim, spec, 3).error == []
    assert sim.current_faults()["api_error"] is None


def test_latency_is_applied_before_judging_so_requests_overlap(one_key):
    sim, spec = one_key
    sim.set_faults(latency_ms=(150, 160))
    barrier = threading.Barrier(8)
    results: list[list[str]] = []

    def client(nonce: int) -> None:
        barrier.wait()
        results.append(call(sim, spec, nonce).error)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(1, 9)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - started < 0.9, "latency is slept concurrently (serially: 1.2 s)"
    assert sim.stats(spec.name).max_concurrency > 1
    assert len(results) == 8


def test_many_concurrent_connections(start_simulator):
    sim = start_simulator(Scenario(latency_ms=(50, 50)))
    barrier = threading.Barrier(200)
    ok: list[int] = []

    def client() -> None:
        barrier.wait()
        if get(sim, "Time", timeout=10).json()["error"] == []:
            ok.append(1)

    threads = [threading.Thread(target=client) for _ in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ok) == 200
    assert sim.total_stats().max_concurrency > 50, "requests are served concurrently"


def test_clock_offset_is_visible_in_time(start_simulator):
    sim = start_simulator(Scenario(clock_offset_s=-7200.0))
    result = get(sim, "Time").json()["result"]
    assert abs(result["unixtime"] - (time.time() - 7200)) <= 2
    assert result["rfc1123"].endswith(" +0000")
    sim.set_clock_offset(3600.0)
    assert abs(get(sim, "Time").json()["result"]["unixtime"] - (time.time() + 3600)) <= 2
    status = get(sim, "SystemStatus").json()["result"]
    assert status["status"] == "online" and status["timestamp"].endswith("Z")


def test_routing_errors(one_key):
    sim, spec = one_key
    reply = raw_request(sim.url, "POST", "/0/public/Time", b"")
    assert reply.status == 405
    assert raw_request(sim.url, "GET", "/0/private/Balance").status == 405
    assert get(sim, "Assets2").json() == {"error": ["EGeneral:Unknown method"]}
    assert call(sim, spec, 1, "Withdraw").json() == {"error": ["EGeneral:Unknown method"]}
    assert raw_request(sim.url, "GET", "/nowhere").status == 404
    reply = signed_post(
        sim.url,
        "Balance",
        key=spec.key,
        secret=spec.secret,
        body=form(2),
        nonce=2,
        content_type="application/json",
    )
    assert reply.error == ["EGeneral:Invalid arguments:body must be form-encoded"]


def test_add_order_validate_only_never_places(one_key):
    sim, spec = one_key
    order = {
        "pair": "XBTUSD",
        "type": "buy",
        "ordertype": "limit",
        "price": "37500",
        "volume": "1.25",
    }
    # without validate=true the order is placed (tests/simulator/test_orders.py): this one costs
    # 46875 USD, more than the key holds
    reply = call(sim, spec, 1, "AddOrder", **order)
    assert reply.json() == {"error": ["EOrder:Insufficient funds"]}
    assert call(sim, spec, 2, "AddOrder", **order, validate="false").error == [
        "EOrder:Insufficient funds"
    ]
    missing = dict(order, validate="true")
    del missing["volume"]
    assert call(sim, spec, 3, "AddOrder", **missing).error == ["EGeneral:Invalid arguments:volume"]
    no_price = dict(order, validate="true", price="")
    assert call(sim, spec, 4, "AddOrder", **no_price).error == ["EGeneral:Invalid arguments:price"]
    result = call(sim, spec, 5, "AddOrder", **order, validate="1").json()["result"]
    assert result == {"descr": {"order": "buy 1.25 XBTUSD @ limit 37500"}}
    assert sim.open_orders(spec.name) == {}


def test_balances_are_exact_strings(one_key):
    sim, spec = one_key
    assert call(sim, spec, 1).body == (
        b'{"error":[],"result":{"ZUSD":"1234.5600","USDT":"500.00000000",'
        b'"XXBT":"0.1234567890","ETH2.S":"1.0000000000"}}'
    )
    ex = call(sim, spec, 2, "BalanceEx").json()["result"]
    assert ex["XXBT"] == {"balance": "0.1234567890", "hold_trade": "0.0000000000"}
    tb = call(sim, spec, 3, "TradeBalance").json()["result"]
    assert set(tb) == {"eb", "tb", "m", "n", "c", "v", "e", "mf", "ml"}
    assert all(isinstance(v, str) and len(v.partition(".")[2]) == 4 for v in tb.values())


def test_method_filter_faults_only_the_named_methods(one_key):
    sim, spec = one_key
    sim.set_faults(api_error="EOrder:Insufficient funds", methods=["AddOrder"], count=1)
    assert call(sim, spec, 1, "Balance").error == []
    order = {"pair": "XBTUSD", "type": "buy", "ordertype": "market", "volume": "1", "validate": "1"}
    assert call(sim, spec, 2, "AddOrder", **order).error == ["EOrder:Insufficient funds"]
    assert call(sim, spec, 3, "AddOrder", **order).error == []  # count used up: cleared
    with pytest.raises(ValueError, match="methods"):
        sim.set_faults(api_error="EService:Busy", methods="AddOrder")
