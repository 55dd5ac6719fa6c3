"""The monitor never earns a lockout, and only a real answer proves the trade permission.

Against the simulator over real HTTP: requests are counted by the simulator, not by the monitor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from broker import InvalidSignatureError
from dashboard.checklist import build_checklist
from dashboard.config import load_settings
from dashboard.monitor import Monitor
from dashboard.retry import RetryPolicy
from dashboard.service import Service
from dashboard.status import AccountState, AccountStatus
from simulator import fake_secret
from testkit.net import eventually
from testkit.sim import master_environment, one_key_simulator

#: the quiet period over which no further call may be made after an authentication failure
QUIET_S = 12.0


def master_env(url: str, key: str, secret: str, data_dir: Path, **extra: str) -> dict[str, str]:
    return master_environment(
        url,
        key,
        secret,
        KRAKENWATCH_DATA_DIR=str(data_dir),
        KRAKENWATCH_POLL_INTERVAL="1",
        **extra,
    )


@pytest.mark.parametrize(
    ("breakage", "code", "calls"),
    [
        # the secret does not belong to the key: one Balance
        ("secret", "EAPI:Invalid signature", 1),
        # the key lacks Query Funds: one Balance and the OpenOrders probe that tells the rest
        ("permission", "EGeneral:Permission denied", 2),
        # Kraken no longer knows the key
        ("fault:EAPI:Invalid key", "EAPI:Invalid key", 1),
        # the broker's connect refreshes and retries once; the monitor adds no loop on top
        ("fault:EAPI:Invalid nonce", "EAPI:Invalid nonce", 2),
    ],
)
def test_authentication_failures_are_not_retried_into_a_lockout(
    tmp_path: Path, breakage: str, code: str, calls: int
) -> None:
    permissions = ["orders"] if breakage == "permission" else ["funds", "orders"]
    with one_key_simulator("auth", permissions=permissions) as (sim, key, secret):
        if breakage == "secret":
            secret = fake_secret("not the secret of this key")
        elif breakage.startswith("fault:"):
            sim.set_faults(api_error=breakage.removeprefix("fault:"), scope="private")
        service = Service.create(load_settings(master_env(sim.url, key, secret, tmp_path)))
        service.start()
        try:
            master = eventually(
                lambda: (
                    (a := service.monitor.snapshot().account("MASTER")).last_error is not None
                    and a.state == AccountState.DISCONNECTED
                    and a
                ),
                what="the first authentication failure",
            )
            assert master.last_error is not None and master.last_error.code == code
            assert code in master.reason and "next attempt in 1 min" in master.reason
            # a 1 s poll interval used to mean ~16 failed calls here (Kraken locks a key after
            # a few dozen failed calls within minutes)
            with pytest.raises(TimeoutError):
                sim.wait_for(key, lambda s: s.requests > calls, timeout=QUIET_S)
            assert sim.stats(key).requests == calls
        finally:
            service.stop()


def test_stops_after_the_last_authentication_failure_until_asked(tmp_path: Path) -> None:
    policy = RetryPolicy(auth_delays_s=(0.2, 0.2))  # the default waits minutes
    with one_key_simulator("stop") as (sim, key, _):
        env = master_env(sim.url, key, fake_secret("wrong"), tmp_path)
        service = Service.create(load_settings(env, use_dotenv=False), retry_policy=policy)
        service.start()
        try:

            def stopped() -> AccountStatus | None:
                master = service.monitor.snapshot().account("MASTER")
                return master if master.stopped else None

            master = eventually(stopped, what="the account to stop")
            assert master.state == AccountState.DISCONNECTED and master.auth_failures == 3
            assert master.reason == (
                "stopped after 3 authentication failures: EAPI:Invalid signature; "
                "fix it and restart, or press Retry now"
            )
            check = next(
                c
                for c in service.verify()["checks"]
                if c["name"] == "connected" and c["account"] == "MASTER"
            )
            assert check["status"] == "fail" and "stopped after 3" in check["detail"]
            assert check["remedy"] == InvalidSignatureError.remedy
            with pytest.raises(TimeoutError):
                sim.wait_for(key, lambda s: s.requests > 3, timeout=3.0)

            service.monitor.retry_now("MASTER")
            sim.wait_for(key, lambda s: s.requests == 4)
            # a fresh series: the same few attempts, then stopped again
            eventually(lambda: sim.stats(key).requests == 6 and stopped())
            with pytest.raises(TimeoutError):
                sim.wait_for(key, lambda s: s.requests > 6, timeout=2.0)
        finally:
            service.stop()


PROBE_CASES: list[tuple[str, dict[str, Any], bool | None]] = [
    ("success", {}, True),
    ("insufficient funds", {"api_error": "EOrder:Insufficient funds"}, True),
    ("cancel_only market", {"api_error": "EService:Market in cancel_only mode"}, True),
    ("post_only market", {"api_error": "EService:Market in post_only mode"}, True),
    ("permission denied", {"api_error": "EGeneral:Permission denied"}, False),
    ("invalid arguments", {"api_error": "EGeneral:Invalid arguments:volume"}, None),
    ("service unavailable", {"api_error": "EService:Unavailable"}, None),
    ("rate limit", {"api_error": "EAPI:Rate limit exceeded"}, None),
    ("invalid nonce", {"api_error": "EAPI:Invalid nonce"}, None),
    ("HTTP 503", {"http_status": 503}, None),
]


def test_only_proving_answers_count_as_trade_permission(tmp_path: Path) -> None:
    with one_key_simulator("trade") as (sim, key, secret):
        env = master_env(sim.url, key, secret, tmp_path, KRAKENWATCH_PROBE_TRADE="1")
        settings = load_settings(env, use_dotenv=False)
        found: dict[str, tuple[bool | None, str]] = {}
        for name, fault, _ in PROBE_CASES:
            sim.set_faults(**fault, methods=["AddOrder"]) if fault else sim.clear_faults()
            before = sim.stats(key).requests
            snapshot = Monitor(settings).verify_once(10.0)
            assert sim.stats(key).requests - before == 3, "Balance, OpenOrders, AddOrder"
            granted = snapshot.account("MASTER").permissions["trade"]
            check = next(
                c
                for c in build_checklist(snapshot, settings)
                if c.name == "permission_create_orders" and c.account == "MASTER"
            )
            found[name] = (granted, str(check.status))
    expected = {
        name: (granted, {True: "pass", False: "fail", None: "pending"}[granted])
        for name, _, granted in PROBE_CASES
    }
    assert found == expected
