"""The signing gateway for tests and benchmarks: in a thread of this process, or as the real
``krakenwatch gateway`` process (stopped with its process group)."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broker import AccountConfig
from broker.paths import nonce_store_dir
from gateway import Gateway, GatewaySettings
from gateway.server import GatewayThread

from .env import subprocess_environ
from .net import eventually, free_port
from .procs import krakenwatch, run_krakenwatch, spawn, stop_group

__all__ = [
    "DemoBot",
    "GatewayProcess",
    "account",
    "account_environ",
    "add_client",
    "demo_bot",
    "gateway_process",
    "gateway_thread",
]

LISTENING = "gateway listening on "


def account(key: str, secret: str, label: str = "MASTER", **fields: Any) -> AccountConfig:
    """An account as discovery would build it (``USER:<name>`` labels get their prefix)."""
    prefix = "MASTER" if label == "MASTER" else "USER_" + label.removeprefix("USER:").upper()
    return AccountConfig(label, prefix, key, secret, **fields)


def account_environ(
    accounts: Mapping[str, tuple[str, str]], api_url: str, data_dir: Path
) -> dict[str, str]:
    """The KRAKEN_* variables for ``{label: (key, secret)}`` plus the API URL and data dir."""
    env = {"KRAKEN_API_URL": api_url, "KRAKENWATCH_DATA_DIR": str(data_dir)}
    for label, (key, secret) in accounts.items():
        prefix = account(key, secret, label).prefix
        env[f"KRAKEN_{prefix}_API_KEY"] = key
        env[f"KRAKEN_{prefix}_API_SECRET"] = secret
    return env


@contextlib.contextmanager
def gateway_thread(
    accounts: Sequence[AccountConfig], api_url: str, data_dir: Path, **settings: Any
) -> Iterator[GatewayThread]:
    """A :class:`~gateway.Gateway` for ``accounts`` in front of ``api_url``, served on a free
    loopback port in a thread of this process; ``settings`` override :class:`GatewaySettings`."""
    config = GatewaySettings(api_url=api_url, store_dir=nonce_store_dir(data_dir), **settings)
    with GatewayThread(Gateway(accounts, config)) as server:
        yield server


@dataclass
class GatewayProcess:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@contextlib.contextmanager
def gateway_process(
    env: Mapping[str, str], workdir: Path, args: Sequence[str] = (), *, timeout: float = 60.0
) -> Iterator[GatewayProcess]:
    """``krakenwatch gateway --port <free> ARGS`` with ``env`` (cwd ``workdir``, output in
    ``workdir/gateway.log``); yields once it printed its listening line; stopped after."""
    port = free_port()
    log = workdir / "gateway.log"
    proc = spawn(
        krakenwatch("gateway", "--port", str(port), *args),
        log,
        env=subprocess_environ(env),
        cwd=workdir,
    )
    running = GatewayProcess(proc, f"http://127.0.0.1:{port}", log)
    try:

        def listening() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"the gateway exited {proc.returncode}:\n{running.output()}")
            return any(
                line.startswith(LISTENING) and line.endswith(f":{port}")
                for line in running.output().splitlines()
            )

        eventually(listening, timeout, what="the gateway to listen", on_timeout=running.output)
        yield running
    finally:
        stop_group(proc)


def add_client(
    env: Mapping[str, str], workdir: Path, name: str, account: str = "MASTER", *args: str
) -> tuple[str, str]:
    """``krakenwatch gateway add-client NAME --account ACCOUNT ARGS`` (a real process): the key
    and secret it printed."""
    done = run_krakenwatch(
        "gateway", "add-client", name, "--account", account, *args, env=env, cwd=workdir
    )
    if done.returncode != 0:
        raise RuntimeError(f"add-client {name} exited {done.returncode}: {done.stderr.strip()}")
    lines = dict(
        line.split("=", 1) for line in done.stdout.splitlines() if not line.startswith("#")
    )
    return lines["KRAKEN_API_KEY"], lines["KRAKEN_API_SECRET"]


@dataclass(frozen=True)
class DemoBot:
    """What ``krakenwatch demo --gateway`` prints for a bot to try the gateway."""

    key: str
    secret: str
    gateway_url: str


def demo_bot(output: str) -> DemoBot:
    """The demo key, secret and gateway URL from ``demo --gateway``'s output."""
    lines = output.splitlines()
    said = dict(
        line.removeprefix("demo bot: ").split("=", 1) for line in lines if "bot: KRAKEN_" in line
    )
    url = next(line.split()[1] for line in lines if line.startswith("gateway: http"))
    return DemoBot(said["KRAKEN_API_KEY"], said["KRAKEN_API_SECRET"], url)
