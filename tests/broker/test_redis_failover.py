"""The Redis nonce store through Redis Sentinel (a real primary, replica and three Sentinels on
127.0.0.1), across a failover, with a replica down, and a holder paused past its lease."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from broker import ConfigurationError, KrakenClient, NonceStoreError, NonceStoreUnavailable
from broker.nonce import NonceRecord
from broker.redisstore import RedisStore
from broker.stores import open_store
from broker.storespec import masked_spec, parse_redis_spec
from simulator import Simulator
from testkit.net import eventually
from testkit.redis import redis_server
from testkit.sentinel import SentinelGroup, sentinel_group
from testkit.sim import one_key_simulator

LEASE_S = 2


def client(
    group_or_spec: SentinelGroup | str, sim_url: str, key: str, secret: str, host: Path
) -> KrakenClient:
    spec = group_or_spec if isinstance(group_or_spec, str) else group_or_spec.spec(lease=LEASE_S)
    return KrakenClient(key, secret, base_url=sim_url, store_dir=host, nonce_store=spec)


@contextmanager
def group_and_key(tmp_path: Path, name: str) -> Iterator[tuple[SentinelGroup, Simulator, str, str]]:
    """A primary, a replica and three Sentinels, and a simulator with one key."""
    with (
        sentinel_group(tmp_path / "redis") as group,
        one_key_simulator(name) as (sim, key, secret),
    ):
        yield group, sim, key, secret


def records(server_port: int) -> dict[str, str]:
    """The high-water marks a Redis holds, by Redis key."""
    conn = redis.Redis(host="127.0.0.1", port=server_port, decode_responses=True)
    try:
        return {k: conn.hget(k, "high_water") or "" for k in conn.scan_iter("krakenwatch:nonce:*")}
    finally:
        conn.close()


def test_sentinel_specs_are_parsed_and_named_without_passwords() -> None:
    spec = parse_redis_spec(
        "rediss-sentinel://app:s3cr%40t@10.0.0.1:26379,[fd00::2]:26380,s3/kw/2?lease=9"
        "&sentinel_password=hush"
    )
    assert spec.sentinel is not None
    assert spec.sentinel.addresses == (("10.0.0.1", 26379), ("fd00::2", 26380), ("s3", 26379))
    assert (spec.sentinel.service, spec.sentinel.db, spec.sentinel.ssl) == ("kw", 2, True)
    assert (spec.sentinel.username, spec.sentinel.password) == ("app", "s3cr@t")
    assert spec.sentinel.sentinel_password == "hush"
    assert (spec.lease_s, spec.replicas) == (9.0, 1)  # a replica must have each write by default
    assert parse_redis_spec("redis-sentinel://s1/kw?replicas=0").replicas == 0
    assert parse_redis_spec("redis://h:6379/0").replicas == 0
    shown = masked_spec("redis-sentinel://:s3cret@s1,s2/kw?sentinel_password=hush")
    assert "s3cret" not in shown and "hush" not in shown and "s1,s2/kw" in shown
    for bad, culprit in [
        ("redis-sentinel://s1", "PRIMARY-NAME"),
        ("redis-sentinel://s1:70000/kw", "s1:70000"),
        ("redis-sentinel://s1/kw/db", "PRIMARY-NAME"),
        ("redis-sentinel://s1/kw?replicas=many", "replicas="),
        ("redis-sentinel://:pw@s1/kw?colour=blue", "colour"),
    ]:
        with pytest.raises(ConfigurationError, match="KRAKENWATCH_NONCE_STORE") as caught:
            parse_redis_spec(bad)
        assert culprit in str(caught.value) and "pw@" not in str(caught.value)


@pytest.mark.slow
def test_a_failover_keeps_the_nonces_and_waits_out_a_lease(tmp_path: Path) -> None:
    with group_and_key(tmp_path, "failover") as (group, sim, key, secret):
        api = client(group, sim.url, key, secret, tmp_path / "host-a")
        for _ in range(5):
            assert isinstance(api.call_private("Balance"), dict)
        before = sim.stats(key).last_nonce
        # every write the primary acknowledged reached the replica before its request left
        assert records(group.replica.port) == records(group.primary.port) != {}
        group.primary.stop(kill=True)
        with pytest.raises(NonceStoreUnavailable, match="nothing was sent"):
            api.call_private("Balance")
        group.wait_primary(group.replica.address)
        # the first call on the new primary waits out one lease: the old one may have had a
        # holder whose lease, and writes, never reached the replica (here a store that asks
        # for no replica, so that only the wait protects it)
        quick = client(group.spec(lease=LEASE_S, replicas=0), sim.url, key, secret, tmp_path / "c")
        started = time.monotonic()
        assert isinstance(quick.call_private("Balance"), dict)
        waited = time.monotonic() - started
        with pytest.raises(NonceStoreUnavailable, match="0 of 1 replica"):
            api.call_private("Balance")  # no replica left to keep the writes: fail closed
        group.rejoin_old_primary()
        assert isinstance(api.call_private("Balance"), dict)
        # another host that never saw the old primary goes on too
        other = client(group, sim.url, key, secret, tmp_path / "host-b")
        assert isinstance(other.call_private("Balance"), dict)
        stats = sim.stats(key)
        assert stats.invalid_nonce == 0 and stats.accepted == 8 and stats.max_concurrency == 1
        assert stats.last_nonce > before
        assert waited >= LEASE_S - 0.2, waited
        assert "new primary" in quick.nonce_status().store


@pytest.mark.slow
def test_a_write_no_replica_acknowledged_is_never_sent(tmp_path: Path) -> None:
    with group_and_key(tmp_path, "no-replica") as (group, sim, key, secret):
        api = client(group, sim.url, key, secret, tmp_path / "host")
        assert isinstance(api.call_private("Balance"), dict)
        group.replica.stop(kill=True)
        with pytest.raises(NonceStoreUnavailable, match="0 of 1 replica"):
            api.call_private("Balance")
        assert sim.stats(key).requests == 1
        # a store that asks for no replica trades that safety for availability
        unsafe = client(
            group.spec(lease=LEASE_S, replicas=0), sim.url, key, secret, tmp_path / "h2"
        )
        assert isinstance(unsafe.call_private("Balance"), dict)
        assert sim.stats(key).invalid_nonce == 0


def test_no_sentinel_answering_fails_closed_naming_the_store(tmp_path: Path) -> None:
    with one_key_simulator("no-sentinel") as (sim, key, secret):
        with redis_server(tmp_path / "r") as server:
            port = server.port  # a port nobody listens on once it stopped
        spec = f"redis-sentinel://:topsecret@127.0.0.1:{port}/kw?lease=2"
        api = client(spec, sim.url, key, secret, tmp_path / "host")
        with pytest.raises(NonceStoreUnavailable, match="no Redis primary") as caught:
            api.call_private("Balance")
        assert "topsecret" not in str(caught.value)
        assert sim.stats(key).requests == 0


PAUSED_BOT = """
import os, signal, sys
from broker import KrakenClient, NonceStoreUnavailable
key, secret, url, store, spec = sys.argv[1:]
api = KrakenClient(key, secret, base_url=url, store_dir=store, nonce_store=spec)
try:
    api.forward_private("Balance", before_send=lambda: os.kill(os.getpid(), signal.SIGSTOP))
    print("sent")
except NonceStoreUnavailable as exc:
    print("refused:", exc)
"""


def _stopped(pid: int) -> bool:
    state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    return state == "T"


@pytest.mark.slow
def test_a_holder_paused_past_its_lease_sends_nothing_when_it_wakes(tmp_path: Path) -> None:
    with (
        redis_server(tmp_path / "redis") as server,
        one_key_simulator("paused") as (sim, key, secret),
    ):
        spec = f"{server.url}?lease={LEASE_S}"
        argv = [sys.executable, "-c", PAUSED_BOT, key, secret, sim.url, str(tmp_path / "a"), spec]
        bot = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env={**os.environ})
        try:
            eventually(lambda: _stopped(bot.pid), timeout=30, what="the bot stopped with the key")
            # the key is free once the stopped holder's lease ran out: another host goes on
            other = client(spec, sim.url, key, secret, tmp_path / "b")
            assert isinstance(other.call_private("Balance"), dict)
            os.kill(bot.pid, signal.SIGCONT)
            out, _ = bot.communicate(timeout=30)
        finally:
            if bot.poll() is None:
                bot.kill()
                bot.wait()
        assert out.startswith("refused:") and "may have run out" in out, out
        stats = sim.stats(key)
        assert stats.requests == 1 and stats.invalid_nonce == 0


@pytest.mark.slow
def test_a_lost_lease_and_a_coarser_unit_are_the_stores_errors_through_replicas(
    tmp_path: Path,
) -> None:
    with sentinel_group(tmp_path / "redis") as group:
        store = open_store(group.spec(lease=5), tmp_path / "host")
        assert isinstance(store, RedisStore) and store.replicas == 1
        with store.hold("key-a") as lease:
            lease.write(NonceRecord(1_000_000, "us"))
            with pytest.raises(NonceStoreError, match="coarser unit"):
                lease.write(NonceRecord(5_000, "ms"))
            conn = redis.Redis(host="127.0.0.1", port=group.primary.port)
            conn.delete(store.lock_key("key-a"))  # the lease ran out (or vanished in a failover)
            conn.close()
            with pytest.raises(NonceStoreUnavailable, match="lease on key key-a ran out"):
                lease.write(NonceRecord(2_000_000, "us"))


@pytest.mark.slow
def test_a_command_redis_refuses_fails_closed_naming_it(tmp_path: Path) -> None:
    with group_and_key(tmp_path, "acl") as (group, sim, key, secret):
        # a user that may not run INFO (which the store needs with Sentinels to see a failover)
        group.primary.cli(
            "ACL", "SETUSER", "kw", "on", ">kw-password", "~*", "&*", "+@all", "-info"
        )
        spec = f"redis-sentinel://kw:kw-password@{group.spec(lease=2).partition('://')[2]}"
        api = client(spec, sim.url, key, secret, tmp_path / "host")
        with pytest.raises(NonceStoreUnavailable, match="refused the store's command") as caught:
            api.call_private("Balance")
        assert "kw-password" not in str(caught.value) and sim.stats(key).requests == 0


def test_a_lease_redis_could_not_release_is_released_when_it_is_back(tmp_path: Path) -> None:
    with redis_server(tmp_path / "redis", appendonly=True) as server:
        store = open_store(server.url, tmp_path / "host")
        assert isinstance(store, RedisStore)
        with store.hold("key-b") as lease:
            lease.write(NonceRecord(1_000_000, "us"))
            server.stop()  # persisted with the lease in it: the release at the end fails
        server.start()
        conn = redis.Redis(host="127.0.0.1", port=server.port)
        try:
            assert conn.exists(store.lock_key("key-b"))  # the lease outlived the restart
            with store.hold("key-b", deadline=time.monotonic() + 2.0) as again:
                assert again.read() == NonceRecord(1_000_000, "us")
        finally:
            conn.close()
