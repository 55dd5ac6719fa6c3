"""The Redis nonce store against a real ``redis-server``: one writer per key across hosts."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from broker import (
    ConfigurationError,
    KrakenClient,
    NonceStoreUnavailable,
    NonceUnitDowngradeError,
)
from simulator import Simulator
from testkit.redis import RedisServer, redis_server
from testkit.sim import one_key_simulator
from testkit.workers import run_workers


def hosts(tmp_path: Path, n: int) -> list[Path]:
    """``n`` runtime directories: ``n`` hosts that share no file at all."""
    found = []
    for i in range(n):
        host = tmp_path / f"host-{i}"
        host.mkdir(mode=0o700)
        found.append(host)
    return found


@contextlib.contextmanager
def redis_backed_client(
    tmp_path: Path, name: str, lease_s: int | None = None, **redis_options: Any
) -> Iterator[tuple[RedisServer, Simulator, str, KrakenClient]]:
    """A simulator with one key, a ``redis-server``, and a client of that key using it (with
    ``lease_s``: a lease that short, where a test would otherwise wait out the default one)."""
    with (
        redis_server(tmp_path / "redis", **redis_options) as server,
        one_key_simulator(name) as (sim, key, secret),
    ):
        store = server.url if lease_s is None else f"{server.url}?lease={lease_s}"
        api = KrakenClient(key, secret, base_url=sim.url, store_dir=tmp_path, nonce_store=store)
        yield server, sim, key, api


@pytest.mark.parametrize("store", ["redis", "file"])
def test_three_hosts_one_key(tmp_path: Path, store: str) -> None:
    with (
        redis_server(tmp_path / "redis") as server,
        one_key_simulator(f"hosts-{store}", latency_ms=(0, 30)) as (sim, key, secret),
    ):
        env = {"KRAKENWATCH_NONCE_STORE": server.url if store == "redis" else "file"}
        results = run_workers(
            sim.url,
            key,
            secret,
            [tmp_path / f"data-{i}" for i in range(3)],
            calls=8,
            threads=4,
            hosts=hosts(tmp_path, 3),
            env=env,
        )
        stats = sim.stats(key)
    if store == "redis":
        assert results == [[], [], []]
        assert stats.accepted == 3 * 4 * 8 and stats.invalid_nonce == 0
        assert stats.max_concurrency == 1
    else:  # the contrast: three hosts with file stores do collide
        assert stats.invalid_nonce > 0 and stats.max_concurrency > 1


HOLDER = r"""
import sys
from broker import KrakenClient
url, key, secret, store, redis_url = sys.argv[1:6]
api = KrakenClient(key, secret, base_url=url, store_dir=store, nonce_store=redis_url, timeout=60)
print("calling", flush=True)
api.call_private("Balance")   # hangs at the simulator until this process is killed
"""


def test_a_killed_holder_blocks_others_only_until_its_lease_runs_out(tmp_path: Path) -> None:
    with (
        redis_server(tmp_path / "redis") as server,
        one_key_simulator("lease") as (sim, key, secret),
    ):
        leased = f"{server.url}?lease=2"
        sim.set_faults(hang=True, count=1)
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, sim.url, key, secret, str(tmp_path / "a"), leased],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdout is not None and holder.stdout.readline().strip() == "calling"
        sim.wait_for_hanging(1, timeout=10)
        holder.send_signal(signal.SIGKILL)  # dies holding the key, its request in flight
        holder.wait(10)
        holder.stdout.close()
        other = KrakenClient(
            key, secret, base_url=sim.url, store_dir=tmp_path / "b", nonce_store=leased
        )
        assert other.call_private("Balance")["ZUSD"]
        assert other.call_private("Balance")["ZUSD"]
        sim.clear_faults()
        stats = sim.stats(key)
        assert stats.invalid_nonce == 0 and stats.accepted == 2


def test_redis_down_fails_closed_and_calls_resume_when_it_is_back(tmp_path: Path) -> None:
    with redis_backed_client(tmp_path, "down", appendonly=True) as (server, sim, key, api):
        api.call_private("Balance")
        server.stop()
        for _ in range(2):
            with pytest.raises(NonceStoreUnavailable) as caught:
                api.call_private("Balance")
            assert f"127.0.0.1:{server.port}" in str(caught.value)
            assert "nothing was sent" in str(caught.value)
        assert sim.stats(key).requests == 1, "nothing may reach Kraken while Redis is down"
        server.start()  # same port, same data (appendonly)
        api.call_private("Balance")  # the same client: no restart needed
        assert "lost its data" not in api.nonce_status().store
        stats = sim.stats(key)
        assert stats.accepted == 2 and stats.invalid_nonce == 0


def test_a_redis_that_lost_its_data_is_reported_and_reseeded(tmp_path: Path) -> None:
    lease_s = 2
    with redis_backed_client(tmp_path, "lost", lease_s, appendonly=False) as (
        server,
        sim,
        key,
        api,
    ):
        api.call_private("Balance")
        before = api.nonce_status().high_water
        server.stop()
        server.start()  # without persistence: every key is gone
        started = time.monotonic()
        api.call_private("Balance")
        # the key stayed quiet for one full lease first: a writer that held it before the loss
        # has stopped by then
        assert time.monotonic() - started >= lease_s
        status = api.nonce_status()
        assert "lost its data" in status.store and "appendonly" in status.store
        assert status.high_water > before  # re-seeded from this host's mirror, never backwards
        assert sim.stats(key).invalid_nonce == 0


def test_a_read_only_replica_fails_closed(tmp_path: Path) -> None:
    with (
        redis_server(tmp_path / "primary") as primary,
        redis_server(tmp_path / "replica", replica_of=primary.port) as replica,
        one_key_simulator("replica") as (sim, key, secret),
    ):
        api = KrakenClient(
            key, secret, base_url=sim.url, store_dir=tmp_path, nonce_store=replica.url
        )
        with pytest.raises(NonceStoreUnavailable, match="read-only"):
            api.call_private("Balance")
        assert sim.total_stats().requests == 0


def test_unit_downgrade_is_refused_across_hosts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (
        redis_server(tmp_path / "redis") as server,
        one_key_simulator("units") as (sim, key, secret),
    ):
        first, second = hosts(tmp_path, 2)
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(first))
        KrakenClient(
            key, secret, base_url=sim.url, store_dir=tmp_path / "a", nonce_store=server.url,
            nonce_unit="ns",
        ).call_private("Balance")  # fmt: skip
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(second))
        coarse = KrakenClient(
            key, secret, base_url=sim.url, store_dir=tmp_path / "b", nonce_store=server.url,
            nonce_unit="us",
        )  # fmt: skip
        with pytest.raises(NonceUnitDowngradeError):
            coarse.call_private("Balance")
        assert sim.stats(key).requests == 1


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def test_redis_holds_no_key_and_no_secret(tmp_path: Path) -> None:
    with redis_backed_client(tmp_path, "scan") as (server, _sim, key, api):
        secret = api.secret
        for _ in range(3):
            api.call_private("Balance")
        client = redis.Redis.from_url(server.url)
        dump = []
        for name in client.scan_iter("*"):
            dump.append(name)
            kind = client.type(name)
            if kind == b"hash":
                dump.append(
                    json.dumps(
                        {_text(k): _text(v) for k, v in client.hgetall(name).items()}
                    ).encode()
                )
            elif kind == b"string":
                dump.append(client.get(name) or b"")
        text = b"\n".join(dump)
        assert dump, "nothing was written to Redis"
        assert key.encode() not in text and key[:20].encode() not in text
        assert secret.encode() not in text and secret[:20].encode() not in text
        assert api.key_id.encode() in text  # keys are named by the key's hash


def test_bad_store_settings_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRAKENWATCH_NONCE_STORE", "postgres://db/0")
    with pytest.raises(ConfigurationError, match="KRAKENWATCH_NONCE_STORE") as caught:
        KrakenClient("KEY", "c2VjcmV0", store_dir=tmp_path).call_private("Balance")
    assert caught.value.variable == "KRAKENWATCH_NONCE_STORE"
    monkeypatch.setenv("KRAKENWATCH_NONCE_STORE", "redis://:hunter2@127.0.0.1:1/0?lease=soon")
    with pytest.raises(ConfigurationError, match="lease") as caught:
        KrakenClient("KEY", "c2VjcmV0", store_dir=tmp_path).call_private("Balance")
    assert "hunter2" not in str(caught.value)


def test_without_redis_py_the_error_says_what_to_install(tmp_path: Path) -> None:
    script = (
        "import sys; sys.modules['redis'] = None\n"  # as if redis-py were not installed
        "from broker import KrakenClient, ConfigurationError\n"
        "try:\n"
        f"    KrakenClient('KEY', 'c2VjcmV0', store_dir={str(tmp_path)!r},"
        " nonce_store='redis://127.0.0.1:1/0').call_private('Balance')\n"
        "except ConfigurationError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert "pip install 'krakenwatch[redis]'" in out.stdout, out.stdout + out.stderr
