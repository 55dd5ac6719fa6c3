"""The official signature vector (kraken-api.md), in both directions, over raw HTTP."""

from __future__ import annotations

import krakenex

from broker.signing import sign
from simulator import KeySpec, Scenario
from testkit.rawclient import signed_post

SECRET = "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
NONCE = 1616492376594
BODY = "nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
PATH = "/0/private/AddOrder"
EXPECTED = (
    "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
)
KEY = "SIMvectorKeyForTheOfficialExampleAAAAAAAAAAAAAAAAAAAAAA"


def _vector_sim(start_simulator):
    spec = KeySpec(key=KEY, secret=SECRET, permissions={"trade"}, name="vector")
    return start_simulator(Scenario(keys=[spec]))


def test_sign_reproduces_the_official_vector():
    assert sign(PATH, NONCE, BODY, SECRET) == EXPECTED


def test_krakenex_signs_the_same_way():
    api = krakenex.API(KEY, SECRET)
    data = {
        "nonce": NONCE,
        "ordertype": "limit",
        "pair": "XBTUSD",
        "price": 37500,
        "type": "buy",
        "volume": 1.25,
    }
    assert api._sign(data, PATH) == EXPECTED


def test_simulator_accepts_the_official_request(start_simulator):
    sim = _vector_sim(start_simulator)
    reply = signed_post(sim.url, "AddOrder", key=KEY, secret=SECRET, body=BODY, api_sign=EXPECTED)
    # Authenticated (signature and nonce accepted); the official body has no validate=true, so
    # the order would be placed, but the key holds nothing to pay for it.
    assert reply.status == 200
    assert reply.json() == {"error": ["EOrder:Insufficient funds"]}
    assert sim.stats("vector").last_nonce == NONCE
    # The same request, as a validate-only probe, signed the same way, returns the description.
    body = f"nonce={NONCE + 1}&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
    body += "&validate=true"
    reply = signed_post(sim.url, "AddOrder", key=KEY, secret=SECRET, body=body, nonce=NONCE + 1)
    assert reply.json() == {
        "error": [],
        "result": {"descr": {"order": "buy 1.25 XBTUSD @ limit 37500"}},
    }


def test_simulator_rejects_a_changed_body(start_simulator):
    sim = _vector_sim(start_simulator)
    changed = BODY.replace("volume=1.25", "volume=12.5")
    reply = signed_post(
        sim.url, "AddOrder", key=KEY, secret=SECRET, body=changed, api_sign=EXPECTED
    )
    assert reply.json() == {"error": ["EAPI:Invalid signature"]}
    assert sim.stats("vector").last_nonce == 0


def test_simulator_rejects_a_wrong_secret(start_simulator):
    sim = _vector_sim(start_simulator)
    wrong = "A" + SECRET[1:]
    reply = signed_post(sim.url, "AddOrder", key=KEY, secret=wrong, body=BODY, nonce=NONCE)
    assert reply.json() == {"error": ["EAPI:Invalid signature"]}


def test_simulator_rejects_an_undecodable_signature(start_simulator):
    sim = _vector_sim(start_simulator)
    for bad in ("not base64!!", "", EXPECTED[:-3]):
        reply = signed_post(sim.url, "AddOrder", key=KEY, secret=SECRET, body=BODY, api_sign=bad)
        assert reply.json() == {"error": ["EAPI:Invalid signature"]}, bad
    assert sim.stats("vector").invalid_signature == 3


def test_signature_covers_the_url_path(start_simulator):
    sim = _vector_sim(start_simulator)
    # signed for AddOrder, sent to Balance (which this key may not use anyway)
    reply = signed_post(sim.url, "Balance", key=KEY, secret=SECRET, body=BODY, api_sign=EXPECTED)
    assert reply.json() == {"error": ["EAPI:Invalid signature"]}
