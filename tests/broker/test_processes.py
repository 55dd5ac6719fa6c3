"""Several OS processes on one key: coordinated through the nonce store's file locks.

Processes of one host share the host-wide record under ``$XDG_RUNTIME_DIR`` (each test has its
own, see conftest), so they take turns even with different data directories; processes with
different runtime directories stand for different hosts (or users, or containers).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from broker import InvalidNonceError, KrakenClient
from testkit.sim import one_key_simulator
from testkit.workers import run_workers


def test_two_processes_share_a_key_without_rejections(tmp_path: Path) -> None:
    with one_key_simulator("two-procs", latency_ms=(0, 15)) as (sim, key, secret):
        results = run_workers(sim.url, key, secret, [tmp_path, tmp_path], calls=20, threads=3)
        assert results == [[], []]
        stats = sim.stats(key)
        assert stats.accepted == 120 and stats.invalid_nonce == 0
        assert stats.max_concurrency == 1


def test_two_data_dirs_on_one_host_take_turns(tmp_path: Path) -> None:
    """Different KRAKENWATCH_DATA_DIRs on one host still coordinate: the host-wide record."""
    with one_key_simulator("two-stores", latency_ms=(0, 15)) as (sim, key, secret):
        results = run_workers(
            sim.url, key, secret, [tmp_path / "a", tmp_path / "b"], calls=20, threads=3
        )
        assert results == [[], []]
        stats = sim.stats(key)
        assert stats.accepted == 120 and stats.invalid_nonce == 0
        assert stats.max_concurrency == 1


def test_two_hosts_with_separate_stores_collide(tmp_path: Path) -> None:
    """The contrast: the same load from two "hosts" (no shared record at all) is rejected."""
    with one_key_simulator("two-hosts", latency_ms=(0, 15)) as (sim, key, secret):
        hosts = [tmp_path / "host-a", tmp_path / "host-b"]
        for host in hosts:
            host.mkdir(mode=0o700)
        results = run_workers(
            sim.url, key, secret, [tmp_path / "a", tmp_path / "b"], calls=20, threads=3, hosts=hosts
        )
        assert sum(len(r) for r in results) > 0
        assert sim.stats(key).max_concurrency > 1


def test_restart_after_nonces_ran_ahead_of_the_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with one_key_simulator("restart") as (sim, key, secret):
        store = tmp_path / "store"
        # first run: this host's clock was 5 s ahead, so Kraken holds nonces ~5 s in the future
        assert run_workers(sim.url, key, secret, [store], calls=5, ahead=5.0) == [[]]
        # restart with the correct clock and the same store: no rejection
        assert run_workers(sim.url, key, secret, [store], calls=5) == [[]]
        api = KrakenClient(key, secret, base_url=sim.url, store_dir=store)
        assert api.nonce_status().lead_seconds > 3.0, "the store reports the key as running ahead"
        # the same restart on a host without the store is rejected, and diagnosed as such
        other_host = tmp_path / "other-host"
        other_host.mkdir(mode=0o700)
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(other_host))
        fresh = KrakenClient(key, secret, base_url=sim.url, store_dir=tmp_path / "empty")
        try:
            fresh.connect()
        except InvalidNonceError as exc:
            assert exc.diagnosis == "restart_below_high_water"
        else:
            raise AssertionError("a restart below the high-water mark must be rejected")
