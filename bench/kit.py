"""Shared plumbing for the benchmarks: the run context, fake keys, simulators, environments."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from broker.simulator import KeySpec, Scenario, Simulator
from broker.simulator.builtin import fake_key, fake_secret

__all__ = [
    "ROOT",
    "Context",
    "clean_environ",
    "external_simulator",
    "fleet_keys",
    "key_spec",
    "running",
    "subprocess_environ",
]

#: the repository root (``bench/`` lives directly under it)
ROOT = Path(__file__).resolve().parents[1]
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
    """The simulator in its own process (``python -m broker.simulator``); yields its URL.

    Keeps the simulator's request handling off the measuring process's GIL, as with a remote
    Kraken. Stopped with SIGTERM (then killed) on exit.
    """
    path = ctx.scratch(f"sim-{name}") / "scenario.json"
    doc = {
        "clock_offset_s": scenario.clock_offset_s,
        "latency_ms": list(scenario.latency_ms),
        "tier": scenario.tier,
        "lockout_threshold": scenario.lockout_threshold,
        "keys": [
            {
                "key": k.key,
                "secret": k.secret,
                "name": k.name,
                "balances": k.balances,
                "permissions": sorted(k.permissions),
                "nonce_unit": k.nonce_unit,
                **({"account": k.account} if k.account else {}),
            }
            for k in scenario.keys
        ],
    }
    path.write_text(json.dumps(doc), encoding="utf-8")
    command = [sys.executable, "-m", "broker.simulator", "--host", "127.0.0.1", "--port", "0"]
    proc = subprocess.Popen(
        [*command, "--scenario", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=path.parent,
        env=subprocess_environ(),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            proc.kill()
            _, err = proc.communicate(timeout=10)
            raise RuntimeError(f"the simulator did not start ({line!r}): {err.strip()[-500:]}")
        yield line.removeprefix("listening on ")
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def clean_environ(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``os.environ`` without any ``KRAKEN_*`` / ``KRAKENWATCH_*`` variable of the caller."""
    env = dict(os.environ if base is None else base)
    return {k: v for k, v in env.items() if not k.startswith(("KRAKEN_", "KRAKENWATCH_"))}


def subprocess_environ(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment for a child Python that can import ``bench``, ``broker``, ``dashboard``."""
    env = clean_environ()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.pop("PYTHONSTARTUP", None)
    env.update(extra or {})
    return env
