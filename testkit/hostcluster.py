"""The cluster of the multi-host fault suite, each member a host of a :class:`testkit.netns.Lab`:

* ``redis1`` (the primary) and ``redis2``, ``redis3`` (its replicas: see
  :attr:`ClusterSettings.redis_replicas`), ``sentinel1..3`` (quorum 2, a short
  ``down-after-milliseconds``) on the ``store`` network (:mod:`testkit.hoststore`);
* ``kraken``: the simulator (``python -m simulator --host <its address> --port 0``) on the
  ``kraken`` network, with a few keys, a little latency, no rate limit, no lockout, and its
  request journal (:mod:`simulator.journal`);
* ``gw1..3`` on both networks: each runs ``krakenwatch gateway`` on its own loopback (its own data
  dir and runtime dir), every one on the same nonce store (``redis-sentinel://s1,s2,s3/kwmaster``
  with a short lease), and its bots (:mod:`testkit.hostbots`) calling that gateway on every key.

:func:`cluster` builds it all and tears it all down (processes, links, namespaces), also when the
block fails. The rounds of faults are in :mod:`testkit.hostfaults`, the checker in
:mod:`testkit.hostcheck`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator import KeySpec, Scenario

from .env import ROOT, subprocess_environ
from .gateway import LISTENING, account_environ
from .hoststore import StoreGroup, start_store
from .net import eventually
from .netns import Host, Lab
from .procs import krakenwatch
from .sim import make_key, scenario_document

__all__ = ["Cluster", "ClusterSettings", "GatewayHost", "cluster"]

GATEWAY_PORT = 8788
STARTUP_S = 60.0
_FETCH = (
    "import sys, urllib.request as u\n"
    "sys.stdout.write(u.urlopen(sys.argv[1], timeout=20).read().decode())"
)


@dataclass(frozen=True)
class ClusterSettings:
    gateways: int = 3
    keys: int = 2
    #: bot threads per key on each gateway host
    threads: int = 2
    lease_s: float = 5.0
    #: ``KRAKENWATCH_REQUEST_TIMEOUT`` of the gateways (below the lease)
    request_timeout_s: float = 3.0
    latency_ms: tuple[float, float] = (2.0, 6.0)
    down_after_ms: int = 1000
    failover_timeout_ms: int = 4000
    #: ``sentinel``: the gateways find the primary through the Sentinels; ``redis``: the primary's
    #: URL (no failover); ``file``: no Redis, each host its own file store (the contrast: nothing
    #: coordinates the hosts)
    store: str = "sentinel"
    #: replicas of the Redis primary. Two, so that the new primary of a failover still has one
    #: to acknowledge writes (``WAIT``) while the old primary is cut off: with one, no write can
    #: be acknowledged until the old primary is back and a replica again, which Sentinel does
    #: some 10 s after it is reachable; then the full resync (5 s later still with Redis' default
    #: ``repl-diskless-sync-delay``; :mod:`testkit.redis` runs with 0)
    redis_replicas: int = 2
    #: ``replicas=N`` in the store spec (``None``: the broker's default)
    wait_replicas: int | None = None


@dataclass
class GatewayHost:
    host: Host
    workdir: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    starts: int = 0
    bots: subprocess.Popen[bytes] | None = None
    bot_log: Path | None = None

    @property
    def name(self) -> str:
        return self.host.name

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log and self.log.exists() else ""


@dataclass
class Cluster:
    lab: Lab
    workdir: Path
    settings: ClusterSettings
    keys: list[tuple[str, str, str]] = field(default_factory=list)
    sim_host: Host | None = None
    sim_url: str = ""
    sim_ws_url: str = ""
    store: StoreGroup | None = None
    gateways: list[GatewayHost] = field(default_factory=list)
    store_spec: str = ""

    # ------------------------------------------------------------------ the simulator
    def start_simulator(self) -> None:
        host = self.lab.add_host("kraken", ["kraken"])
        self.sim_host = host
        specs = [KeySpec(key=k, secret=s, name=n) for n, k, s in self.keys]
        scenario = Scenario(
            keys=specs, tier="unlimited", lockout_threshold=0, latency_ms=self.settings.latency_ms
        )
        workdir = self.workdir / "kraken"
        workdir.mkdir(parents=True)
        path = workdir / "scenario.json"
        path.write_text(json.dumps(scenario_document(scenario)), encoding="utf-8")
        argv = [sys.executable, "-m", "simulator", "--host", host.address("kraken")]
        argv += ["--port", "0", "--scenario", str(path)]
        log = workdir / "simulator.log"
        proc = host.spawn(argv, log, env=subprocess_environ(), cwd=workdir)

        def listening() -> list[str] | None:
            if proc.poll() is not None:
                raise RuntimeError(f"the simulator exited {proc.returncode}: {log.read_text()}")
            lines = [ln for ln in log.read_text().splitlines() if ln.startswith("listening on ")]
            return lines if len(lines) >= 2 else None

        lines = eventually(listening, STARTUP_S, what="the simulator to listen")
        self.sim_url = lines[0].removeprefix("listening on ")
        self.sim_ws_url = lines[1].removeprefix("listening on ")

    def sim_get(self, path: str) -> Any:
        """``GET`` a ``/_sim/`` route of the simulator, from inside its host; the JSON answer."""
        assert self.sim_host is not None
        done = self.sim_host.run([sys.executable, "-c", _FETCH, self.sim_url + path], timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"GET {path} at the simulator: {done.stderr.strip()[-500:]}")
        return json.loads(done.stdout)

    # ------------------------------------------------------------------ Redis and Sentinel
    def start_store(self, stack: contextlib.ExitStack) -> None:
        settings = self.settings
        self.store = start_store(
            self.lab,
            self.workdir,
            stack,
            replicas=settings.redis_replicas,
            down_after_ms=settings.down_after_ms,
            failover_timeout_ms=settings.failover_timeout_ms,
            timeout=STARTUP_S,
        )
        query: dict[str, object] = {"lease": f"{settings.lease_s:g}"}
        if settings.wait_replicas is not None:
            query["replicas"] = settings.wait_replicas
        if settings.store == "sentinel":
            self.store_spec = self.store.spec(**query)
        else:
            self.store_spec = f"{self.store.servers['redis1'].url}?lease={settings.lease_s:g}"

    # ------------------------------------------------------------------ gateways and bots
    def add_gateway(self, index: int) -> GatewayHost:
        host = self.lab.add_host(f"gw{index}")
        workdir = self.workdir / host.name
        runtime = workdir / "run"
        runtime.mkdir(parents=True, mode=0o700)
        accounts = {
            label: (k, s) for label, (_n, k, s) in zip(_labels(self.keys), self.keys, strict=True)
        }
        env = {
            **account_environ(accounts, self.sim_url, workdir / "data"),
            "KRAKEN_WS_AUTH_URL": self.sim_ws_url,
            "XDG_RUNTIME_DIR": str(runtime),
            "KRAKENWATCH_NONCE_STORE": self.store_spec,
            "KRAKENWATCH_REQUEST_TIMEOUT": f"{self.settings.request_timeout_s:g}",
        }
        gateway = GatewayHost(host, workdir, env)
        self.gateways.append(gateway)
        return gateway

    def start_gateway(self, gateway: GatewayHost) -> None:
        """Start ``krakenwatch gateway`` on the host's loopback (returns at once)."""
        gateway.starts += 1
        gateway.log = gateway.workdir / f"gateway-{gateway.starts}.log"
        argv = krakenwatch(
            "gateway", "--host", "127.0.0.1", "--port", str(GATEWAY_PORT), "--no-rate-model"
        )
        gateway.proc = gateway.host.spawn(
            argv, gateway.log, env=subprocess_environ(gateway.env), cwd=gateway.workdir
        )

    def wait_listening(self, gateway: GatewayHost, timeout: float = STARTUP_S) -> None:
        proc = gateway.proc
        assert proc is not None

        def listening() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{gateway.name}: the gateway exited {proc.returncode}:\n"
                    f"{gateway.output()[-3000:]}"
                )
            return any(line.startswith(LISTENING) for line in gateway.output().splitlines())

        eventually(
            listening,
            timeout,
            what=f"the gateway on {gateway.name} to listen",
            on_timeout=gateway.output,
        )

    def signal_gateway(self, gateway: GatewayHost, sig: int) -> None:
        assert gateway.proc is not None
        os.kill(gateway.proc.pid, sig)
        if sig == signal.SIGKILL:
            gateway.proc.wait(10)

    def start_bots(self, gateway: GatewayHost) -> None:
        job = {
            "host": gateway.name,
            "url": f"http://127.0.0.1:{GATEWAY_PORT}",
            "keys": [list(k) for k in self.keys],
            "threads": self.settings.threads,
            "log": str(gateway.workdir / "bots.jsonl"),
        }
        path = gateway.workdir / "bots.json"
        path.write_text(json.dumps(job), encoding="utf-8")
        gateway.bot_log = gateway.workdir / "bots.jsonl"
        argv = [sys.executable, "-m", "testkit.hostbots", str(path)]
        gateway.bots = gateway.host.spawn(
            argv, gateway.workdir / "bots.log", env=subprocess_environ(), cwd=ROOT
        )

    def stop_bots(self) -> None:
        """SIGTERM every bot process, then wait for them (each finishes its calls)."""
        running = [g.bots for g in self.gateways if g.bots is not None and g.bots.poll() is None]
        for proc in running:
            proc.send_signal(signal.SIGTERM)
        for proc in running:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def _labels(keys: list[tuple[str, str, str]]) -> list[str]:
    """MASTER for the first key, USER:<name> for the others."""
    return ["MASTER"] + [f"USER:{name}" for name, _k, _s in keys[1:]]


@contextlib.contextmanager
def cluster(workdir: Path, settings: ClusterSettings | None = None) -> Iterator[Cluster]:
    """The whole cluster, running and bots calling (see the module); torn down on exit."""
    settings = settings or ClusterSettings()
    with Lab() as lab, contextlib.ExitStack() as stack:
        found = Cluster(lab, workdir, settings)
        found.keys = [(f"k{i}", *make_key(f"hosts-{lab.id}-k{i}")) for i in range(settings.keys)]
        found.start_simulator()
        if settings.store == "file":
            found.store_spec = "file"
        else:
            found.start_store(stack)
        for index in range(1, settings.gateways + 1):
            found.start_gateway(found.add_gateway(index))
        for gateway in found.gateways:
            found.wait_listening(gateway)
        for gateway in found.gateways:
            found.start_bots(gateway)
        try:
            yield found
        finally:
            found.stop_bots()
