"""The one-shot verification (``krakenwatch check``): its client's private calls take the kept-alive
connection and answer exactly as ``KrakenClient.call_private`` does, through the same nonce store;
the accounts share one store object; the connections are closed once the verification is done;
its threads run on one CPU, and the caller gets its CPUs back."""

from __future__ import annotations

import gc
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker import (
    CallEvent,
    ConfigurationError,
    KrakenClient,
    PermissionDeniedError,
    RefreshEvent,
)
from broker.stores import open_store
from dashboard.config import load_settings
from dashboard.monitor import facade, oneshot
from dashboard.monitor.facade import Monitor
from dashboard.monitor.oneshot import one_cpu
from dashboard.monitor.status import AccountState
from simulator import Simulator
from testkit.sim import one_key_simulator, scenario_simulator


class Calls:
    """An observer keeping every call event."""

    def __init__(self) -> None:
        self.events: list[CallEvent] = []

    def on_call(self, event: CallEvent) -> None:
        self.events.append(event)

    def on_refresh(self, event: RefreshEvent) -> None:
        pass


@pytest.fixture
def sim_key() -> Iterator[tuple[Simulator, str, str]]:
    with one_key_simulator("oneshot", permissions=["funds"]) as found:
        yield found


def clients(
    sim: Simulator, key: str, secret: str, store: Path
) -> tuple[KrakenClient, KrakenClient, Calls, Calls]:
    plain_calls, one_calls = Calls(), Calls()
    plain = KrakenClient(key, secret, base_url=sim.url, store_dir=store, observer=plain_calls)
    one = KrakenClient(
        key, secret, base_url=sim.url, store_dir=store, observer=one_calls, keep_alive=True
    )
    return plain, one, plain_calls, one_calls


def test_answers_and_errors_are_call_privates(
    sim_key: tuple[Simulator, str, str], tmp_path: Path
) -> None:
    sim, key, secret = sim_key
    plain, one, plain_calls, one_calls = clients(sim, key, secret, tmp_path / "nonces")
    try:
        assert one.keep_alive
        assert one.call_private("Balance") == plain.call_private("Balance")
        for client in (plain, one):
            with pytest.raises(PermissionDeniedError) as denied:
                client.call_private("OpenOrders", {"trades": "true"})
            assert denied.value.account == "MASTER" and denied.value.method == "OpenOrders"
        outcomes = [
            [(e.method, e.outcome, e.private) for e in c.events] for c in (plain_calls, one_calls)
        ]
        assert (
            outcomes[0]
            == outcomes[1]
            == [
                ("Balance", "ok", True),
                ("OpenOrders", "permission_denied", True),
            ]
        )
    finally:
        plain.close()
        one.close()


def test_every_nonce_comes_from_the_store(
    sim_key: tuple[Simulator, str, str], tmp_path: Path
) -> None:
    sim, key, secret = sim_key
    plain, one, _, one_calls = clients(sim, key, secret, tmp_path / "nonces")
    try:
        one.connect("Balance")
        plain.call_private("Balance")  # the two clients take turns through the store
        one.call_private("Balance")
        sent = [e.nonce or 0 for e in one_calls.events]
        assert sent == sorted(sent) and len(set(sent)) == 2
        assert one.nonce_status().high_water == sim.stats(key).last_nonce == sent[-1]
        assert sim.stats(key).invalid_nonce == 0 and sim.stats(key).accepted == 3
    finally:
        plain.close()
        one.close()


def test_refuses_what_call_private_refuses_before_sending(
    sim_key: tuple[Simulator, str, str], tmp_path: Path
) -> None:
    sim, key, secret = sim_key
    _, one, _, one_calls = clients(sim, key, secret, tmp_path / "nonces")
    with pytest.raises(ConfigurationError, match="comma-separated"):
        one.call_private("OpenOrders", {"txid": ["a", "b"]})
    assert sim.stats(key).requests == 0 and one_calls.events == []


def test_a_nonce_in_the_parameters_is_replaced(
    sim_key: tuple[Simulator, str, str], tmp_path: Path
) -> None:
    sim, key, secret = sim_key
    _, one, _, one_calls = clients(sim, key, secret, tmp_path / "nonces")
    try:
        one.call_private("Balance", {"nonce": "1"})
        assert one_calls.events[0].nonce == sim.stats(key).last_nonce > 1
    finally:
        one.close()


@pytest.fixture
def unraisable(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What is reported as unraisable (a socket left open and collected: ResourceWarning)."""
    found: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", found.append)
    return found


def test_verification_shares_one_store_and_leaves_no_connection_open(
    tmp_path: Path, unraisable: list[Any]
) -> None:
    with scenario_simulator("healthy") as (_, env):
        settings = load_settings({**env, "KRAKENWATCH_DATA_DIR": str(tmp_path)}, use_dotenv=False)
        monitor = Monitor(settings)
        snapshot = monitor.verify_once(10)
        assert {a.state for a in snapshot.accounts} == {AccountState.CONNECTED}
        store = open_store("file", settings.nonce_dir, durable=settings.nonce_sync)
        assert all(p.client.nonce_store is store for p in monitor._pollers.values())
        assert all(p.client.keep_alive for p in monitor._pollers.values())
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            del monitor
            gc.collect()
    assert unraisable == [] and [w for w in said if w.category is ResourceWarning] == []


def test_a_store_that_cannot_be_looked_up_fails_in_each_client_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(*_: Any, **__: Any) -> Any:
        raise OSError("no such directory")

    monkeypatch.setattr(facade, "file_store", unreachable)
    env = {"KRAKENWATCH_DATA_DIR": str(tmp_path)}
    assert facade._nonce_store(load_settings(env, use_dotenv=False)) == "file"
    redis = {**env, "KRAKENWATCH_NONCE_STORE": "redis://127.0.0.1:9/0"}
    assert facade._nonce_store(load_settings(redis, use_dotenv=False)) == "redis://127.0.0.1:9/0"


def affinity_of_a_thread_started_now() -> set[int]:
    seen: list[set[int]] = []
    thread = threading.Thread(target=lambda: seen.append(os.sched_getaffinity(0)))
    thread.start()
    thread.join()
    return seen[0]


@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs CPU affinity and two CPUs",
)
def test_the_threads_started_in_one_cpu_share_one_cpu_and_the_caller_gets_its_cpus_back() -> None:
    before = os.sched_getaffinity(0)
    with one_cpu():
        inside = affinity_of_a_thread_started_now()
    assert len(inside) == 1 and inside <= before
    assert os.sched_getaffinity(0) == before == affinity_of_a_thread_started_now()


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="needs CPU affinity")
def test_one_cpu_changes_nothing_where_the_cpu_is_not_known(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = os.sched_getaffinity(0)
    monkeypatch.setattr(oneshot, "_cpus", lambda: (set(), None))
    with one_cpu():
        assert affinity_of_a_thread_started_now() == before
