"""3. Fleet verification: time to a deploy verdict with ``krakenwatch check``, for 1 to 200 accounts.

All against simulators in their own processes (as Kraken is remote), at a fixed 0 ms and 50 ms
latency:

* **time to verdict**: the wall time of a real ``krakenwatch check --json --timeout 60``
  subprocess (interpreter start, imports, every account's connect + permission probe, and the
  clock-skew sample, which stops once it decides the ``clock_skew`` bound), for a simulator clock
  inside the bound and one far outside it, at each latency; each run's verdict is checked (inside:
  exit 0 and ``clock_skew`` pass; outside: exit 1 and ``clock_skew`` fail; every account
  connected), so an early stop cannot buy speed with a wrong verdict. 50 accounts against 1, at
  each latency: what each account adds to the whole process, with the network's wait (50 ms) and
  without it (0 ms: the per-account CPU alone);
* **the account work alone** (50 ms), in-process: ``Monitor.verify_once`` with a listener that timestamps
  each account's "connected" state and its permission-probe result. The accounts' ``KRAKEN_*``
  variables are exported into the process environment for the duration, exactly as ``check`` sees
  them when configured by environment;
* the same with the accounts read from a ``.env`` file instead (nothing exported): a diagnostic
  that isolates what the size of the process environment costs per request;
* the seed bot's way: ``KrakenClient.connect("Balance")`` for each account, one after another,
  with the same exported environment.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from broker import KrakenClient
from dashboard.config import load_settings
from dashboard.monitor import events as ev
from dashboard.monitor.facade import Monitor
from dashboard.monitor.status import AccountState
from simulator import KeySpec, Scenario
from simulator.environment import scenario_environment

from .kit import Context, clean_environ, external_simulator, fleet_keys, subprocess_environ
from .report import Section, Summary, Table, Verdict

NUMBER = 3
TITLE = "Fleet verification"
TARGET = (
    "`krakenwatch check --json`, 3 accounts, 50 ms latency: a verdict in < 2 s, whole process "
    "(aim: < 0.5 s), with the clock inside or outside the bound; 50 accounts ≤ 1.3 × 1 account, "
    "whole process, at 0 ms and at 50 ms latency, and ≤ 2 × for the account work alone; every "
    "verdict right."
)
#: the simulators' latencies: the whole-process ratio is judged at each
LATENCIES_MS = (0.0, 50.0)
#: the latency of the 3-account verdict time and of the in-process account work
WORK_LATENCY_MS = 50.0
CHECK_TIMEOUT_S = 60
#: the clock_skew bound check uses (KRAKENWATCH_MAX_SKEW's default)
MAX_SKEW_S = 1.0
#: simulator clock minus the real clock: the skew check sees local - Kraken = -offset
OFFSETS = {"inside": 0.0, "outside": 3.0}
VERDICT_S, VERDICT_AIM_S = 2.0, 0.5
MAX_WHOLE_FACTOR, MAX_ACCOUNTS_FACTOR = 1.3, 2.0


def check_command() -> list[str]:
    """The installed ``krakenwatch`` console script next to this interpreter, else the module."""
    script = Path(sys.executable).with_name("krakenwatch")
    return [str(script)] if script.exists() else [sys.executable, "-m", "dashboard.cli"]


@contextlib.contextmanager
def exported(env: Mapping[str, str]) -> Iterator[None]:
    """This process's environment as ``check``'s would be: the caller's, cleaned, plus ``env``."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update({**clean_environ(saved), **env})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@dataclass
class _Check:
    wall_s: float
    exit_code: int
    connected: int
    #: the clock_skew check's status, and the uncertainty the document reports
    clock: str
    uncertainty_s: float

    def right(self, n: int, where: str) -> bool:
        """Whether this run's verdict is the right one for a clock ``where`` the bound."""
        expected = (0, "pass") if where == "inside" else (1, "fail")
        return (self.exit_code, self.clock) == expected and self.connected == n


def run_check(ctx: Context, env: dict[str, str], n: int) -> _Check:
    workdir = ctx.scratch(f"fleet-check-{n}")  # empty: no .env is picked up
    child_env = subprocess_environ({**env, "KRAKENWATCH_DATA_DIR": str(workdir / "data")})
    command = [*check_command(), "check", "--json", "--timeout", str(CHECK_TIMEOUT_S)]
    t0 = time.perf_counter()
    proc = subprocess.run(
        command, cwd=workdir, env=child_env, capture_output=True, text=True, timeout=240
    )
    wall = time.perf_counter() - t0
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        raise RuntimeError(
            f"krakenwatch check exited {proc.returncode} without JSON: {proc.stderr.strip()[-500:]}"
        ) from None
    connected = sum(1 for a in doc.get("accounts", []) if a.get("state") == AccountState.CONNECTED)
    clock = next((c["status"] for c in doc.get("checks", []) if c["name"] == "clock_skew"), "-")
    uncertainty = doc.get("clock_skew_uncertainty_seconds")
    return _Check(wall, proc.returncode, connected, clock, float(uncertainty or "nan"))


@dataclass
class _InProcess:
    connected_s: float
    done_s: float
    total_s: float


def run_in_process(ctx: Context, env: dict[str, str], n: int, *, from_file: bool) -> _InProcess:
    """``Monitor.verify_once`` in this process; accounts exported, or read from a ``.env`` file."""
    workdir = ctx.scratch(f"fleet-monitor-{n}")
    env = {**env, "KRAKENWATCH_DATA_DIR": str(workdir / "data")}
    env_file = workdir / ".env"
    env_file.write_text(
        "".join(f"{k}={v}\n" for k, v in env.items()) if from_file else "", encoding="utf-8"
    )
    with exported({} if from_file else env):
        settings = load_settings(env_file=env_file)
        if len(settings.accounts) != n or settings.config_errors:
            raise RuntimeError(
                f"expected {n} accounts, got {len(settings.accounts)}: {settings.config_errors}"
            )
        connected: dict[str, float] = {}
        done: dict[str, float] = {}
        lock = threading.Lock()

        def listener(event: ev.Event) -> None:
            now = time.perf_counter()
            if event.account is None:
                return
            with lock:
                if event.kind == ev.STATE and event.data.get("state") == AccountState.CONNECTED:
                    connected.setdefault(event.account, now)
                elif event.kind == ev.PERMISSION and event.data.get("permission") == "orders":
                    done.setdefault(event.account, now)

        monitor = Monitor(settings)
        monitor.add_listener(listener)
        t0 = time.perf_counter()
        monitor.verify_once(CHECK_TIMEOUT_S)
        total = time.perf_counter() - t0
        del monitor
    gc.collect()  # close the clients' keep-alive connections before the next measurement
    if len(connected) != n or len(done) != n:
        raise RuntimeError(
            f"in-process verify: {len(connected)}/{n} accounts connected, {len(done)}/{n} probed"
        )
    return _InProcess(max(connected.values()) - t0, max(done.values()) - t0, total)


def run_sequential(ctx: Context, url: str, env: dict[str, str], keys: list[KeySpec]) -> float:
    store = ctx.scratch(f"fleet-seq-{len(keys)}")
    with exported(env):
        t0 = time.perf_counter()
        for spec in keys:
            client = KrakenClient(
                spec.key,
                spec.secret,
                account=spec.account or "MASTER",
                base_url=url,
                store_dir=store,
            )
            client.connect("Balance")
            client.session.close()
        return time.perf_counter() - t0


def _fmt_check(runs: list[_Check]) -> str:
    return Summary.of([c.wall_s for c in runs]).fmt(2)


def _median(values: list[float]) -> float:
    return Summary.of(values).median


#: one simulator per latency and clock: (latency ms, "inside" | "outside")
Where = tuple[float, str]


@dataclass
class _Runs:
    """Every measurement of one run of the section, by size (and latency and clock)."""

    sizes: tuple[int, ...]
    checks: dict[tuple[float, str, int], list[_Check]]
    inproc: dict[int, list[_InProcess]]
    dotenv: dict[int, list[_InProcess]]
    seq: dict[int, list[float]]

    @classmethod
    def empty(cls, sizes: tuple[int, ...]) -> _Runs:
        return cls(
            sizes,
            {(lat, w, n): [] for lat in LATENCIES_MS for w in OFFSETS for n in sizes},
            {n: [] for n in sizes},
            {n: [] for n in sizes},
            {n: [] for n in sizes},
        )


def _simulators(ctx: Context, stack: contextlib.ExitStack, keys: list[KeySpec]) -> dict[Where, str]:
    """A simulator in its own process per latency and clock; their URLs."""
    return {
        (latency, where): stack.enter_context(
            external_simulator(
                ctx,
                Scenario(
                    latency_ms=(latency, latency),
                    tier="unlimited",
                    lockout_threshold=0,
                    keys=keys,
                    clock_offset_s=offset,
                ),
                f"fleet-{latency:g}ms-{where}",
            )
        )
        for latency in LATENCIES_MS
        for where, offset in OFFSETS.items()
    }


def _measure(ctx: Context, sizes: tuple[int, ...], check_runs: int, inproc_runs: int) -> _Runs:
    """Every run, interleaved: each repetition goes through every size, and each size through
    every latency and clock, so that the sizes compared were measured side by side."""
    keys = fleet_keys(ctx, max(sizes), "fleet")
    runs = _Runs.empty(sizes)
    with contextlib.ExitStack() as stack:
        urls = _simulators(ctx, stack, keys)
        work_url = urls[(WORK_LATENCY_MS, "inside")]
        for rep in range(check_runs):
            for n in sizes:
                for (latency, where), url in urls.items():
                    c = run_check(ctx, scenario_environment(Scenario(keys=keys[:n]), url), n)
                    runs.checks[(latency, where, n)].append(c)
                    ctx.log(
                        f"3 run {rep + 1}: {n:>3} accounts, {latency:g} ms, clock {where}: check "
                        f"{c.wall_s:.2f} s (exit {c.exit_code}, clock_skew {c.clock} ± "
                        f"{c.uncertainty_s:.3f} s, {c.connected}/{n} connected)"
                    )
                env = scenario_environment(Scenario(keys=keys[:n]), work_url)
                if rep < inproc_runs:
                    i = run_in_process(ctx, env, n, from_file=False)
                    f = run_in_process(ctx, env, n, from_file=True)
                    runs.inproc[n].append(i)
                    runs.dotenv[n].append(f)
                    ctx.log(
                        f"3 run {rep + 1}: {n:>3} accounts-only {i.done_s:.2f} s (.env {f.done_s:.2f} s)"
                    )
                if rep < ctx.reps:
                    runs.seq[n].append(run_sequential(ctx, work_url, env, keys[:n]))
    return runs


def _tables(runs: _Runs) -> list[Table]:
    verdicts = Table(
        [
            "latency ms",
            "accounts",
            "clock inside the bound: `check` wall s",
            "clock outside the bound: `check` wall s",
            "right verdicts (inside; outside)",
            "reported skew uncertainty ± s, median (inside; outside)",
        ]
    )
    for latency in LATENCIES_MS:
        for n in runs.sizes:
            inside, outside = (
                runs.checks[(latency, "inside", n)],
                runs.checks[(latency, "outside", n)],
            )
            verdicts.add(
                f"{latency:g}",
                n,
                _fmt_check(inside),
                _fmt_check(outside),
                f"{sum(c.right(n, 'inside') for c in inside)}/{len(inside)}; "
                f"{sum(c.right(n, 'outside') for c in outside)}/{len(outside)}",
                f"{_median([c.uncertainty_s for c in inside]):.3f}; "
                f"{_median([c.uncertainty_s for c in outside]):.3f}",
            )
    accounts = Table(
        [
            "accounts",
            "accounts-only: all connected, s",
            "accounts-only: all probed, s",
            "same, accounts from `.env` (diagnostic), s",
            "`verify_once` total s",
            "sequential baseline s",
            "sequential / accounts-only connected",
        ]
    )
    for n in runs.sizes:
        connected = Summary.of([r.connected_s for r in runs.inproc[n]])
        sequential = Summary.of(runs.seq[n])
        accounts.add(
            n,
            connected.fmt(2),
            Summary.of([r.done_s for r in runs.inproc[n]]).fmt(2),
            Summary.of([r.done_s for r in runs.dotenv[n]]).fmt(2),
            Summary.of([r.total_s for r in runs.inproc[n]]).fmt(2),
            sequential.fmt(2),
            f"{sequential.median / connected.median:.1f}×",
        )
    return [verdicts, accounts]


def _verdicts(runs: _Runs, big: int) -> list[Verdict]:
    found = []
    for where in OFFSETS:
        three = _median([c.wall_s for c in runs.checks[(WORK_LATENCY_MS, where, 3)]])
        found.append(
            Verdict(
                f"`check --json`, 3 accounts, {WORK_LATENCY_MS:g} ms latency, clock {where} the "
                f"bound: verdict in < {VERDICT_S:g} s (aim < {VERDICT_AIM_S:g} s), whole process",
                f"{three:.2f} s (median of {len(runs.checks[(WORK_LATENCY_MS, where, 3)])}); aim "
                + ("met" if three < VERDICT_AIM_S else "missed"),
                three < VERDICT_S,
            )
        )
    for latency in LATENCIES_MS:
        many = _median([c.wall_s for c in runs.checks[(latency, "inside", big)]])
        one = _median([c.wall_s for c in runs.checks[(latency, "inside", 1)]])
        found.append(
            Verdict(
                f"`check` whole process, {big} accounts ≤ {MAX_WHOLE_FACTOR:g} × 1 account, "
                f"{latency:g} ms latency (clock inside)",
                f"{many / one:.2f} × (medians: {many:.2f} s vs {one:.2f} s)",
                many / one <= MAX_WHOLE_FACTOR,
            )
        )
    work = _median([r.done_s for r in runs.inproc[big]]) / _median(
        [r.done_s for r in runs.inproc[1]]
    )
    from_file = _median([r.done_s for r in runs.dotenv[big]]) / _median(
        [r.done_s for r in runs.dotenv[1]]
    )
    every = [(where, n, c) for (_, where, n), cs in runs.checks.items() for c in cs]
    right = sum(c.right(n, where) for where, n, c in every)
    return [
        *found,
        Verdict(
            f"account work alone (connect + permission probe, accounts exported as for `check`), "
            f"{big} accounts ≤ {MAX_ACCOUNTS_FACTOR:g} × 1 account, {WORK_LATENCY_MS:g} ms latency",
            f"{work:.2f} × (medians); from a `.env` file: {from_file:.2f} ×",
            work <= MAX_ACCOUNTS_FACTOR,
        ),
        Verdict(
            "every verdict right: clock inside → exit 0, `clock_skew` pass; outside → exit 1, "
            "`clock_skew` fail; every account connected",
            f"{right}/{len(every)} runs",
            right == len(every),
        ),
    ]


def _how(ctx: Context, check_runs: int, inproc_runs: int) -> str:
    latencies = " and ".join(f"{latency:g} ms" for latency in LATENCIES_MS)
    return (
        f"four simulators in their own processes (`python -m simulator`, 127.0.0.1): fixed "
        f"latency {latencies} on every request (public ones too), each with the clock offset "
        f"{OFFSETS['inside']:+g} s (inside the {MAX_SKEW_S:g} s bound) and {OFFSETS['outside']:+g} s "
        "(outside it); tier unlimited; accounts MASTER, USER_U001, ... from "
        "`scenario_environment`. '`check` wall s': a real subprocess "
        f"`{' '.join(Path(p).name for p in check_command())} check --json --timeout {CHECK_TIMEOUT_S}` "
        "(accounts in its environment, fresh data dir, empty working directory), from spawn to "
        "exit: interpreter start and imports, the accounts, and the clock-skew estimate, which "
        "runs alongside them and stops once its interval lies entirely inside or outside the "
        "bound. Each run's JSON is checked for the right verdict. The whole-process ratio "
        "compares the medians of 50 accounts and of 1 account at the same latency, clock inside, "
        "measured in the same run. 'accounts-only' (at "
        f"{WORK_LATENCY_MS:g} ms): in-process `Monitor.verify_once({CHECK_TIMEOUT_S})` against the "
        "inside simulator, with the accounts' `KRAKEN_*` variables exported into the process "
        "environment as `check` has them; time from the call to the last account's 'connected' "
        "event (refresh + Balance) and to the last account's OpenOrders permission result (its "
        "whole step); '`verify_once` total' includes waiting for the clock. 'accounts from "
        "`.env`': the same with the variables in a `.env` file and not exported (shows what the "
        "environment's size costs). 'sequential baseline': "
        '`KrakenClient(...).connect("Balance")` for each account in turn, in-process, same '
        f"exported environment, as the seed's bot did. {check_runs} `check` runs per size, "
        f"latency and clock, {inproc_runs} in-process runs, {ctx.reps} sequential runs; sizes, "
        "latencies and clocks interleaved; median (min–max)."
    )


def run(ctx: Context) -> Section:
    sizes = (1, 3, 10) if ctx.quick else (1, 3, 50, 200)
    check_runs, inproc_runs = (2, 1) if ctx.quick else (9, 7)
    section = Section(NUMBER, TITLE, TARGET)
    runs = _measure(ctx, sizes, check_runs, inproc_runs)
    big = 50 if 50 in sizes else max(sizes)
    section.tables += _tables(runs)
    section.verdicts += _verdicts(runs, big)
    if big != 50:
        section.notes.append(f"quick mode: {big} accounts stand in for 50.")
    section.how = _how(ctx, check_runs, inproc_runs)
    return section
