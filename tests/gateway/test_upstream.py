"""When Kraken cannot be reached, does not answer, or answers what the gateway exists to prevent.

A private call that may have reached Kraken is never retried: 502 means nothing was sent (the
same request may be sent again), 504 means the outcome is unknown (the replay guard keeps refusing
the same bytes). Either way the gateway keeps serving.
"""

from __future__ import annotations

import concurrent.futures

import krakenex

from gateway.routes import GATEWAY_HEADER
from simulator import KeySpec, Scenario, Simulator
from testkit.net import free_port
from testkit.rawclient import RawResponse, form, fresh_nonce, signed_post
from testkit.sim import one_key_simulator

ORDER = {"pair": "XBTUSD", "type": "buy", "ordertype": "market", "volume": "1", "validate": "true"}


def balance_ok(url: str, key: str, secret: str) -> bool:
    api = krakenex.API(key, secret)
    api.uri = url
    return api.query_private("Balance", timeout=30)["error"] == []


def sample(gw, name: str, **labels: str) -> float:
    return gw.gateway.metrics.registry.get_sample_value(name, labels) or 0.0


def test_kraken_unreachable_is_502_nothing_sent_and_the_same_request_may_be_resent(
    sim_key, start_gateway
) -> None:
    _sim, key, secret = sim_key
    port = free_port()
    gw = start_gateway(f"http://127.0.0.1:{port}")
    placed = fresh_nonce()
    order = form(placed, **ORDER)
    down = signed_post(gw.url, "AddOrder", key=key, secret=secret, body=order, nonce=placed)
    assert down.status == 502 and down.headers[GATEWAY_HEADER.lower()] == "answered"
    (code,) = down.error
    assert code.startswith("EService:Unavailable:") and "nothing was sent" in code
    # Kraken comes back: the very same bytes go through (nothing had been sent)
    spec = KeySpec(key=key, secret=secret, name="gw")
    with Simulator(Scenario(keys=[spec], tier="unlimited"), port=port) as sim:
        again = signed_post(gw.url, "AddOrder", key=key, secret=secret, body=order, nonce=placed)
        assert again.error == [] and sim.stats(key).requests == 1
    assert (
        sample(
            gw,
            "krakenwatch_gateway_requests_total",
            client="account-key",
            account="MASTER",
            method="AddOrder",
            outcome="upstream_error",
        )
        == 1
    )


def test_no_answer_in_time_is_504_never_retried_and_the_replay_stays_refused(
    sim_key, start_gateway
) -> None:
    sim, key, secret = sim_key
    gw = start_gateway(sim.url, request_timeout_s=1.0)
    sim.set_faults(hang=True, methods=["AddOrder"])
    placed = fresh_nonce()
    order = form(placed, **ORDER)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(
            signed_post,
            gw.url,
            "AddOrder",
            key=key,
            secret=secret,
            body=order,
            nonce=placed,
            timeout=30,
        )
        sim.wait_for_hanging(1)
        answer: RawResponse = pending.result(30)
    assert answer.status == 504 and answer.headers[GATEWAY_HEADER.lower()] == "answered"
    (code,) = answer.error
    assert code.startswith("EGateway:Outcome unknown:") and "check" in code
    sim.clear_faults()
    assert sim.stats(key).requests == 1  # sent once, never again
    replay = signed_post(gw.url, "AddOrder", key=key, secret=secret, body=order, nonce=placed)
    assert replay.error == ["EAPI:Invalid nonce"]  # it may have been executed: no second copy
    assert balance_ok(gw.url, key, secret)  # the gateway keeps serving
    assert sim.stats(key).requests == 2


def test_a_connection_dropped_after_sending_is_504(sim_key, start_gateway) -> None:
    sim, key, secret = sim_key
    # the key is held for the late-delivery grace (5 s) after an unknown outcome: the next call
    # waits it out (a queue wait of 5 s too would race the hold's end)
    gw = start_gateway(sim.url, max_queue_wait_s=15.0)
    sim.set_faults(drop=True, count=1)
    dropped = signed_post(
        gw.url, "Balance", key=key, secret=secret, body=form(5), nonce=5, timeout=30
    )
    assert dropped.status == 504 and dropped.error[0].startswith("EGateway:Outcome unknown:")
    assert sim.stats(key).requests == 1
    assert balance_ok(gw.url, key, secret) and sim.stats(key).requests == 2


def test_krakens_invalid_nonce_is_passed_through_and_counted(start_gateway) -> None:
    # another program already pushed the key's nonce an hour ahead of the clock
    with one_key_simulator("ahead", last_nonce="now_us+3600s") as (sim, key, secret):
        from testkit.gateway import account

        gw = start_gateway(sim.url, [account(key, secret, "USER:ahead")])
        rejected = signed_post(gw.url, "Balance", key=key, secret=secret, body=form(1), nonce=1)
        assert rejected.error == ["EAPI:Invalid nonce"]
        assert GATEWAY_HEADER.lower() not in rejected.headers  # Kraken's answer, not the gateway's
        account_label = {"account": "USER:ahead"}
        assert sample(gw, "krakenwatch_invalid_nonce_errors_total", **account_label) == 1
        assert (
            sample(
                gw,
                "krakenwatch_gateway_kraken_errors_total",
                code="EAPI:Invalid nonce",
                **account_label,
            )
            == 1
        )
        assert (
            sample(
                gw,
                "krakenwatch_gateway_requests_total",
                client="account-key",
                method="Balance",
                outcome="invalid_nonce",
                **account_label,
            )
            == 1
        )
        (last,) = gw.gateway.metrics.recent_errors
        assert (last.account, last.outcome, last.code, last.by_gateway) == (
            "USER:ahead",
            "invalid_nonce",
            "EAPI:Invalid nonce",
            False,
        )
