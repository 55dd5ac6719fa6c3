"""5. Scrape cost: ``GET /metrics`` of a real ``krakenwatch up`` with 50, 200 and 1,000 accounts.

For each fleet size, one simulator in its own process and one ``krakenwatch up`` subprocess (the
Streamlit server, the monitor polling with its default settings, the event store), measured one
size at a time. Once every required check passes, a browser opens the overview once (so the pages'
code is loaded, as after a deploy), then Prometheus-style sequential scrapes on one keep-alive
connection that accepts gzip are timed while the monitor keeps polling. Resident memory is read
from ``/proc`` after the scrapes.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field

import requests

from simulator import Scenario, scenario_environment
from testkit.procs import rss_mib, up_process

from .kit import Context, external_simulator, fleet_keys, open_overview
from .report import Section, Summary, Table, Verdict, percentile

NUMBER = 5
TITLE = "Scrape cost"
TARGET = (
    "`GET /metrics` of `krakenwatch up` with 200 accounts connected: median < 20 ms, p99 < 40 ms; "
    "resident memory of `up` < 300 MB at 200 accounts; reported at 50 and 1,000 accounts too."
)
SIZE, MEDIAN_MS, P99_MS, RSS_MB = 200, 20.0, 40.0, 300.0
WARMUP_SCRAPES = 5
TOP_SAMPLE_NAMES = 8
_SAMPLE_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


@dataclass
class _Rep:
    median_s: float
    p99_s: float
    max_s: float
    size: int
    gzip_size: int
    series: int
    #: sample name -> number of sample lines in the last body
    names: Counter[str] = field(default_factory=Counter)


@dataclass
class _Size:
    n: int
    ready_s: float
    reps: list[_Rep]
    rss_ready_mib: float
    rss_mib: float


def scrape_rep(session: requests.Session, url: str, scrapes: int) -> _Rep:
    latencies: list[float] = []
    response = None
    for _ in range(scrapes):
        t0 = time.perf_counter()
        response = session.get(url + "/metrics", timeout=30)
        latencies.append(time.perf_counter() - t0)
        if response.status_code != 200:
            raise RuntimeError(f"/metrics answered {response.status_code}")
    assert response is not None
    body = response.content
    names: Counter[str] = Counter()
    for line in body.decode("utf-8").splitlines():
        if line and not line.startswith("#"):
            match = _SAMPLE_NAME.match(line)
            names[match.group(0) if match else "?"] += 1
    wire = int(response.headers.get("Content-Length", len(body)))  # gzipped when it was
    return _Rep(
        percentile(latencies, 50),
        percentile(latencies, 99),
        max(latencies),
        len(body),
        wire,
        sum(names.values()),
        names,
    )


def measure_size(ctx: Context, n: int, scrapes: int) -> _Size:
    keys = fleet_keys(ctx, n, f"scrape-{n}")
    workdir = ctx.scratch(f"scrape-{n}")
    scenario = Scenario(keys=keys, tier="unlimited", lockout_threshold=0)
    with external_simulator(ctx, scenario, f"scrape-{n}") as sim_url:
        env = {
            **scenario_environment(scenario, sim_url),
            "KRAKENWATCH_DATA_DIR": str(workdir / "data"),
        }
        t0 = time.perf_counter()
        with up_process(env, workdir) as up:
            up.wait_verified(n, timeout=600)
            ready = time.perf_counter() - t0
            rss_ready = rss_mib(up.proc.pid)
            open_overview(up.url, 1)  # the pages' code is loaded, as after a deploy
            reps = []
            with requests.Session() as session:  # keep-alive, Accept-Encoding: gzip
                scrape_rep(session, up.url, WARMUP_SCRAPES)
                for rep in range(ctx.reps):
                    result = scrape_rep(session, up.url, scrapes)
                    reps.append(result)
                    ctx.log(
                        f"5 {n:>4} accounts, rep {rep + 1}: median {result.median_s * 1000:.1f} ms, "
                        f"p99 {result.p99_s * 1000:.1f} ms, {result.series} series, "
                        f"{result.size} bytes ({result.gzip_size} gzipped)"
                    )
            return _Size(n, ready, reps, rss_ready, rss_mib(up.proc.pid))


def run(ctx: Context) -> Section:
    sizes = (50, SIZE) if ctx.quick else (50, SIZE, 1000)
    scrapes = 50 if ctx.quick else 300
    section = Section(NUMBER, TITLE, TARGET)
    measured = {}
    for n in sizes:
        measured[n] = measure_size(ctx, n, scrapes)
        ctx.log(
            f"5 {n:>4} accounts: ready in {measured[n].ready_s:.1f} s, {measured[n].rss_mib:.0f} MiB"
        )
    table = Table(
        [
            "accounts",
            "median ms",
            "p99 ms",
            "max ms",
            "series (sample lines)",
            "size KiB (gzipped on the wire)",
            "RSS of `up` when verified → after the overview and the scrapes, MB",
        ]
    )
    for n, m in measured.items():
        rs = m.reps
        table.add(
            n,
            Summary.of([r.median_s for r in rs]).fmt(1, scale=1000),
            Summary.of([r.p99_s for r in rs]).fmt(1, scale=1000),
            f"{max(r.max_s for r in rs) * 1000:.1f}",
            f"{rs[-1].series}",
            f"{rs[-1].size / 1024:.0f} ({rs[-1].gzip_size / 1024:.0f})",
            f"{m.rss_ready_mib * 1.048576:.0f} → {m.rss_mib * 1.048576:.0f}",
        )
    section.tables.append(table)
    names = measured[SIZE].reps[-1].names
    total = sum(names.values())
    breakdown = Table([f"sample name (at {SIZE} accounts)", "sample lines", "share"])
    for name, count in names.most_common(TOP_SAMPLE_NAMES):
        breakdown.add(f"`{name}`", count, f"{100.0 * count / total:.0f} %")
    section.tables.append(breakdown)

    at = measured[SIZE]
    median_ms = Summary.of([r.median_s for r in at.reps]).median * 1000
    p99_ms = Summary.of([r.p99_s for r in at.reps]).median * 1000
    rss_mb = at.rss_mib * 1.048576
    section.verdicts += [
        Verdict(
            f"median < {MEDIAN_MS:g} ms at {SIZE} accounts",
            f"{median_ms:.1f} ms",
            median_ms < MEDIAN_MS,
        ),
        Verdict(f"p99 < {P99_MS:g} ms at {SIZE} accounts", f"{p99_ms:.1f} ms", p99_ms < P99_MS),
        Verdict(
            f"resident memory of `up` < {RSS_MB:g} MB at {SIZE} accounts",
            f"{rss_mb:.0f} MB ({at.rss_mib:.0f} MiB)",
            rss_mb < RSS_MB,
        ),
    ]
    section.how = (
        "per size, one simulator in its own process (no added latency, tier unlimited) and one "
        "`krakenwatch up` subprocess (defaults: Balance poll every 30 s per account, clock every "
        "300 s; the monitor keeps polling during the scrapes), measured one size at a time. Once "
        "`/api/verify` says every required check passes, headless Chromium opens the overview "
        f"once; then {WARMUP_SCRAPES} warm-up and {scrapes} timed sequential `GET /metrics` on one "
        "keep-alive `requests` session (`Accept-Encoding: gzip`, as Prometheus), client-side time "
        f"to the full body; median and p99 per repetition, then median (min–max) over {ctx.reps} "
        "repetition(s). Series = sample lines of the last body; size = its bytes, and on the wire. "
        "RSS = VmRSS of the `up` process (MB = 10^6 bytes) when first verified, and after the "
        "overview and the scrapes."
    )
    return section
