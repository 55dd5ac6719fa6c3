"""The trading guard end to end, over real HTTP against the simulator (starter tier, its trading
counter decaying 20 times faster so a test takes seconds): the order budget per pair, the kill
switch (in-process, CLI, admin routes, across a restart), the dead man's switch, and another
writer on the key named. Every refusal is Kraken-shaped (HTTP 200, ``{"error": [...]}``) and
handled by krakenex, python-kraken-sdk and ccxt with the code they already have."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ccxt
import krakenex
import pytest
from kraken.exceptions import KrakenPermissionDeniedError, KrakenRateLimitExceededError
from kraken.spot import SpotClient

from gateway.guardview import HALT, RESUME, GuardEvent
from gateway.server import GatewayThread
from simulator import Simulator
from testkit.bots import krakenex_api
from testkit.gateway import account, account_environ, gateway_thread
from testkit.grind import grind
from testkit.net import eventually, http_json
from testkit.procs import run_krakenwatch
from testkit.redis import redis_server
from testkit.sim import one_key_simulator

SCALE = 20.0  # the simulator's and the gateway's trading counters decay at 20/s
GATEWAY_HEADER = "X-Krakenwatch-Gateway"
ORDER = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "price": "100", "volume": "0.01"}
HALTED_ERRORS = ["EGeneral:Permission denied:halted", "EGeneral:Permission denied"]


@pytest.fixture
def sim_key() -> Iterator[tuple[Simulator, str, str]]:
    with one_key_simulator(
        "guard",
        tier="starter",
        trading_decay_scale=SCALE,
        latency_ms=(0, 0),
        balances={"ZUSD": "100000.0000", "XXBT": "1.0000000000"},
        nonce_window=5_000_000,
    ) as found:
        yield found


@pytest.fixture
def gateway(tmp_path: Path, sim_key: tuple[Simulator, str, str]) -> Iterator[GatewayThread]:
    sim, key, secret = sim_key
    with gateway_thread(
        [account(key, secret)], sim.url, tmp_path / "data", trading_decay_scale=SCALE
    ) as gw:
        yield gw


def add_order(api: krakenex.API, **fields: str) -> dict[str, Any]:
    return api.query_private("AddOrder", {**ORDER, **fields}, timeout=30)


def answered_by_gateway(api: krakenex.API) -> bool:
    return api.response is not None and api.response.headers.get(GATEWAY_HEADER) == "answered"


# ---------------------------------------------------------------------------- the order budget
def test_two_bots_grinding_one_pair_never_meet_krakens_rate_limit_through_the_gateway(
    sim_key, gateway
) -> None:
    sim, key, secret = sim_key
    through = grind(gateway.url, key, secret, bots=2, orders=24, deadline_s=120)
    assert (through.placed, through.cancelled) == (24, 24), through
    assert through.rate_limited_by_kraken == 0 and sim.trading_rate_limited(key) == 0, through
    assert through.refused_by_gateway == 0, through  # they waited within --max-queue-wait
    # 24 x (1 + 8) = 216 counts on a threshold of 60 decaying 20/s: it waited, roughly as long
    # as the counter needs (the model decays at 95 % of the rate, with 1 count of headroom)
    assert through.elapsed_s >= (216 - 60) / SCALE * 0.9, through
    # the contrast: the same bots straight at the simulator
    direct = grind(sim.url, key, secret, bots=2, orders=24, deadline_s=120)
    assert direct.placed == 24 and direct.rate_limited_by_kraken >= 1, direct
    assert sim.trading_rate_limited(key) >= 1


def test_an_order_that_cannot_fit_within_the_wait_is_refused_by_the_gateway_nothing_sent(
    tmp_path: Path, sim_key
) -> None:
    sim, key, secret = sim_key
    # the gateway's model decays 2000 times slower than the simulator's counter (a full pair
    # stays full for the whole test), and an order may wait 0.2 s
    with gateway_thread(
        [account(key, secret)],
        sim.url,
        tmp_path / "data",
        max_queue_wait_s=0.2,
        trading_decay_scale=0.01,
    ) as gw:
        api = krakenex_api(key, secret, gw.url)
        placed = [add_order(api) for _ in range(59)]  # the threshold, 60, less 1 of headroom
        assert all(answer["error"] == [] for answer in placed)
        refused = add_order(api)
        assert refused["error"] == ["EOrder:Rate limit exceeded"] and answered_by_gateway(api)
        assert api.response.status_code == 200
        assert sim.trading_rate_limited(key) == 0
        assert len(sim.order_ages(key)) == 59  # the refused order never reached Kraken
        # the same answer as Kraken's: each library maps it to its rate-limit error
        with pytest.raises(ccxt.DDoSProtection):
            ccxt_exchange(key, secret, gw.url).privatePostAddOrder(dict(ORDER))
        with pytest.raises(KrakenRateLimitExceededError):
            sdk_client(key, secret, gw.url).request(
                "POST", "/0/private/AddOrder", params=dict(ORDER)
            )
        # cancels, queries and other pairs are not held behind the full pair
        assert api.query_private("OpenOrders")["error"] == []
        assert add_order(api, pair="ETHUSD", price="10")["error"] == []
        metrics = gw.gateway.metrics.exposition().decode()
    assert (
        'krakenwatch_gateway_queue_refusals_total{account="MASTER",reason="order_budget"} 3.0'
        in metrics
    )
    assert 'krakenwatch_gateway_trading_threshold{account="MASTER"} 60.0' in metrics
    assert 'krakenwatch_gateway_trading_level{account="MASTER",pair="XXBTZUSD"} ' in metrics


def test_a_client_with_an_order_share_cannot_take_the_whole_pair(tmp_path: Path, sim_key) -> None:
    sim, key, secret = sim_key
    env = account_environ({"MASTER": (key, secret)}, sim.url, tmp_path / "data")
    added = run_krakenwatch(
        "gateway", "add-client", "grid", "--account", "MASTER", "--order-share", "0.5",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    lines = dict(line.split("=", 1) for line in added.stdout.splitlines() if "=" in line)
    with gateway_thread(
        [account(key, secret)],
        sim.url,
        tmp_path / "data",
        max_queue_wait_s=0.2,
        trading_decay_scale=0.01,  # the model barely decays during the test
        config_path=tmp_path / "data" / "gateway.toml",
    ) as gw:
        grid = krakenex_api(lines["KRAKEN_API_KEY"], lines["KRAKEN_API_SECRET"], gw.url)
        answers = [add_order(grid)["error"] for _ in range(31)]
        assert answers == [[]] * 29 + [["EOrder:Rate limit exceeded"]] * 2  # half of 59: 29.5
        owner = krakenex_api(key, secret, gw.url)  # the other half is still there
        answers = [add_order(owner)["error"] for _ in range(31)]
        assert answers == [[]] * 30 + [["EOrder:Rate limit exceeded"]]
    assert sim.trading_rate_limited(key) == 0


# ---------------------------------------------------------------------------- the kill switch
def sdk_client(key: str, secret: str, url: str) -> SpotClient:
    return SpotClient(key=key, secret=secret, url=url)


def ccxt_exchange(key: str, secret: str, url: str) -> Any:
    exchange = ccxt.kraken({"apiKey": key, "secret": secret, "enableRateLimit": False})
    exchange.urls["api"] = {"public": url, "private": url}
    return exchange


def test_a_halt_refuses_opening_and_changing_orders_lets_cancels_and_queries_pass(
    sim_key, gateway
) -> None:
    sim, key, secret = sim_key
    events: list[GuardEvent] = []
    gateway.gateway.add_guard_listener(events.append)
    api = krakenex_api(key, secret, gateway.url)
    txid = add_order(api)["result"]["txid"][0]
    record = gateway.gateway.halt("MASTER", "runaway grid", origin="test")
    assert (record.account, record.client, record.reason) == ("MASTER", None, "runaway grid")
    refused = add_order(api)
    assert refused["error"] == HALTED_ERRORS and answered_by_gateway(api)
    assert api.response.status_code == 200
    for method, fields in (
        ("EditOrder", {"txid": txid, "pair": "XBTUSD", "price": "101"}),
        ("AmendOrder", {"txid": txid, "limit_price": "101"}),
    ):
        assert api.query_private(method, fields)["error"] == HALTED_ERRORS, method
    # every library maps the answer to its permission error (each gets its own copy of the
    # fields: python-kraken-sdk adds its nonce to the dict it is given)
    with pytest.raises(ccxt.PermissionDenied):
        ccxt_exchange(key, secret, gateway.url).privatePostAddOrder(dict(ORDER))
    with pytest.raises(KrakenPermissionDeniedError):
        sdk_client(key, secret, gateway.url).request(
            "POST", "/0/private/AddOrder", params=dict(ORDER)
        )
    # validated or not, and no WebSocket token to trade past the gateway either
    assert add_order(api, validate="true")["error"] == HALTED_ERRORS
    assert api.query_private("GetWebSocketsToken")["error"] == HALTED_ERRORS
    assert len(sim.order_ages(key)) == 1  # nothing new reached Kraken
    assert api.query_private("OpenOrders")["error"] == []
    assert api.query_private("CancelOrder", {"txid": txid})["error"] == []
    assert sim.order_ages(key) == []
    assert 'krakenwatch_gateway_halted{account="MASTER",client="*"} 1.0' in (
        gateway.gateway.metrics.exposition().decode()
    )
    assert gateway.gateway.resume("MASTER", origin="test") is True
    assert gateway.gateway.resume("MASTER", origin="test") is False
    assert add_order(api)["error"] == []
    eventually(lambda: [e.kind for e in events] == [HALT, RESUME], 5, what="halt and resume events")
    assert events[0].data["reason"] == "runaway grid" and events[0].data["origin"] == "test"


def test_a_halt_is_in_force_once_acknowledged_even_with_an_order_in_flight(
    sim_key, gateway
) -> None:
    """Orders keep coming from a bot; once ``halt`` returns, no order reaches Kraken."""
    sim, key, secret = sim_key
    sim.set_latency(30, 30)  # every order spends 30 ms at Kraken
    api = krakenex_api(key, secret, gateway.url)
    stop = threading.Event()
    outcomes: list[list[str]] = []

    def bot() -> None:
        while not stop.is_set():
            outcomes.append(add_order(api, price="100", volume="0.0001")["error"])

    thread = threading.Thread(target=bot)
    thread.start()
    try:
        eventually(lambda: len(outcomes) >= 3, 10, what="orders flowing")
        gateway.gateway.halt("MASTER", "incident", origin="test")
        placed_at_ack = len(sim.order_ages(key))
        eventually(lambda: outcomes[-1:] == [HALTED_ERRORS], 5, what="orders refused")
        refused_then = len(outcomes)
        eventually(lambda: len(outcomes) >= refused_then + 3, 5, what="more refusals")
    finally:
        stop.set()
        thread.join(10)
    assert len(sim.order_ages(key)) == placed_at_ack  # nothing placed after the acknowledgement


def test_a_client_halt_binds_that_client_only_and_unknown_names_are_refused(
    tmp_path: Path, sim_key
) -> None:
    sim, key, secret = sim_key
    env = account_environ({"MASTER": (key, secret)}, sim.url, tmp_path / "data")
    added = run_krakenwatch(
        "gateway", "add-client", "grid", "--account", "MASTER", env=env, cwd=tmp_path
    )
    lines = dict(line.split("=", 1) for line in added.stdout.splitlines() if "=" in line)
    config = tmp_path / "data" / "gateway.toml"
    with gateway_thread(
        [account(key, secret)], sim.url, tmp_path / "data", config_path=config
    ) as gw:
        gw.gateway.halt("MASTER", "grid misbehaves", client="grid", origin="test")
        grid = krakenex_api(lines["KRAKEN_API_KEY"], lines["KRAKEN_API_SECRET"], gw.url)
        assert add_order(grid)["error"] == HALTED_ERRORS
        assert add_order(krakenex_api(key, secret, gw.url))["error"] == []  # the account's key
        for bad, message in (
            (lambda: gw.gateway.halt("NOPE", "x", origin="t"), "unknown account 'NOPE'"),
            (lambda: gw.gateway.halt("MASTER", "x", client="nobody", origin="t"), "nobody"),
            (lambda: gw.gateway.halt("MASTER", "  ", origin="t"), "--reason: empty"),
        ):
            with pytest.raises(ValueError, match=message):
                bad()


def test_halts_persist_across_a_restart_and_the_cli_reaches_a_running_gateway(
    tmp_path: Path, sim_key
) -> None:
    sim, key, secret = sim_key
    env = account_environ({"MASTER": (key, secret)}, sim.url, tmp_path / "data")
    accounts = [account(key, secret)]
    with gateway_thread(accounts, sim.url, tmp_path / "data") as gw:
        events: list[GuardEvent] = []
        gw.gateway.add_guard_listener(events.append)
        api = krakenex_api(key, secret, gw.url)
        halted = run_krakenwatch(
            "gateway", "halt", "MASTER", "--reason", "deploy gone wrong", env=env, cwd=tmp_path
        )
        assert halted.returncode == 0, halted.stderr
        assert halted.stdout.startswith("halted MASTER:")
        assert add_order(api)["error"] == HALTED_ERRORS  # at once: read before it leaves
        eventually(lambda: [e.kind for e in events] == [HALT], 2, 0.05, what="the halt seen")
        assert events[0].data["origin"].startswith("cli ")
        assert events[0].data["reason"] == "deploy gone wrong"
    with gateway_thread(accounts, sim.url, tmp_path / "data") as gw:  # a restart
        api = krakenex_api(key, secret, gw.url)
        assert add_order(api)["error"] == HALTED_ERRORS
        listed = run_krakenwatch("gateway", "halts", env=env, cwd=tmp_path)
        assert "MASTER" in listed.stdout and "deploy gone wrong" in listed.stdout
        resumed = run_krakenwatch("gateway", "resume", "MASTER", env=env, cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stderr
        # another process's resume reaches this gateway with its next look at the store
        eventually(lambda: add_order(api)["error"] == [], 2, 0.05, what="orders pass again")
    again = run_krakenwatch("gateway", "resume", "MASTER", env=env, cwd=tmp_path)
    assert again.returncode == 1 and "MASTER is not halted" in again.stderr
    unknown = run_krakenwatch("gateway", "halt", "USER:x", "--reason", "r", env=env, cwd=tmp_path)
    assert unknown.returncode == 2
    assert unknown.stderr.count("\n") == 1 and "unknown account 'USER:x'" in unknown.stderr


def admin(url: str, path: str, token: str | None, **fields: str) -> tuple[int, Any]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return http_json(url + path, "POST", fields, headers)


def test_the_admin_routes_halt_and_resume_with_the_admin_token_only(
    tmp_path: Path, sim_key
) -> None:
    sim, key, secret = sim_key
    accounts = [account(key, secret)]
    with gateway_thread(accounts, sim.url, tmp_path / "a") as gw:  # no token: no admin routes
        assert admin(gw.url, "/admin/halt", "x", account="MASTER", reason="r")[0] == 404
    token = "t0ken-for-tests"
    with gateway_thread(accounts, sim.url, tmp_path / "b", admin_token=token) as gw:
        api = krakenex_api(key, secret, gw.url)
        assert admin(gw.url, "/admin/halt", None, account="MASTER", reason="r")[0] == 401
        assert admin(gw.url, "/admin/halt", "wrong", account="MASTER", reason="r")[0] == 401
        assert add_order(api)["error"] == []
        status, doc = admin(gw.url, "/admin/halt", token, account="NOPE", reason="r")
        assert status == 400 and "unknown account 'NOPE'" in doc["error"]
        status, doc = admin(gw.url, "/admin/halt", token, account="MASTER")
        assert status == 400 and "--reason: empty" in doc["error"]
        status, doc = admin(gw.url, "/admin/halt", token, account="MASTER", reason="on call")
        assert status == 200 and doc["halted"]["reason"] == "on call"
        assert doc["halted"]["origin"] == "admin 127.0.0.1"
        assert add_order(api)["error"] == HALTED_ERRORS
        assert admin(gw.url, "/admin/resume", token, account="MASTER") == (200, {"resumed": True})
        assert add_order(api)["error"] == []
        assert token not in gw.gateway.metrics.exposition().decode()


# ---------------------------------------------------------------------------- dead man's switch
def test_the_dead_mans_switch_is_kept_armed_by_bot_calls_and_fires_when_they_stop(
    tmp_path: Path, sim_key
) -> None:
    sim, key, secret = sim_key
    accounts = [account(key, secret, cancel_after_s=15)]
    with gateway_thread(accounts, sim.url, tmp_path / "data") as gw:
        api = krakenex_api(key, secret, gw.url)
        assert add_order(api)["error"] == []
        eventually(lambda: sim.dead_mans_switch(key) is not None, 10, what="armed")
        first = sim.dead_mans_switch(key)
        assert first is not None and 13 < first - time.time() <= 15.5
        state = gw.gateway.guard_snapshot().dead_man["MASTER"]
        assert state.timeout_s == 15 and state.trigger_at is not None
        metrics = gw.gateway.metrics.exposition().decode()
        assert 'krakenwatch_gateway_cancel_after_timeout_seconds{account="MASTER"} 15.0' in metrics
        assert 'krakenwatch_gateway_cancel_after_deadline_seconds{account="MASTER"} ' in metrics
        # another call within S/4 does not re-arm (no extra call per bot call)
        sent = sim.stats(key).requests
        assert api.query_private("OpenOrders")["error"] == []
        assert sim.stats(key).requests == sent + 1
    # the gateway is gone and the bot quiet: Kraken cancels the orders by the trigger
    stopped = time.time()
    eventually(lambda: sim.order_ages(key) == [], 25, 0.2, what="orders cancelled")
    assert time.time() - stopped <= 15 + 5
    assert sim.dead_mans_switch_fired(key) == 1


# ---------------------------------------------------------------------------- another writer
def test_another_program_on_the_key_is_named(sim_key, gateway) -> None:
    sim, key, secret = sim_key
    events: list[GuardEvent] = []
    gateway.gateway.add_guard_listener(events.append)
    api = krakenex_api(key, secret, gateway.url)
    assert api.query_private("Balance")["error"] == []
    other = krakenex.API(key, secret)  # straight at Kraken, with nanosecond nonces
    other.uri = sim.url
    other._nonce = lambda: str(time.time_ns() + 10**12)
    assert other.query_private("Balance")["error"] == []
    assert api.query_private("Balance")["error"] == ["EAPI:Invalid nonce"]
    snapshot = gateway.gateway.guard_snapshot()
    assert snapshot.foreign_writers["MASTER"] == 1
    assert [e.kind for e in events] == ["foreign_writer"]
    assert "another program signs with this key" in events[0].detail
    metrics = gateway.gateway.metrics.exposition().decode()
    assert 'krakenwatch_gateway_foreign_writer_total{account="MASTER"} 1.0' in metrics


# ---------------------------------------------------------------------------- replicas on Redis
def test_replicas_on_one_redis_share_halts_and_the_order_budget(tmp_path: Path, sim_key) -> None:
    sim, key, secret = sim_key
    accounts = [account(key, secret)]
    with redis_server(tmp_path / "redis") as server:
        settings = {
            "nonce_store": server.url,
            "max_queue_wait_s": 0.2,
            "trading_decay_scale": 0.01,  # a full pair stays full for the test
        }
        with (
            gateway_thread(accounts, sim.url, tmp_path / "a", **settings) as a,
            gateway_thread(accounts, sim.url, tmp_path / "b", **settings) as b,
        ):
            on_a, on_b = krakenex_api(key, secret, a.url), krakenex_api(key, secret, b.url)
            # the order budget is one, whichever replica an order goes through
            answers = [add_order(api)["error"] for _ in range(30) for api in (on_a, on_b)]
            assert answers.count([]) == 59 and answers[-1] == ["EOrder:Rate limit exceeded"]
            assert sim.trading_rate_limited(key) == 0
            # a halt on one replica binds the other at once (separate data dirs: only Redis)
            events: list[GuardEvent] = []
            b.gateway.add_guard_listener(events.append)
            a.gateway.halt("MASTER", "shared halt", origin="test")
            assert add_order(on_b)["error"] == HALTED_ERRORS
            eventually(lambda: [e.kind for e in events] == [HALT], 2, 0.05, what="b saw it")
            a.gateway.resume("MASTER", origin="test")
            eventually(lambda: b.gateway.guard_snapshot().halts == (), 2, 0.05, what="resumed")


def test_krakens_own_counter_from_the_stream_lands_on_the_pair_the_bots_trade(
    sim_key, gateway
) -> None:
    """The stream spells the pair ``BTC/USD``, the bots ``XBTUSD``: one counter, even when the
    stream reports before the first order (the gateway learns Kraken's pair names first)."""
    _sim, key, secret = sim_key
    gateway.gateway.observe_trading_counter("MASTER", "BTC/USD", 55.0)

    def counters() -> dict[str, float]:
        trading = gateway.gateway.guard_snapshot().trading["MASTER"]
        return {pair: c.level for pair, c in trading.items()}

    eventually(lambda: "XXBTZUSD" in counters(), 5, 0.05, what="the observed counter")
    assert set(counters()) == {"XXBTZUSD"} and 50 < counters()["XXBTZUSD"] <= 55
    api = krakenex_api(key, secret, gateway.url)
    assert add_order(api)["error"] == []
    assert set(counters()) == {"XXBTZUSD"}  # the bots' XBTUSD is the same pair


def test_an_order_waiting_for_its_pair_does_not_spin_or_hold_up_other_calls(
    tmp_path: Path, sim_key
) -> None:
    sim, key, secret = sim_key
    with gateway_thread(
        [account(key, secret)], sim.url, tmp_path / "data", max_queue_wait_s=3.0
    ) as gw:  # Kraken's own decay here (0.95/s modelled): a full pair frees 1 count in ~1 s
        api = krakenex_api(key, secret, gw.url)
        assert [add_order(api)["error"] for _ in range(59)] == [[]] * 59
        asked: list[float] = []
        guard = gw.gateway.guard
        before_send = guard.before_send

        def counted(job: Any) -> None:
            asked.append(time.monotonic())
            before_send(job)

        guard.before_send = counted  # type: ignore[method-assign]
        waiting = threading.Thread(target=lambda: asked.append(float(len(add_order(api)["error"]))))
        waiting.start()
        eventually(lambda: len(asked) >= 1, 5, 0.01, what="the held order tried once")
        started = time.monotonic()
        assert krakenex_api(key, secret, gw.url).query_private("Balance")["error"] == []
        assert time.monotonic() - started < 0.5  # not behind the held order
        waiting.join(10)
    tries = [t for t in asked if t > 1.0]  # the monotonic times of the tries
    assert asked[-1] == 0.0  # the held order was placed in the end
    assert 2 <= len(tries) <= 3, tries  # tried, then once more when its budget allowed
