"""The gateway embedded in another process (what ``up --gateway`` will do): its routes mounted in
another Starlette app, in-process calls through a key's lane, one rate model per key shared by its
labels, and calls made by other clients of the key charged to that model."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import krakenex
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from broker import KrakenClient
from broker.paths import nonce_store_dir
from gateway import Gateway, GatewaySettings
from gateway.server import GatewayThread
from testkit.gateway import account
from testkit.net import status_of


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

    host = Starlette(routes=[Route("/", home), *gw.routes()], lifespan=lifespan)
    with GatewayThread(gw, app=host) as server:
        api = krakenex.API(key, secret)
        api.uri = server.url
        assert api.query_private("Balance")["error"] == []
        # the monitor's thread calls through the same lane
        assert gw.call("MASTER", "Balance", client="monitor", timeout=30).outcome == "ok"
        assert api.query_public("Time")["error"] == []
        assert status_of(server.url + "/") == 200 and status_of(server.url + "/healthz") == 200
    assert sim.stats(key).accepted == 2
