"""Two gateway clients on one account, each with its own credential and nonce unit: unmodified
krakenex (ms nonces, 2 processes x 4 threads) and python-kraken-sdk (10 ns nonces, 2 threads), all
at once through a real `krakenwatch gateway` against a strict simulator with 0-30 ms jitter: every
call succeeds, no invalid nonce, one request in flight at Kraken. The contrast: the same two
libraries sharing the account's key straight at the simulator are rejected."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from testkit.bots import run_bot_processes
from testkit.gateway import account_environ, add_client, gateway_process
from testkit.sim import race_simulator

CALLS = 8


def load(url: str, krakenex: tuple[str, str], sdk: tuple[str, str]) -> list[dict[str, object]]:
    common = {"url": url, "calls": CALLS}
    return [
        {**common, "client": "krakenex", "keys": [list(krakenex)], "threads": 4},
        {**common, "client": "krakenex", "keys": [list(krakenex)], "threads": 4},
        {**common, "client": "kraken-sdk", "keys": [list(sdk)], "threads": 2, "shared": False},
    ]


@pytest.mark.slow
def test_two_clients_with_other_nonce_units_share_an_account_without_invalid_nonces(
    tmp_path: Path,
) -> None:
    total = CALLS * 10
    with race_simulator("account", "direct") as (sim, [(key, secret), (direct_key, direct_secret)]):
        env = account_environ({"MASTER": (key, secret)}, sim.url, tmp_path / "data")
        ms_bot = add_client(env, tmp_path, "krakenex-bot")
        ns_bot = add_client(env, tmp_path, "sdk-bot")
        with gateway_process(env, tmp_path, ["--no-rate-model"]) as gw:
            through = run_bot_processes(load(gw.url, ms_bot, ns_bot)).outcomes
        stats = sim.stats("account")
        assert through == Counter({"ok": total}), through
        assert stats.invalid_nonce == 0 and stats.accepted == total
        assert stats.max_concurrency == 1
        assert sim.total_stats().invalid_key == 0  # only the account's key reached Kraken
        shared = (direct_key, direct_secret)
        direct = run_bot_processes(load(sim.url, shared, shared)).outcomes
        rejected = sim.stats("direct").invalid_nonce
        assert rejected > 0 and direct["EAPI:Invalid nonce"] == rejected, direct
        print(
            f"rejected: direct {100 * rejected / total:.0f} %, two clients through the gateway 0 %"
        )
