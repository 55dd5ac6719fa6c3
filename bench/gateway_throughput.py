"""10. Gateway throughput across keys: calls/s through one gateway for 50 keys in parallel vs 1 key.

The gateway keeps one request in flight per key, so one key's throughput is bounded by Kraken's
latency; keys are independent (a lane and a worker thread each, no global lock), so 50 keys should
go much faster than one. The simulator (its own process) answers after a fixed latency; the bots
are unmodified krakenex in two processes, two threads per key sharing the key's client object (so
each key always has a call queued behind the one in flight); the gateway is the real process.
"""

from __future__ import annotations

from simulator import KeySpec, Scenario
from testkit.bots import BotsRun, run_bot_processes

from .kit import Context, external_simulator, fleet_keys, gateway
from .report import Section, Summary, Table, Verdict

NUMBER = 10
TITLE = "Gateway throughput across keys"
TARGET = "50 keys in parallel ≥ 10 × the calls/s of 1 key through one gateway (20 ms simulated latency): one writer per key, not one global lock."
LATENCY_MS = 20.0
KEYS = 50
MIN_RATIO = 10.0
THREADS_PER_KEY = 2
BOT_PROCESSES = 2


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
            ctx.log(f"9 rep {rep + 1}: 1 key {r1:.0f}/s, {KEYS} keys {r50:.0f}/s ({r50 / r1:.1f}×)")
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
    return section
