"""Two gateway replicas on two "hosts" (their own data and runtime directories) in front of one
key: with one shared Redis nonce store they take turns; with their own file stores they collide.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from pathlib import Path

import pytest

from simulator import KeySpec, KeyStats, Scenario, Simulator
from testkit.bots import run_bot_processes
from testkit.gateway import account_environ, gateway_process
from testkit.redis import redis_server
from testkit.sim import make_key

CALLS = 10


def replicas_run(tmp_path: Path, name: str, store: str) -> tuple[Counter[str], KeyStats]:
    """krakenex, 4 threads through each of two gateway processes on one key; the outcomes and the
    simulator's statistics for the key."""
    key, secret = make_key(name)
    scenario = Scenario(
        keys=[KeySpec(key=key, secret=secret, name=name)],
        tier="unlimited",
        lockout_threshold=0,
        latency_ms=(0.0, 30.0),
    )
    with Simulator(scenario) as sim, contextlib.ExitStack() as stack:
        urls = []
        for host in ("a", "b"):
            workdir = tmp_path / name / host
            runtime = workdir / "run"
            runtime.mkdir(parents=True, mode=0o700)
            env = {
                **account_environ({"MASTER": (key, secret)}, sim.url, workdir / "data"),
                "XDG_RUNTIME_DIR": str(runtime),
                "KRAKENWATCH_NONCE_STORE": store,
            }
            gateway = stack.enter_context(gateway_process(env, workdir, ["--no-rate-model"]))
            urls.append(gateway.url)
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
