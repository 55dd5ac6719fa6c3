"""12. Account streams: what Kraken's WebSocket v2 stream saves and how fast it tells.

* Signed REST calls per account per hour in steady state, polling (``KRAKENWATCH_STREAMS=0``)
  against streams, measured side by side on the same simulator with every interval 30× shorter
  than the defaults (poll 1 s for 30 s, reconcile 10 s for 300 s) and scaled back to an hour.
* Time from a fill at the simulator to the new balance on ``/api/verify`` and on ``/metrics``,
  with streams, next to polling (poll 5 s).
* A dropped stream: time until it is up again, and fills made while it was down that the monitor
  never told (the trades of the snapshot after the reconnection tell them).
* Resident memory of one ``krakenwatch up`` holding 200 accounts' streams, next to the same 200
  accounts polling.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from typing import Any

from dashboard.monitor import events as ev
from dashboard.web.service import Service
from simulator import Scenario, Simulator, scenario_environment
from testkit.headless import serving
from testkit.net import http_get
from testkit.procs import rss_mib, up_process
from testkit.sim import ws_url_for

from .kit import Context, external_simulator, fleet_keys, running
from .report import Section, Summary, Table, Verdict, percentile

NUMBER = 12
TITLE = "Account streams"
TARGET = (
    "≥ 10× fewer signed REST calls per account per hour than polling (goal ≤ 13 against 120); "
    "fill to balance on /api/verify and /metrics: median < 100 ms, p99 < 500 ms; a dropped "
    "stream up again in < 5 s with 0 fills lost; 200 accounts' streams in one `up` < 400 MB RSS."
)
#: a stream up this long starts its backoff series again (broker.Backoff's reset_after_s)
RESET_AFTER_S = 61.0
#: the defaults are 30× these (poll 30 s, reconcile 300 s)
SCALE = 30.0
PAIR = "XBTUSD"


def _env(sim: Simulator, **extra: str) -> dict[str, str]:
    return {
        **scenario_environment(sim.scenario, sim.url, sim.ws_url),
        "KRAKENWATCH_TIER": "pro",
        **extra,
    }


def _wait(probe: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := probe()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.005)
    return found


def _all(service: Service, test: Callable[[Any], bool]) -> bool:
    return all(test(a) for a in service.monitor.snapshot().accounts)


def _calls_per_hour(ctx: Context, streams: bool, window_s: float) -> float:
    """Signed calls per account per hour at the default intervals, from a scaled steady state."""
    keys = fleet_keys(ctx, 3, f"calls-{streams}")
    with running(Scenario(keys=keys, tier="unlimited", lockout_threshold=0)) as sim:
        extra = {
            "KRAKENWATCH_POLL_INTERVAL": f"{30 / SCALE:g}",
            "KRAKENWATCH_RECONCILE_INTERVAL": f"{300 / SCALE:g}",
            "KRAKENWATCH_STREAMS": "1" if streams else "0",
        }
        with serving(_env(sim, **extra), ctx.scratch("calls-data")) as (service, _):
            if streams:
                _wait(lambda: _all(service, lambda a: a.stream.up), "every stream up")
            else:
                _wait(lambda: _all(service, lambda a: a.state == "connected"), "connected")
            before = [sim.stats(k.key).requests for k in keys]
            time.sleep(window_s)
            after = [sim.stats(k.key).requests for k in keys]
    per_account_s = sum(b - a for a, b in zip(before, after, strict=True)) / len(keys) / window_s
    return per_account_s * 3600 / SCALE


def _balance_on_verify(url: str, label: str, asset: str) -> str | None:
    doc = json.loads(http_get(url + "/api/verify")[2])
    for account in doc["accounts"]:
        if account["account"] == label:
            return (account.get("balances") or {}).get(asset)
    return None


def _balance_on_metrics(url: str, label: str, asset: str) -> str | None:
    prefix = f'krakenwatch_balance{{account="{label}",asset="{asset}"}} '
    for line in http_get(url + "/metrics")[2].splitlines():
        if line.startswith(prefix):
            return line.removeprefix(prefix)
    return None


def _one_fill(
    sim: Simulator,
    key: str,
    url: str,
    read: Callable[[str, str, str], str | None],
    where: str,
    i: int,
) -> float:
    """Seconds from one fill until ``read`` sees MASTER's new XXBT balance at ``url``."""
    before = _wait(lambda: read(url, "MASTER", "XXBT"), f"a balance on {where}")
    txid = sim.place_order(key, PAIR, "buy" if i % 2 == 0 else "sell", "0.0001", price="100")
    t0 = time.perf_counter()
    sim.fill_order(key, txid)
    _wait(lambda: read(url, "MASTER", "XXBT") not in (before, None), where, 30)
    return time.perf_counter() - t0


def _fill_latencies(ctx: Context, streams: bool, n: int) -> dict[str, list[float]]:
    """Seconds from each fill to its balance on /api/verify and on /metrics."""
    keys = fleet_keys(ctx, 1, f"fill-{streams}")
    key = keys[0].key
    found: dict[str, list[float]] = {"/api/verify": [], "/metrics": []}
    readers: dict[str, Callable[[str, str, str], str | None]] = {
        "/api/verify": _balance_on_verify,
        "/metrics": _balance_on_metrics,
    }
    with running(Scenario(keys=keys, tier="unlimited", lockout_threshold=0)) as sim:
        extra = {"KRAKENWATCH_POLL_INTERVAL": "5", "KRAKENWATCH_STREAMS": "1" if streams else "0"}
        with serving(_env(sim, **extra), ctx.scratch("fill-data")) as (service, url):
            if streams:
                _wait(lambda: _all(service, lambda a: a.stream.up), "the stream up")
            for i in range(n):
                for where, read in readers.items():
                    found[where].append(_one_fill(sim, key, url, read, where, i))
    return found


def _up_again(stream: Callable[[], Any], reconnects: int) -> bool:
    s = stream()
    return bool(s.up and s.reconnects > reconnects)


def _reconnects(ctx: Context, n: int, up_for_s: float) -> tuple[list[float], int, int]:
    """Seconds until a dropped stream is up again (each drop after ``up_for_s`` up); fills made
    while down; fills never told."""
    keys = fleet_keys(ctx, 1, "drop")
    key = keys[0].key
    times: list[float] = []
    made: list[str] = []
    with running(Scenario(keys=keys, tier="unlimited", lockout_threshold=0)) as sim:
        env = _env(sim, KRAKENWATCH_POLL_INTERVAL="30")
        with serving(env, ctx.scratch("drop-data")) as (service, _):

            def stream() -> Any:
                return service.monitor.snapshot().account("MASTER").stream

            _wait(lambda: stream().up, "the stream up")
            for _ in range(n):
                time.sleep(max(0.0, up_for_s - (time.time() - (stream().connected_since or 0))))
                reconnects = stream().reconnects
                t0 = time.perf_counter()
                sim.drop_streams(key)
                txid = sim.place_order(key, PAIR, "buy", "0.0001", price="100")
                sim.fill_order(key, txid)
                made.append(txid)
                _wait(functools.partial(_up_again, stream, reconnects), "up again")
                times.append(time.perf_counter() - t0)
            told: set[str] = set()
            deadline = time.monotonic() + 10
            while len(told) < len(made) and time.monotonic() < deadline:
                assert service.store is not None
                told = {
                    e.data["order_id"]
                    for e in service.store.query(since=0, kinds=[ev.ORDER])
                    if e.data.get("event") == "fill"
                }
                time.sleep(0.05)
    return times, len(made), len(set(made) - told)


def _fleet_rss(ctx: Context, n: int, streams: bool, settle_s: float) -> float:
    keys = fleet_keys(ctx, n, f"rss-{streams}")
    workdir = ctx.scratch(f"rss-{streams}")
    scenario = Scenario(keys=keys, tier="unlimited", lockout_threshold=0)
    with external_simulator(ctx, scenario, f"rss-{streams}") as url:
        env = {
            **scenario_environment(scenario, url, ws_url_for(url)),
            "KRAKENWATCH_DATA_DIR": str(workdir / "data"),
            "KRAKENWATCH_POLL_INTERVAL": "30",
            "KRAKENWATCH_TIER": "pro",
            "KRAKENWATCH_STREAMS": "1" if streams else "0",
        }
        with up_process(env, workdir) as up:
            family = "krakenwatch_stream_connected" if streams else "krakenwatch_account_up"

            def all_up() -> bool:
                lines = [
                    line
                    for line in up.get("/metrics", timeout=30)[1].splitlines()
                    if line.startswith(family + "{")
                ]
                return len(lines) == n and all(line.endswith(" 1.0") for line in lines)

            _wait(all_up, f"{n} accounts up ({family})", timeout=300)
            time.sleep(settle_s)
            return rss_mib(up.proc.pid)


def run(ctx: Context) -> Section:
    section = Section(NUMBER, TITLE, TARGET)
    window = 25.0 if ctx.quick else 60.0  # quick: two reconciliations at least
    ctx.log(f"calls per hour: polling then streams, {window:g} s each at 30× speed")
    polling = _calls_per_hour(ctx, False, window)
    streaming = _calls_per_hour(ctx, True, window)
    calls = Table(["mode", "signed REST calls per account per hour", "ratio"])
    calls.add("polling (Balance every 30 s, probes)", f"{polling:.0f}", "1×")
    # no call at all in a short window: fewer than one a window, so at least that ratio
    ratio = polling / max(streaming, 3600 / SCALE / window)
    said = f"{ratio:.0f}× fewer" + ("" if streaming else " at least")
    calls.add("streams (reconcile every 300 s)", f"{streaming:.1f}", said)
    section.tables.append(calls)
    section.verdicts.append(Verdict("≥ 10× fewer calls", said, ratio >= 10))

    n = 5 if ctx.quick else 50
    ctx.log(f"fill latency: {n} fills per endpoint with streams, then polling")
    fast = _fill_latencies(ctx, True, n)
    slow = _fill_latencies(ctx, False, 1 if ctx.quick else 5)
    latency = Table(["endpoint", "mode", "fills", "median: ms", "p99: ms", "max: ms"])
    for where, values in fast.items():
        median, p99 = percentile(values, 50) * 1000, percentile(values, 99) * 1000
        latency.add(
            where, "stream", len(values), f"{median:.0f}", f"{p99:.0f}", f"{max(values) * 1000:.0f}"
        )
        section.verdicts.append(
            Verdict(
                f"{where}: median < 100 ms, p99 < 500 ms",
                f"{median:.0f} ms, {p99:.0f} ms",
                median < 100 and p99 < 500,
            )
        )
    for where, values in slow.items():
        latency.add(
            where,
            "polling every 5 s",
            len(values),
            f"{percentile(values, 50) * 1000:.0f}",
            f"{percentile(values, 99) * 1000:.0f}",
            f"{max(values) * 1000:.0f}",
        )
    section.tables.append(latency)

    drops, flaps = (1, 3) if ctx.quick else (5, 10)
    ctx.log(f"reconnects: {drops} drops of a stream up for a minute, {flaps} in a row")
    # quick: one drop, the stream's first (its backoff series has not started)
    times, made, lost = _reconnects(ctx, drops, 0.0 if ctx.quick else RESET_AFTER_S)
    flapping, flap_made, flap_lost = _reconnects(ctx, flaps, 0.0)
    reconnect = Table(
        ["dropped", "drops", "up again after: s", "fills while down", "fills never told"]
    )
    reconnect.add("after a minute up", drops, Summary.of(times).fmt(2), made, lost)
    reconnect.add("again and again", flaps, Summary.of(flapping).fmt(2), flap_made, flap_lost)
    section.tables.append(reconnect)
    section.verdicts.append(
        Verdict(
            "up again < 5 s, 0 fills lost",
            f"max {max(times):.2f} s, {lost + flap_lost} lost",
            max(times) < 5 and lost + flap_lost == 0,
        )
    )

    fleet = 20 if ctx.quick else 200
    settle = 2.0 if ctx.quick else 30.0
    ctx.log(f"memory: {fleet} accounts polling, then streaming")
    rss_poll = _fleet_rss(ctx, fleet, False, settle)
    rss_stream = _fleet_rss(ctx, fleet, True, settle)
    memory = Table(["accounts", "mode", "RSS: MiB"])
    memory.add(fleet, "polling", f"{rss_poll:.0f}")
    memory.add(fleet, "streams", f"{rss_stream:.0f}")
    section.tables.append(memory)
    section.verdicts.append(
        Verdict(
            f"{fleet} accounts' streams < 400 MB",
            f"{rss_stream:.0f} MiB",
            rss_stream < 400 if fleet == 200 else None,
        )
    )
    section.how = (
        "In-process simulator (127.0.0.1, unlimited tier) for calls, latency and reconnects; the "
        "service as `krakenwatch up` wires it, with its HTTP routes. Calls: 3 accounts per mode, "
        "private requests counted by the simulator over the window after every account is up, "
        "scaled by 30 (the intervals' speed-up) to an hour. Latency: a 0.0001 BTC limit order "
        "placed, then filled by the simulator's test hook; the clock starts before the fill and "
        "stops when a tight loop of GETs sees the new XXBT balance (so the figure includes one "
        "GET). Reconnects: the simulator cuts the TCP connection (no close frame), places and "
        "fills an order meanwhile; 'up again' is the board's stream state. A stream dropped after a "
        "minute up reconnects at once (full jitter under 0.5 s); one dropped again and again "
        "backs off (doubling, up to 30 s) so that it cannot spend the key's nonces and call "
        "budget on tokens. Memory: `krakenwatch up` "
        "subprocess against the simulator in its own process, VmRSS once every account is up "
        f"(plus {settle:g} s)."
    )
    return section
