"""The rule that decides a deploy: pending, verified or failed, from its checks and the time.

* verified: the first judgement at which every required check in the deploy's scope passes (the
  checks count from the marker: :mod:`dashboard.deploys.window`);
* failed: a required check fails once ``grace_s`` have passed since the marker, or nothing was
  verified within ``timeout_s``;
* pending otherwise, with the checks that still fail or wait.

A decided deploy stays decided: its verdict is a fact about that deploy. The live checklist
(``/api/verify``) goes on judging the present.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dashboard.checks.item import Check, CheckStatus, counted
from dashboard.history.deploy_book import Deploy, DeployState

__all__ = [
    "CONFIRM_S",
    "CheckKey",
    "check_key",
    "confirm_s",
    "decide",
    "deploy_ok",
    "in_scope",
    "scoped",
    "supersede",
]

#: the scope of the gateway's per-client items (they belong to every deploy)
CLIENT_SCOPE = "client:"
#: past the grace period, a check fails a deploy once it has failed this long without a break
CONFIRM_S = 30.0
#: a check, as the judge follows it between judgements: (name, account)
CheckKey = tuple[str, str | None]


def in_scope(check: Check, accounts: Sequence[str]) -> bool:
    """Whether ``check`` judges a deploy of ``accounts``: the global items, the gateway clients'
    items, and the items of those accounts."""
    account = check.account
    return account is None or account.startswith(CLIENT_SCOPE) or account in accounts


def scoped(checks: Iterable[Check], accounts: Sequence[str]) -> list[Check]:
    """The required checks that judge a deploy of ``accounts``."""
    return [c for c in checks if c.required and in_scope(c, accounts)]


def check_key(check: Check) -> CheckKey:
    return check.name, check.account


def confirm_s(grace_s: float) -> float:
    """How long a check must have failed without a break to fail a deploy past its grace period:
    :data:`CONFIRM_S`, or the grace period when shorter (0: at once)."""
    return min(CONFIRM_S, grace_s)


def decide(
    deploy: Deploy,
    checks: Sequence[Check],
    now: float,
    *,
    grace_s: float,
    timeout_s: float,
    failing_since: Mapping[CheckKey, float] | None = None,
) -> Deploy:
    """``deploy`` judged at ``now`` on ``checks`` (itself when already decided).

    ``failing_since``: since when each failing check has been failing without a break (at the
    judgements so far); a check fails the deploy past the grace period once it has failed for
    :func:`confirm_s`, so that one passing hiccup (a 5xx from Kraken, a retried call) does not
    fail a good deploy for good. Without it, every failing check counts as failing for long.
    """
    if deploy.state != DeployState.PENDING:
        return deploy
    mine = scoped(checks, deploy.accounts)
    failing = [c for c in mine if c.status == CheckStatus.FAIL]
    waiting = [c for c in mine if c.status == CheckStatus.PENDING]
    open_checks = tuple(c.as_dict() for c in [*failing, *waiting])
    age = now - deploy.marked_at
    if not failing and not waiting:
        return _decided(deploy, DeployState.VERIFIED, now, (), _verified_reason(len(mine)))
    since = failing_since or {}
    lasting = [c for c in failing if now - since.get(check_key(c), -math.inf) >= confirm_s(grace_s)]
    if lasting and age >= grace_s:
        failing = lasting
        reason = (
            f"{counted(len(failing), 'required check')} still failing {grace_s:g} s after the "
            f"marker (the grace period): {_titles(failing)}"
        )
        return _decided(deploy, DeployState.FAILED, now, open_checks, reason)
    if age >= timeout_s:
        reason = (
            f"not verified within {timeout_s:g} s: {counted(len(failing), 'check')} failing, "
            f"{counted(len(waiting), 'check')} still pending ({_titles([*failing, *waiting])})"
        )
        return _decided(deploy, DeployState.FAILED, now, open_checks, reason)
    if failing:
        confirm = confirm_s(grace_s)
        soonest = min(confirm - (now - since.get(check_key(c), -math.inf)) for c in failing)
        left = max(0.0, grace_s - age, soonest)
        reason = (
            f"{counted(len(failing), 'required check')} failing; the deploy fails unless "
            f"{'it passes' if len(failing) == 1 else 'they pass'} within {left:.0f} s "
            + (
                "(the grace period)"
                if grace_s - age >= soonest
                else f"(a check fails a deploy after failing for {confirm:g} s without a break)"
            )
        )
    else:
        reason = f"waiting for data from after the marker: {_titles(waiting)}"
    return dataclasses.replace(deploy, reason=reason, failing=open_checks)


def deploy_ok(checks: Sequence[Check], deploy: Deploy | None) -> bool:
    """What ``/api/verify`` (and the Overview's live verdict) says: no required check failing or
    pending; once a deploy is marked, of its scope only, and only while that deploy is verified
    (a failed deploy stays not ok, so a rollout controller never promotes it)."""
    blocking = (CheckStatus.FAIL, CheckStatus.PENDING)
    if deploy is None:
        return not any(c.required and c.status in blocking for c in checks)
    if deploy.state != DeployState.VERIFIED:
        return False
    return not any(c.status in blocking for c in scoped(checks, deploy.accounts))


def supersede(deploy: Deploy, by: Deploy) -> Deploy:
    """A pending ``deploy`` that ``by`` was marked after, before its verdict: failed."""
    if deploy.state != DeployState.PENDING:
        return deploy
    reason = f"superseded by {by.title} (#{by.id}) before its verdict"
    return _decided(deploy, DeployState.FAILED, by.marked_at, deploy.failing, reason)


def _decided(
    deploy: Deploy,
    state: DeployState,
    now: float,
    failing: tuple[Mapping[str, Any], ...],
    reason: str,
) -> Deploy:
    return dataclasses.replace(deploy, state=state, decided_at=now, reason=reason, failing=failing)


def _verified_reason(n: int) -> str:
    return f"all {counted(n, 'required check')} passed with data from after the marker"


def _titles(checks: Sequence[Check], shown: int = 4) -> str:
    names = [f"{c.title} ({c.account})" if c.account else c.title for c in checks]
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
