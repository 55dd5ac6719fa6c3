"""Redis Sentinel for tests and benchmarks: ``redis-sentinel`` processes (Debian's package)
watching a primary, a primary + replica + three Sentinels on 127.0.0.1 (:func:`sentinel_group`),
and the ``redis-sentinel://`` spec that names them.

Sentinel rewrites its own configuration file, so each one gets a fresh file in its directory.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from .redis import RedisProcess, RedisServer
from .relay import Relay

__all__ = ["SentinelGroup", "SentinelServer", "sentinel_group", "sentinel_spec"]

NAME = "kwmaster"


class SentinelServer(RedisProcess):
    binary_name = "redis-sentinel"

    def __init__(
        self,
        workdir: Path,
        *,
        monitor: tuple[str, int],
        name: str = NAME,
        host: str = "127.0.0.1",
        port: int | None = None,
        quorum: int = 2,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 10_000,
        prefix: Sequence[str] = (),
    ):
        super().__init__(workdir, host=host, port=port, prefix=prefix)
        self.monitor = monitor
        self.name = name
        self.quorum = quorum
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms

    def argv(self) -> list[str]:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "sentinel.conf"
        config.write_text(
            f"bind {self.host}\n"
            f"port {self.port}\n"
            f"dir {self.workdir}\n"
            f"sentinel monitor {self.name} {self.monitor[0]} {self.monitor[1]} {self.quorum}\n"
            f"sentinel down-after-milliseconds {self.name} {self.down_after_ms}\n"
            f"sentinel failover-timeout {self.name} {self.failover_timeout_ms}\n"
            f"sentinel parallel-syncs {self.name} 1\n",
            encoding="utf-8",
        )
        return [str(config)]

    def primary(self) -> tuple[str, int] | None:
        """The primary this Sentinel names now (None when it does not answer)."""
        lines = self.cli("SENTINEL", "get-master-addr-by-name", self.name, timeout=2.0).split()
        return (lines[0], int(lines[1])) if len(lines) == 2 else None

    def start(self, timeout: float = 15.0) -> SentinelServer:
        super().start(timeout)
        return self


def sentinel_spec(sentinels: Sequence[RedisProcess], name: str = NAME, **query: object) -> str:
    """``redis-sentinel://h1:p1,h2:p2,.../NAME[?query]`` for ``sentinels``."""
    hosts = ",".join(f"{s.host}:{s.port}" for s in sentinels)
    tail = f"?{urlencode(query)}" if query else ""
    return f"redis-sentinel://{hosts}/{name}{tail}"


@dataclass
class SentinelGroup:
    """A primary, its replica and three Sentinels (on 127.0.0.1, free ports)."""

    primary: RedisServer
    replica: RedisServer
    sentinels: list[SentinelServer]
    name: str = NAME

    def spec(self, **query: object) -> str:
        return sentinel_spec(self.sentinels, self.name, **query)

    def named_primary(self) -> tuple[str, int] | None:
        """The primary a majority of the Sentinels name now."""
        named = [s.primary() for s in self.sentinels]
        for address in set(named):
            if address is not None and named.count(address) * 2 > len(named):
                return address
        return None

    def wait_primary(self, address: tuple[str, int], timeout: float = 60.0) -> None:
        """Until a majority of Sentinels names ``address`` and it answers as a primary."""
        deadline = time.monotonic() + timeout
        server = self.server_at(address)
        while not (
            self.named_primary() == address and "role:master" in server.cli("INFO", "replication")
        ):
            assert time.monotonic() < deadline, f"the Sentinels never named {address} the primary"
            time.sleep(0.05)

    def server_at(self, address: tuple[str, int]) -> RedisServer:
        return self.primary if self.primary.address == address else self.replica

    def wait_replicated(self, timeout: float = 30.0) -> None:
        """Until the Sentinels name a primary that has an online replica, and every Sentinel
        knows a replica (after a failover: once the old primary came back as one)."""
        deadline = time.monotonic() + timeout
        while not self._in_sync():
            assert time.monotonic() < deadline, "the replica never came in sync"
            time.sleep(0.05)

    def rejoin_old_primary(self, timeout: float = 60.0) -> None:
        """After a failover to the replica: start the old primary again as the new primary's
        replica (never empty and in charge: the Sentinels could fail back to it), and wait until
        it is in sync and the replica is still the one named."""
        self.primary.replica_of = self.replica.address
        self.primary.start()
        self.wait_replicated(timeout)
        assert self.named_primary() == self.replica.address, "the Sentinels failed back"

    def wait_caught_up(self, timeout: float = 30.0) -> None:
        """Until the primary's replica has acknowledged everything the primary had now."""
        named = self.named_primary()
        assert named is not None, "no primary to catch up with"
        server = self.server_at(named)
        target = int(_info(server)["master_repl_offset"])
        deadline = time.monotonic() + timeout
        while True:
            offsets = _replica_offsets(_info(server))
            if offsets and min(offsets) >= target:
                return
            assert time.monotonic() < deadline, "the replica never caught up"
            time.sleep(0.05)

    def _in_sync(self) -> bool:
        named = self.named_primary()
        if named is None:
            return False
        info = self.server_at(named).cli("INFO", "replication")
        if "role:master" not in info or "state=online" not in info:
            return False
        return all(
            s.cli("SENTINEL", "replicas", self.name).splitlines().count("ip") >= 1
            for s in self.sentinels
        )

    def stop(self) -> None:
        for process in (*self.sentinels, self.replica, self.primary):
            process.stop(kill=True)


def _info(server: RedisServer) -> dict[str, str]:
    """``INFO replication`` as fields."""
    lines = server.cli("INFO", "replication").splitlines()
    return dict(line.split(":", 1) for line in lines if ":" in line)


def _replica_offsets(info: dict[str, str]) -> list[int]:
    """The acknowledged offsets of the replicas online in a primary's ``INFO replication``."""
    found = []
    for name, value in info.items():
        fields = dict(f.split("=", 1) for f in value.split(",") if "=" in f)
        if name.startswith("slave") and fields.get("state") == "online":
            found.append(int(fields["offset"]))
    return found


@contextlib.contextmanager
def sentinel_group(
    workdir: Path, *, down_after_ms: int = 1000, through: Relay | None = None
) -> Iterator[SentinelGroup]:
    """A primary + replica + three Sentinels on 127.0.0.1, the replica in sync; all killed after.
    ``through``: the replica replicates through that relay (made for the primary's address)."""
    primary = RedisServer(workdir / "primary", port=through.target[1] if through else None)
    upstream = ("127.0.0.1", through.port) if through else primary.address
    replica = RedisServer(workdir / "replica", replica_of=upstream)
    sentinels = [
        SentinelServer(
            workdir / f"sentinel{i}", monitor=primary.address, down_after_ms=down_after_ms
        )
        for i in range(3)
    ]
    group = SentinelGroup(primary, replica, sentinels)
    try:
        primary.start()
        replica.start()
        for sentinel in sentinels:
            sentinel.start()
        group.wait_replicated()
        yield group
    finally:
        group.stop()
