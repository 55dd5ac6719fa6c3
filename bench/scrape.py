"""5. Scrape cost: ``GET /metrics`` latency and size with many accounts.

For each fleet size a full service (monitor + SQLite event store + metrics) runs against one
simulator with a generous poll interval, behind the headless HTTP server (the same routes
``krakenwatch up`` serves). Measuring starts once every account is connected and probed and the
first clock/system-status sample is in, so the monitor is idle while Prometheus-style sequential
scrapes (one keep-alive connection) are timed. The services for all sizes run side by side and
the repetitions interleave them.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import requests

from dashboard import events as ev
from dashboard.config import load_settings
from dashboard.routes import HeadlessServer
from dashboard.service import Service
from simulator import KeySpec, Scenario, Simulator
from simulator.environment import scenario_environment

from .kit import Context, fleet_keys, running
from .report import Section, Summary, Table, percentile

NUMBER = 5
TITLE = "Scrape cost"
TARGET = "no target; reported: `/metrics` latency (median, p99) and size with 200 accounts."
READY_TIMEOUT_S = 120.0
WARMUP_SCRAPES = 5
EXPOSITION_CALLS = 20
TOP_SAMPLE_NAMES = 8
_SAMPLE_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


@dataclass
class _Running:
    n: int
    service: Service
    url: str


@contextlib.contextmanager
def serve(ctx: Context, sim: Simulator, keys: list[KeySpec]) -> Iterator[_Running]:
    """A started service for ``keys`` behind a headless server, ready (connected, probed, clock)."""
    n = len(keys)
    workdir = ctx.scratch(f"scrape-{n}")
    empty_env_file = workdir / "empty.env"
    empty_env_file.touch()
    env = scenario_environment(Scenario(keys=keys), sim.url)
    env.update(
        {
            "KRAKENWATCH_DATA_DIR": str(workdir / "data"),
            "KRAKENWATCH_POLL_INTERVAL": "3600",
            "KRAKENWATCH_SKEW_INTERVAL": "3600",
        }
    )
    settings = load_settings(env, env_file=empty_env_file)
    if len(settings.accounts) != n or settings.config_errors:
        raise RuntimeError(f"expected {n} accounts: {settings.config_errors}")
    service = Service.create(settings)
    probed: set[str] = set()
    lock = threading.Lock()
    accounts_ready, clock_ready = threading.Event(), threading.Event()

    def listener(event: ev.Event) -> None:
        if event.kind == ev.SYSTEM_STATUS:
            clock_ready.set()
        elif event.kind == ev.PERMISSION and event.data.get("permission") == "orders":
            with lock:
                probed.add(str(event.account))
                if len(probed) == n:
                    accounts_ready.set()

    service.monitor.add_listener(listener)
    service.start()
    server: HeadlessServer | None = None
    try:
        if not accounts_ready.wait(READY_TIMEOUT_S):
            raise RuntimeError(f"only {len(probed)}/{n} accounts connected and probed in time")
        if not clock_ready.wait(READY_TIMEOUT_S):
            raise RuntimeError("the monitor's first clock/system-status sample did not arrive")
        server = HeadlessServer(service, host="127.0.0.1").start()
        yield _Running(n, service, server.url)
    finally:
        if server is not None:
            server.stop()
        service.stop()


@dataclass
class _Rep:
    median_s: float
    p99_s: float
    max_s: float
    size: int
    series: int
    #: sample name -> number of sample lines in the last body
    names: Counter[str] = field(default_factory=Counter)


def scrape_rep(session: requests.Session, url: str, scrapes: int) -> _Rep:
    latencies: list[float] = []
    body = b""
    for _ in range(scrapes):
        t0 = time.perf_counter()
        response = session.get(url + "/metrics", timeout=30)
        body = response.content
        latencies.append(time.perf_counter() - t0)
        if response.status_code != 200:
            raise RuntimeError(f"/metrics answered {response.status_code}")
    names: Counter[str] = Counter()
    for line in body.decode("utf-8").splitlines():
        if line and not line.startswith("#"):
            match = _SAMPLE_NAME.match(line)
            names[match.group(0) if match else "?"] += 1
    return _Rep(
        percentile(latencies, 50),
        percentile(latencies, 99),
        max(latencies),
        len(body),
        sum(names.values()),
        names,
    )


def exposition_time(service: Service) -> float:
    times = []
    for _ in range(EXPOSITION_CALLS):
        t0 = time.perf_counter()
        service.metrics.exposition()
        times.append(time.perf_counter() - t0)
    return percentile(times, 50)


def run(ctx: Context) -> Section:
    sizes = (1, 200) if ctx.quick else (1, 50, 200)
    scrapes = 50 if ctx.quick else 200
    section = Section(NUMBER, TITLE, TARGET)
    keysets = [fleet_keys(ctx, n, f"scrape-{n}") for n in sizes]
    scenario = Scenario(
        tier="unlimited", lockout_threshold=0, keys=[k for ks in keysets for k in ks]
    )
    reps: dict[int, list[_Rep]] = {n: [] for n in sizes}
    expo: dict[int, list[float]] = {n: [] for n in sizes}
    with running(scenario) as sim, contextlib.ExitStack() as stack:
        services = []
        for keys in keysets:
            t0 = time.perf_counter()
            services.append(stack.enter_context(serve(ctx, sim, keys)))
            ctx.log(
                f"5 service with {len(keys)} accounts ready in {time.perf_counter() - t0:.1f} s"
            )
        sessions = {s.n: stack.enter_context(requests.Session()) for s in services}
        for s in services:
            scrape_rep(sessions[s.n], s.url, WARMUP_SCRAPES)
        for rep in range(ctx.reps):
            for s in services:
                result = scrape_rep(sessions[s.n], s.url, scrapes)
                reps[s.n].append(result)
                expo[s.n].append(exposition_time(s.service))
                ctx.log(
                    f"5 rep {rep + 1}: {s.n:>3} accounts: median {result.median_s * 1000:.1f} ms, "
                    f"p99 {result.p99_s * 1000:.1f} ms, {result.size} bytes"
                )
    table = Table(
        [
            "accounts",
            "median ms",
            "p99 ms",
            "max ms",
            "size KiB",
            "series (sample lines)",
            "`exposition()` in-process, median ms",
        ]
    )
    for n in sizes:
        rs = reps[n]
        table.add(
            n,
            Summary.of([r.median_s for r in rs]).fmt(1, scale=1000),
            Summary.of([r.p99_s for r in rs]).fmt(1, scale=1000),
            f"{max(r.max_s for r in rs) * 1000:.1f}",
            f"{Summary.of([float(r.size) for r in rs]).median / 1024:.1f}",
            Summary.of([float(r.series) for r in rs]).fmt(0),
            Summary.of(expo[n]).fmt(1, scale=1000),
        )
    section.tables.append(table)
    biggest = max(sizes)
    names = reps[biggest][-1].names
    total = sum(names.values())
    breakdown = Table([f"sample name (at {biggest} accounts)", "sample lines", "share"])
    for name, count in names.most_common(TOP_SAMPLE_NAMES):
        breakdown.add(f"`{name}`", count, f"{100.0 * count / total:.0f} %")
    section.tables.append(breakdown)
    section.how = (
        "per size, `Service.create(load_settings(env))` (monitor, SQLite event store, metrics) "
        "started against one in-process simulator (no added latency, tier unlimited) with "
        "KRAKENWATCH_POLL_INTERVAL=3600 and KRAKENWATCH_SKEW_INTERVAL=3600, served by "
        "`HeadlessServer` on 127.0.0.1; timing starts after every account is connected and "
        f"permission-probed and the first clock sample is in. {scrapes} sequential `GET /metrics` "
        "on one keep-alive `requests` session per repetition (client-side time to the full body); "
        f"median and p99 per repetition, then median (min–max) over {ctx.reps} repetition(s); "
        "sizes served side by side and interleaved. `exposition()` is the registry rendering alone, "
        f"median of {EXPOSITION_CALLS} calls. No target is set for this item, so no verdict."
    )
    return section
