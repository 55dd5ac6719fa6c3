"""13. Trading guard: the order budget per pair, the kill switch and the dead man's switch.

* Two krakenex bots on one key grind one pair (each order placed and cancelled at once: 1 + 8 on
  Kraken's trading counter, starter tier, threshold 60), straight to the simulator and through
  the gateway, side by side: Kraken's ``EOrder:Rate limit exceeded`` answers, and orders placed
  per second against what the counter allows over the same time. The simulator's and the
  gateway's counters decay 20× faster than Kraken's (20/s instead of 1/s) so a run takes minutes.
* Halt to effect on two gateway replicas of one data dir while a bot sends orders through each:
  the time ``halt`` takes to be acknowledged, until each replica refuses, and the orders Kraken
  placed after the acknowledgement.
* Dead man's switch (``CANCEL_AFTER=15``): open orders cancelled by Kraken after the last bot call
  (the bot stops), and after the gateway is stopped.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from simulator import Simulator
from testkit.bots import krakenex_api
from testkit.gateway import account, gateway_thread
from testkit.grind import grind
from testkit.sim import one_key_simulator

from .kit import Context
from .report import Section, Table, Verdict

NUMBER = 13
TITLE = "Trading guard"
TARGET = (
    "two bots grinding one pair: Kraken's EOrder:Rate limit exceeded ≥ 1 direct vs 0 through the "
    "gateway, orders per second through it ≥ 90 % of what the counter allows; halt in effect on "
    "every replica < 1 s, 0 orders placed after it is acknowledged; open orders cancelled ≤ "
    "timeout + 5 s after the last bot call and after the gateway is stopped."
)
SCALE = 20.0
THRESHOLD, DECAY = 60.0, 1.0 * SCALE
PER_ORDER = 1.0 + 8.0  # an order, and its cancel while younger than 5 s
CANCEL_AFTER = 15
ORDER = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "price": "100", "volume": "0.01"}


def _simulator(name: str) -> Any:
    return one_key_simulator(
        name,
        tier="starter",
        trading_decay_scale=SCALE,
        latency_ms=(0, 0),
        balances={"ZUSD": "1000000.0000", "XXBT": "1.0000000000"},
        nonce_window=5_000_000,
    )


def _allowed_per_s(elapsed_s: float) -> float:
    """Orders (each cancelled young) per second the counter allows over ``elapsed_s`` from
    empty: the threshold at once, then the decay."""
    return (THRESHOLD + DECAY * elapsed_s) / PER_ORDER / elapsed_s


def _grind(ctx: Context, section: Section) -> None:
    orders = 30 if ctx.quick else 300
    table = Table(
        ["path", "orders", "time: s", "orders/s", "allowed/s", "share", "Kraken's rate limits"]
    )
    results = {}
    with _simulator(f"grind-{ctx.run_id}") as (sim, key, secret):
        for path in ("direct", "gateway"):
            ctx.log(f"grind: {orders} orders, two bots, {path}")
            before = sim.trading_rate_limited(key)
            if path == "direct":
                result = grind(sim.url, key, secret, bots=2, orders=orders, deadline_s=900)
            else:
                with gateway_thread(
                    [account(key, secret)], sim.url, ctx.tmp / "grind", trading_decay_scale=SCALE
                ) as gw:
                    result = grind(gw.url, key, secret, bots=2, orders=orders, deadline_s=900)
            limited = sim.trading_rate_limited(key) - before
            rate, allowed = result.placed / result.elapsed_s, _allowed_per_s(result.elapsed_s)
            results[path] = (limited, rate / allowed)
            table.add(
                path,
                result.placed,
                f"{result.elapsed_s:.1f}",
                f"{rate:.2f}",
                f"{allowed:.2f}",
                f"{100 * rate / allowed:.0f} %",
                limited,
            )
            _wait_empty(sim, key)  # the next run starts from an empty counter
    section.tables.append(table)
    direct, through = results["direct"], results["gateway"]
    section.verdicts.append(
        Verdict(
            "Kraken's rate limits: ≥ 1 direct, 0 through the gateway",
            f"{direct[0]} vs {through[0]}",
            direct[0] >= 1 and through[0] == 0,
        )
    )
    section.verdicts.append(
        Verdict(
            "orders/s through the gateway ≥ 90 % of allowed",
            f"{100 * through[1]:.0f} %",
            through[1] >= 0.9,
        )
    )


def _wait_empty(sim: Simulator, key: str) -> None:
    deadline = time.monotonic() + 30
    while sim.trading_counter(key, "XBTUSD") > 0 and time.monotonic() < deadline:
        time.sleep(0.1)


def _halt(ctx: Context, section: Section) -> None:
    with _simulator(f"halt-{ctx.run_id}") as (sim, key, secret):
        sim.set_latency(5, 5)
        accounts, data = [account(key, secret)], ctx.tmp / "halt"
        with (
            gateway_thread(accounts, sim.url, data) as a,
            gateway_thread(accounts, sim.url, data) as b,
        ):
            stop = threading.Event()
            refused_at: dict[str, float] = {}

            def bot(name: str, url: str) -> None:
                api = krakenex_api(key, secret, url)
                while not stop.is_set():
                    errors = api.query_private("AddOrder", ORDER, timeout=30)["error"]
                    if errors and name not in refused_at:
                        refused_at[name] = time.monotonic()

            threads = [
                threading.Thread(target=bot, args=(n, g.url)) for n, g in (("a", a), ("b", b))
            ]
            for t in threads:
                t.start()
            time.sleep(1.0)  # orders flowing through both replicas
            ctx.log("halt: on replica a, bots on a and b")
            asked = time.monotonic()
            a.gateway.halt("MASTER", "bench", origin="bench")
            acked = time.monotonic()
            placed_at_ack = len(sim.order_ages(key))
            time.sleep(1.0)
            stop.set()
            for t in threads:
                t.join(30)
            after = len(sim.order_ages(key)) - placed_at_ack
    table = Table(["replica", "halt acknowledged after: ms", "refusing after the ack: ms"])
    for name in ("a", "b"):
        effect = (refused_at.get(name, float("inf")) - acked) * 1000
        table.add(name, f"{(acked - asked) * 1000:.1f}", f"{max(effect, 0.0):.1f}")
    section.tables.append(table)
    slowest = max(refused_at.get(n, float("inf")) for n in ("a", "b")) - asked
    section.verdicts.append(
        Verdict(
            "halt in effect on every replica < 1 s, 0 orders after the ack",
            f"{slowest * 1000:.0f} ms, {after} orders",
            slowest < 1.0 and after == 0,
        )
    )


def _dead_man(ctx: Context, kill_gateway: bool) -> float:
    name = "gateway" if kill_gateway else "bot"
    with _simulator(f"dms-{name}-{ctx.run_id}") as (sim, key, secret):
        accounts = [account(key, secret, cancel_after_s=CANCEL_AFTER)]
        with gateway_thread(accounts, sim.url, ctx.tmp / f"dms-{name}") as gw:
            api = krakenex_api(key, secret, gw.url)
            for _ in range(3):
                api.query_private("AddOrder", ORDER, timeout=30)
            while sim.dead_mans_switch(key) is None:
                time.sleep(0.05)
            last = time.monotonic()  # the bot's last call
            if not kill_gateway:
                while sim.order_ages(key):
                    time.sleep(0.05)
                return time.monotonic() - last
        stopped = time.monotonic()
        while sim.order_ages(key):
            time.sleep(0.05)
        return time.monotonic() - stopped


def run(ctx: Context) -> Section:
    section = Section(NUMBER, TITLE, TARGET)
    _grind(ctx, section)
    _halt(ctx, section)
    # quick: the gateway stopped only (each case waits out the whole timeout)
    cases = [True] if ctx.quick else [False, True]
    ctx.log(f"dead man's switch: CANCEL_AFTER={CANCEL_AFTER}, {len(cases)} case(s)")
    times = {killed: _dead_man(ctx, killed) for killed in cases}
    table = Table(["what stopped", "orders cancelled after: s", "bound: s"])
    for killed, seconds in times.items():
        what = "the gateway" if killed else "the bot (last call)"
        table.add(what, f"{seconds:.1f}", CANCEL_AFTER + 5)
    section.tables.append(table)
    section.verdicts.append(
        Verdict(
            f"cancelled ≤ {CANCEL_AFTER} + 5 s",
            ", ".join(f"{t:.1f} s" for t in times.values()),
            max(times.values()) <= CANCEL_AFTER + 5,
        )
    )
    section.how = (
        "In-process simulator (127.0.0.1, starter tier, trading counters decaying 20×) and "
        "gateways in threads of the bench process (testkit.gateway). Grind: testkit.grind, two "
        "krakenex bots on one key, each order a 0.01 XBTUSD limit buy far below the price, "
        "cancelled at once; a refused order is retried after 50 ms. Allowed per second = "
        "(60 + 20·T) / 9 / T over the run's time T from an empty counter. Halt: two replicas on "
        "one data dir, one krakenex bot each sending orders back to back (5 ms at the simulator); "
        "`halt` on replica a; orders counted at the simulator. Dead man's switch: three orders, "
        "then nothing; times from the last call (or the gateway's stop) until the simulator's "
        "open orders are gone."
    )
    return section
