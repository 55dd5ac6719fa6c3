"""The file nonce store under real failures: nothing is sent unless the nonce is recorded first."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from broker import KrakenClient, NonceStoreError
from broker.signing import key_id
from testkit.sim import one_key_simulator


def broken_store(tmp_path: Path, key: str, damage: str) -> tuple[Path, Path]:
    """A store directory with a real fault, and the path the error must name."""
    record = f"{key_id(key)}.nonce"
    if damage == "a file where the directory should be":
        store = tmp_path / "data-is-a-file"
        store.write_text("not a directory\n")
        return store, store
    if damage == "full disk":
        store = tmp_path / "full"
        store.mkdir()
        (store / record).symlink_to("/dev/full")  # every write fails with ENOSPC
        return store, store / record
    assert damage == "read-only directory"
    if os.geteuid() == 0:
        store = Path("/sys/kernel")  # not even root may create a file in sysfs
    else:
        store = tmp_path / "read-only"
        store.mkdir(mode=0o500)
    return store, store / record


@pytest.mark.parametrize(
    "damage", ["a file where the directory should be", "full disk", "read-only directory"]
)
def test_store_failures_are_named_and_nothing_is_sent(tmp_path: Path, damage: str) -> None:
    with one_key_simulator("store-failure") as (sim, key, secret):
        store, culprit = broken_store(tmp_path, key, damage)
        api = KrakenClient(key, secret, base_url=sim.url, store_dir=store)
        for call in (api.call_private, api.query_private):
            with pytest.raises(NonceStoreError) as caught:
                call("Balance")
            assert str(culprit) in str(caught.value), caught.value
            assert "nothing was sent" in str(caught.value)
            assert caught.value.remedy and caught.value.account == "MASTER"
        assert sim.total_stats().requests == 0


def test_the_record_is_synced_to_disk_before_the_request_leaves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with one_key_simulator("durable") as (sim, key, secret):
        record = (tmp_path / f"{key_id(key)}.nonce").resolve()
        #: requests the simulator had seen each time the record was synced
        synced: list[int] = []
        real_fdatasync = os.fdatasync

        def watching_fdatasync(fd: int) -> None:
            real_fdatasync(fd)
            if Path(os.readlink(f"/proc/self/fd/{fd}")) == record:
                synced.append(sim.total_stats().requests)

        monkeypatch.setattr(os, "fdatasync", watching_fdatasync)
        api = KrakenClient(key, secret, base_url=sim.url, store_dir=tmp_path)
        for _ in range(3):
            api.call_private("Balance")
        assert synced == [0, 1, 2], "each nonce must be on disk before its request is sent"

        # the documented trade-off: durable=False skips the sync
        synced.clear()
        fast = KrakenClient(key, secret, base_url=sim.url, store_dir=tmp_path, durable=False)
        fast.call_private("Balance")
        assert synced == []
        assert sim.total_stats().invalid_nonce == 0
