"""Real processes for tests and benchmarks: start, wait until healthy, stop the whole group.

Every process is started in a new session (its own process group), so stopping it also stops what
it started (Streamlit's workers, a demo's simulator thread pool).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .env import clean_environ, subprocess_environ
from .net import free_port, http_get

__all__ = [
    "UpProcess",
    "assert_one_line_error",
    "krakenwatch",
    "rss_mib",
    "run_krakenwatch",
    "spawn",
    "start_healthy",
    "start_up",
    "stop_group",
    "up_process",
    "wait_healthy",
]

#: ``krakenwatch`` as a module, so the repository's code runs whatever is on PATH
KRAKENWATCH = (sys.executable, "-m", "dashboard.cli")


def krakenwatch(*args: str) -> list[str]:
    """The argv of ``krakenwatch ARGS`` run by this interpreter."""
    return [*KRAKENWATCH, *args]


def run_krakenwatch(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``krakenwatch ARGS`` to completion with ``env`` (over a clean environment that can import
    the repository), its output captured as text."""
    return subprocess.run(
        krakenwatch(*args),
        env=subprocess_environ(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_one_line_error(
    result: subprocess.CompletedProcess[str], *culprits: str, prefix: str = ""
) -> None:
    """A command's refusal: exit code 2, one line on stderr (starting with ``prefix``) naming
    every culprit, no traceback, nothing on stdout."""
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    for culprit in culprits:
        assert culprit in lines[0], lines[0]


def spawn(
    argv: Sequence[str], log: Path, *, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session with stdout+stderr appended to ``log``; ``env`` is added
    to a clean environment (never the caller's KRAKEN_* variables)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            list(argv),
            env=clean_environ(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_healthy(proc: subprocess.Popen[Any], url: str, log: Path, timeout: float = 90.0) -> None:
    """Until ``url`` answers 200; ``RuntimeError`` with the log's tail if ``proc`` exits first or
    ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if http_get(url, timeout=2)[0] == 200:
                return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            state = f"exited {proc.returncode}" if proc.poll() is not None else "not healthy"
            raise RuntimeError(f"{proc.args!r}: {state} at {url}\n{tail}")
        time.sleep(0.2)


def start_healthy(
    argv: Sequence[str],
    health_url: str,
    log: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 90.0,
) -> subprocess.Popen[bytes]:
    """:func:`spawn` then :func:`wait_healthy`; the process is stopped if it never gets healthy."""
    proc = spawn(argv, log, env=env, cwd=cwd)
    try:
        wait_healthy(proc, health_url, log, timeout)
    except BaseException:
        stop_group(proc)
        raise
    return proc


def stop_group(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, grace: float = 15.0) -> int:
    """Stop a process started in its own session, and its children: ``sig``, then SIGKILL after
    ``grace`` s. Returns the exit code."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    return int(proc.returncode)


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` (VmRSS) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


@dataclass
class UpProcess:
    """A running ``krakenwatch up`` (or ``demo``) and its base URL."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def get(self, path: str, timeout: float = 10.0) -> tuple[int, str]:
        status, _, body = http_get(self.url + path, timeout=timeout)
        return status, body

    def verify(self) -> dict[str, Any]:
        return dict(json.loads(self.get("/api/verify")[1]))

    def wait_checked(self, timeout: float = 60.0) -> tuple[int, dict[str, Any]]:
        """Until no required check is pending any more (passing or failing); the HTTP status and
        the verify document."""
        deadline = time.monotonic() + timeout
        while True:
            status, body = self.get("/api/verify")
            doc = dict(json.loads(body))
            checks = doc.get("checks") or []
            if checks and not any(c["required"] and c["status"] == "pending" for c in checks):
                return status, doc
            if time.monotonic() > deadline:
                raise RuntimeError(f"required checks still pending after {timeout:.0f} s: {doc}")
            time.sleep(0.2)

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


def start_up(
    env: Mapping[str, str],
    workdir: Path,
    port: int,
    *,
    command: str = "up",
    args: Sequence[str] = (),
) -> subprocess.Popen[bytes]:
    """``krakenwatch up`` (or ``command``) on ``port`` with ``env``, its output appended to
    ``workdir/<command>.log``; returns once ``/_stcore/health`` answers."""
    return start_healthy(
        krakenwatch(command, "--port", str(port), *args),
        f"http://127.0.0.1:{port}/_stcore/health",
        workdir / f"{command}.log",
        env=subprocess_environ(env),
        cwd=workdir,
    )


@contextlib.contextmanager
def up_process(
    env: Mapping[str, str],
    workdir: Path,
    *,
    command: str = "up",
    args: Sequence[str] = (),
    port: int | None = None,
) -> Iterator[UpProcess]:
    """:func:`start_up` on a free loopback port (unless ``port``); its process group is stopped
    after the block."""
    port = port or free_port()
    proc = start_up(env, workdir, port, command=command, args=args)
    try:
        yield UpProcess(proc, f"http://127.0.0.1:{port}", workdir / f"{command}.log")
    finally:
        stop_group(proc)
