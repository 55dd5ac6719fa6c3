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
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dashboard.checks.item import Check, CheckStatus, counted
from dashboard.history.deploy_book import Deploy, DeployState

__all__ = ["decide", "in_scope", "scoped", "supersede"]

#: the scope of the gateway's per-client items (they belong to every deploy)
CLIENT_SCOPE = "client:"


def in_scope(check: Check, accounts: Sequence[str]) -> bool:
    """Whether ``check`` judges a deploy of ``accounts``: the global items, the gateway clients'
    items, and the items of those accounts."""
    account = check.account
    return account is None or account.startswith(CLIENT_SCOPE) or account in accounts


def scoped(checks: Iterable[Check], accounts: Sequence[str]) -> list[Check]:
    """The required checks that judge a deploy of ``accounts``."""
    return [c for c in checks if c.required and in_scope(c, accounts)]


def decide(
    deploy: Deploy, checks: Sequence[Check], now: float, *, grace_s: float, timeout_s: float
) -> Deploy:
    """``deploy`` judged at ``now`` on ``checks`` (itself when already decided)."""
    if deploy.state != DeployState.PENDING:
        return deploy
    mine = scoped(checks, deploy.accounts)
    failing = [c for c in mine if c.status == CheckStatus.FAIL]
    waiting = [c for c in mine if c.status == CheckStatus.PENDING]
    open_checks = tuple(c.as_dict() for c in [*failing, *waiting])
    age = now - deploy.marked_at
    if not failing and not waiting:
        return _decided(deploy, DeployState.VERIFIED, now, (), _verified_reason(len(mine)))
    if failing and age >= grace_s:
        reason = (
            f"{counted(len(failing), 'required check')} still failing {grace_s:g} s after the "
            f"marker (the grace period): {_names(failing)}"
        )
        return _decided(deploy, DeployState.FAILED, now, open_checks, reason)
    if age >= timeout_s:
        reason = (
            f"not verified within {timeout_s:g} s: {counted(len(failing), 'check')} failing, "
            f"{counted(len(waiting), 'check')} still pending ({_names([*failing, *waiting])})"
        )
        return _decided(deploy, DeployState.FAILED, now, open_checks, reason)
    if failing:
        left = max(0.0, grace_s - age)
        reason = (
            f"{counted(len(failing), 'required check')} failing; the deploy fails unless "
            f"{'it passes' if len(failing) == 1 else 'they pass'} within {left:.0f} s "
            "(the grace period)"
        )
    else:
        reason = f"waiting for data from after the marker: {_names(waiting)}"
    return dataclasses.replace(deploy, reason=reason, failing=open_checks)


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


def _names(checks: Sequence[Check], shown: int = 4) -> str:
    names = [f"{c.title} ({c.account})" if c.account else c.title for c in checks]
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
