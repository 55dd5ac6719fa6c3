"""``krakenwatch up --gateway`` as a real process: unmodified krakenex bots (2 processes x 3
threads) on MASTER's key through the embedded gateway while the dashboard's own monitor polls that
key every 2 s, against a strict simulator (0-30 ms jitter, Kraken's pro rate limit): no invalid
nonce, no rate limit, one request in flight at Kraken. The contrast runs in the same process and
moment: the same bots straight at the simulator on USER:direct's key, which the same monitor polls
without them knowing: Kraken rejects them. The dashboard's /metrics carries the gateway's families
(the monitor's calls under client "monitor"), the gateway's own port serves only its own."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from simulator import KeySpec, Scenario, Simulator
from testkit.bots import run_bot_processes
from testkit.gateway import account_environ
from testkit.net import free_port, http_get
from testkit.procs import run_krakenwatch, up_process
from testkit.sim import make_key

THREADS, CALLS = 3, 2


def bots(url: str, key: str, secret: str) -> list[dict[str, object]]:
    job = {"client": "krakenex", "url": url, "keys": [[key, secret]], "threads": THREADS}
    return [{**job, "calls": CALLS}, {**job, "calls": CALLS}]


@pytest.mark.slow
def test_bots_through_up_gateway_and_the_monitor_share_the_key_without_invalid_nonces(
    tmp_path: Path,
) -> None:
    (key, secret), (direct_key, direct_secret) = make_key("shared"), make_key("shared-direct")
    scenario = Scenario(
        keys=[
            KeySpec(key=key, secret=secret, name="shared", balances={"ZUSD": "100.0000"}),
            KeySpec(key=direct_key, secret=direct_secret, name="direct"),
        ],
        tier="pro",
        lockout_threshold=0,
        latency_ms=(0.0, 30.0),
    )
    gateway_port = free_port()
    gateway = f"http://127.0.0.1:{gateway_port}"
    with Simulator(scenario) as sim:
        env = {
            **account_environ(
                {"MASTER": (key, secret), "USER:direct": (direct_key, direct_secret)},
                sim.url,
                tmp_path / "data",
            ),
            "KRAKENWATCH_TIER": "pro",
            "KRAKENWATCH_POLL_INTERVAL": "2",
        }
        args = ["--gateway", "--gateway-port", str(gateway_port)]
        with up_process(env, tmp_path, args=args) as up:
            up.wait_verified(2)  # the monitor polls both keys (through the gateway's lanes)
            through = bots(gateway, key, secret)
            direct = bots(sim.url, direct_key, direct_secret)
            outcomes = run_bot_processes([*through, *direct]).outcomes
            dashboard_metrics = up.get("/metrics")[1]
            gateway_metrics = http_get(gateway + "/metrics")[2]
            verify = up.verify()
            output = up.log.read_text()
        shared, rejected = sim.stats("shared"), sim.stats("direct")
    total = 2 * THREADS * CALLS
    assert f"gateway: {gateway} " in output
    # through the gateway: every bot call answered, the monitor's polls taking turns with them
    assert outcomes["ok"] == total, outcomes
    assert shared.invalid_nonce == 0 and shared.rate_limited == 0
    assert shared.max_concurrency == 1
    assert shared.accepted >= total + 2  # the bots' calls and the monitor's
    # the contrast: the same bots straight at Kraken on a key the monitor polls
    assert rejected.invalid_nonce > 0 and outcomes["EAPI:Invalid nonce"] == rejected.invalid_nonce
    for client in ("account-key", "monitor"):
        line = (
            f'krakenwatch_gateway_requests_total{{account="MASTER",client="{client}",'
            'method="Balance",outcome="ok"}'
        )
        assert line in dashboard_metrics and line in gateway_metrics, client
    assert dashboard_metrics.count("# TYPE krakenwatch_invalid_nonce_errors_total counter") == 1
    assert 'krakenwatch_check_success{account="MASTER",check="gateway_kraken_errors"} 1.0' in (
        dashboard_metrics
    )
    assert "krakenwatch_balance{" in dashboard_metrics
    assert "krakenwatch_balance" not in gateway_metrics  # the gateway's port shows its own only
    checks = {(c["name"], c["account"]): c["status"] for c in verify["checks"]}
    assert checks[("gateway_kraken_errors", "MASTER")] == "pass"
    print(f"rejected: direct {rejected.invalid_nonce} of {total}, through the gateway 0")


def run_up(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_krakenwatch("up", *args, env=env, cwd=cwd)


def test_up_refuses_a_gateway_port_without_gateway(tmp_path: Path) -> None:
    result = run_up(["--gateway-port", "9999"], {}, tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "krakenwatch up: --gateway-port needs --gateway\n"


def test_up_gateway_on_a_taken_port_names_the_flag(tmp_path: Path) -> None:
    key, secret = make_key("taken")
    env = account_environ({"MASTER": (key, secret)}, "http://127.0.0.1:9", tmp_path / "data")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_up(["--gateway", "--gateway-port", str(port)], env, tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"krakenwatch: the gateway cannot listen on 127.0.0.1:{port} (--gateway-port): "
        "Address already in use"
    )


def test_up_gateway_without_a_valid_account_says_so(tmp_path: Path) -> None:
    result = run_up(["--gateway"], {"KRAKENWATCH_DATA_DIR": str(tmp_path)}, tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--gateway needs at least one valid Kraken account" in result.stderr
