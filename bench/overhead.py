"""2. Overhead of one-writer-per-key: sequential private calls/s, KrakenClient vs plain krakenex.

The baseline is a ``krakenex.API`` whose nonce is a strictly increasing counter (µs-based), so it
is never rejected even when two calls fall in the same millisecond: a valid baseline. Both clients
use their own key on one simulator with a fixed latency; blocks of calls alternate ABAB/BABA so
that drift on a shared machine hits both alike; the ratio is taken per adjacent pair of blocks.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import krakenex

from broker import KrakenClient
from simulator import Scenario

from .kit import Context, key_spec, running
from .report import Section, Summary, Table, Verdict

NUMBER = 2
TITLE = "Overhead of one-writer-per-key"
TARGET = "sequential calls/s through `KrakenClient` ≥ 0.9 × plain krakenex (median ratio), at 1 ms and 20 ms latency."
MIN_RATIO = 0.9
WARMUP_CALLS = 5


class CounterNonce:
    """A strictly increasing nonce for the baseline (krakenex's own ms nonce repeats within a ms)."""

    def __init__(self) -> None:
        self._next = itertools.count(time.time_ns() // 1_000)

    def __call__(self) -> int:
        return next(self._next)


def block(api: Any, calls: int) -> tuple[float, int]:
    """Calls/s over ``calls`` sequential Balance calls, and how many answers carried an error."""
    errors = 0
    t0 = time.perf_counter()
    for _ in range(calls):
        if api.query_private("Balance")["error"]:
            errors += 1
    return calls / (time.perf_counter() - t0), errors


def run(ctx: Context) -> Section:
    section = Section(NUMBER, TITLE, TARGET)
    # (latency ms, pairs, calls per block)
    plan = [(1.0, 4, 20), (20.0, 3, 5)] if ctx.quick else [(1.0, 40, 25), (20.0, 12, 10)]
    table = Table(
        [
            "latency",
            "krakenex + counter nonce, calls/s",
            "`KrakenClient`, calls/s",
            "ratio ours/baseline median (min–max)",
            "added per call (ms, from medians)",
            "rejected (baseline / ours)",
            "pairs × calls",
        ]
    )
    base_spec, ours_spec = key_spec(ctx, "overhead/baseline"), key_spec(ctx, "overhead/ours")
    scenario = Scenario(
        latency_ms=(1.0, 1.0), tier="unlimited", lockout_threshold=0, keys=[base_spec, ours_spec]
    )
    store = ctx.scratch("overhead-store")
    with running(scenario) as sim:
        for latency, pairs, calls in plan:
            sim.set_latency(latency, latency)
            baseline = krakenex.API(base_spec.key, base_spec.secret)
            baseline.uri = sim.url
            baseline._nonce = CounterNonce()
            ours = KrakenClient(ours_spec.key, ours_spec.secret, base_url=sim.url, store_dir=store)
            block(baseline, WARMUP_CALLS)  # open the keep-alive connections, warm the code paths
            block(ours, WARMUP_CALLS)
            base_rates: list[float] = []
            our_rates: list[float] = []
            ratios: list[float] = []
            base_errors = our_errors = 0
            for i in range(pairs):
                first_baseline = i % 2 == 0  # ABAB... alternating which goes first: AB BA AB ...
                order = ("baseline", "ours") if first_baseline else ("ours", "baseline")
                rates: dict[str, float] = {}
                for which in order:
                    rate, errors = block(baseline if which == "baseline" else ours, calls)
                    rates[which] = rate
                    if which == "baseline":
                        base_errors += errors
                    else:
                        our_errors += errors
                base_rates.append(rates["baseline"])
                our_rates.append(rates["ours"])
                ratios.append(rates["ours"] / rates["baseline"])
            baseline.session.close()
            ours.session.close()
            if base_errors or our_errors:
                raise RuntimeError(
                    f"at {latency:g} ms: {base_errors} baseline and {our_errors} KrakenClient calls "
                    "were answered with an error; the comparison is not valid"
                )
            ratio, b, o = Summary.of(ratios), Summary.of(base_rates), Summary.of(our_rates)
            ctx.log(f"2 latency {latency:g} ms: {b.median:.0f} vs {o.median:.0f} calls/s")
            added_ms = (1 / o.median - 1 / b.median) * 1000.0
            table.add(
                f"{latency:g} ms",
                b.fmt(0),
                o.fmt(0),
                ratio.fmt(3),
                f"{added_ms:+.2f}",
                f"{base_errors} / {our_errors}",
                f"{pairs} × {calls}",
            )
            section.verdicts.append(
                Verdict(
                    f"ratio ≥ {MIN_RATIO} at {latency:g} ms",
                    f"median {ratio.median:.3f} (min {ratio.low:.3f})",
                    ratio.median >= MIN_RATIO,
                )
            )
    section.tables.append(table)
    section.how = (
        "one in-process simulator on 127.0.0.1 with a fixed latency (latency_ms = (L, L)), two keys; "
        "sequential private `Balance` calls through `KrakenClient.query_private` (its key lock, file "
        "lock and store write on every call) vs `krakenex.API.query_private` with a strictly "
        "increasing counter nonce (never rejected; checked: any error answer voids the run). "
        f"{WARMUP_CALLS} warm-up calls each, then blocks alternating baseline/ours and ours/baseline; "
        "calls/s per block, ratio per adjacent pair; median (min–max) over the pairs. 'added per "
        "call' = 1/ours − 1/baseline from the medians."
    )
    return section
