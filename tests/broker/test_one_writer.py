"""One writer per key, wherever the second one comes from: a fork, a re-entrant call, a key
written two ways."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from broker import ConfigurationError, KrakenClient, ReentrantCallError
from broker.signing import key_id
from testkit.sim import one_key_simulator

FORK_WORKER = r"""
import json, os, sys, threading, time
from broker import KrakenClient

url, key, secret, store, calls = sys.argv[1:6]
calls = int(calls)
api = KrakenClient(key, secret, base_url=url, store_dir=store)   # made before the fork, as in a
                                                                 # preforking server's master

def hammer(errors):
    for _ in range(calls):
        try:
            errors.extend(api.query_private("Balance")["error"])
        except Exception as exc:  # report, never hang the worker
            errors.append(type(exc).__name__)

def threads(errors, n=3):
    pool = [threading.Thread(target=hammer, args=(errors,)) for _ in range(n)]
    for t in pool:
        t.start()
    return pool

parent_errors = []
pool = threads(parent_errors)
time.sleep(0.3)                     # the parent's threads are mid-call: locks are held right now
read_end, write_end = os.pipe()
pid = os.fork()
if pid == 0:                        # the child: threads of its own on the inherited client
    os.close(read_end)
    child_errors = []
    for t in threads(child_errors):
        t.join()
    os.write(write_end, json.dumps(child_errors).encode())
    os._exit(0)
os.close(write_end)
for t in pool:
    t.join()
deadline = time.monotonic() + 60
reaped = False
while not reaped and time.monotonic() < deadline:
    reaped = os.waitpid(pid, os.WNOHANG) != (0, 0)
    time.sleep(0.05)
hung = not reaped
if hung:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
child = os.read(read_end, 1 << 20).decode() if not hung else "null"
print(json.dumps({"parent": parent_errors, "child": json.loads(child), "hung": hung}))
"""


def test_parent_and_forked_child_take_turns_on_one_key(tmp_path: Path) -> None:
    with one_key_simulator("fork", latency_ms=(5, 25)) as (sim, key, secret):
        proc = subprocess.run(
            [sys.executable, "-c", FORK_WORKER, sim.url, key, secret, str(tmp_path), "15"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        result = json.loads(proc.stdout)
        assert result["hung"] is False, "the child hung on a lock inherited from the parent"
        assert result["parent"] == [] and result["child"] == []
        stats = sim.stats(key)
        assert stats.accepted == 2 * 3 * 15 and stats.invalid_nonce == 0
        assert stats.max_concurrency == 1, "parent and child had requests in flight at once"


def _record_locked(path: Path) -> bool:
    """Whether some open file description holds ``path``'s lock (tried from a new one)."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_a_call_from_inside_a_call_is_refused_and_the_key_stays_held(tmp_path: Path) -> None:
    with one_key_simulator("reentry", latency_ms=(400, 400)) as (sim, key, secret):
        api = KrakenClient(key, secret, base_url=sim.url, store_dir=tmp_path)
        record = tmp_path / f"{key_id(key)}.nonce"
        seen: dict[str, Any] = {}

        def handler(signum: int, frame: object) -> None:  # e.g. "cancel everything on SIGTERM"
            try:
                api.call_private("OpenOrders")
                seen["inner"] = "sent while the outer call was in flight"
            except ReentrantCallError as exc:
                seen["inner"] = exc
            seen["locked"] = _record_locked(record)

        previous = signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, 0.15)
        try:
            balance = api.call_private("Balance")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        assert isinstance(seen["inner"], ReentrantCallError), seen["inner"]
        assert "signal handler" in str(seen["inner"])
        assert seen["locked"] is True, "the store's lock was released while a call was in flight"
        assert balance == {"ZUSD": "1000.0000", "USDT": "50.00000000"}
        stats = sim.stats(key)
        assert stats.requests == 1 and stats.invalid_nonce == 0
        api.call_private("OpenOrders")  # after the outer call, the key is free again


def test_a_key_is_the_same_key_with_blanks_around_it(tmp_path: Path) -> None:
    with one_key_simulator("normalise") as (sim, key, secret):
        padded = KrakenClient(f"  {key} \t", secret, base_url=sim.url, store_dir=tmp_path)
        plain = KrakenClient(key, secret, base_url=sim.url, store_dir=tmp_path)
        assert padded.key == key and padded.key_id == plain.key_id
        padded.call_private("Balance")
        plain.call_private("Balance")
        assert [p.name for p in tmp_path.glob("*.nonce")] == [f"{key_id(key)}.nonce"]
        assert sim.stats(key).accepted == 2


@pytest.mark.parametrize("damage", ["\n", "\r\n", "\x00", "é", " "])
def test_a_key_with_control_or_foreign_characters_is_refused(tmp_path: Path, damage: str) -> None:
    with one_key_simulator("bad-key") as (sim, key, secret):
        broken = key[:20] + damage + key[20:]
        api = KrakenClient(
            broken, secret, account="USER:daivon", base_url=sim.url, store_dir=tmp_path
        )
        with pytest.raises(ConfigurationError, match=r"API key of USER:daivon") as caught:
            api.call_private("Balance")
        assert key[:20] not in str(caught.value) and broken not in repr(caught.value)
        assert sim.total_stats().requests == 0, "a bad key must be refused before sending"
