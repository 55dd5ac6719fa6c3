"""Running ``krakenwatch up`` as a real process for the dashboard and soak benchmarks."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .kit import subprocess_environ

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "UpProcess",
    "free_port",
    "rss_mib",
    "stop_group",
    "up_process",
]

CHROMIUM = "/usr/bin/chromium"
#: flags for Debian's Chromium on a machine with no network beyond loopback
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` (VmRSS) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


@dataclass
class UpProcess:
    proc: subprocess.Popen[bytes]
    url: str

    def get(self, path: str, timeout: float = 10.0) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as response:  # noqa: S310
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def verify(self) -> dict[str, Any]:
        return dict(json.loads(self.get("/api/verify")[1]))

    def wait_verified(self, n: int, timeout: float = 180.0) -> None:
        """Until the ``n`` accounts are configured and every required check passes."""
        deadline = time.monotonic() + timeout
        while True:
            doc = self.verify()
            if doc.get("ok") is True and len(doc.get("accounts") or []) == n:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{n} accounts not verified within {timeout:.0f} s")
            time.sleep(0.5)


@contextlib.contextmanager
def up_process(env: Mapping[str, str], workdir: Path) -> Iterator[UpProcess]:
    """``krakenwatch up`` on a free loopback port with ``env``; healthy when yielded."""
    port = free_port()
    log = (workdir / "up.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dashboard.cli", "up", "--port", str(port)],
        env=subprocess_environ(env),
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    up = UpProcess(proc, f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if up.get("/_stcore/health", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"krakenwatch up did not start: {(workdir / 'up.log').read_text()[-800:]}"
                )
            time.sleep(0.2)
        yield up
    finally:
        stop_group(proc)
        log.close()


def stop_group(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM) -> None:
    """Stop a process started with ``start_new_session=True`` and its children: ``sig``, then
    SIGKILL after 15 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
