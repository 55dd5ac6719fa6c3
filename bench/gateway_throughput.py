"""10. Gateway throughput across keys: calls/s through one gateway for 50 keys in parallel vs 1 key;
and the throughput of one key (reported, no target).

The gateway keeps one request in flight per key, so one key's throughput is bounded by Kraken's
latency; keys are independent (a lane and a worker thread each, no global lock), so 50 keys should
go much faster than one. The simulator (its own process) answers after a fixed latency; the bots
are unmodified krakenex in two processes, two threads per key sharing the key's client object (so
each key always has a call queued behind the one in flight); the gateway is the real process.

Throughput per key, the price of one writer per key: 8 krakenex bots (threads in two processes,
each its own client with a strictly increasing counter nonce) on ONE key through the gateway,
against the same 8 bots each on its own key straight to the simulator (0 ms latency, its own
process). Run as ``python -m bench.gateway_throughput`` this module is one such bot process
(:func:`testkit.release.serve_released`).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from simulator import KeySpec, Scenario
from testkit.bots import BotsRun, run_bot_processes
from testkit.release import released_threads, run_released, serve_released

from .gateway_latency import client
from .kit import Context, external_simulator, fleet_keys, gateway, key_spec
from .report import Section, Summary, Table, Verdict

NUMBER = 10
TITLE = "Gateway throughput across keys"
TARGET = "50 keys in parallel ≥ 10 × the calls/s of 1 key through one gateway (20 ms simulated latency): one writer per key, not one global lock."
LATENCY_MS = 20.0
KEYS = 50
MIN_RATIO = 10.0
THREADS_PER_KEY = 2
BOT_PROCESSES = 2
#: bots on the one key (through the gateway) or on a key each (direct)
PER_KEY_BOTS = 8


def drive(url: str, keys: list[KeySpec], calls: int) -> BotsRun:
    """``THREADS_PER_KEY`` krakenex threads per key, the keys spread over the bot processes."""
    groups = [keys[i::BOT_PROCESSES] for i in range(BOT_PROCESSES)]
    jobs = [
        {
            "client": "krakenex",
            "keys": [[k.key, k.secret] for k in group],
            "url": url,
            "threads": THREADS_PER_KEY,
            "calls": calls,
        }
        for group in groups
        if group
    ]
    run = run_bot_processes(jobs)
    expected = len(keys) * THREADS_PER_KEY * calls
    if run.outcomes != {"ok": expected}:
        raise RuntimeError(f"{len(keys)} key(s): {dict(run.outcomes)} for {expected} calls")
    return run


def run(ctx: Context) -> Section:
    section = Section(NUMBER, TITLE, TARGET)
    one_calls, many_calls = (10, 3) if ctx.quick else (100, 20)
    keys = fleet_keys(ctx, KEYS, "throughput")
    scenario = Scenario(
        keys=keys, tier="unlimited", lockout_threshold=0, latency_ms=(LATENCY_MS, LATENCY_MS)
    )
    table = Table(
        ["keys", "calls", "calls/s median (min–max)", "per key calls/s", "ratio to 1 key"]
    )
    rates: dict[int, list[float]] = {1: [], KEYS: []}
    ratios: list[float] = []
    with (
        external_simulator(ctx, scenario, "gateway-throughput") as url,
        gateway(ctx, scenario, url, "throughput") as gw,
    ):
        drive(gw.url, keys, 1)  # warm-up: every key's lane, connection and nonce record
        for rep in range(ctx.reps):
            one = drive(gw.url, keys[:1], one_calls)
            many = drive(gw.url, keys, many_calls)
            r1 = one_calls * THREADS_PER_KEY / one.seconds
            r50 = KEYS * many_calls * THREADS_PER_KEY / many.seconds
            rates[1].append(r1)
            rates[KEYS].append(r50)
            ratios.append(r50 / r1)
            ctx.log(
                f"10 rep {rep + 1}: 1 key {r1:.0f}/s, {KEYS} keys {r50:.0f}/s ({r50 / r1:.1f}×)"
            )
    ratio = Summary.of(ratios)
    for n, calls in ((1, one_calls), (KEYS, many_calls)):
        rate = Summary.of(rates[n])
        table.add(
            n,
            n * THREADS_PER_KEY * calls,
            rate.fmt(0),
            f"{rate.median / n:.1f}",
            "1.0×" if n == 1 else ratio.fmt(1, "×"),
        )
    section.tables.append(table)
    section.verdicts.append(
        Verdict(
            f"{KEYS} keys ≥ {MIN_RATIO:g} × 1 key", ratio.fmt(1, "×"), ratio.median >= MIN_RATIO
        )
    )
    section.notes.append(
        f"one key is bounded by Kraken's latency ({LATENCY_MS:g} ms: at most "
        f"{1000 / LATENCY_MS:.0f} calls/s with one request in flight); {KEYS} keys are bounded by "
        "the CPU the machine shares between the simulator, the gateway and the bots."
    )
    section.how = (
        f"the simulator in its own process answering after {LATENCY_MS:g} ms, `krakenwatch "
        f"gateway --no-rate-model` with {KEYS} accounts in its own process, and {BOT_PROCESSES} "
        f"krakenex bot processes ({THREADS_PER_KEY} threads per key, keys spread over the "
        "processes), released together; calls/s = calls / time from the release to the last "
        f"answer; one warm-up call per key first; {ctx.reps} repetition(s), 1 key then {KEYS} "
        "keys in each."
    )
    per_key(ctx, section)
    return section


def _bot(key: str, secret: str, url: str) -> Callable[[], str]:
    """A krakenex bot with a counter nonce; one ``Balance`` call -> its outcome (never raises)."""
    api = client(key, secret, url)

    def call() -> str:
        try:
            errors = api.query_private("Balance", timeout=30)["error"]
        except Exception as exc:  # counted: any outcome but ok voids the run
            return type(exc).__name__
        return str(errors[0]) if errors else "ok"

    return call


def _work(job: dict[str, Any], ready_then_wait: Callable[[], None]) -> dict[str, Any]:
    """One bot process: a thread per ``[key, secret]`` of the job, released together."""
    bots = [_bot(key, secret, job["url"]) for key, secret in job["keys"]]
    started: list[float] = []

    def go() -> None:
        ready_then_wait()
        started.append(time.perf_counter())

    outcomes = released_threads(bots, int(job["calls"]), go)
    return {"outcomes": dict(outcomes), "seconds": time.perf_counter() - started[0]}


def drive_bots(url: str, keys: list[tuple[str, str]], calls: int) -> float:
    """Calls/s of a bot per entry of ``keys`` (spread over the bot processes), ``calls`` each."""
    jobs = [
        {"keys": keys[i::BOT_PROCESSES], "url": url, "calls": calls} for i in range(BOT_PROCESSES)
    ]
    outcomes: Counter[str] = Counter()
    seconds = 0.0
    for report in run_released("bench.gateway_throughput", jobs):
        outcomes.update(report["outcomes"])
        seconds = max(seconds, float(report["seconds"]))
    expected = len(keys) * calls
    if outcomes != {"ok": expected}:
        raise RuntimeError(f"{len(keys)} bot(s): {dict(outcomes)} for {expected} calls")
    return expected / seconds


def per_key(ctx: Context, section: Section) -> None:
    """Calls/s of 8 bots on one key through the gateway vs on a key each, direct: a table, a note
    and how, added to ``section`` (no target)."""
    calls = 50 if ctx.quick else 250
    one = key_spec(ctx, "per-key/gateway", account="MASTER")
    own = [key_spec(ctx, f"per-key/direct-{i}") for i in range(PER_KEY_BOTS)]
    scenario = Scenario(
        keys=[one, *own], tier="unlimited", lockout_threshold=0, latency_ms=(0.0, 0.0)
    )
    rates: dict[str, list[float]] = {"gateway": [], "direct": []}
    with (
        external_simulator(ctx, scenario, "per-key") as url,
        gateway(ctx, scenario, url, "per-key") as gw,
    ):
        sides = {
            "gateway": (gw.url, [(one.key, one.secret)] * PER_KEY_BOTS),
            "direct": (url, [(k.key, k.secret) for k in own]),
        }
        for target, keys in sides.values():
            drive_bots(target, keys, 5)  # warm-up: connections, the lane, nonce records
        for rep in range(ctx.reps):
            for side in ("gateway", "direct") if rep % 2 == 0 else ("direct", "gateway"):
                rates[side].append(drive_bots(*sides[side], calls))
            ctx.log(
                f"10 per key rep {rep + 1}: {rates['gateway'][-1]:.0f}/s through the gateway"
                f" on 1 key, {rates['direct'][-1]:.0f}/s direct on {PER_KEY_BOTS} keys"
            )
    gateway_rate, direct_rate = Summary.of(rates["gateway"]), Summary.of(rates["direct"])
    ratio = Summary.of([g / d for g, d in zip(rates["gateway"], rates["direct"], strict=True)])
    table = Table(
        [
            "bots (krakenex, counter nonces)",
            "1 key through the gateway: calls/s",
            f"{PER_KEY_BOTS} keys straight to the simulator: calls/s",
            "ratio (gateway / direct)",
            "calls per side",
        ]
    )
    table.add(
        PER_KEY_BOTS, gateway_rate.fmt(0), direct_rate.fmt(0), ratio.fmt(2, "×"),
        PER_KEY_BOTS * calls,
    )  # fmt: skip
    section.tables.append(table)
    section.notes.append(
        f"throughput per key (no target): {PER_KEY_BOTS} bots on one key through the gateway make "
        f"{gateway_rate.median:.0f} calls/s, {ratio.median:.2f}× what the same bots make on "
        f"{PER_KEY_BOTS} keys of their own straight to the simulator ({direct_rate.median:.0f} "
        "calls/s, 0 ms latency): the price of one writer per key, one request in flight at a "
        "time. Every process shares the machine's CPUs."
    )
    section.how += (
        f" Per key (second table, no target): a second simulator answering at once (0 ms) in its "
        f"own process and a second gateway with one account; {PER_KEY_BOTS} krakenex bots in "
        f"{BOT_PROCESSES} processes (a thread and a client each, counter nonces), all on the "
        "gateway's one key, then the same bots each on its own key straight to the simulator "
        "(order alternating per repetition), released together; calls/s as above; 5 warm-up "
        f"calls per bot first; {ctx.reps} repetition(s)."
    )


if __name__ == "__main__":
    sys.exit(serve_released(_work))
