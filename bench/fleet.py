"""3. Fleet verification: ``krakenwatch check`` for N accounts vs connecting them one by one.

All against one simulator in its own process (as Kraken is remote) at a fixed 50 ms latency:

* the wall time of a real ``krakenwatch check --json --timeout 60`` subprocess (interpreter start,
  imports, every account's connect + permission probe, and the clock-skew sample, which by design
  waits for the server's second boundaries: up to 4 s in ``check``);
* the accounts-only part, in-process: ``Monitor.verify_once`` with a listener that timestamps each
  account's "connected" state and its permission-probe result (the clock sampler runs alongside
  but is not what is timed). The accounts' ``KRAKEN_*`` variables are exported into the process
  environment for the duration, exactly as ``check`` sees them when configured by environment;
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
from dashboard import events as ev
from dashboard.config import load_settings
from dashboard.monitor import Monitor
from dashboard.status import AccountState
from simulator import KeySpec, Scenario
from simulator.environment import scenario_environment

from .kit import Context, clean_environ, external_simulator, fleet_keys, subprocess_environ
from .report import Section, Summary, Table, Verdict

NUMBER = 3
TITLE = "Fleet verification"
TARGET = "50 accounts take at most 2 × the time of 1 account."
LATENCY_MS = 50.0
CHECK_TIMEOUT_S = 60
MAX_FACTOR = 2.0


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
    return _Check(wall, proc.returncode, connected)


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


def run(ctx: Context) -> Section:
    sizes = (1, 10) if ctx.quick else (1, 10, 50, 200)
    section = Section(NUMBER, TITLE, TARGET)
    keys = fleet_keys(ctx, max(sizes), "fleet")
    scenario = Scenario(
        latency_ms=(LATENCY_MS, LATENCY_MS), tier="unlimited", lockout_threshold=0, keys=keys
    )
    checks: dict[int, list[_Check]] = {n: [] for n in sizes}
    inproc: dict[int, list[_InProcess]] = {n: [] for n in sizes}
    dotenv: dict[int, list[_InProcess]] = {n: [] for n in sizes}
    seq: dict[int, list[float]] = {n: [] for n in sizes}
    with external_simulator(ctx, scenario, "fleet") as url:
        for rep in range(ctx.reps):
            for n in sizes:
                env = scenario_environment(Scenario(keys=keys[:n]), url)
                c = run_check(ctx, env, n)
                i = run_in_process(ctx, env, n, from_file=False)
                f = run_in_process(ctx, env, n, from_file=True)
                s = run_sequential(ctx, url, env, keys[:n])
                checks[n].append(c)
                inproc[n].append(i)
                dotenv[n].append(f)
                seq[n].append(s)
                ctx.log(
                    f"3 rep {rep + 1}: {n:>3} accounts: check {c.wall_s:.2f} s (exit {c.exit_code}, "
                    f"{c.connected} connected), accounts-only {i.done_s:.2f} s "
                    f"(.env {f.done_s:.2f} s), sequential {s:.2f} s"
                )

    table = Table(
        [
            "accounts",
            "`krakenwatch check` wall s",
            "check exit codes; accounts connected",
            "accounts-only: all connected, s",
            "accounts-only: all probed, s",
            "same, accounts from `.env` (diagnostic), s",
            "`verify_once` total s",
            "sequential baseline s",
            "sequential / accounts-only connected",
        ]
    )
    for n in sizes:
        connected = Summary.of([r.connected_s for r in inproc[n]])
        sequential = Summary.of(seq[n])
        table.add(
            n,
            Summary.of([c.wall_s for c in checks[n]]).fmt(2),
            f"{', '.join(str(c.exit_code) for c in checks[n])}; "
            f"{', '.join(f'{c.connected}/{n}' for c in checks[n])}",
            connected.fmt(2),
            Summary.of([r.done_s for r in inproc[n]]).fmt(2),
            Summary.of([r.done_s for r in dotenv[n]]).fmt(2),
            Summary.of([r.total_s for r in inproc[n]]).fmt(2),
            sequential.fmt(2),
            f"{sequential.median / connected.median:.1f}×",
        )
    section.tables.append(table)

    def ratio(values: dict[int, list[float]]) -> float:
        return Summary.of(values[big]).median / Summary.of(values[1]).median

    big = 50 if 50 in sizes else max(sizes)
    all_ok = all(c.exit_code == 0 and c.connected == n for n in sizes for c in checks[n])
    check_ratio = ratio({n: [c.wall_s for c in checks[n]] for n in sizes})
    acc_ratio = ratio({n: [r.done_s for r in inproc[n]] for n in sizes})
    dotenv_ratio = ratio({n: [r.done_s for r in dotenv[n]] for n in sizes})
    section.verdicts += [
        Verdict(
            f"`krakenwatch check` wall time, {big} accounts ≤ {MAX_FACTOR:g} × 1 account",
            f"{check_ratio:.2f} × (medians)"
            + ("" if all_ok else "; NOT every check exited 0 with every account connected"),
            check_ratio <= MAX_FACTOR and all_ok,
        ),
        Verdict(
            f"accounts-only (connect + permission probe, accounts exported as for `check`), "
            f"{big} accounts ≤ {MAX_FACTOR:g} × 1 account",
            f"{acc_ratio:.2f} × (medians); from a `.env` file: {dotenv_ratio:.2f} ×",
            acc_ratio <= MAX_FACTOR,
        ),
    ]
    if big != 50:
        section.notes.append(f"quick mode: {big} accounts stand in for 50.")
    section.how = (
        "one simulator in its own process (`python -m simulator`, 127.0.0.1), fixed latency "
        f"{LATENCY_MS:g} ms on every request (public ones too), tier unlimited; accounts MASTER, "
        "USER_U001, ... from `scenario_environment`. '`krakenwatch check` wall s': a real subprocess "
        f"`{' '.join(Path(p).name for p in check_command())} check --json --timeout {CHECK_TIMEOUT_S}` "
        "(accounts in its environment, fresh data dir, empty working directory), from spawn to "
        "exit: interpreter start and imports, the accounts, and the clock-skew sample, which waits "
        "for second boundaries and is capped at 4 s by `check` — so this figure is dominated by "
        "the clock, not by the accounts. 'accounts-only': in-process `Monitor.verify_once(60)` with "
        "the accounts' `KRAKEN_*` variables exported into the process environment as `check` has "
        "them; time from the call to the last account's 'connected' event (refresh + Balance) and "
        "to the last account's OpenOrders permission result (its whole step); '`verify_once` "
        "total' includes waiting for the clock sampler. 'accounts from `.env`': the same with the "
        "variables in a `.env` file and not exported (shows what the environment's size costs). "
        "'sequential baseline': `KrakenClient(...).connect(\"Balance\")` for each account in turn, "
        f"in-process, same exported environment, as the seed's bot did. {ctx.reps} repetition(s), "
        "sizes interleaved."
    )
    return section
