"""A real ``redis-server`` (Debian's package) for tests and benchmarks: a free port on 127.0.0.1,
a temporary directory, stopped (or killed, restarted, made a replica) by the caller."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from .net import free_port

__all__ = ["RedisServer", "redis_server"]


class RedisServer:
    def __init__(self, workdir: Path, *, appendonly: bool = False, replica_of: int | None = None):
        self.workdir = workdir
        self.port = free_port()
        self.appendonly = appendonly
        self.replica_of = replica_of
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        assert binary, (
            "redis-server is not installed: make system-deps (Debian package redis-server)"
        )
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv = [
            binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.workdir),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--protected-mode", "yes",
        ]  # fmt: skip
        if self.replica_of is not None:
            argv += ["--replicaof", "127.0.0.1", str(self.replica_of)]
        log = (self.workdir / "redis.log").open("ab")
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 15
        while not self._answers():
            assert self.proc.poll() is None, (self.workdir / "redis.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)
        return self

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, *, kill: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            self.proc.wait(15)
        self.proc = None


@contextlib.contextmanager
def redis_server(
    workdir: Path, *, appendonly: bool = False, replica_of: int | None = None
) -> Iterator[RedisServer]:
    server = RedisServer(workdir, appendonly=appendonly, replica_of=replica_of).start()
    try:
        yield server
    finally:
        server.stop(kill=True)
