"""Simulators for tests: fake-but-well-formed keys, a one-key simulator, a built-in scenario with
its environment, and raw signed calls."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from simulator import KeySpec, Scenario, Simulator, builtin_scenario, scenario_environment
from simulator.market import Market

from .env import subprocess_environ
from .rawclient import RawResponse, form, signed_post

__all__ = [
    "ScenarioValue",
    "call",
    "make_key",
    "master_environment",
    "one_key_simulator",
    "race_simulator",
    "scenario_document",
    "scenario_simulator",
    "scenario_values",
    "simulator_process",
]


def make_key(name: str) -> tuple[str, str]:
    """A 56-character public key and a base64 64-byte secret, derived from ``name``."""
    digest = hashlib.sha512(f"krakenwatch-test-{name}".encode()).digest()
    key = base64.b64encode(hashlib.sha512(digest).digest()).decode()[:56]
    return key, base64.b64encode(digest).decode()


@contextmanager
def one_key_simulator(name: str, **scenario: Any) -> Iterator[tuple[Simulator, str, str]]:
    """A running simulator with one key (all permissions, unlimited tier unless overridden)."""
    key, secret = make_key(name)
    spec_fields = {
        k: scenario.pop(k)
        for k in ("permissions", "last_nonce", "nonce_window", "balances")
        if k in scenario
    }
    spec_fields.setdefault("balances", {"ZUSD": "1000.0000", "USDT": "50.00000000"})
    scenario.setdefault("tier", "unlimited")
    scenario.setdefault("lockout_threshold", 0)
    spec = KeySpec(key=key, secret=secret, name=name, **spec_fields)
    sim = Simulator(Scenario(keys=[spec], **scenario)).start()
    try:
        yield sim, key, secret
    finally:
        sim.stop()


@contextmanager
def race_simulator(*names: str) -> Iterator[tuple[Simulator, list[tuple[str, str]]]]:
    """A strict simulator for races: one fresh key per name (each key's stats under its name),
    0-30 ms jitter before judging, no rate limit, no lockout. Yields it and the ``(key, secret)``
    pairs in ``names`` order."""
    keys = [make_key(f"race-{name}") for name in names]
    specs = [KeySpec(key=k, secret=s, name=n) for (k, s), n in zip(keys, names, strict=True)]
    scenario = Scenario(keys=specs, tier="unlimited", lockout_threshold=0, latency_ms=(0.0, 30.0))
    with Simulator(scenario) as sim:
        yield sim, keys


def master_environment(url: str, key: str, secret: str, **extra: str) -> dict[str, str]:
    """The variables that configure ``key``/``secret`` as the MASTER account against ``url``
    (e.g. a :func:`one_key_simulator`), plus ``extra``."""
    return {
        "KRAKEN_API_URL": url,
        "KRAKEN_MASTER_API_KEY": key,
        "KRAKEN_MASTER_API_SECRET": secret,
        **extra,
    }


def call(
    sim: Simulator,
    spec: KeySpec,
    nonce: int | str | None,
    method: str = "Balance",
    *,
    body: str | bytes | None = None,
    api_sign: str | None = None,
    timeout: float = 5.0,
    **fields: Any,
) -> RawResponse:
    """A raw private call signed with ``spec``'s secret over ``nonce`` (any text; ``None`` for no
    nonce field) and the form-encoded ``fields``, unless ``body`` or ``api_sign`` say otherwise."""
    return signed_post(
        sim.url,
        method,
        key=spec.key,
        secret=spec.secret,
        body=form(nonce, **fields) if body is None else body,
        nonce="" if nonce is None else nonce,
        api_sign=api_sign,
        timeout=timeout,
    )


@contextmanager
def scenario_simulator(name: str, **overrides: Any) -> Iterator[tuple[Simulator, dict[str, str]]]:
    """A running simulator for a built-in scenario, and the KRAKEN_* environment pointing at it."""
    scenario = builtin_scenario(name)
    for field, value in overrides.items():
        setattr(scenario, field, value)
    sim = Simulator(scenario).start()
    try:
        yield sim, scenario_environment(scenario, sim.url)
    finally:
        sim.stop()


def scenario_document(scenario: Scenario) -> dict[str, Any]:
    """``scenario`` as a scenario file's JSON document (the format ``--scenario`` reads)."""
    return {
        "clock_offset_s": scenario.clock_offset_s,
        "latency_ms": list(scenario.latency_ms),
        "tier": scenario.tier,
        "lockout_threshold": scenario.lockout_threshold,
        **({"prices": scenario.prices} if scenario.prices else {}),
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


@contextmanager
def simulator_process(scenario: Scenario, workdir: Path) -> Iterator[str]:
    """``python -m simulator`` for ``scenario`` in its own process; yields its URL once it prints
    its listening line. Stopped with SIGTERM (then killed) on exit."""
    path = workdir / "scenario.json"
    path.write_text(json.dumps(scenario_document(scenario)), encoding="utf-8")
    command = [sys.executable, "-m", "simulator", "--host", "127.0.0.1", "--port", "0"]
    proc = subprocess.Popen(
        [*command, "--scenario", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=workdir,
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


@dataclass(frozen=True)
class ScenarioValue:
    """What a scenario key's balances are worth at the simulator's own USD prices."""

    #: the value of the assets the simulator has a price for
    priced: Decimal
    #: the assets it has none for (non-zero amounts), with their amounts
    unpriced: dict[str, str]

    @property
    def usd(self) -> str:
        """The priced part as the pages show dollars: ``$10,907.40``."""
        return f"${self.priced.quantize(Decimal('0.01')):,.2f}"


def scenario_values(scenario: Scenario) -> dict[str, ScenarioValue]:
    """By account label: the value of each key's balances, computed from the simulator's price
    table (independently of the dashboard's valuation)."""
    market = Market(scenario.prices)
    values = {}
    for spec in scenario.keys:
        priced, unpriced = Decimal(0), {}
        for asset, amount in spec.balances.items():
            price = market.usd_price(asset)
            if price is not None:
                priced += Decimal(amount) * price
            elif Decimal(amount) != 0:
                unpriced[asset] = amount
        values[spec.account or spec.name] = ScenarioValue(priced, unpriced)
    return values
