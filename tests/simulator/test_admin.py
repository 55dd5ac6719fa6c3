"""The /_sim/ admin routes over HTTP."""

from __future__ import annotations

import json

from simulator import builtin_scenario
from testkit.rawclient import form, raw_request, signed_post


def admin(sim, verb, route, doc=None):
    body = json.dumps(doc).encode() if doc is not None else b""
    reply = raw_request(sim.url, verb, f"/_sim/{route}", body, {"Content-Type": "application/json"})
    return reply.status, reply.json()


def test_admin_routes(start_simulator):
    scenario = builtin_scenario("healthy")
    sim = start_simulator(scenario)
    master = scenario.keys[0]
    assert (
        signed_post(
            sim.url, "Balance", key=master.key, secret=master.secret, body=form(7), nonce=7
        ).error
        == []
    )

    status, stats = admin(sim, "GET", "stats")
    assert status == 200
    assert set(stats["keys"]) == {"MASTER", "USER:daivon", "USER:tania_gilbert"}
    assert stats["keys"]["MASTER"]["accepted"] == 1
    assert stats["keys"]["MASTER"]["last_nonce"] == 7
    text = json.dumps(stats)
    assert all(spec.secret not in text and spec.key not in text for spec in scenario.keys)

    # faults: set, see them applied to the API but never to admin routes, clear with {}
    assert admin(sim, "POST", "faults", {"http_status": 502})[0] == 200
    assert raw_request(sim.url, "GET", "/0/public/Time").status == 502
    assert admin(sim, "GET", "stats")[0] == 200
    assert admin(sim, "POST", "faults", {})[1]["faults"]["http_status"] is None
    assert raw_request(sim.url, "GET", "/0/public/Time").status == 200
    status, doc = admin(sim, "POST", "faults", {"hang": "yes"})
    assert status == 400 and "hang" in doc["error"]
    assert admin(sim, "POST", "faults", {"latency_ms": [1, 2], "count": 1})[0] == 200

    # clock
    assert admin(sim, "POST", "clock", {"offset_s": 120})[1] == {"clock_offset_s": 120.0}
    assert admin(sim, "GET", "stats")[1]["clock_offset_s"] == 120.0
    assert admin(sim, "POST", "clock", {"offset_s": "soon"})[0] == 400

    # patch a key by name
    status, doc = admin(
        sim, "POST", "keys/USER:daivon", {"permissions": ["orders"], "balances": {"ZUSD": "1.0000"}}
    )
    assert status == 200 and doc["permissions"] == ["orders"]
    daivon = scenario.keys[1]
    assert signed_post(
        sim.url, "Balance", key=daivon.key, secret=daivon.secret, body=form(1), nonce=1
    ).error == ["EGeneral:Permission denied"]
    admin(sim, "POST", "keys/USER:daivon", {"permissions": ["funds"]})
    assert signed_post(
        sim.url, "Balance", key=daivon.key, secret=daivon.secret, body=form(2), nonce=2
    ).json()["result"] == {"ZUSD": "1.0000"}
    status, doc = admin(sim, "POST", "keys/USER:daivon", {"other_writer": {"interval_ms": 50}})
    assert status == 200 and doc["other_writer"] == {"interval_ms": 50.0, "lead_ms": 2000.0}
    sim.wait_for("USER:daivon", lambda s: s.other_writer_nonces >= 1)
    assert admin(sim, "POST", "keys/USER:daivon", {"other_writer": None})[1]["other_writer"] is None

    assert admin(sim, "POST", "keys/USER:nobody", {"permissions": []})[0] == 404
    assert admin(sim, "POST", "keys/MASTER", {"permissions": ["fly"]})[0] == 400
    assert admin(sim, "POST", "keys/MASTER", {"secret": "x"})[0] == 400
    assert admin(sim, "POST", "status", {"status": "post_only"})[0] == 200
    assert admin(sim, "GET", "stats")[1]["system_status"] == "post_only"
    assert admin(sim, "GET", "nothing-here")[0] == 404
    assert raw_request(sim.url, "POST", "/_sim/faults", b"[1]").status == 400
