"""2. Overhead of one-writer-per-key: sequential private calls/s, KrakenClient vs plain krakenex.

The baselines are ``krakenex.API`` objects whose nonce is a strictly increasing counter (µs-based),
so they are never rejected even when two calls fall in the same millisecond: valid baselines.

* The headline compares like with like: krakenex with ``session.trust_env = False``, because
  ``KrakenClient``'s session reads proxy and CA settings from the environment once per host while
  requests' default re-reads them on every request (a cost that has nothing to do with nonces).
* krakenex as shipped (``trust_env`` on) is the second row.
* ``KrakenClient(durable=False)`` beside the default shows what syncing the nonce record to disk
  (``fdatasync`` before each request leaves) costs per call.

Every configuration has its own key on one simulator with a fixed latency; in each round the four
run one block each in a rotating order, so drift on a shared machine hits all alike; ratios are
taken within a round.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import krakenex

from broker import KrakenClient
from simulator import Scenario

from .kit import Context, key_spec, running
from .report import Section, Summary, Table, Verdict

NUMBER = 2
TITLE = "Overhead of one-writer-per-key"
TARGET = (
    "one writer per key costs at most 10 %: `KrakenClient(durable=False)` ≥ 0.9 × krakenex with "
    "the same environment handling (median calls/s ratio) at 1 ms and 20 ms latency; the default "
    "`KrakenClient` (which also syncs the nonce record to disk) ≥ 0.9 × at 20 ms; the sync costs "
    "≤ 1 ms per call."
)
MIN_RATIO = 0.9
MAX_SYNC_MS = 1.0
WARMUP_CALLS = 5
#: configuration -> what the table calls it
NAMES = {
    "like": "krakenex, `trust_env` off",
    "shipped": "krakenex as shipped",
    "ours": "`KrakenClient`",
    "fast": "`KrakenClient(durable=False)`",
}


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


def _krakenex(key: str, secret: str, url: str, *, trust_env: bool) -> Any:
    api = krakenex.API(key, secret)
    api.uri = url
    api._nonce = CounterNonce()
    api.session.trust_env = trust_env
    return api


def run(ctx: Context) -> Section:
    section = Section(NUMBER, TITLE, TARGET)
    # (latency ms, rounds, calls per block)
    plan = [(1.0, 4, 20), (20.0, 2, 5)] if ctx.quick else [(1.0, 40, 25), (20.0, 12, 10)]
    table = Table(
        [
            "latency",
            *(f"{NAMES[c]}, calls/s" for c in NAMES),
            "ours / like-for-like (headline)",
            "durable=False / like-for-like",
            "ours / as shipped",
            "sync cost per call, ms (ours − durable=False)",
            "rounds × calls",
        ]
    )
    specs = {name: key_spec(ctx, f"overhead/{name}") for name in NAMES}
    scenario = Scenario(
        latency_ms=(1.0, 1.0), tier="unlimited", lockout_threshold=0, keys=list(specs.values())
    )
    store = ctx.scratch("overhead-store")
    with running(scenario) as sim:
        for latency, rounds, calls in plan:
            sim.set_latency(latency, latency)
            make: dict[str, Callable[[], Any]] = {
                "like": lambda: _krakenex(
                    specs["like"].key, specs["like"].secret, sim.url, trust_env=False
                ),
                "shipped": lambda: _krakenex(
                    specs["shipped"].key, specs["shipped"].secret, sim.url, trust_env=True
                ),
                "ours": lambda: KrakenClient(
                    specs["ours"].key, specs["ours"].secret, base_url=sim.url, store_dir=store
                ),
                "fast": lambda: KrakenClient(
                    specs["fast"].key,
                    specs["fast"].secret,
                    base_url=sim.url,
                    store_dir=store,
                    durable=False,
                ),
            }
            clients = {name: factory() for name, factory in make.items()}
            for api in clients.values():
                block(api, WARMUP_CALLS)  # open the keep-alive connections, warm the code paths
            rates: dict[str, list[float]] = {name: [] for name in NAMES}
            like, unsynced, shipped, sync_ms = [], [], [], []
            errors = 0
            order = list(NAMES)
            for i in range(rounds):
                round_rates: dict[str, float] = {}
                for name in order[i % 4 :] + order[: i % 4]:  # rotate who goes first
                    rate, failed = block(clients[name], calls)
                    round_rates[name] = rate
                    errors += failed
                for name, rate in round_rates.items():
                    rates[name].append(rate)
                like.append(round_rates["ours"] / round_rates["like"])
                unsynced.append(round_rates["fast"] / round_rates["like"])
                shipped.append(round_rates["ours"] / round_rates["shipped"])
                sync_ms.append((1 / round_rates["ours"] - 1 / round_rates["fast"]) * 1000.0)
            for api in clients.values():
                api.session.close()
            if errors:
                raise RuntimeError(
                    f"at {latency:g} ms: {errors} calls were answered with an error; the "
                    "comparison is not valid"
                )
            headline, second, sync = Summary.of(like), Summary.of(shipped), Summary.of(sync_ms)
            writer = Summary.of(unsynced)
            ctx.log(
                f"2 latency {latency:g} ms: ours/like {headline.median:.3f}, sync {sync.median:+.3f} ms"
            )
            table.add(
                f"{latency:g} ms",
                *(Summary.of(rates[name]).fmt(0) for name in NAMES),
                headline.fmt(3),
                writer.fmt(3),
                second.fmt(3),
                sync.fmt(3),
                f"{rounds} × {calls}",
            )
            section.verdicts.append(
                Verdict(
                    f"one writer per key: durable=False / like-for-like ≥ {MIN_RATIO} at {latency:g} ms",
                    f"median {writer.median:.3f} (min {writer.low:.3f})",
                    writer.median >= MIN_RATIO,
                )
            )
            if latency >= 20:
                section.verdicts.append(
                    Verdict(
                        f"default `KrakenClient` / like-for-like ≥ {MIN_RATIO} at {latency:g} ms",
                        f"median {headline.median:.3f} (min {headline.low:.3f})",
                        headline.median >= MIN_RATIO,
                    )
                )
            section.verdicts.append(
                Verdict(
                    f"sync cost ≤ {MAX_SYNC_MS:g} ms per call at {latency:g} ms",
                    f"median {sync.median:.3f} ms",
                    sync.median <= MAX_SYNC_MS,
                )
            )
    section.tables.append(table)
    section.how = (
        "one in-process simulator on 127.0.0.1 with a fixed latency (latency_ms = (L, L)), one key "
        "per configuration; sequential private `Balance` calls through `query_private`. "
        "`KrakenClient` takes its key lock, the host-wide and data-directory record locks and "
        "writes (and, by default, `fdatasync`s) the record on every call; the krakenex baselines "
        "use a strictly increasing counter nonce (never rejected; any error answer voids the run). "
        f"{WARMUP_CALLS} warm-up calls each, then rounds in which every configuration runs one "
        "block, in a rotating order; calls/s per block, ratios and the sync cost (1/ours − "
        "1/durable=False) within a round; median (min–max) over the rounds."
    )
    return section
