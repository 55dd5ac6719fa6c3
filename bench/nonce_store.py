"""8. The Redis nonce store: what it costs per call, and what it buys across hosts.

* Overhead: sequential private calls through ``KrakenClient`` with the file store vs the Redis
  store (a local ``redis-server``) vs Redis through Sentinel (a primary, a replica, three
  Sentinels; each write waits for the replica), side by side in rounds that alternate the order.
* The multi-host race: three "hosts" (processes with their own data and runtime directories, so
  they share no file) × 4 threads on one key against the simulator with 0-30 ms jitter; rejected
  % with each host's file store vs one shared Redis.
"""

from __future__ import annotations

from broker import KrakenClient
from simulator import Scenario
from testkit.redis import redis_server
from testkit.sentinel import sentinel_group
from testkit.workers import run_workers

from .kit import Context, key_spec, running
from .overhead import block
from .report import Section, Summary, Table, Verdict

NUMBER = 8
TITLE = "Redis nonce store"
TARGET = (
    "three hosts sharing one Redis: 0 invalid nonces in every repetition (the file store across "
    "hosts, the baseline, is rejected); the Redis store adds ≤ 2 ms per call on a local Redis."
)
MAX_ADDED_MS = 2.0
HOSTS, THREADS = 3, 4


#: the stores side by side in the overhead rounds: (name, column title)
STORES = (("file", "file store"), ("redis", "Redis store"), ("sentinel", "Sentinel, replicas=1"))


def _overhead(ctx: Context, urls: dict[str, str], section: Section) -> None:
    rounds, calls = (3, 10) if ctx.quick else (20, 25)
    specs = {name: key_spec(ctx, f"store/{name}") for name, _ in STORES}
    scenario = Scenario(
        latency_ms=(1.0, 1.0), tier="unlimited", lockout_threshold=0, keys=list(specs.values())
    )
    store = ctx.scratch("store-overhead")
    with running(scenario) as sim:
        clients = {
            name: KrakenClient(
                spec.key, spec.secret, base_url=sim.url, store_dir=store, nonce_store=urls[name]
            )
            for name, spec in specs.items()
        }
        for api in clients.values():
            block(api, 5)
        rates: dict[str, list[float]] = {name: [] for name in specs}
        added: dict[str, list[float]] = {"redis": [], "sentinel": []}
        for i in range(rounds):
            order = list(specs) if i % 2 == 0 else list(reversed(specs))
            got = {name: block(clients[name], calls)[0] for name in order}
            for name, rate in got.items():
                rates[name].append(rate)
            for name in added:
                added[name].append((1 / got[name] - 1 / got["file"]) * 1000.0)
        for api in clients.values():
            api.session.close()
    table = Table(
        [
            *(f"{title}, calls/s" for _, title in STORES),
            "added per call by Redis, ms",
            "added by Sentinel + WAIT, ms",
            "rounds × calls",
        ]
    )
    table.add(
        *(Summary.of(rates[name]).fmt(0) for name, _ in STORES),
        Summary.of(added["redis"]).fmt(3),
        Summary.of(added["sentinel"]).fmt(3),
        f"{rounds} × {calls}",
    )
    section.tables.append(table)
    for name, what in (("redis", "Redis"), ("sentinel", "Redis through Sentinel (replicas=1)")):
        extra = Summary.of(added[name])
        section.verdicts.append(
            Verdict(
                f"{what} adds ≤ {MAX_ADDED_MS:g} ms per call",
                f"median {extra.median:.3f} ms",
                extra.median <= MAX_ADDED_MS,
            )
        )


def _race(ctx: Context, url: str, section: Section) -> None:
    calls = 5 if ctx.quick else 25
    table = Table(
        [
            "store",
            "layout",
            "calls / rep",
            "rejected % median (min–max)",
            "invalid nonces per rep",
            "max in flight",
        ]
    )
    for store in ("file", "redis"):
        rejected, counts, flights = [], [], []
        for rep in range(ctx.reps):
            spec = key_spec(ctx, f"store-race/{store}/{rep}")
            scenario = Scenario(
                latency_ms=(0.0, 30.0), tier="unlimited", lockout_threshold=0, keys=[spec]
            )
            work = ctx.scratch(f"store-race-{store}-{rep}")
            hosts = []
            for i in range(HOSTS):
                host = work / f"host-{i}"
                host.mkdir(mode=0o700)
                hosts.append(host)
            with running(scenario) as sim:
                run_workers(
                    sim.url, spec.key, spec.secret, [work / f"data-{i}" for i in range(HOSTS)],
                    calls=calls, threads=THREADS, hosts=hosts,
                    env={"KRAKENWATCH_NONCE_STORE": url if store == "redis" else "file"},
                )  # fmt: skip
                stats = sim.stats(spec.key)
            total = HOSTS * THREADS * calls
            rejected.append(100.0 * stats.invalid_nonce / total)
            counts.append(stats.invalid_nonce)
            flights.append(stats.max_concurrency)
        ctx.log(f"8 race {store}: {Summary.of(rejected).median:.1f} % rejected")
        table.add(
            "file store per host (baseline)" if store == "file" else "one shared Redis",
            f"{HOSTS} hosts × {THREADS} threads",
            HOSTS * THREADS * calls,
            Summary.of(rejected).fmt(1, " %"),
            ", ".join(map(str, counts)),
            max(flights),
        )
        if store == "redis":
            section.verdicts.append(
                Verdict(
                    "Redis: 0 invalid nonces in every repetition",
                    f"{sum(counts)} in {ctx.reps} repetition(s) ({', '.join(map(str, counts))})",
                    sum(counts) == 0,
                )
            )
    section.tables.append(table)


def run(ctx: Context) -> Section:
    section = Section(NUMBER, TITLE, TARGET)
    with (
        redis_server(ctx.scratch("redis")) as server,
        sentinel_group(ctx.scratch("sentinel")) as group,
    ):
        urls = {"file": "file", "redis": server.url, "sentinel": group.spec()}
        _overhead(ctx, urls, section)
        _race(ctx, server.url, section)
    section.how = (
        "a local `redis-server` (Debian's package, no persistence, 127.0.0.1) and in-process "
        "simulators; for Sentinel a primary, a replica and three Sentinels on 127.0.0.1, every write "
        "waiting for the replica (`WAIT 1`). Overhead: one key per store, 1 ms fixed latency, "
        "sequential `Balance` calls "
        "through `query_private`, 5 warm-up calls, then rounds alternating which store goes first; "
        "'added' = 1/redis − 1/file per round. Race: 3 worker processes, each with its own data "
        "directory and `XDG_RUNTIME_DIR` (so no file is shared, as on three hosts), 4 threads each, "
        "latency jitter 0–30 ms, a fresh key per repetition; the store is chosen only through "
        "`KRAKENWATCH_NONCE_STORE` in the workers' environment."
    )
    return section
