"""The monitor never earns a lockout, and only a real answer proves the trade permission.

Against the simulator over real HTTP: requests are counted by the simulator, not by the monitor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from broker import InvalidSignatureError
from dashboard.checks.checklist import build_checklist
from dashboard.config import load_settings
from dashboard.monitor.facade import Monitor
from dashboard.monitor.retry import RetryPolicy
from dashboard.monitor.status import AccountState, AccountStatus
from dashboard.web.service import Service
from simulator import fake_secret
from testkit.net import eventually
from testkit.pauses import ParkedPauses
from testkit.sim import master_environment, one_key_simulator

#: the wait after a first authentication failure: a minute (Kraken locks a key after a few dozen
#: failed calls within minutes)
FIRST_AUTH_DELAY_S = 60.0


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
        pauses = ParkedPauses()
        settings = load_settings(master_env(sim.url, key, secret, tmp_path))
        service = Service.create(settings, pause=pauses)
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
            # a 1 s poll interval used to mean ~16 failed calls a quarter of a minute (Kraken
            # locks a key after a few dozen failed calls within minutes): the next attempt is a
            # minute away, and until then the account's poller makes no call
            assert pauses.wait_parked() == [FIRST_AUTH_DELAY_S]
            assert sim.stats(key).requests == calls
        finally:
            service.stop()
        # nothing woke the poller early: no call and no other wait until the monitor stopped
        assert sim.stats(key).requests == calls and pauses.parked == [FIRST_AUTH_DELAY_S]


def test_stops_after_the_last_authentication_failure_until_asked(tmp_path: Path) -> None:
    policy = RetryPolicy(auth_delays_s=(0.2, 0.2))  # the default waits minutes
    with one_key_simulator("stop") as (sim, key, _):
        env = master_env(sim.url, key, fake_secret("wrong"), tmp_path)
        pauses = ParkedPauses()
        settings = load_settings(env, use_dotenv=False)
        service = Service.create(settings, retry_policy=policy, pause=pauses)
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
            # stopped: the poller waits until asked, and makes no call meanwhile
            assert pauses.wait_parked() == [None] and sim.stats(key).requests == 3

            service.monitor.retry_now("MASTER")
            sim.wait_for(key, lambda s: s.requests == 4)
            # a fresh series: the same few attempts, then stopped again
            assert pauses.wait_parked(2) == [None, None]
            assert sim.stats(key).requests == 6 and stopped()
        finally:
            service.stop()
        assert sim.stats(key).requests == 6 and pauses.parked == [None, None]


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
