"""The file nonce store under real failures: nothing is sent unless the nonce is recorded first."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from broker import CallEvent, KrakenClient, NonceStoreError, RefreshEvent
from broker.signing import key_id
from testkit.sim import one_key_simulator
from testkit.workers import run_workers


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


def test_every_nonce_sent_is_below_a_bound_synced_to_disk_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with one_key_simulator("durable") as (sim, key, secret):
        record = (tmp_path / f"{key_id(key)}.nonce").resolve()
        #: (requests the simulator had seen, the bound written) at each sync of the record
        syncs: list[tuple[int, int]] = []
        real_fdatasync = os.fdatasync

        def watching_fdatasync(fd: int) -> None:
            real_fdatasync(fd)
            if Path(os.readlink(f"/proc/self/fd/{fd}")) == record:
                text = os.pread(fd, 96, 0).decode()
                bound = int(text.split("bound=")[1].split()[0])
                syncs.append((sim.total_stats().requests, bound))

        monkeypatch.setattr(os, "fdatasync", watching_fdatasync)
        nonces: list[int] = []

        class Nonces:
            def on_call(self, event: CallEvent) -> None:
                assert event.nonce is not None
                nonces.append(event.nonce)

            def on_refresh(self, event: RefreshEvent) -> None:
                pass

        api = KrakenClient(key, secret, base_url=sim.url, store_dir=tmp_path, observer=Nonces())
        calls = 20
        for _ in range(calls):
            api.call_private("Balance")
        assert syncs, "the record was never synced"
        for i, nonce in enumerate(nonces):  # the i-th request left after i others
            synced = [bound for seen, bound in syncs if seen <= i]
            assert synced and max(synced) >= nonce, f"request {i} left above every synced bound"
        assert len(syncs) < calls, "the sync is taken off the hot path: one per second at most"

        # the documented trade-off: durable=False never syncs
        syncs.clear()
        fast = KrakenClient(key, secret, base_url=sim.url, store_dir=tmp_path, durable=False)
        fast.call_private("Balance")
        assert syncs == []
        assert sim.total_stats().invalid_nonce == 0


def power_loss(record: Path, *, keep_bound: bool) -> None:
    """What a power loss can leave on disk: the exact mark as of an older write (anything not
    synced is lost) and the bound, which is synced before any nonce passes it. The host-wide
    record lives in the runtime directory, a tmpfs: a reboot empties it."""
    host_record = Path(os.environ["XDG_RUNTIME_DIR"]) / "krakenwatch" / "nonces" / record.name
    host_record.unlink()
    _, unit, *rest = record.read_text().split()
    bound = [item for item in rest if item.startswith("bound=")]
    text = f"1 {unit}" + (f" {bound[0]}" if keep_bound and bound else "")
    record.write_text(f"{text}\n".ljust(95) + "\n")


@pytest.mark.parametrize("keep_bound", [True, False])
def test_after_a_power_loss_the_synced_bound_keeps_nonces_above_all_sent(
    tmp_path: Path, keep_bound: bool
) -> None:
    with one_key_simulator(f"power-{keep_bound}") as (sim, key, secret):
        store = tmp_path / "store"
        # this host's clock ran 5 s ahead: Kraken holds nonces ~5 s in the future
        assert run_workers(sim.url, key, secret, [store], calls=5, ahead=5.0) == [[]]
        power_loss(store / f"{key_id(key)}.nonce", keep_bound=keep_bound)
        errors = run_workers(sim.url, key, secret, [store], calls=3)  # a fresh process
    if keep_bound:
        assert errors == [[]], "the synced bound must keep the restart above every nonce sent"
    else:  # the contrast: without the bound, the stale mark lets nonces fall behind
        assert errors[0] and set(errors[0]) == {"EAPI:Invalid nonce"}
