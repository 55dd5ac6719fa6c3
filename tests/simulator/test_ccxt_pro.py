"""ccxt's Kraken client (``ccxt.pro.kraken``, not ours) against the simulator: its markets over
REST, its token from ``GetWebSocketsToken``, and its ``watch_balance`` / ``watch_orders`` over
the private WebSocket v2. Passing proves the simulator speaks Kraken's protocol, not only ours."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable
from typing import Any

import ccxt.pro

from simulator import Simulator, builtin_scenario

DEADLINE_S = 10.0


def kraken_at(sim: Simulator, key: str, secret: str) -> Any:
    # no client-side throttling: the simulator judges the rate limits
    exchange = ccxt.pro.kraken({"apiKey": key, "secret": secret, "enableRateLimit": False})
    exchange.urls["api"]["public"] = sim.url  # ccxt appends /0/public/<method>
    exchange.urls["api"]["private"] = sim.url
    exchange.urls["api"]["ws"]["privateV2"] = sim.ws_url
    exchange.urls["api"]["ws"]["private"] = sim.ws_url  # where its authenticate() files the token
    return exchange


async def watching(exchange: Any, sim: Simulator, message_hash: str, watch: Awaitable[Any]) -> Any:
    """Start ``watch`` and wait (on the event loop, with a deadline) until ccxt waits for
    ``message_hash`` on the simulator's WebSocket: only then is the next update its answer."""
    task = asyncio.ensure_future(watch)
    deadline = time.monotonic() + DEADLINE_S
    while True:
        client = exchange.clients.get(sim.ws_url)
        if client is not None and message_hash in client.futures:
            return task
        if task.done() or time.monotonic() > deadline:
            return task
        await asyncio.sleep(0.005)  # let ccxt (and the simulator's threads) run up to its wait


def cached_status(exchange: Any, txid: str) -> str:
    """The latest status ccxt holds for ``txid`` (its order cache), ``""`` when none."""
    return next((o["status"] for o in reversed(exchange.orders or []) if o["id"] == txid), "")


async def status_of(exchange: Any, sim: Simulator, txid: str, wanted: str, act: Any) -> str:
    """``act()``, then follow ccxt's order updates until ``txid`` is ``wanted`` (a deadline)."""
    watch = await watching(exchange, sim, "orders", exchange.watch_orders())
    act()
    deadline = time.monotonic() + DEADLINE_S
    try:
        while time.monotonic() < deadline:
            await asyncio.wait_for(watch, deadline - time.monotonic())
            # wait again before looking: an update handled meanwhile is in the cache, a later
            # one wakes the new watch
            watch = await watching(exchange, sim, "orders", exchange.watch_orders())
            if cached_status(exchange, txid) == wanted:
                break
    finally:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
    return cached_status(exchange, txid)


async def scenario(sim: Simulator, key: str, secret: str) -> dict[str, Any]:
    exchange = kraken_at(sim, key, secret)
    seen: dict[str, Any] = {}
    try:
        markets = await exchange.load_markets()
        seen["markets"] = sorted(markets)
        first = await asyncio.wait_for(exchange.watch_balance(), DEADLINE_S)
        seen["snapshot"] = dict(first["total"])
        after = await watching(exchange, sim, "balances", exchange.watch_balance())
        sim.place_order("MASTER", "XBTUSD", "buy", "0.01", ordertype="market")
        seen["after_fill"] = dict((await asyncio.wait_for(after, DEADLINE_S))["total"])

        placed = await watching(exchange, sim, "orders", exchange.watch_orders())
        txid = sim.place_order("MASTER", "XBTUSD", "sell", "0.02", price="51000")
        orders = await asyncio.wait_for(placed, DEADLINE_S)
        seen["placed"] = [(o["id"], o["status"], o["symbol"], o["side"]) for o in orders]
        seen["filled"] = await status_of(
            exchange, sim, txid, "closed", lambda: sim.fill_order("MASTER", txid)
        )
        other = sim.place_order("MASTER", "XBTUSD", "buy", "0.001", price="40000")
        seen["canceled"] = await status_of(
            exchange, sim, other, "canceled", lambda: sim.cancel_order("MASTER", other)
        )
    finally:
        await exchange.close()
    seen["txid"] = txid
    return seen


def test_ccxt_pro_watches_balances_and_orders_on_the_simulator():
    healthy = builtin_scenario("healthy")
    master = healthy.keys[0]
    with Simulator(healthy) as sim:
        seen = asyncio.run(scenario(sim, master.key, master.secret))
        tokens = sim.stream_stats("MASTER").tokens_issued
    assert {"BTC/USD", "ETH/USD", "USDT/USD"} <= set(seen["markets"])
    assert seen["snapshot"]["USD"] == 1234.56 and seen["snapshot"]["BTC"] == 0.123456789
    # 0.01 BTC at 50000.0 for 500 USD and the 0.40 % taker fee (2 USD)
    assert seen["after_fill"]["USD"] == 732.56
    assert seen["after_fill"]["BTC"] == 0.133456789
    assert seen["placed"] == [(seen["txid"], "open", "BTC/USD", "sell")]
    assert seen["filled"] == "closed"
    assert seen["canceled"] == "canceled"
    assert tokens == 1  # ccxt asked once, and used the token for both channels
