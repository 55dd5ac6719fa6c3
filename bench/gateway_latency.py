"""9. Gateway added latency: sequential private calls through the gateway vs straight to Kraken.

Three processes, as in production: the simulator (no simulated latency), the real ``krakenwatch
gateway`` in front of it, and the client (krakenex with a strictly increasing counter nonce, so a
direct call is never rejected). Blocks of sequential ``Balance`` calls alternate direct / through
the gateway (ABBA...), so drift on a shared machine hits both alike; every call is timed. Per
repetition the percentiles of each side are taken over all its calls; the added latency is the
gateway's percentile minus the direct one.

What the gateway adds per call: one more HTTP hop (uvicorn), the signature check, the lane's
hand-over to a worker thread, and ``KrakenClient.forward_private`` (the nonce store's file lock and
its fdatasync of the high-water mark before the request leaves, then the upstream request).
"""

from __future__ import annotations

import time
from typing import Any

import krakenex

from broker import KrakenClient
from simulator import Scenario

from .kit import Context, external_simulator, gateway, key_spec
from .overhead import CounterNonce
from .report import Section, Summary, Table, Verdict, percentile

NUMBER = 9
TITLE = "Gateway added latency"
TARGET = "added latency of the gateway vs calling the simulator directly (0 ms latency): p50 < 1 ms, p99 < 5 ms (median over repetitions)."
MAX_P50_MS = 1.0
MAX_P99_MS = 5.0
WARMUP = 50


def timed_calls(api: Any, calls: int) -> list[float]:
    """Seconds per sequential ``Balance`` call; any error answer voids the run."""
    out: list[float] = []
    for _ in range(calls):
        t0 = time.perf_counter()
        errors = api.query_private("Balance", timeout=30)["error"]
        out.append(time.perf_counter() - t0)
        if errors:
            raise RuntimeError(f"an error answer ({errors}) voids the latency comparison")
    return out


def client(key: str, secret: str, url: str) -> Any:
    api = krakenex.API(key, secret)
    api.uri = url
    api._nonce = CounterNonce()
    return api


SIDES = ("direct", "client", "gateway")


def run(ctx: Context) -> Section:
    section = Section(NUMBER, TITLE, TARGET)
    pairs, calls = (2, 50) if ctx.quick else (10, 200)
    # a key for each side: the gateway's nonces (µs, from the clock) would overtake the counter's
    keys = {
        "direct": key_spec(ctx, "latency/direct"),
        "client": key_spec(ctx, "latency/client"),
        "gateway": key_spec(ctx, "latency/gateway", account="MASTER"),
    }
    scenario = Scenario(
        keys=list(keys.values()), tier="unlimited", lockout_threshold=0, latency_ms=(0.0, 0.0)
    )
    table = Table(
        [
            "repetition",
            "direct krakenex p50 / p99 (ms)",
            "`KrakenClient` direct p50 / p99 (ms)",
            "krakenex through the gateway p50 / p99 (ms)",
            "added p50 (ms)",
            "added p99 (ms)",
            "of which `KrakenClient` p50 (ms)",
            "calls per side",
        ]
    )
    added: dict[int, list[float]] = {50: [], 99: []}
    with (
        external_simulator(ctx, scenario, "gateway-latency") as url,
        gateway(ctx, scenario, url, "latency") as gw,
    ):
        apis = {
            "direct": client(keys["direct"].key, keys["direct"].secret, url),
            "client": KrakenClient(
                keys["client"].key,
                keys["client"].secret,
                base_url=url,
                store_dir=ctx.scratch("latency-store"),
            ),
            "gateway": client(keys["gateway"].key, keys["gateway"].secret, gw.url),
        }
        for api in apis.values():
            timed_calls(api, WARMUP)  # connections open, code paths warm
        for rep in range(ctx.reps):
            seen: dict[str, list[float]] = {side: [] for side in SIDES}
            for i in range(pairs):
                for side in SIDES if i % 2 == 0 else reversed(SIDES):
                    seen[side] += timed_calls(apis[side], calls)
            p = {(side, q): percentile(seen[side], q) * 1000 for side in SIDES for q in (50, 99)}
            for q in (50, 99):
                added[q].append(p["gateway", q] - p["direct", q])
            table.add(
                rep + 1,
                *(f"{p[side, 50]:.3f} / {p[side, 99]:.3f}" for side in SIDES),
                f"{added[50][-1]:+.3f}",
                f"{added[99][-1]:+.3f}",
                f"{p['client', 50] - p['direct', 50]:+.3f}",
                pairs * calls,
            )
            ctx.log(
                f"8 rep {rep + 1}: added p50 {added[50][-1]:+.3f} ms, p99 {added[99][-1]:+.3f} ms"
            )
    a50, a99 = Summary.of(added[50]), Summary.of(added[99])
    table.add("median (min–max)", "", "", "", a50.fmt(3), a99.fmt(3), "", "")
    section.tables.append(table)
    section.verdicts += [
        Verdict(f"added p50 < {MAX_P50_MS:g} ms", a50.fmt(3, " ms"), a50.median < MAX_P50_MS),
        Verdict(f"added p99 < {MAX_P99_MS:g} ms", a99.fmt(3, " ms"), a99.median < MAX_P99_MS),
    ]
    section.notes.append(
        "'of which `KrakenClient`' is what signing through `KrakenClient.forward_private` costs by "
        "itself (its file locks and the fdatasync of the nonce high-water mark before each "
        "request leaves), measured by calling the simulator directly with it; the rest of the "
        "added latency is the extra HTTP hop (uvicorn, Starlette), the signature check and the "
        "hand-over to the key's worker thread."
    )
    section.how = (
        "the simulator in its own process (latency 0), `krakenwatch gateway --no-rate-model` in "
        "its own process, the clients in the bench process, all on 127.0.0.1 with keep-alive: "
        "krakenex with a counter nonce straight to the simulator, `KrakenClient` (durable store) "
        "straight to the simulator, and krakenex through the gateway, each on its own key; "
        f"{WARMUP} warm-up calls per side, then per repetition {pairs} rounds of {calls} "
        "sequential `Balance` calls per side, alternating the order; percentiles over every call "
        "of a side in the repetition; added = gateway − direct krakenex."
    )
    return section
