"""1. Nonce race: the invalid-nonce rate on one key under concurrency.

Configurations (each on its own fresh key of one strict simulator: 0-30 ms jitter, tier unlimited,
lockout off):

* (a) plain krakenex: its ms nonce ``int(1000*time.time())``, one shared ``krakenex.API``;
* (b) the seed's generator (µs, lock on generation only) installed on one shared ``krakenex.API``;
* (c) one :class:`broker.KrakenClient` (one writer per key; the store coordinates processes).

Layouts: one process x 8 threads, and 2 processes x 4 threads on the same key (each process has
its own krakenex object / seed generator, as in reality; (c) shares a store directory). Every thread
makes ``calls`` private ``Balance`` calls; the simulator's own counters are the truth.

Run as ``python -m bench.nonce_race`` this module is the worker of one process in the 2-process
layout (a JSON job on stdin, "ready" on stdout, waits for "go", prints the outcomes as JSON).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import krakenex
import requests

from broker import KrakenClient
from simulator import Scenario, Simulator
from testkit.release import released_threads, run_released, serve_released
from testkit.seed import SeedNonceGenerator

from .kit import Context, key_spec, running
from .report import Section, Summary, Table, Verdict

NUMBER = 1
TITLE = "Nonce race"
TARGET = "(c) `KrakenClient`: 0 invalid-nonce rejections in every repetition, in both layouts."

CONFIGS = {
    "krakenex": "(a) plain krakenex (ms nonce)",
    "seed": "(b) seed generator (µs, lock on generation only)",
    "client": "(c) `KrakenClient`",
}
JITTER_MS = (0.0, 30.0)
WORKER_TIMEOUT_S = 300.0


def make_api(config: str, key: str, secret: str, url: str, store: str) -> Any:
    """The client object one process uses for the key in ``config``."""
    if config == "client":
        return KrakenClient(key, secret, base_url=url, store_dir=store, timeout=30.0)
    api = krakenex.API(key, secret)
    api.uri = url
    if config == "seed":
        SeedNonceGenerator().install(api)  # installs and refreshes, as the seed's connect() does
    elif config != "krakenex":
        raise ValueError(f"unknown configuration {config!r}")
    return api


def hammer(
    api: Any, threads: int, calls: int, before_go: Callable[[], None] | None = None
) -> Counter[str]:
    """``threads`` threads x ``calls`` Balance calls on ``api``, released together; outcomes."""

    def call() -> str:
        try:
            errors = api.query_private("Balance", timeout=30)["error"]
        except requests.RequestException as exc:
            return type(exc).__name__
        return str(errors[0]) if errors else "ok"

    return released_threads([call] * threads, calls, before_go)


def run_processes(
    config: str, key: str, secret: str, url: str, store: Path, procs: int, threads: int, calls: int
) -> Counter[str]:
    """``procs`` worker processes on one key, released together once all are ready."""
    job = {
        "config": config,
        "key": key,
        "secret": secret,
        "url": url,
        "store": str(store),
        "threads": threads,
        "calls": calls,
    }
    total: Counter[str] = Counter()
    for outcomes in run_released("bench.nonce_race", [job] * procs, WORKER_TIMEOUT_S):
        total.update(outcomes)
    return total


def _work(job: dict[str, Any], ready_then_wait: Callable[[], None]) -> dict[str, int]:
    """One process of the 2-process layout (see the module docstring)."""
    api = make_api(job["config"], job["key"], job["secret"], job["url"], job["store"])
    return dict(hammer(api, int(job["threads"]), int(job["calls"]), ready_then_wait))


@dataclass
class _Run:
    invalid_nonce: int
    requests: int
    expected: int
    other: int
    max_in_flight: int
    seconds: float

    @property
    def rejected_pct(self) -> float:
        return 100.0 * self.invalid_nonce / self.expected


def _one(
    ctx: Context, sim: Simulator, config: str, layout: str, rep: int, threads: int, calls: int
) -> _Run:
    spec = key_spec(ctx, f"race/{config}/{layout}/{rep}")
    sim.add_key(spec)
    store = ctx.scratch(f"race-{config}-{layout}-{rep}")
    t0 = time.perf_counter()
    if layout == "threads":
        api = make_api(config, spec.key, spec.secret, sim.url, str(store))
        outcomes = hammer(api, threads, calls)
        expected = threads * calls
    else:
        half = threads // 2
        outcomes = run_processes(config, spec.key, spec.secret, sim.url, store, 2, half, calls)
        expected = 2 * half * calls
    seconds = time.perf_counter() - t0
    stats = sim.stats(spec.key)
    other = sum(n for outcome, n in outcomes.items() if outcome not in ("ok", "EAPI:Invalid nonce"))
    if sum(outcomes.values()) != expected:
        raise RuntimeError(f"{config}/{layout}: {sum(outcomes.values())} outcomes for {expected}")
    return _Run(
        stats.invalid_nonce, stats.requests, expected, other, stats.max_concurrency, seconds
    )


LAYOUTS = {"threads": "1 process × 8 threads", "processes": "2 processes × 4 threads"}


def run(ctx: Context) -> Section:
    threads, calls = 8, (10 if ctx.quick else 50)
    section = Section(NUMBER, TITLE, TARGET)
    plan = [(config, layout) for layout in LAYOUTS for config in CONFIGS]
    runs: dict[tuple[str, str], list[_Run]] = {p: [] for p in plan}
    scenario = Scenario(latency_ms=JITTER_MS, tier="unlimited", lockout_threshold=0)
    with running(scenario) as sim:
        for rep in range(ctx.reps):
            for config, layout in plan:  # interleaved, so drift hits every configuration alike
                result = _one(ctx, sim, config, layout, rep, threads, calls)
                ctx.log(
                    f"1 rep {rep + 1}: {config:<8} {layout:<9} "
                    f"{result.invalid_nonce}/{result.expected} invalid nonce ({result.seconds:.1f} s)"
                )
                runs[(config, layout)].append(result)

    table = Table(
        [
            "configuration",
            "layout",
            "calls / rep",
            "rejected % median (min–max)",
            "invalid nonces per rep",
            "other errors",
            "max in flight",
            "s / rep (median)",
        ]
    )
    for config, layout in plan:
        rs = runs[(config, layout)]
        table.add(
            CONFIGS[config],
            LAYOUTS[layout],
            rs[0].expected,
            Summary.of([r.rejected_pct for r in rs]).fmt(1, " %"),
            ", ".join(str(r.invalid_nonce) for r in rs),
            sum(r.other for r in rs),
            max(r.max_in_flight for r in rs),
            f"{Summary.of([r.seconds for r in rs]).median:.1f}",
        )
    section.tables.append(table)
    for layout, name in LAYOUTS.items():
        rs = runs[("client", layout)]
        counts = [r.invalid_nonce for r in rs]
        section.verdicts.append(
            Verdict(
                f"(c) {name}: 0 invalid nonces in every repetition",
                f"{sum(counts)} in {len(rs)} repetition(s) ({', '.join(map(str, counts))})",
                all(c == 0 for c in counts) and all(r.other == 0 for r in rs),
            )
        )
    if any(r.max_in_flight > 1 for layout in LAYOUTS for r in runs[("client", layout)]):
        section.notes.append(
            "(c) shows 'max in flight' above 1 although every nonce was accepted: the simulator "
            "counts a request as in flight until after it has written the answer, so the next "
            "request (sent as soon as the answer arrives) can be counted while the previous "
            "handler is still leaving; not an overlap on the wire."
        )
    section.how = (
        f"one in-process simulator on 127.0.0.1, latency jitter uniform {JITTER_MS[0]:g}–"
        f"{JITTER_MS[1]:g} ms per request, tier unlimited, lockout off; a fresh key per "
        f"configuration and repetition; every thread makes {calls} private `Balance` calls, all "
        "threads (and both processes) released together. Rejections are the simulator's "
        "`EAPI:Invalid nonce` count for the key / calls made; 'max in flight' is the simulator's "
        "peak concurrency on the key. 2-process layout: two `python -m bench.nonce_race` workers, "
        "each with its own krakenex object and (for b) its own seed generator; (c) shares one "
        f"nonce store directory. {ctx.reps} repetition(s), configurations interleaved."
    )
    return section


if __name__ == "__main__":
    sys.exit(serve_released(_work))
