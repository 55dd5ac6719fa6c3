"""11. Gateway nonce race: the invalid-nonce rate of unmodified bots, direct vs through the gateway.

The race of benchmark 1, with plain krakenex (ms nonces, no lock) on one key against a strict
simulator with 0-30 ms jitter: 1 process x 8 threads and 2 processes x 4 threads, sent straight to
the simulator and through the real ``krakenwatch gateway`` process, plus a mixed fleet (krakenex
2 x 4 threads, python-kraken-sdk and ccxt 2 threads each) on one key. A fresh key per
configuration and repetition; the simulator's counters are the truth.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator import KeySpec, Scenario
from testkit.bots import run_bot_processes

from .kit import Context, gateway, key_spec, running
from .nonce_race import JITTER_MS, LAYOUTS, hammer, make_api, run_processes
from .report import Section, Summary, Table, Verdict

NUMBER = 11
TITLE = "Gateway nonce race"
TARGET = "krakenex (and the mixed fleet) through the gateway: 0 invalid-nonce rejections in every repetition; direct shown for contrast."
MIXED = "mixed: krakenex 2 × 4, python-kraken-sdk 2, ccxt 2 (threads)"
ROUTES = ("direct", "gateway")


@dataclass
class _Run:
    invalid_nonce: int
    calls: int
    other: int
    max_in_flight: int

    @property
    def rejected_pct(self) -> float:
        return 100.0 * self.invalid_nonce / self.calls


def _mixed_jobs(spec: KeySpec, url: str, calls: int) -> list[dict[str, object]]:
    bot = {"url": url, "keys": [[spec.key, spec.secret]], "calls": calls}
    return [
        {**bot, "client": "krakenex", "threads": 4},
        {**bot, "client": "krakenex", "threads": 4},
        {**bot, "client": "kraken-sdk", "threads": 2, "shared": False},
        {**bot, "client": "ccxt", "threads": 2, "shared": False},
    ]


def run(ctx: Context) -> Section:
    section = Section(NUMBER, TITLE, TARGET)
    calls = 10 if ctx.quick else 50
    layouts = {**LAYOUTS, "mixed": MIXED}
    plan = [
        (rep, layout, route) for rep in range(ctx.reps) for layout in layouts for route in ROUTES
    ]
    specs = {
        step: key_spec(
            ctx,
            f"gwrace/{step[0]}/{step[1]}/{step[2]}",
            account=None if step[2] == "direct" else f"USER:r{i:03d}",
        )
        for i, step in enumerate(plan)
    }
    scenario = Scenario(
        keys=list(specs.values()), tier="unlimited", lockout_threshold=0, latency_ms=JITTER_MS
    )
    runs: dict[tuple[str, str], list[_Run]] = {}
    with running(scenario) as sim, gateway(ctx, scenario, sim.url, "race") as gw:
        for step in plan:  # interleaved, so drift hits every configuration alike
            rep, layout, route = step
            spec = specs[step]
            url = sim.url if route == "direct" else gw.url
            if layout == "threads":
                outcomes = hammer(make_api("krakenex", spec.key, spec.secret, url, ""), 8, calls)
            elif layout == "processes":
                outcomes = run_processes(
                    "krakenex", spec.key, spec.secret, url, ctx.tmp, 2, 4, calls
                )
            else:
                outcomes = run_bot_processes(_mixed_jobs(spec, url, calls)).outcomes
            total = sum(outcomes.values())
            stats = sim.stats(spec.key)
            other = total - outcomes["ok"] - outcomes["EAPI:Invalid nonce"]
            result = _Run(stats.invalid_nonce, total, other, stats.max_concurrency)
            runs.setdefault((layout, route), []).append(result)
            ctx.log(
                f"10 rep {rep + 1}: {layout:<9} {route:<7} {result.invalid_nonce}/{total} invalid nonce"
            )
    table = Table(
        [
            "bots",
            "route",
            "calls / rep",
            "rejected % median (min–max)",
            "invalid nonces per rep",
            "other errors",
            "max in flight at Kraken",
        ]
    )
    for layout, name in layouts.items():
        for route in ROUTES:
            rs = runs[(layout, route)]
            table.add(
                name,
                "through the gateway" if route == "gateway" else "direct",
                rs[0].calls,
                Summary.of([r.rejected_pct for r in rs]).fmt(1, " %"),
                ", ".join(str(r.invalid_nonce) for r in rs),
                sum(r.other for r in rs),
                max(r.max_in_flight for r in rs),
            )
        rs = runs[(layout, "gateway")]
        section.verdicts.append(
            Verdict(
                f"{name} through the gateway: 0 invalid nonces, 0 other errors",
                f"{sum(r.invalid_nonce for r in rs)} invalid, {sum(r.other for r in rs)} other in {len(rs)} repetition(s)",
                all(r.invalid_nonce == 0 and r.other == 0 for r in rs),
            )
        )
    section.tables.append(table)
    section.how = (
        f"one in-process simulator, jitter uniform {JITTER_MS[0]:g}–{JITTER_MS[1]:g} ms, tier "
        "unlimited, lockout off; `krakenwatch gateway --no-rate-model` in its own process with an "
        f"account per gateway key; every thread makes {calls} private `Balance` calls, all threads "
        "and processes released together; plain krakenex as in benchmark 1 (one shared "
        "`krakenex.API` per process), python-kraken-sdk and ccxt with a client object per thread. "
        f"{ctx.reps} repetition(s), configurations interleaved."
    )
    return section
