"""The checker of the multi-host suite, without namespaces: the simulator's request journal (and a
gateway that forwards the request id unchanged), what a bot makes of each answer, and the
judgement of a round on made-up calls and journal entries (each rule can fail)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from simulator import Simulator
from simulator.journal import REQUEST_FIELD
from testkit.bots import krakenex_api
from testkit.gateway import account, gateway_thread
from testkit.hostbots import classify
from testkit.hostcheck import (
    BotLogs,
    Call,
    RoundTimes,
    fault_hit,
    judge_round,
    kind_rows,
    peak_in_flight,
    render_table,
    violations,
)
from testkit.rawclient import form, raw_request, signed_post
from testkit.sim import one_key_simulator

ODD_ID = "gw1:k0/ü 1&x=2:7"


def journal(sim: Simulator, after: int = 0) -> dict[str, Any]:
    reply = raw_request(sim.url, "GET", f"/_sim/journal/{after}" if after else "/_sim/journal")
    assert reply.status == 200
    return dict(json.loads(reply.body))


def test_the_journal_keeps_requests_that_name_themselves_as_judged(tmp_path: Path) -> None:
    with one_key_simulator("journal") as (sim, key, secret):
        api = krakenex_api(key, secret, sim.url)
        assert api.query_private("Balance", {REQUEST_FIELD: "a"})["error"] == []
        api.query_private("Balance")  # no id: not kept
        body = form(1, **{REQUEST_FIELD: "b"})  # a nonce far below the last one
        signed_post(sim.url, "Balance", key=key, secret=secret, body=body, nonce=1)
        doc, later = journal(sim), journal(sim, 1)
    entries = doc["entries"]
    assert [(e["request"], e["error"], e["key"]) for e in entries] == [
        ("a", None, "journal"),
        ("b", "EAPI:Invalid nonce", "journal"),
    ]
    assert entries[0]["arrived"] <= entries[0]["judged"] < entries[1]["arrived"]
    assert doc["last"] == 2 and later["entries"] == entries[1:]


def test_the_journal_route_refuses_what_it_does_not_know() -> None:
    with one_key_simulator("journal-routes") as (sim, _key, _secret):
        assert raw_request(sim.url, "GET", "/_sim/journal/x").status == 400
        assert raw_request(sim.url, "POST", "/_sim/journal").status == 405


def test_the_gateway_forwards_the_request_id_unchanged(tmp_path: Path) -> None:
    with (
        one_key_simulator("forwarded") as (sim, key, secret),
        gateway_thread([account(key, secret)], sim.url, tmp_path, rate_limited=False) as gw,
    ):
        api = krakenex_api(key, secret, gw.url)
        assert api.query_private("Balance", {REQUEST_FIELD: ODD_ID})["error"] == []
        entries = journal(sim)["entries"]
    assert [e["request"] for e in entries] == [ODD_ID]
    assert entries[0]["error"] is None


def test_a_bot_reads_each_answer_for_what_it_promises() -> None:
    assert classify(200, {"error": [], "result": {}}, False) == ("ok", "")
    unavailable = "EService:Unavailable:the krakenwatch gateway cannot sign for this key (x)"
    assert classify(503, {"error": [unavailable]}, True)[0] == "closed"
    assert classify(200, {"error": ["EService:Busy"]}, True)[0] == "busy"
    assert classify(200, {"error": ["EService:Busy"]}, False)[0] == "other"  # Kraken's own
    assert classify(502, {"error": ["EService:Unavailable:..."]}, True)[0] == "unreachable"
    assert classify(504, {"error": ["EGateway:Outcome unknown:..."]}, True)[0] == "unknown"
    assert classify(200, {"error": ["EAPI:Invalid nonce"]}, False)[0] == "invalid_nonce"
    assert classify(500, "<html>", False) == ("other", "HTTP 500 <html>")


def call(id_: str, t0: float, t1: float, outcome: str = "ok", host: str = "gw1") -> Call:
    return Call(id_, host, "k0", t0, t1, outcome, "")


def entry(id_: str, arrived: float, judged: float, error: str | None = None) -> dict[str, Any]:
    return {"key": "k0", "request": id_, "arrived": arrived, "judged": judged, "error": error}


def round_times(kind: str = "gateway-partition") -> RoundTimes:
    times = RoundTimes(kind, 1, "gw1", begin=0.0, started=2.0, healed=8.0, recovered=9.0)
    times.end, times.cut_host = 12.0, "gw1"
    return times


def test_a_clean_round_passes() -> None:
    calls = [call("gw1:a", 1.0, 1.1), call("gw1:b", 2.1, 4.0, "closed"), call("gw2:c", 8.5, 9.0)]
    entries = [entry("gw1:a", 1.01, 1.05), entry("gw2:c", 8.6, 8.7)]
    result = judge_round(round_times(), calls, entries, before_s=2.0)
    assert violations([result], "gateway-partition", 10.0) == []
    assert (result.failed_closed, result.recovery_s, result.peak_in_flight) == (1, 1.0, 1)
    assert result.ok_per_s["before"] == 0.5 and result.hit
    table = render_table(kind_rows([result], ["gateway-partition", "gateway-kill"]))
    assert table.count("\n") == 2 and "gateway-kill" not in table


def test_each_rule_of_a_round_can_fail() -> None:
    calls = [
        call("gw1:ok-missing", 1.0, 1.1),
        call("gw1:busy-reached", 2.1, 4.0, "busy"),
        call("gw2:lost-reached", 3.0, 3.5, "lost"),
    ]
    entries = [
        entry("gw1:busy-reached", 3.0, 3.1),  # sent by a host cut from Redis, too
        entry("gw2:lost-reached", 3.05, 3.3, "EAPI:Invalid nonce"),  # two at once, rejected
    ]
    times = round_times()
    times.recovered = None
    result = judge_round(times, calls, entries, before_s=2.0)
    found = "\n".join(violations([result], "gateway-partition", 10.0))
    assert result.told_failed_reached == 2 and result.told_not_sent_reached == 1
    for what in (
        "1 invalid nonces",
        "2 requests of one key in flight",
        "1 told ok but not accepted",
        "1 told nothing was sent but reached",
        "1 requests reached Kraken while cut off",
        "recovery None s",
        "the fault showed no effect",
    ):
        assert what in found, found


def test_peak_in_flight_is_per_key_and_back_to_back_is_one() -> None:
    back_to_back = [entry("a", 0.0, 1.0), entry("b", 1.0, 2.0)]
    assert peak_in_flight(back_to_back) == 1
    other_key = {**entry("c", 0.5, 1.5), "key": "k1"}
    assert peak_in_flight([*back_to_back, other_key]) == 1
    assert peak_in_flight([*back_to_back, entry("d", 0.5, 0.6)]) == 2


def test_bot_logs_are_read_as_they_grow(tmp_path: Path) -> None:
    path = tmp_path / "bots.jsonl"
    line = {"id": "gw1:k0:0:1", "key": "k0", "t0": 1.0, "t1": 2.0, "outcome": "ok", "detail": ""}
    path.write_text(json.dumps(line) + "\n" + '{"id": "half', encoding="utf-8")
    logs = BotLogs({"gw1": path})
    logs.poll()
    assert [c.id for c in logs.calls] == ["gw1:k0:0:1"]
    assert logs.all_ok_since(0.5) == 2.0 and logs.all_ok_since(1.5) is None


def test_a_pause_shows_by_calls_held_across_it_and_none_asked_and_answered_during_it() -> None:
    times = round_times("gateway-pause")  # stopped at 2.0, continued at 8.0
    held = call("gw1:held", 1.9, 8.2)
    read_late = call("gw1:read-late", 1.95, 3.0)  # answered before the stop, read by a slow bot
    assert fault_hit(times, [held, read_late])[0]
    during = call("gw1:during", 3.0, 3.1)  # asked and answered while stopped: no pause at all
    hit, evidence = fault_hit(times, [held, during])
    assert not hit and "1 calls asked and answered while gw1 was paused" in evidence
    assert not fault_hit(times, [read_late])[0]  # nothing held across it
