"""The race the gateway exists for: unmodified krakenex (ms nonces) in 2 processes x 4 threads,
python-kraken-sdk (10 ns nonces) and ccxt, all at once on one key with the account's own secret,
against a strict simulator with 0-30 ms jitter. Through the gateway (a real `krakenwatch gateway`
process): every call succeeds, no invalid nonce, one request in flight at Kraken. The same load sent
straight to the simulator shows the rejections.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from testkit.bots import run_bot_processes
from testkit.gateway import account_environ, gateway_process
from testkit.sim import race_simulator

CALLS = 10


def load(url: str, key: str, secret: str) -> list[dict[str, object]]:
    bot = {"url": url, "keys": [[key, secret]], "calls": CALLS}
    return [
        {**bot, "client": "krakenex", "threads": 4},
        {**bot, "client": "krakenex", "threads": 4},
        {**bot, "client": "kraken-sdk", "threads": 2, "shared": False},
        {**bot, "client": "ccxt", "threads": 2, "shared": False},
    ]


@pytest.mark.slow
def test_krakenex_kraken_sdk_and_ccxt_on_one_key_through_the_gateway(tmp_path: Path) -> None:
    total = CALLS * 12
    with race_simulator("race", "direct") as (sim, [(key, secret), (direct_key, direct_secret)]):
        env = account_environ({"MASTER": (key, secret)}, sim.url, tmp_path / "data")
        with gateway_process(env, tmp_path, ["--no-rate-model"]) as gw:
            through = run_bot_processes(load(gw.url, key, secret)).outcomes
        stats = sim.stats("race")
        assert through == Counter({"ok": total}), through
        assert stats.invalid_nonce == 0 and stats.accepted == total
        assert stats.max_concurrency == 1
        # the contrast: the same bots straight at the simulator, on a key of their own
        direct = run_bot_processes(load(sim.url, direct_key, direct_secret)).outcomes
        rejected = sim.stats("direct").invalid_nonce
        assert rejected > 0 and direct["EAPI:Invalid nonce"] == rejected, direct
        print(f"rejected: direct {100 * rejected / total:.0f} %, through the gateway 0 %")
