"""6. Dashboard cost: page run time, time to a visible overview, resident memory.

* Server-side run time of the overview and timeline pages (AppTest, the real page scripts) for a
  monitored fleet of 50 accounts with 10,000 events in the store, next to a small fleet (3
  accounts, the events the monitor wrote itself) measured in the same run.
* Time from ``page.goto`` until the overview's verdict is visible in headless Chromium, against a
  real ``krakenwatch up`` with 50 accounts, next to 3 accounts.
* Resident memory (VmRSS) of a ``krakenwatch up`` process with 20 accounts polling every 5 s: at
  1 minute and after 10 minutes (quick mode: at 5 s and 15 s).
"""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from streamlit.testing.v1 import AppTest

from dashboard.config import load_settings
from dashboard.monitor import events as ev
from dashboard.web.service import Service
from dashboard.web.streamlit_app import set_service
from simulator import KeySpec, Scenario, scenario_environment
from testkit.procs import rss_mib, up_process

from .kit import ROOT, Context, external_simulator, fleet_keys, open_overview
from .report import Section, Summary, Table

NUMBER = 6
TITLE = "Dashboard cost"
TARGET = "no target; reported: page run time, time to a visible overview, resident memory."
PAGES = ROOT / "dashboard" / "ui" / "screens"


def _fleet_env(
    ctx: Context, url: str, keys: list[KeySpec], workdir: Path, poll: str
) -> dict[str, str]:
    return {
        **scenario_environment(Scenario(keys=keys), url),
        "KRAKENWATCH_DATA_DIR": str(workdir / "data"),
        "KRAKENWATCH_POLL_INTERVAL": poll,
        "KRAKENWATCH_TIER": "pro",
    }


@contextlib.contextmanager
def _service(ctx: Context, n: int, events: int) -> Iterator[Service]:
    keys = fleet_keys(ctx, n, f"dash-{n}")
    workdir = ctx.scratch(f"dash-{n}")
    with external_simulator(
        ctx, Scenario(keys=keys, tier="unlimited", lockout_threshold=0), f"dash-{n}"
    ) as url:
        empty = workdir / "empty.env"
        empty.touch()
        service = Service.create(
            load_settings(_fleet_env(ctx, url, keys, workdir, "30"), env_file=empty)
        )
        connected: set[str] = set()
        ready = threading.Event()

        def listener(event: ev.Event) -> None:
            if event.kind == ev.PERMISSION and event.data.get("permission") == "orders":
                connected.add(str(event.account))
                if len(connected) == n:
                    ready.set()

        service.monitor.add_listener(listener)
        service.start()
        try:
            if not ready.wait(120):
                raise RuntimeError(f"{n} accounts did not connect")
            assert service.store is not None
            now = time.time()
            states = ["connecting", "connected", "degraded", "connected", "disconnected"]
            service.store.append_many(
                ev.Event(
                    ev.STATE,
                    f"USER:u{1 + i % (n - 1):03d}" if n > 1 else "MASTER",
                    "synthetic",
                    {"state": states[i % 5], "reason": "synthetic"},
                    ts=now - 3000 + i * 0.25,
                )
                for i in range(events)
            )
            yield service
        finally:
            service.stop()


def _page_times(page: str, reps: int) -> list[float]:
    times = []
    for _ in range(reps):
        at = AppTest.from_file(str(PAGES / page), default_timeout=120)
        t0 = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t0)
        if at.exception:
            raise RuntimeError(f"{page} raised: {at.exception[0].value}")
    return times


def _visible_times(ctx: Context, n: int, reps: int) -> list[float]:
    keys = fleet_keys(ctx, n, f"browser-{n}")
    workdir = ctx.scratch(f"browser-{n}")
    scenario = Scenario(keys=keys, tier="unlimited", lockout_threshold=0)
    with (
        external_simulator(ctx, scenario, f"browser-{n}") as url,
        up_process(_fleet_env(ctx, url, keys, workdir, "30"), workdir) as up,
    ):
        up.wait_verified(n)
        return open_overview(up.url, reps)


def _memory(ctx: Context, n: int, first_s: float, last_s: float) -> tuple[float, float]:
    keys = fleet_keys(ctx, n, f"rss-{n}")
    workdir = ctx.scratch(f"rss-{n}")
    with (
        external_simulator(
            ctx, Scenario(keys=keys, tier="unlimited", lockout_threshold=0), f"rss-{n}"
        ) as url,
        up_process(_fleet_env(ctx, url, keys, workdir, "5"), workdir) as up,
    ):
        up.wait_verified(n)
        open_overview(up.url, 1)  # a browser has loaded the pages once, as after a deploy
        started = time.monotonic()
        time.sleep(max(0.0, first_s - (time.monotonic() - started)))
        first = rss_mib(up.proc.pid)
        ctx.log(f"  RSS at {first_s:g} s: {first:.1f} MiB; waiting until {last_s:g} s")
        time.sleep(max(0.0, last_s - (time.monotonic() - started)))
        return first, rss_mib(up.proc.pid)


def run(ctx: Context) -> Section:
    section = Section(NUMBER, TITLE, TARGET)
    reps = 2 if ctx.quick else 5
    pages = Table(
        [
            "page",
            "3 accounts, monitor's own events: ms",
            "50 accounts, 10,000 events: ms",
            "ratio (medians)",
        ]
    )
    results: dict[tuple[str, int], list[float]] = {}
    for n, events in ((3, 0), (50, 10_000)):
        ctx.log(f"pages with {n} accounts, {events} extra events")
        with _service(ctx, n, events) as service:
            set_service(service)
            try:
                for page in ("overview.py", "timeline.py"):
                    _page_times(page, 1)  # warm the imports and caches
                    results[(page, n)] = _page_times(page, reps)
            finally:
                set_service(None)
    for page in ("overview.py", "timeline.py"):
        small, big = Summary.of(results[(page, 3)]), Summary.of(results[(page, 50)])
        pages.add(
            page,
            small.fmt(0, scale=1000),
            big.fmt(0, scale=1000),
            f"{big.median / small.median:.1f}×",
        )
    section.tables.append(pages)

    visible = Table(["accounts", "overview visible after: s", "ratio to 3 accounts"])
    vis: dict[int, list[float]] = {}
    for n in (3, 50):
        ctx.log(f"browser: {n} accounts")
        vis[n] = _visible_times(ctx, n, 2 if ctx.quick else 3)
    for n in (3, 50):
        visible.add(
            n,
            Summary.of(vis[n]).fmt(2),
            f"{statistics.median(vis[n]) / statistics.median(vis[3]):.1f}×",
        )
    section.tables.append(visible)

    first_s, last_s = (5.0, 15.0) if ctx.quick else (60.0, 600.0)
    ctx.log(f"memory: 20 accounts for {last_s:g} s")
    first, last = _memory(ctx, 20, first_s, last_s)
    memory = Table(
        [
            "accounts",
            "poll interval",
            f"RSS at {first_s / 60:g} min: MiB",
            f"RSS at {last_s / 60:g} min: MiB",
            "growth",
        ]
    )
    memory.add(20, "5 s", f"{first:.1f}", f"{last:.1f}", f"{last - first:+.1f} MiB")
    section.tables.append(memory)
    section.how = (
        "Pages: the real page scripts under AppTest in this process, with the service installed as "
        "`krakenwatch up` does, monitoring an external simulator (own process, 127.0.0.1); 10,000 "
        "synthetic state events are appended to the store before timing; one warm-up run, then "
        f"{reps} timed runs each. Browser: `krakenwatch up` subprocess, Debian Chromium headless via "
        "Playwright, a fresh page per run, from `goto` until the text 'Deploy verified' is visible. "
        "Memory: VmRSS of the `krakenwatch up` process, after the overview was opened once in "
        "Chromium (so the page code is loaded), measured from that moment."
    )
    return section
