"""Nothing leaves after its caller gave up: a call that waited for its key (another process holds
the host's file lock, or a killed replica's Redis lease) and whose bot timed out meanwhile is
never sent, even once the key is free again."""

from __future__ import annotations

import concurrent.futures
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from broker.filestore import FileStore, host_lock_dir
from broker.paths import nonce_store_dir
from broker.signing import key_id
from testkit.net import eventually
from testkit.rawclient import form, fresh_nonce, signed_post
from testkit.redis import redis_server

ORDER = {"pair": "XBTUSD", "type": "buy", "ordertype": "market", "volume": "1", "validate": "1"}
BOT_TIMEOUT_S = 2.0


def order_with_timeout(url: str, key: str, secret: str) -> str:
    """An ``AddOrder`` from a bot that gives up after BOT_TIMEOUT_S: its outcome."""
    nonce = fresh_nonce()
    try:
        answer = signed_post(
            url,
            "AddOrder",
            key=key,
            secret=secret,
            body=form(nonce, **ORDER),
            nonce=nonce,
            timeout=BOT_TIMEOUT_S,
        )
    except (TimeoutError, requests.Timeout):
        return "timed out"
    return f"answered {answer.status} {answer.body[:80]!r}"


def balance_ok(url: str, key: str, secret: str) -> bool:
    nonce = fresh_nonce()
    answer = signed_post(url, "Balance", key=key, secret=secret, body=form(nonce), nonce=nonce)
    return answer.error == []


def test_an_order_whose_bot_gave_up_while_another_process_held_the_key_is_never_sent(
    tmp_path: Path, sim_key, start_gateway
) -> None:
    sim, key, secret = sim_key
    gw = start_gateway(sim.url, max_queue_wait_s=30.0)
    store_dir = nonce_store_dir(tmp_path / "data0")  # the gateway's (start_gateway's first)
    assert host_lock_dir() is not None
    # another process of this host holds the key (here: another open file description)
    other = FileStore(store_dir, host_dir=host_lock_dir())  # its own open files: its own locks
    holding = other.hold(key_id(key))
    holding.__enter__()
    try:
        assert order_with_timeout(gw.url, key, secret) == "timed out"
    finally:
        holding.__exit__(None, None, None)  # the key is free again
    eventually(lambda: balance_ok(gw.url, key, secret), 30, what="the key to serve again")
    assert sim.stats(key).requests == 1  # the Balance; the order never left
    abandoned = gw.gateway.metrics.registry.get_sample_value(
        "krakenwatch_gateway_abandoned_total", {"account": "MASTER"}
    )
    assert abandoned == 1


HOLDER = r"""
import sys
from broker import KrakenClient
url, key, secret, store, redis_url = sys.argv[1:6]
api = KrakenClient(key, secret, base_url=url, store_dir=store, nonce_store=redis_url, timeout=60)
print("calling", flush=True)
api.call_private("Balance")   # hangs at the simulator until this process is killed
"""


@pytest.mark.slow
def test_an_order_whose_bot_gave_up_behind_a_killed_replicas_lease_is_never_sent(
    tmp_path: Path, sim_key, start_gateway
) -> None:
    sim, key, secret = sim_key
    with redis_server(tmp_path / "redis") as server:
        leased = f"{server.url}?lease=4"
        sim.set_faults(hang=True, count=1)
        holder = subprocess.Popen(  # replica A, as a process that signs with the key
            [sys.executable, "-c", HOLDER, sim.url, key, secret, str(tmp_path / "a"), leased],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "calling"
            sim.wait_for_hanging(1, timeout=10)
        finally:
            holder.send_signal(signal.SIGKILL)  # dies holding the lease, its request in flight
            holder.wait(10)
            if holder.stdout is not None:
                holder.stdout.close()
        gw = start_gateway(sim.url, nonce_store=leased, max_queue_wait_s=30.0)  # replica B
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            assert pool.submit(order_with_timeout, gw.url, key, secret).result(60) == "timed out"
        sim.clear_faults()
        # the lease runs out, B takes the key: its next call is served, the order never was
        eventually(lambda: balance_ok(gw.url, key, secret), 30, what="the lease to run out")
    stats = sim.stats(key)
    assert stats.requests == 2 and stats.invalid_nonce == 0  # A's hung Balance and B's Balance
