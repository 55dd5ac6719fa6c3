"""The rule that decides a deploy, on made-up checks: verified, failed after the grace period or at
the timeout, pending, superseded; a decided deploy stays decided; the scope of a deploy."""

from __future__ import annotations

import pytest

from dashboard.checks.item import Check, CheckStatus
from dashboard.deploys.verdict import decide, in_scope, supersede
from dashboard.history.deploy_book import Deploy, DeployState

T0 = 1_000_000.0
GRACE, TIMEOUT = 120.0, 600.0


def check(name: str, account: str | None, status: CheckStatus, required: bool = True) -> Check:
    return Check(name, account, status, f"{name} is {status}", "do this", required)


def judged(checks: list[Check], age: float, accounts: tuple[str, ...] = ("MASTER",)) -> Deploy:
    deploy = Deploy(1, "v1", accounts, "", T0)
    return decide(deploy, checks, T0 + age, grace_s=GRACE, timeout_s=TIMEOUT)


PASSING = [
    check("configuration", None, CheckStatus.PASS),
    check("connected", "MASTER", CheckStatus.PASS),
]


def test_verified_the_first_time_every_required_check_of_its_scope_passes() -> None:
    outside = check("connected", "USER:other", CheckStatus.FAIL)
    optional = check("dedicated_key", "MASTER", CheckStatus.FAIL, required=False)
    deploy = judged([*PASSING, outside, optional], age=3.5)
    assert deploy.state == DeployState.VERIFIED
    assert deploy.decided_at == T0 + 3.5 and deploy.seconds_to_verdict == 3.5
    assert deploy.failing == () and "2 required checks passed" in deploy.reason


@pytest.mark.parametrize(("age", "state"), [(GRACE - 0.1, "pending"), (GRACE, "failed")])
def test_a_failing_check_fails_the_deploy_once_the_grace_period_is_over(
    age: float, state: str
) -> None:
    failing = check("no_invalid_nonce", "MASTER", CheckStatus.FAIL)
    deploy = judged([*PASSING, failing], age)
    assert deploy.state == state
    assert [c["name"] for c in deploy.failing] == ["no_invalid_nonce"]
    if state == "failed":
        assert "grace period" in deploy.reason and deploy.decided_at == T0 + GRACE
        assert "No invalid-nonce errors (MASTER)" in deploy.reason, "titles, not ids"
    else:
        assert deploy.decided_at is None
        assert deploy.reason == (
            "1 required check failing; the deploy fails unless it passes within 0 s "
            "(the grace period)"
        )


@pytest.mark.parametrize(("age", "state"), [(TIMEOUT - 0.1, "pending"), (TIMEOUT, "failed")])
def test_a_pending_check_fails_the_deploy_at_the_timeout(age: float, state: str) -> None:
    waiting = check("bot_trading_cycles", None, CheckStatus.PENDING)
    deploy = judged([*PASSING, waiting], age)
    assert deploy.state == state
    assert deploy.failing[0]["status"] == "pending"
    if state == "failed":
        assert deploy.reason.startswith("not verified within 600 s: 0 checks failing, 1 check")


def test_a_decided_deploy_stays_decided() -> None:
    verified = judged(PASSING, age=1.0)
    failing = [check("connected", "MASTER", CheckStatus.FAIL)]
    assert decide(verified, failing, T0 + 9999, grace_s=0, timeout_s=1) is verified


def test_a_newer_marker_supersedes_only_a_pending_deploy() -> None:
    pending = judged([check("connected", "MASTER", CheckStatus.PENDING)], age=1.0)
    newer = Deploy(2, "v2", ("MASTER",), "", T0 + 5)
    superseded = supersede(pending, newer)
    assert superseded.state == DeployState.FAILED and superseded.decided_at == T0 + 5
    assert superseded.reason == "superseded by v2 (#2) before its verdict"
    verified = judged(PASSING, age=1.0)
    assert supersede(verified, newer) is verified


def test_the_scope_of_a_deploy() -> None:
    accounts = ("MASTER",)
    assert in_scope(check("clock_skew", None, CheckStatus.PASS), accounts)
    assert in_scope(check("gateway_client_auth", "client:bot-a", CheckStatus.PASS), accounts)
    assert in_scope(check("connected", "MASTER", CheckStatus.PASS), accounts)
    assert not in_scope(check("connected", "USER:x", CheckStatus.PASS), accounts)
