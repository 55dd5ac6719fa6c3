"""The nonce store of the multi-host suite: a Redis primary, its replicas and three Sentinels, each
a host of a :class:`~testkit.netns.Lab` on its ``store`` network (started with
:mod:`testkit.redis` and :mod:`testkit.sentinel`, their readiness asked through ``ip netns exec``).

:class:`StoreGroup` knows which server is the primary now (the Sentinels are asked after each
failover) and waits until every replica follows it and every Sentinel knows them.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

from .netns import Lab
from .redis import RedisServer
from .sentinel import NAME, SentinelServer, sentinel_spec

__all__ = ["REDIS_PORT", "SENTINEL_PORT", "StoreGroup", "start_store"]

REDIS_PORT = 6379
SENTINEL_PORT = 26379


def _flags(listing: str) -> list[str]:
    """The ``flags`` of each replica in ``SENTINEL replicas``' output (key and value lines)."""
    lines = listing.splitlines()
    return [value for key, value in zip(lines[::2], lines[1::2], strict=False) if key == "flags"]


@dataclass
class StoreGroup:
    #: by host name
    servers: dict[str, RedisServer]
    sentinels: list[SentinelServer]
    #: the host name of the primary now
    primary: str
    name: str = NAME

    @property
    def replicas(self) -> list[str]:
        return [name for name in self.servers if name != self.primary]

    def spec(self, **query: object) -> str:
        return sentinel_spec(self.sentinels, self.name, **query)

    def named_primary(self) -> str | None:
        """The host a majority of the Sentinels names the primary now (None: no majority)."""
        named = [s.primary() for s in self.sentinels]
        by_address = {server.address: host for host, server in self.servers.items()}
        for address in set(named):
            if address is not None and named.count(address) * 2 > len(named):
                return by_address.get(address)
        return None

    def in_sync(self) -> bool:
        """Every replica follows the primary, link up, and every Sentinel names the primary and
        knows every replica, none of them down."""
        primary = self.servers[self.primary]
        for name in self.replicas:
            info = self.servers[name].cli("INFO", "replication")
            if "master_link_status:up" not in info or f"master_host:{primary.host}" not in info:
                return False
        for sentinel in self.sentinels:
            if sentinel.primary() != primary.address:
                return False
            flags = _flags(sentinel.cli("SENTINEL", "replicas", self.name))
            if len(flags) < len(self.replicas) or any(
                "s_down" in f or "disconnected" in f for f in flags
            ):
                return False
        return True

    def wait_in_sync(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.in_sync():
            if time.monotonic() > deadline:
                raise AssertionError(f"the replicas of {self.primary} never came in sync")
            time.sleep(0.1)


def start_store(
    lab: Lab,
    workdir: Path,
    stack: contextlib.ExitStack,
    *,
    replicas: int = 1,
    down_after_ms: int = 1000,
    failover_timeout_ms: int = 4000,
    timeout: float = 60.0,
) -> StoreGroup:
    """``redis1`` (the primary), ``redis2..`` (its ``replicas``) and ``sentinel1..3`` (quorum 2),
    each a new host of ``lab``; stopped by ``stack``. Returns once the replicas are in sync."""
    servers: dict[str, RedisServer] = {}
    for index in range(1, replicas + 2):
        host = lab.add_host(f"redis{index}", ["store"])
        server = RedisServer(
            workdir / host.name,
            host=host.address("store"),
            port=REDIS_PORT,
            replica_of=servers["redis1"].address if servers else None,
            prefix=host.prefix,
        )
        stack.callback(server.stop, kill=True)
        servers[host.name] = server.start()
    sentinels = []
    for index in (1, 2, 3):
        host = lab.add_host(f"sentinel{index}", ["store"])
        sentinel = SentinelServer(
            workdir / host.name,
            monitor=servers["redis1"].address,
            host=host.address("store"),
            port=SENTINEL_PORT,
            down_after_ms=down_after_ms,
            failover_timeout_ms=failover_timeout_ms,
            prefix=host.prefix,
        )
        stack.callback(sentinel.stop, kill=True)
        sentinels.append(sentinel.start())
    group = StoreGroup(servers, sentinels, "redis1")
    group.wait_in_sync(timeout)
    return group
