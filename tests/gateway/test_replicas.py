"""Two gateway replicas on two "hosts" (their own data and runtime directories) in front of one
key: with one shared Redis nonce store they take turns, fairly, in arrival order, and a Redis that
loses its data never lets two requests of the key be in flight; with their own file stores they
collide.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from simulator import KeySpec, KeyStats, Scenario, Simulator
from testkit.bots import make_bot, run_bot_processes
from testkit.gateway import account_environ, gateway_process
from testkit.net import eventually
from testkit.redis import redis_server
from testkit.sim import make_key

CALLS = 10


def replicas_run(tmp_path: Path, name: str, store: str) -> tuple[Counter[str], KeyStats]:
    """krakenex, 4 threads through each of two gateway processes on one key; the outcomes and the
    simulator's statistics for the key."""
    with two_replicas(tmp_path, name, store, (0.0, 30.0)) as (sim, key, secret, urls):
        jobs = [
            {
                "url": url,
                "keys": [[key, secret]],
                "calls": CALLS,
                "client": "krakenex",
                "threads": 4,
            }
            for url in urls
        ]
        outcomes = run_bot_processes(jobs).outcomes
        return outcomes, sim.stats(name)


@pytest.mark.slow
def test_two_gateway_replicas_sharing_one_redis(tmp_path: Path) -> None:
    with redis_server(tmp_path / "redis") as server:
        outcomes, stats = replicas_run(tmp_path, "replicas-redis", server.url)
    total = 2 * 4 * CALLS
    assert outcomes == Counter({"ok": total}), outcomes
    assert stats.invalid_nonce == 0 and stats.accepted == total
    assert stats.max_concurrency == 1
    # the contrast: the same two replicas, each with its own file store, on two "hosts"
    outcomes, stats = replicas_run(tmp_path, "replicas-file", "file")
    assert stats.invalid_nonce > 0, stats
    assert outcomes["EAPI:Invalid nonce"] == stats.invalid_nonce


class Load:
    """Bots (krakenex, one per thread) calling ``Balance`` through each URL until stopped; every
    answer recorded as (monotonic time, replica index, outcome)."""

    def __init__(self, key: str, secret: str, urls: list[str], threads: int):
        self.done: list[tuple[float, int, str]] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._bot, args=(key, secret, url, i), daemon=True)
            for i, url in enumerate(urls)
            for _ in range(threads)
        ]

    def _bot(self, key: str, secret: str, url: str, replica: int) -> None:
        bot = make_bot("krakenex", key, secret, url)
        while not self._stop.is_set():
            outcome = bot("Balance")
            self.done.append((time.monotonic(), replica, outcome))

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def answered(self) -> int:
        return len(self.done)


@contextlib.contextmanager
def two_replicas(
    tmp_path: Path, name: str, store: str, latency_ms: tuple[float, float], **env: str
) -> Iterator[tuple[Simulator, str, str, list[str]]]:
    """A simulator with one key and two gateway processes ("hosts" a and b) on ``store``."""
    key, secret = make_key(name)
    scenario = Scenario(
        keys=[KeySpec(key=key, secret=secret, name=name)],
        tier="unlimited",
        lockout_threshold=0,
        latency_ms=latency_ms,
    )
    with Simulator(scenario) as sim, contextlib.ExitStack() as stack:
        urls = []
        for host in ("a", "b"):
            workdir = tmp_path / name / host
            runtime = workdir / "run"
            runtime.mkdir(parents=True, mode=0o700)
            host_env = {
                **account_environ({"MASTER": (key, secret)}, sim.url, workdir / "data"),
                "XDG_RUNTIME_DIR": str(runtime),
                "KRAKENWATCH_NONCE_STORE": store,
                **env,
            }
            gateway = stack.enter_context(gateway_process(host_env, workdir, ["--no-rate-model"]))
            urls.append(gateway.url)
        yield sim, key, secret, urls


@pytest.mark.slow
def test_two_replicas_under_equal_load_take_turns_in_arrival_order(tmp_path: Path) -> None:
    with (
        redis_server(tmp_path / "redis") as server,
        two_replicas(tmp_path, "fair", server.url, (2.0, 4.0)) as (sim, key, secret, urls),
        Load(key, secret, urls, threads=4) as load,
    ):
        eventually(lambda: load.answered() >= 1200, 120, what="1200 calls through the replicas")
    calls = sorted(load.done)
    assert Counter(outcome for _t, _r, outcome in calls) == Counter({"ok": len(calls)})
    start, end = calls[0][0], calls[-1][0]
    window = min(5.0, end - start)
    shares = []
    t = start
    while t + window <= end:  # every window of the run, sliding by half a second
        inside = [replica for at, replica, _ in calls if t <= at < t + window]
        shares.append(min(inside.count(0), inside.count(1)) / len(inside))
        t += 0.5
    assert min(shares) >= 1 / 3, (min(shares), Counter(r for _t, r, _o in calls))
    stats = sim.stats(key)
    assert stats.max_concurrency == 1 and stats.invalid_nonce == 0


@pytest.mark.slow
def test_after_redis_loses_its_data_one_lease_passes_before_the_key_is_used_again(
    tmp_path: Path,
) -> None:
    with redis_server(tmp_path / "redis") as server:
        store = f"{server.url}?lease=3"
        with (
            two_replicas(
                tmp_path, "flushed", store, (1.0, 3.0), KRAKENWATCH_REQUEST_TIMEOUT="2"
            ) as (sim, key, secret, urls),
            Load(key, secret, urls, threads=2) as load,
        ):
            eventually(lambda: load.answered() >= 50, 60, what="traffic on both replicas")
            sim.set_faults(latency_ms=[1500, 1500], count=1)  # one call stays in flight 1.5 s
            eventually(lambda: sim.current_faults()["remaining"] is None, 30, what="the slow call")
            redis.Redis.from_url(server.url).flushall()  # ...while Redis loses every lease
            flushed = load.answered()
            eventually(lambda: load.answered() >= flushed + 50, 120, what="traffic after it")
    stats = sim.stats(key)
    assert stats.max_concurrency == 1, stats  # never two requests of the key in flight
    assert stats.invalid_nonce == 0
    outcomes = Counter(outcome for _t, _r, outcome in load.done)
    assert set(outcomes) <= {"ok", "EService:Busy (gateway)"}, outcomes
