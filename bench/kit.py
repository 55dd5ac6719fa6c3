"""Shared plumbing for the benchmarks: the run context, fake keys, simulators, environments."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from simulator import KeySpec, Scenario, Simulator
from simulator.builtin import fake_key, fake_secret
from simulator.environment import scenario_environment
from testkit.browser import CHROMIUM, CHROMIUM_ARGS
from testkit.env import ROOT, clean_environ, subprocess_environ
from testkit.gateway import GatewayProcess, gateway_process
from testkit.sim import simulator_process

__all__ = [
    "ROOT",
    "Context",
    "clean_environ",
    "external_simulator",
    "fleet_keys",
    "gateway",
    "key_spec",
    "open_overview",
    "running",
    "subprocess_environ",
]
BALANCES = {"ZUSD": "1000.0000", "USDT": "50.00000000", "XXBT": "0.0100000000"}


@dataclass
class Context:
    """What every benchmark gets: the mode, a scratch directory and a progress log."""

    quick: bool
    tmp: Path
    started: float = field(default_factory=time.perf_counter)
    #: a token that makes every fake key of this run unique
    run_id: str = field(default_factory=lambda: f"{os.getpid()}-{time.time_ns()}")

    @property
    def reps(self) -> int:
        return 1 if self.quick else 3

    def log(self, message: str) -> None:
        print(f"[bench {time.perf_counter() - self.started:6.1f}s] {message}", file=sys.stderr)

    def scratch(self, name: str) -> Path:
        """A fresh directory under the run's temporary directory."""
        path = self.tmp / name
        suffix = 0
        while path.exists():
            suffix += 1
            path = self.tmp / f"{name}-{suffix}"
        path.mkdir(parents=True)
        return path


def key_spec(ctx: Context, label: str, *, account: str | None = None) -> KeySpec:
    """A fake, well-formed key (unique to this run) with all permissions and a few balances."""
    unique = f"bench/{ctx.run_id}/{label}"
    return KeySpec(
        key=fake_key(unique),
        secret=fake_secret(unique),
        balances=dict(BALANCES),
        name=label,
        account=account,
    )


def fleet_keys(ctx: Context, n: int, tag: str) -> list[KeySpec]:
    """``n`` accounts: MASTER, then USER:u001, USER:u002, ... (environment USER_U001, ...)."""
    labels = ["MASTER"] + [f"USER:u{i:03d}" for i in range(1, n)]
    return [key_spec(ctx, f"{tag}/{label}", account=label) for label in labels]


@contextlib.contextmanager
def running(scenario: Scenario, seed: int | None = None) -> Iterator[Simulator]:
    """A simulator on 127.0.0.1 (a free port), stopped on exit."""
    sim = Simulator(scenario, host="127.0.0.1", seed=seed).start()
    try:
        yield sim
    finally:
        sim.stop()


@contextlib.contextmanager
def external_simulator(ctx: Context, scenario: Scenario, name: str) -> Iterator[str]:
    """The simulator in its own process (keeps its request handling off the measuring process's
    GIL, as with a remote Kraken); yields its URL."""
    with simulator_process(scenario, ctx.scratch(f"sim-{name}")) as url:
        yield url


@contextlib.contextmanager
def gateway(ctx: Context, scenario: Scenario, url: str, name: str) -> Iterator[GatewayProcess]:
    """``krakenwatch gateway`` (the real process) for the accounts of ``scenario``'s keys, in front
    of the simulator at ``url``; the simulator has no rate limit, so neither does the gateway's
    model (``--no-rate-model``)."""
    workdir = ctx.scratch(f"gateway-{name}")
    env = {**scenario_environment(scenario, url), "KRAKENWATCH_DATA_DIR": str(workdir / "data")}
    with gateway_process(env, workdir, ["--no-rate-model"]) as process:
        yield process


def open_overview(url: str, reps: int) -> list[float]:
    """Seconds from ``goto`` until the overview's verdict is visible, per run (fresh page each)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            times = []
            for _ in range(reps):
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                t0 = time.perf_counter()
                page.goto(url + "/")
                page.get_by_text("Deploy verified").first.wait_for(timeout=120_000)
                times.append(time.perf_counter() - t0)
                page.close()
            return times
        finally:
            browser.close()
