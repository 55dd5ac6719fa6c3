"""A real ``redis-server`` (Debian's package) for tests and benchmarks: a free port on 127.0.0.1
(or a given address and port, run through a command ``prefix`` such as ``ip netns exec NS``), a
temporary directory, stopped (or killed, restarted, made a replica) by the caller.

:class:`RedisProcess` is what a ``redis-server`` and a ``redis-sentinel`` share: the command line
run through the prefix, the log, waiting until it answers ``PING`` (asked with ``redis-cli``
through the same prefix, so it works inside a network namespace), and stopping it.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from .net import free_port

__all__ = ["RedisProcess", "RedisServer", "redis_cli", "redis_server"]


def redis_cli(
    host: str, port: int, *args: str, prefix: Sequence[str] = (), timeout: float = 5.0
) -> str:
    """``redis-cli -h host -p port args...`` through ``prefix``; its output ("" when it failed)."""
    binary = shutil.which("redis-cli")
    assert binary, "redis-cli is not installed: make system-deps (Debian package redis-tools)"
    try:
        done = subprocess.run(
            [*prefix, binary, "-h", host, "-p", str(port), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


class RedisProcess:
    """A ``redis-server`` or ``redis-sentinel`` process (see the module docstring)."""

    binary_name = "redis-server"

    def __init__(
        self,
        workdir: Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        prefix: Sequence[str] = (),
    ):
        self.workdir = workdir
        self.host = host
        self.port = free_port() if port is None else port
        self.prefix = list(prefix)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def argv(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 15.0) -> RedisProcess:
        binary = shutil.which(self.binary_name)
        assert binary, (
            f"{self.binary_name} is not installed: make system-deps "
            f"(Debian package {self.binary_name})"
        )
        self.workdir.mkdir(parents=True, exist_ok=True)
        with (self.workdir / "redis.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [*self.prefix, binary, *self.argv()], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while not self.answers():
            assert self.proc.poll() is None, self.log_tail()
            assert time.monotonic() < deadline, f"{self.binary_name} did not start"
            time.sleep(0.02)
        return self

    def answers(self) -> bool:
        return self.cli("PING", timeout=1.0) == "PONG"

    def cli(self, *args: str, timeout: float = 5.0) -> str:
        """A ``redis-cli`` command against this process; its output ("" when it failed)."""
        return redis_cli(self.host, self.port, *args, prefix=self.prefix, timeout=timeout)

    def log_tail(self) -> str:
        return (self.workdir / "redis.log").read_text(errors="replace")[-2000:]

    def stop(self, *, kill: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            self.proc.wait(15)
        self.proc = None


class RedisServer(RedisProcess):
    def __init__(
        self,
        workdir: Path,
        *,
        appendonly: bool = False,
        replica_of: int | tuple[str, int] | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        prefix: Sequence[str] = (),
    ):
        super().__init__(workdir, host=host, port=port, prefix=prefix)
        # protected mode refuses every client but loopback ones when there is no password: off
        # only for an address inside a network namespace a test made (nothing else reaches it)
        self.protected = host in ("127.0.0.1", "localhost", "::1")
        self.appendonly = appendonly
        self.replica_of = (host, replica_of) if isinstance(replica_of, int) else replica_of

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def argv(self) -> list[str]:
        argv = [
            "--bind", self.host,
            "--port", str(self.port),
            "--dir", str(self.workdir),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--protected-mode", "yes" if self.protected else "no",
            # a replica that (re)joins is synced at once, not 5 s later
            "--repl-diskless-sync-delay", "0",
        ]  # fmt: skip
        if self.replica_of is not None:
            argv += ["--replicaof", self.replica_of[0], str(self.replica_of[1])]
        return argv

    def start(self, timeout: float = 15.0) -> RedisServer:
        super().start(timeout)
        return self


@contextlib.contextmanager
def redis_server(
    workdir: Path, *, appendonly: bool = False, replica_of: int | None = None
) -> Iterator[RedisServer]:
    server = RedisServer(workdir, appendonly=appendonly, replica_of=replica_of).start()
    try:
        yield server
    finally:
        server.stop(kill=True)
