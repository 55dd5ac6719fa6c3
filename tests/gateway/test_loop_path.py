"""The gateway sends a call that claims nothing and trades nothing from its event loop, with no
worker thread in between, and falls back to a worker thread whenever a step would block: the key
held by another process, a sync of the nonce store due. Either way the guarantees hold: one
request per key in flight, nothing sent after its caller gave up. And every call marks its stages
in order (the benchmarks' per-stage profile reads them)."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from broker.filestore import FileStore, host_lock_dir
from broker.paths import nonce_store_dir
from broker.signing import key_id
from broker.stages import recording
from testkit.net import eventually
from testkit.rawclient import form, fresh_nonce, signed_post

ORDER = {"pair": "XBTUSD", "type": "buy", "ordertype": "market", "volume": "1", "validate": "1"}
#: the marks of one Balance sent from the loop, in order
LOOP_STAGES = [
    "arrived",
    "routed",
    "authenticated",
    "replay checked",
    "guard admitted",
    "queued",
    "picked",
    "claimed",
    "call",
    "reserved",
    "still wanted",
    "signed",
    "answered",
    "released",
    "reported",
    "judged",
    "woken",
    "counted",
    "sent",
]


def call(url: str, key: str, secret: str, method: str = "Balance", **kw: Any) -> list[str]:
    """One signed call through the gateway: Kraken's (or the gateway's) error list."""
    nonce = fresh_nonce()
    fields = ORDER if method == "AddOrder" else {}
    answer = signed_post(
        url, method, key=key, secret=secret, body=form(nonce, **fields), nonce=nonce, **kw
    )
    return answer.error


def count_handovers(monkeypatch: pytest.MonkeyPatch, executor: Any) -> list[int]:
    """Count the calls handed to the gateway's worker threads (one element per hand-over)."""
    handed: list[int] = []
    submit: Callable[..., Any] = executor.submit

    def counting(*args: Any, **kwargs: Any) -> Any:
        handed.append(1)
        return submit(*args, **kwargs)

    monkeypatch.setattr(executor, "submit", counting)
    return handed


def test_calls_without_claim_or_trade_are_sent_from_the_loop_the_others_from_a_thread(
    sim_key, start_gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim, key, secret = sim_key
    gw = start_gateway(sim.url, durable=False)  # no sync of the store due: nothing would block
    handed = count_handovers(monkeypatch, gw.gateway._executor)
    for _ in range(20):
        assert call(gw.url, key, secret) == []
    assert handed == [] and sim.stats(key).accepted == 20
    assert call(gw.url, key, secret, "AddOrder") == []  # claims its digest: from a thread
    assert len(handed) == 1 and sim.stats(key).accepted == 21


def test_a_sync_of_the_nonce_store_is_made_from_a_thread_not_the_loop(
    sim_key, start_gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim, key, secret = sim_key
    gw = start_gateway(sim.url)  # durable: the first nonce moves the synced bound
    handed = count_handovers(monkeypatch, gw.gateway._executor)
    assert call(gw.url, key, secret) == []
    assert len(handed) == 1 and sim.stats(key).accepted == 1


def test_a_call_falls_back_to_a_thread_while_another_process_holds_the_key(
    tmp_path: Path, sim_key, start_gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim, key, secret = sim_key
    gw = start_gateway(sim.url, durable=False, max_queue_wait_s=30.0)
    handed = count_handovers(monkeypatch, gw.gateway._executor)
    assert host_lock_dir() is not None
    other = FileStore(nonce_store_dir(tmp_path / "data0"), host_dir=host_lock_dir())
    holding = other.hold(key_id(key))
    holding.__enter__()  # another process of this host holds the key (its own open files)
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            answered = pool.submit(call, gw.url, key, secret, timeout=30)
            eventually(lambda: len(handed) == 1, 10, what="the call to wait in a worker thread")
            assert not answered.done() and sim.stats(key).requests == 0
            holding.__exit__(None, None, None)
            holding = None
            assert answered.result(30) == []
    finally:
        if holding is not None:
            holding.__exit__(None, None, None)
    assert sim.stats(key).accepted == 1


def test_a_balance_whose_bot_gave_up_while_another_process_held_the_key_is_never_sent(
    tmp_path: Path, sim_key, start_gateway
) -> None:
    sim, key, secret = sim_key
    gw = start_gateway(sim.url, durable=False, max_queue_wait_s=30.0)
    other = FileStore(nonce_store_dir(tmp_path / "data0"), host_dir=host_lock_dir())
    holding = other.hold(key_id(key))
    holding.__enter__()
    try:  # the call falls back to a worker thread, which waits for the key; the bot gives up
        with pytest.raises((TimeoutError, requests.Timeout)):
            call(gw.url, key, secret, timeout=2.0)
        registry = gw.gateway.metrics.registry
        abandoned = {"account": "MASTER"}

        def counted() -> bool:
            value = registry.get_sample_value("krakenwatch_gateway_abandoned_total", abandoned)
            return value == 1

        # the worker sees the bot gone once it holds the key: released now, then counted
        holding.__exit__(None, None, None)
        holding = None
        eventually(counted, 30, what="the abandoned call to be counted")
    finally:
        if holding is not None:
            holding.__exit__(None, None, None)
    assert call(gw.url, key, secret) == []
    assert sim.stats(key).requests == 1  # the last Balance; the abandoned one never left


def test_a_call_marks_its_stages_in_order(sim_key, start_gateway) -> None:
    sim, key, secret = sim_key
    gw = start_gateway(sim.url, durable=False)
    assert call(gw.url, key, secret) == []  # connections open
    with recording() as marks:
        assert call(gw.url, key, secret) == []
        # "sent" is marked once the answer is written, possibly after the bot has it
        eventually(lambda: bool(marks) and marks[-1][0] == "sent", 10, what="the last mark")
    names = [name for name, _ in marks]
    first = names.index("arrived")  # the warm-up call's "sent" may come after recording began
    assert names[first:] == LOOP_STAGES
    times = [t for _, t in marks[first:]]
    assert times == sorted(times) and times[-1] > times[0]
