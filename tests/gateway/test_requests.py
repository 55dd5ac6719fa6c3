"""Private and public requests through the gateway, over real HTTP: authentication, malformed and
oversized bodies, replays, nonces in any unit and order, and Kraken's bytes passed both ways.

Every refusal is answered by the gateway (header ``X-Krakenwatch-Gateway``) without Kraken seeing
anything, and the gateway keeps serving afterwards.
"""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import krakenex
import pytest

from broker.signing import sign
from gateway.routes import GATEWAY_HEADER
from gateway.server import GatewayThread
from testkit.gateway import account
from testkit.rawclient import LIMIT_ORDER, RawResponse, form, fresh_nonce, raw_request, signed_post
from testkit.sim import make_key

ORDER = LIMIT_ORDER


def requests_total(
    gw: GatewayThread,
    outcome: str,
    method: str = "Balance",
    client: str = "account-key",
    account: str = "MASTER",
) -> float:
    labels = {"client": client, "account": account, "method": method, "outcome": outcome}
    value = gw.gateway.metrics.registry.get_sample_value(
        "krakenwatch_gateway_requests_total", labels
    )
    return value or 0.0


def assert_still_serving(gw: GatewayThread, key: str, secret: str) -> None:
    api = krakenex.API(key, secret)
    api.uri = gw.url
    assert api.query_private("Balance")["error"] == []


def by_gateway(response: RawResponse, code: str, status: int = 200) -> None:
    assert (response.status, response.error) == (status, [code]), response.body
    assert response.headers.get(GATEWAY_HEADER.lower()) == "answered"


# ---------------------------------------------------------------------------- authentication
def test_unknown_keys_and_bad_signatures_never_reach_kraken(sim_key, start_gateway) -> None:
    sim, key, secret = sim_key
    gw = start_gateway(sim.url)
    other_key, other_secret = make_key("someone else")
    body = form(1700000000000)
    by_gateway(
        signed_post(
            gw.url, "Balance", key=other_key, secret=secret, body=body, nonce=1700000000000
        ),
        "EAPI:Invalid key",
    )
    by_gateway(
        signed_post(
            gw.url, "Balance", key=key, secret=other_secret, body=body, nonce=1700000000000
        ),
        "EAPI:Invalid signature",
    )
    # signed over one body, another one sent
    by_gateway(
        signed_post(
            gw.url,
            "Balance",
            key=key,
            secret=secret,
            body=body + "&asset=ZUSD",
            sign_body=body,
            nonce=1700000000000,
        ),
        "EAPI:Invalid signature",
    )
    by_gateway(
        signed_post(
            gw.url, "Balance", key=key, secret=secret, body=body, nonce=1700000000000, api_sign=""
        ),
        "EAPI:Invalid signature",
    )
    # signed for another method
    signature = sign("/0/private/OpenOrders", "1700000000000", body, secret)
    by_gateway(
        signed_post(gw.url, "Balance", key=key, secret=secret, body=body, api_sign=signature),
        "EAPI:Invalid signature",
    )
    assert sim.stats(key).requests == 0
    assert requests_total(gw, "rejected", client="unknown", account="unknown") == 1
    assert requests_total(gw, "rejected") == 4
    assert_still_serving(gw, key, secret)
    assert sim.stats(key).requests == sim.stats(key).accepted == 1


# ------------------------------------------------------------------------------ malformed input
@pytest.mark.parametrize(
    ("method", "body", "content_type", "code"),
    [
        ("Balance", "pair=XBTUSD", "application/x-www-form-urlencoded", "EAPI:Invalid nonce"),
        ("Balance", "nonce=1&nonce=2", "application/x-www-form-urlencoded", "EAPI:Invalid nonce"),
        ("Balance", "nonce=abc", "application/x-www-form-urlencoded", "EAPI:Invalid nonce"),
        (
            "Balance",
            "nonce=99999999999999999999999",
            "application/x-www-form-urlencoded",
            "EAPI:Invalid nonce",
        ),
        ("Balance", "\x00\xff\x10=&&&", "application/x-www-form-urlencoded", "EAPI:Invalid nonce"),
        (
            "Balance",
            '{"nonce": 1}',
            "application/json",
            "EGeneral:Invalid arguments:the gateway forwards form-encoded bodies only (Content-Type application/x-www-form-urlencoded)",
        ),
        ("balance", "nonce=1", "application/x-www-form-urlencoded", "EGeneral:Unknown method"),
        (
            "Earn/Allocate/More",
            "nonce=1",
            "application/x-www-form-urlencoded",
            "EGeneral:Unknown method",
        ),
    ],
)
def test_malformed_requests_get_krakens_answer_from_the_gateway(
    sim_key, start_gateway, method, body, content_type, code
) -> None:
    sim, key, secret = sim_key
    gw = start_gateway(sim.url)
    nonce = body.partition("nonce=")[2].partition("&")[0] or "1"
    response = signed_post(
        gw.url,
        method,
        key=key,
        secret=secret,
        body=body.encode("latin-1"),
        nonce=nonce,
        content_type=content_type,
    )
    by_gateway(response, code)
    assert sim.stats(key).requests == 0
    assert_still_serving(gw, key, secret)


def test_wrong_http_methods_and_paths(sim_key, start_gateway) -> None:
    sim, key, secret = sim_key
    gw = start_gateway(sim.url)
    get = raw_request(gw.url, "GET", "/0/private/Balance")
    assert get.status == 405 and get.headers["allow"] == "POST"
    post = raw_request(
        gw.url,
        "POST",
        "/0/public/Time",
        b"x=1",
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert post.status == 405 and post.headers["allow"] == "GET"
    assert raw_request(gw.url, "GET", "/0/other/Time").status == 404
    assert raw_request(gw.url, "GET", "/").status == 404
    assert sim.stats(key).requests == 0
    assert_still_serving(gw, key, secret)


def test_oversized_bodies_are_refused_declared_or_chunked(sim_key, start_gateway) -> None:
    sim, key, secret = sim_key
    gw = start_gateway(sim.url, max_body_bytes=1024)
    body = form(1700000000000, note="x" * 2000)
    response = signed_post(
        gw.url, "Balance", key=key, secret=secret, body=body, nonce=1700000000000
    )
    by_gateway(response, "EGeneral:Invalid arguments:body larger than 1024 bytes", status=413)
    # no Content-Length: the limit holds while reading
    parts = urlsplit(gw.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request(
            "POST",
            "/0/private/Balance",
            body=iter([b"nonce=1&x="] + [b"y" * 512] * 8),
            headers={"API-Key": key, "API-Sign": "x"},
        )
        chunked = conn.getresponse()
        assert chunked.status == 413 and json.loads(chunked.read())["error"][0].startswith(
            "EGeneral:Invalid arguments:body larger"
        )
    finally:
        conn.close()
    assert sim.stats(key).requests == 0
    assert_still_serving(gw, key, secret)


# ------------------------------------------------------------------------------------ replays
def test_a_replayed_order_is_refused_read_only_twins_are_both_answered(
    sim_key, start_gateway
) -> None:
    sim, key, secret = sim_key
    gw = start_gateway(sim.url)
    placed = fresh_nonce()
    order = form(placed, **ORDER)
    first = signed_post(gw.url, "AddOrder", key=key, secret=secret, body=order, nonce=placed)
    assert (
        first.error == []
        and first.json()["result"]["descr"]["order"] == "buy 1.25 XBTUSD @ limit 37500"
    )
    replay = signed_post(gw.url, "AddOrder", key=key, secret=secret, body=order, nonce=placed)
    by_gateway(replay, "EAPI:Invalid nonce")
    assert sim.stats(key).requests == 1  # Kraken saw the order once
    # two krakenex threads in one millisecond: identical Balance bodies, both get their balance
    twin = form(1700000000001)
    answers = [
        signed_post(gw.url, "Balance", key=key, secret=secret, body=twin, nonce=1700000000001)
        for _ in range(2)
    ]
    assert [a.json() for a in answers] == [
        {"error": [], "result": {"ZUSD": "1000.0000", "USDT": "50.00000000"}}
    ] * 2
    stats = sim.stats(key)
    assert stats.requests == stats.accepted == 3 and stats.invalid_nonce == 0
    assert requests_total(gw, "rejected", method="AddOrder") == 1
    assert requests_total(gw, "ok", method="AddOrder") == 1 and requests_total(gw, "ok") == 2


def test_bot_nonces_in_any_unit_and_order_are_fine_through_the_gateway(
    sim_key, start_gateway
) -> None:
    sim, key, secret = sim_key
    gw = start_gateway(sim.url)
    # ms, then 10 ns (python-kraken-sdk), then seconds, then ms again: a mix of bots on one key
    nonces = [1795000000000, 179500000000000000, 1795000000, 1795000000001, 7]
    for n in nonces:
        assert (
            signed_post(gw.url, "Balance", key=key, secret=secret, body=form(n), nonce=n).error
            == []
        )
    assert sim.stats(key).invalid_nonce == 0
    # the contrast: the same sequence sent straight to the simulator
    direct = [
        signed_post(sim.url, "Balance", key=key, secret=secret, body=form(n), nonce=n).error
        for n in nonces
    ]
    assert direct[2:] == [["EAPI:Invalid nonce"]] * 3


# ---------------------------------------------------------------------------- bytes both ways
def test_fields_go_to_kraken_byte_for_byte_and_its_answer_comes_back_unchanged(
    recorder, start_gateway
) -> None:
    key, secret = make_key("recorded")
    gw = start_gateway(recorder.url, [account(key, secret)])
    recorder.body = (
        b'{"error": [], "result": {"descr": {"order": "buy 1.25 XBTUSD @ limit 37500"}} , "x":1}'
    )
    recorder.content_type = "application/json; charset=utf-8"
    fields = "pair=XBTUSD&type=buy&ordertype=limit&price=37500&volume=1.25&oflags=post%2Cfciq&userref=-5&note=a+b%20c"
    pairs = fields.split("&")
    bots_nonce = fresh_nonce()
    body = "&".join([*pairs[:2], f"nonce={bots_nonce}", *pairs[2:]])
    response = signed_post(gw.url, "AddOrder", key=key, secret=secret, body=body, nonce=bots_nonce)
    assert (response.status, response.body) == (200, recorder.body)
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert GATEWAY_HEADER.lower() not in response.headers
    # besides the order, the gateway reads the pairs' names once (GET AssetPairs, public)
    (seen,) = [r for r in recorder.requests if r.path.startswith("/0/private/")]
    assert seen.path == "/0/private/AddOrder"
    nonce, _, rest = seen.body.partition(b"&")
    assert nonce.startswith(b"nonce=") and rest == fields.encode()
    gateway_nonce = nonce.removeprefix(b"nonce=").decode()
    assert int(gateway_nonce) > bots_nonce * 1000 - 10**6  # the gateway's own (µs) nonce
    assert seen.headers["api-key"] == key
    assert seen.headers["api-sign"] == sign("/0/private/AddOrder", gateway_nonce, seen.body, secret)


def test_krakens_errors_and_error_pages_are_passed_through_unchanged(
    recorder, start_gateway
) -> None:
    key, secret = make_key("recorded")
    gw = start_gateway(recorder.url, [account(key, secret)])
    recorder.body = b'{"error":["EGeneral:Permission denied"]}'
    denied = signed_post(gw.url, "Balance", key=key, secret=secret, body=form(1), nonce=1)
    assert (denied.status, denied.body) == (200, recorder.body)
    recorder.status, recorder.body, recorder.content_type = (
        520,
        b"<html>origin error</html>",
        "text/html",
    )
    page = signed_post(gw.url, "Balance", key=key, secret=secret, body=form(2), nonce=2)
    assert (page.status, page.body, page.headers["content-type"]) == (
        520,
        recorder.body,
        "text/html",
    )
    assert GATEWAY_HEADER.lower() not in page.headers
    registry = gw.gateway.metrics.registry
    assert (
        registry.get_sample_value(
            "krakenwatch_gateway_kraken_errors_total",
            {"account": "MASTER", "code": "EGeneral:Permission denied"},
        )
        == 1
    )
    assert requests_total(gw, "kraken_error") == 1 and requests_total(gw, "upstream_error") == 1
    assert len(recorder.requests) == 2  # nothing retried


# ------------------------------------------------------------------------------------- public
def test_public_calls_pass_through_time_is_never_cached_assets_briefly(
    sim_key, start_gateway
) -> None:
    sim, key, _secret = sim_key
    gw = start_gateway(sim.url)
    api = krakenex.API()
    api.uri = gw.url
    assets = api.query_public("Assets")
    assert assets["error"] == [] and "ZUSD" in assets["result"]
    assert api.query_public("Time")["error"] == []
    sim.set_faults(http_status=503, scope="public")  # Kraken's public side goes down
    assert api.query_public("Assets") == assets  # from the cache
    assert raw_request(gw.url, "GET", "/0/public/Time").status == 503  # Time always asks Kraken
    sim.clear_faults()
    registry = gw.gateway.metrics.registry
    assert (
        registry.get_sample_value(
            "krakenwatch_gateway_public_requests_total", {"method": "Assets", "outcome": "cached"}
        )
        == 1
    )
    assert (
        registry.get_sample_value(
            "krakenwatch_gateway_public_requests_total",
            {"method": "Time", "outcome": "upstream_error"},
        )
        == 1
    )
    raw = raw_request(gw.url, "GET", "/0/public/SystemStatus?x=1")
    assert raw.status == 200 and raw.json()["result"]["status"] == "online"
    assert sim.stats(key).requests == 0  # nothing private happened
