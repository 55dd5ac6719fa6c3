"""Helpers for reliability tests: run `krakenwatch up` as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench.upkit import stop_group as stop  # noqa: F401 (re-exported for the tests)


def start_up(env: dict[str, str], cwd: Path, log: Path, port: int) -> subprocess.Popen[bytes]:
    """`krakenwatch up` on ``port``, waiting until /_stcore/health answers."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KRAKEN_", "KRAKENWATCH_"))}
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dashboard.cli", "up", "--port", str(port)],
            env={**clean, **env},
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"krakenwatch up exited: {log.read_text()}")
        assert time.monotonic() < deadline, "krakenwatch up never became healthy"
        time.sleep(0.2)
