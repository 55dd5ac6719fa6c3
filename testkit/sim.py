"""Simulators for tests: fake-but-well-formed keys, a one-key simulator, a built-in scenario with
its environment, and raw signed calls.

Every environment built here for a simulator carries ``KRAKEN_WS_AUTH_URL`` pointing at that
simulator's WebSocket endpoint (or, when no running simulator is known for the URL, at a closed
local port): a test never reaches the real Kraken's WebSocket either."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

from simulator import KeySpec, Scenario, Simulator, builtin_scenario, scenario_environment
from simulator.market import Market

from .env import subprocess_environ
from .rawclient import RawResponse, form, signed_post

__all__ = [
    "NOWHERE_WS_URL",
    "ScenarioValue",
    "StreamClient",
    "call",
    "make_key",
    "master_environment",
    "one_key_simulator",
    "race_simulator",
    "scenario_document",
    "scenario_simulator",
    "scenario_values",
    "simulator_process",
    "ws_token",
    "ws_url_for",
]

#: where ``KRAKEN_WS_AUTH_URL`` points when no simulator serves a URL: the discard port, closed
NOWHERE_WS_URL = "ws://127.0.0.1:9/v2"


#: REST URL -> WebSocket URL of the simulators :func:`simulator_process` runs
_PROCESS_WS_URLS: dict[str, str] = {}


def ws_url_for(url: str) -> str:
    """The WebSocket endpoint of the running simulator (in this process, or started by
    :func:`simulator_process`) at REST ``url``; else a closed port."""
    sim = Simulator.running_at(url)
    if sim is not None:
        return sim.ws_url
    return _PROCESS_WS_URLS.get(url.rstrip("/"), NOWHERE_WS_URL)


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
    (e.g. a :func:`one_key_simulator`), plus ``extra``. ``KRAKEN_WS_AUTH_URL`` is the
    simulator's WebSocket endpoint (:func:`ws_url_for`) unless ``extra`` says otherwise."""
    return {
        "KRAKEN_API_URL": url,
        "KRAKEN_WS_AUTH_URL": ws_url_for(url),
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


def ws_token(sim: Simulator, spec: KeySpec, nonce: int) -> str:
    """A WebSocket token for ``spec`` from ``GetWebSocketsToken`` (a private call: it spends
    ``nonce``). Never print it."""
    reply = call(sim, spec, nonce, "GetWebSocketsToken").json()
    if reply["error"]:
        raise RuntimeError(f"GetWebSocketsToken: {reply['error']}")
    return str(reply["result"]["token"])


class StreamClient:
    """A test's WebSocket v2 connection (``websockets``' sync client): JSON in and out, and
    reads that wait for a message with a deadline (heartbeats skipped unless asked for)."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self.ws: ClientConnection = connect(url, open_timeout=timeout, close_timeout=1, legacy=True)

    def send(self, doc: dict[str, Any]) -> None:
        self.ws.send(json.dumps(doc))

    def next(
        self,
        match: Callable[[dict[str, Any]], bool] = lambda m: True,
        *,
        heartbeats: bool = False,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """The next message ``match`` accepts (others are passed over); ``TimeoutError`` when
        none comes within ``timeout`` seconds."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no matching message in time")
            message = json.loads(self.ws.recv(timeout=left))
            if not heartbeats and message.get("channel") == "heartbeat":
                continue
            if match(message):
                return dict(message)

    def request(self, method: str, req_id: int, **params: Any) -> dict[str, Any]:
        """Send ``method`` with ``params``; its answer (the message with that ``req_id``)."""
        doc: dict[str, Any] = {"method": method, "req_id": req_id}
        if params:
            doc["params"] = params
        self.send(doc)
        return self.next(lambda m: m.get("req_id") == req_id and "method" in m)

    def close(self) -> None:
        self.ws.close()

    def __enter__(self) -> StreamClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def scenario_simulator(
    name: str, *, trading: bool = False, **overrides: Any
) -> Iterator[tuple[Simulator, dict[str, str]]]:
    """A running simulator for a built-in scenario, and the KRAKEN_* environment pointing at it
    (REST and WebSocket). Keys that trade by themselves in the scenario (the demo's) stay still
    unless ``trading=True``, so a test sees the scenario's balances."""
    scenario = builtin_scenario(name)
    for field, value in overrides.items():
        setattr(scenario, field, value)
    if not trading:
        for spec in scenario.keys:
            spec.trading = None
    sim = Simulator(scenario).start()
    try:
        yield sim, scenario_environment(scenario, sim.url, sim.ws_url)
    finally:
        sim.stop()


def scenario_document(scenario: Scenario) -> dict[str, Any]:
    """``scenario`` as a scenario file's JSON document (the format ``--scenario`` reads)."""
    return {
        "clock_offset_s": scenario.clock_offset_s,
        "latency_ms": list(scenario.latency_ms),
        "tier": scenario.tier,
        "lockout_threshold": scenario.lockout_threshold,
        "token_ttl_s": scenario.token_ttl_s,
        "ws_heartbeat_s": scenario.ws_heartbeat_s,
        "maker_fee_pct": scenario.maker_fee_pct,
        "taker_fee_pct": scenario.taker_fee_pct,
        "trading_decay_scale": scenario.trading_decay_scale,
        **({"prices": scenario.prices} if scenario.prices else {}),
        "keys": [
            {
                "key": k.key,
                "secret": k.secret,
                "name": k.name,
                "balances": k.balances,
                "permissions": sorted(k.permissions),
                "nonce_unit": k.nonce_unit,
                "nonce_window": k.nonce_window,
                **({"account": k.account} if k.account else {}),
                **({"trading": dataclasses.asdict(k.trading)} if k.trading else {}),
            }
            for k in scenario.keys
        ],
    }


@contextmanager
def simulator_process(scenario: Scenario, workdir: Path) -> Iterator[str]:
    """``python -m simulator`` for ``scenario`` in its own process; yields its URL once it prints
    its listening lines (REST, then WebSocket: :func:`ws_url_for` knows the second). Stopped
    with SIGTERM (then killed) on exit."""
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
    url = ""
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            proc.kill()
            _, err = proc.communicate(timeout=10)
            raise RuntimeError(f"the simulator did not start ({line!r}): {err.strip()[-500:]}")
        url = line.removeprefix("listening on ")
        ws_line = proc.stdout.readline().strip()
        if ws_line.startswith("listening on ws"):
            _PROCESS_WS_URLS[url] = ws_line.removeprefix("listening on ")
        yield url
    finally:
        _PROCESS_WS_URLS.pop(url, None)
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
