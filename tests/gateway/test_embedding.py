"""The gateway embedded in another process (what ``up --gateway`` does): its routes mounted in
another Starlette app, in-process calls through a key's lane (the gateway's client, or the caller's
own client taking its turn), one rate model per key shared by its labels, calls made by other
clients of the key charged to that model, and its metrics on the host's registry too."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import krakenex
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from broker import (
    InvalidArgumentsError,
    InvalidNonceError,
    KrakenClient,
    RateLimitError,
    ServiceUnavailableError,
)
from broker.paths import nonce_store_dir
from gateway import Gateway, GatewaySettings
from gateway.routes import create_routes
from gateway.server import GatewayThread
from testkit.gateway import account
from testkit.net import http_get, status_of
from testkit.sim import one_key_simulator


def settings(sim_url: str, tmp_path: Path, **fields: object) -> GatewaySettings:
    return GatewaySettings(api_url=sim_url, store_dir=nonce_store_dir(tmp_path / "data"), **fields)  # type: ignore[arg-type]


def test_in_process_calls_share_the_keys_lane_budget_and_metrics(sim_key, tmp_path: Path) -> None:
    sim, key, secret = sim_key
    # one key under two labels: one lane, one rate model, the stricter tier
    accounts = [
        account(key, secret, tier="pro"),
        account(key, secret, "USER:alias", tier="starter"),
    ]
    registry = CollectorRegistry()
    gw = Gateway(accounts, settings(sim.url, tmp_path), registry=registry)
    assert gw.rate_model("MASTER") is gw.rate_model("USER:alias")
    assert gw.rate_model("MASTER").tier.name == "starter"

    async def calls() -> list[bytes]:
        await gw.start()
        try:
            balance = await gw.forward("USER:alias", "Balance", client="monitor")
            order = await gw.forward(
                "MASTER",
                "AddOrder",
                b"pair=XBTUSD&type=buy&ordertype=market&volume=1&validate=true",
            )
            return [balance.body, order.body]
        finally:
            await gw.stop()

    balance, order = asyncio.run(calls())
    assert balance == b'{"error":[],"result":{"ZUSD":"1000.0000","USDT":"50.00000000"}}'
    assert b'"descr"' in order
    assert 0.9 <= gw.rate_model("MASTER").level() <= 1.0  # Balance counted, AddOrder (cost 0) not
    labels = {"client": "monitor", "account": "MASTER", "method": "Balance", "outcome": "ok"}
    assert registry.get_sample_value("krakenwatch_gateway_requests_total", labels) == 1
    assert sim.stats(key).accepted == 2


def test_calls_of_other_clients_on_the_key_are_charged_to_its_model(
    sim_key, tmp_path: Path
) -> None:
    sim, key, secret = sim_key
    gw = Gateway([account(key, secret)], settings(sim.url, tmp_path))
    monitor = KrakenClient(
        key,
        secret,
        base_url=sim.url,
        store_dir=nonce_store_dir(tmp_path / "data"),
        observer=gw.observer,
    )
    for _ in range(3):
        monitor.call_private("Balance")
    assert gw.rate_model("MASTER").level() >= 2.5  # three calls, barely decayed
    asyncio.run(gw.stop())


def test_the_routes_mount_in_another_app(sim_key, tmp_path: Path) -> None:
    sim, key, secret = sim_key
    gw = Gateway([account(key, secret)], settings(sim.url, tmp_path, rate_limited=False))

    async def home(request: object) -> PlainTextResponse:
        return PlainTextResponse("the host app")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gw.start()
        yield
        await gw.stop()

    host = Starlette(routes=[Route("/", home), *create_routes(gw)], lifespan=lifespan)
    with GatewayThread(gw, app=host) as server:
        api = krakenex.API(key, secret)
        api.uri = server.url
        assert api.query_private("Balance")["error"] == []
        # the monitor's thread calls through the same lane
        assert gw.call("MASTER", "Balance", client="monitor", timeout=30).outcome == "ok"
        assert api.query_public("Time")["error"] == []
        assert status_of(server.url + "/") == 200 and status_of(server.url + "/healthz") == 200
    assert sim.stats(key).accepted == 2


def test_take_turn_runs_the_callers_own_client_in_the_keys_lane(sim_key, tmp_path: Path) -> None:
    sim, key, secret = sim_key
    registry = CollectorRegistry()
    gw = Gateway([account(key, secret)], settings(sim.url, tmp_path), registry=registry)
    monitor = KrakenClient(key, secret, base_url=sim.url, store_dir=nonce_store_dir(tmp_path))
    with GatewayThread(gw):
        balance = gw.take_turn(
            "MASTER", "Balance", lambda: monitor.call_private("Balance"), client="monitor"
        )
        with pytest.raises(InvalidArgumentsError):  # Kraken's answer reaches the caller as such
            gw.take_turn("MASTER", "Withdraw", lambda: monitor.call_private("Withdraw"))
        rate = gw.rate_model("MASTER").level()
    assert balance == {"ZUSD": "1000.0000", "USDT": "50.00000000"}
    assert 1.8 <= rate <= 2.0  # both charged to the key's model
    assert sim.stats(key).requests == 2

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {"account": "MASTER", **labels})

    ok = {"client": "monitor", "method": "Balance", "outcome": "ok"}
    refused = {"client": "internal", "method": "Withdraw", "outcome": "kraken_error"}
    assert sample("krakenwatch_gateway_requests_total", **ok) == 1
    assert sample("krakenwatch_gateway_requests_total", **refused) == 1
    assert sample("krakenwatch_gateway_queue_wait_seconds_count") == 2
    unknown = sample("krakenwatch_gateway_kraken_errors_total", code="EGeneral:Unknown method")
    assert unknown == 1


def test_a_turn_the_budget_cannot_fit_is_refused_and_never_runs(sim_key, tmp_path: Path) -> None:
    sim, key, secret = sim_key
    gw = Gateway([account(key, secret)], settings(sim.url, tmp_path, max_queue_wait_s=0.2))
    ran: list[str] = []
    with GatewayThread(gw):
        gw.rate_model("MASTER").charge(100)  # another program spent the key's budget
        with pytest.raises(RateLimitError):
            gw.take_turn("MASTER", "Balance", lambda: ran.append("sent"))
    assert ran == [] and sim.stats(key).requests == 0
    refusals = gw.metrics.registry.get_sample_value(
        "krakenwatch_gateway_queue_refusals_total", {"account": "MASTER", "reason": "wait"}
    )
    assert refusals == 1
    with pytest.raises(ServiceUnavailableError):  # stopped: nothing runs either
        gw.take_turn("MASTER", "Balance", lambda: ran.append("sent"))
    assert ran == []


def test_kraken_invalid_nonces_of_a_turn_are_counted_once(tmp_path: Path) -> None:
    host = CollectorRegistry()
    invalid_nonces = Counter(
        "krakenwatch_invalid_nonce_errors", "host's", ["account"], registry=host
    )
    with one_key_simulator("ahead", last_nonce=9 * 10**18) as (sim, key, secret):
        gw = Gateway(
            [account(key, secret)],
            settings(sim.url, tmp_path),
            registry=host,
            invalid_nonces=invalid_nonces,
        )

        def reported() -> None:  # the caller's own client reports to the host's counter
            try:
                monitor.call_private("Balance")
            except InvalidNonceError:
                invalid_nonces.labels("MASTER").inc()
                raise

        monitor = KrakenClient(key, secret, base_url=sim.url, store_dir=nonce_store_dir(tmp_path))
        with GatewayThread(gw), pytest.raises(InvalidNonceError):
            gw.take_turn("MASTER", "Balance", reported, client="monitor")
    labels = {"account": "MASTER"}
    assert host.get_sample_value("krakenwatch_invalid_nonce_errors_total", labels) == 1
    code = {**labels, "code": "EAPI:Invalid nonce"}
    assert host.get_sample_value("krakenwatch_gateway_kraken_errors_total", code) == 1
    assert gw.metrics.traffic.snapshot().kraken_errors["MASTER"]["EAPI:Invalid nonce"] == 1


def test_embedded_metrics_join_the_host_registry_but_the_gateway_serves_only_its_own(
    sim_key, tmp_path: Path
) -> None:
    sim, key, secret = sim_key
    host = CollectorRegistry()
    Gauge("krakenwatch_balance", "the host's", ["account", "asset"], registry=host).labels(
        "MASTER", "ZUSD"
    ).set(1000)
    invalid_nonces = Counter("krakenwatch_invalid_nonce_errors", "", ["account"], registry=host)
    gw = Gateway(
        [account(key, secret)],
        settings(sim.url, tmp_path),
        registry=host,
        invalid_nonces=invalid_nonces,
    )
    with GatewayThread(gw) as server:
        api = krakenex.API(key, secret)
        api.uri = server.url
        assert api.query_private("Balance")["error"] == []
        own = http_get(server.url + "/metrics")[2]
    hosted = generate_latest(host).decode()
    line = (
        'krakenwatch_gateway_requests_total{account="MASTER",client="account-key",'
        'method="Balance",outcome="ok"} 1.0'
    )
    assert line in own and line in hosted
    assert hosted.count("# TYPE krakenwatch_invalid_nonce_errors_total counter") == 1
    assert 'krakenwatch_invalid_nonce_errors_total{account="MASTER"} 0.0' in own
    assert "krakenwatch_balance" in hosted and "krakenwatch_balance" not in own
