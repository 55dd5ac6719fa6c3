"""The checklist's items per account: connected, balance, no invalid nonce, permissions, own key,
and, with a gateway in the process, whether the account is halted (:mod:`.guard_items`).

After a deploy marker (:attr:`~dashboard.monitor.status.AccountStatus.counting_since`) the
connection, the balance and the invalid nonces count only from the marker.

Time matters to them only through the freshness of the last success
(:meth:`~dashboard.monitor.status.AccountStatus.is_fresh`), apart from the ages written in details.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from broker import ConfigurationError, InvalidNonceError, PermissionDeniedError
from dashboard.checks.guard_items import SHARED_KEY_REMEDY, foreign_writer_check, halted_check
from dashboard.checks.item import Check, CheckStatus, ago
from dashboard.checks.trading_items import trading_check
from dashboard.config import Settings
from dashboard.monitor.status import AccountState, AccountStatus

if TYPE_CHECKING:
    from gateway.guardview import GuardSnapshot

__all__ = ["PERMISSION_ITEMS", "account_checks"]

#: (the permission's key in the status, the item, Kraken's name for the permission)
PERMISSION_ITEMS = (
    ("funds", "permission_query_funds", "Query Funds"),
    ("orders", "permission_query_orders", "Query Open Orders & Trades"),
    ("trade", "permission_create_orders", "Create & Modify Orders"),
)
_NOT_CONNECTED = (
    "balance_fetched",
    "no_invalid_nonce",
    "permission_query_funds",
    "permission_query_orders",
    "trading_active",
)


def account_checks(
    a: AccountStatus, now: float, settings: Settings, guard: GuardSnapshot | None = None
) -> list[Check]:
    """One account's items at ``now`` (``guard``: the trading guard of the gateway running in
    this process, which adds ``halted`` and may fail ``dedicated_key``)."""
    if not a.configured:
        return _misconfigured(a)
    checks = [
        _connected(a, now, settings),
        _balance(a),
        _nonce(a),
        *(_permission(a, *item, probe_trade=settings.probe_trade) for item in PERMISSION_ITEMS),
        foreign_writer_check(a, guard, now) or _dedicated_key(a),
        trading_check(a, now, settings),
    ]
    if guard is not None:
        checks.append(halted_check(a.label, guard, now))
    return checks


def _misconfigured(a: AccountStatus) -> list[Check]:
    connected = Check(
        "connected",
        a.label,
        CheckStatus.FAIL,
        f"invalid configuration: {a.reason}",
        ConfigurationError.remedy,
    )
    not_run = "not connected: the configuration is invalid"
    return [
        connected,
        *(Check(n, a.label, CheckStatus.SKIPPED, not_run, required=False) for n in _NOT_CONNECTED),
    ]


def _no_call_since_the_marker(a: AccountStatus) -> bool:
    """After a deploy marker: no call of the account has succeeded or failed since it (what
    the account says is from before the deploy: pending, not a verdict on it)."""
    since = a.counting_since
    if since is None or a.succeeded_since_count_began():
        return False
    return a.last_call_at is None or a.last_call_at < since


def _connected(a: AccountStatus, now: float, settings: Settings) -> Check:
    remedy = a.last_error.remedy if a.last_error else None
    if a.state != AccountState.CONNECTED and _no_call_since_the_marker(a):
        detail = f"no call since the deploy yet (before it: {a.state}: {a.reason})"
        return Check("connected", a.label, CheckStatus.PENDING, detail)
    if a.is_up(now, settings.freshness_s):
        since = ago(now - (a.last_success_at or now))
        if not a.succeeded_since_count_began():
            detail = f"no successful call since the deploy yet (the last {since})"
            return Check("connected", a.label, CheckStatus.PENDING, detail)
        if a.stream.up:
            up = ago(now - (a.stream.connected_since or now)).removesuffix(" ago")
            detail = f"stream up for {up}; last REST call {since}"
            return Check("connected", a.label, CheckStatus.PASS, detail)
        return Check("connected", a.label, CheckStatus.PASS, f"last successful call {since}")
    if a.state in (AccountState.DISCONNECTED, AccountState.INVALID_CONFIG, AccountState.DEGRADED):
        return Check("connected", a.label, CheckStatus.FAIL, f"{a.state}: {a.reason}", remedy)
    if a.last_success_at is not None:
        return Check(
            "connected",
            a.label,
            CheckStatus.FAIL,
            f"no successful call for {ago(now - a.last_success_at)}",
            "Check the account's recent errors on the timeline.",
        )
    return Check("connected", a.label, CheckStatus.PENDING, "connecting: no answer from Kraken yet")


def _balance(a: AccountStatus) -> Check:
    if a.balance_error and _no_call_since_the_marker(a):
        detail = f"no balance read since the deploy yet (before it: {a.balance_error})"
        return Check("balance_fetched", a.label, CheckStatus.PENDING, detail)
    if a.balance_error:
        remedy = a.last_error.remedy if a.last_error else None
        detail = f"unknown ({a.balance_error})"
        return Check("balance_fetched", a.label, CheckStatus.FAIL, detail, remedy)
    if a.balances is not None and not a.succeeded_since_count_began():
        detail = "no balance read since the deploy yet"
        return Check("balance_fetched", a.label, CheckStatus.PENDING, detail)
    if a.balances is not None:
        shown = ", ".join(f"{k} {v}" for k, v in sorted(a.balances.items())[:6]) or "no assets"
        return Check("balance_fetched", a.label, CheckStatus.PASS, shown)
    return Check("balance_fetched", a.label, CheckStatus.PENDING, "no balance read yet")


def _nonce(a: AccountStatus) -> Check:
    if a.invalid_nonce_count:
        error = a.last_error
        nonce_error = error if error and error.kind == InvalidNonceError.kind else None
        diagnosis = nonce_error.diagnosis if nonce_error else None
        return Check(
            "no_invalid_nonce",
            a.label,
            CheckStatus.FAIL,
            f"{a.invalid_nonce_count} invalid-nonce answer(s) {a.counted}"
            + (f" ({diagnosis})" if diagnosis else ""),
            nonce_error.remedy if nonce_error else InvalidNonceError.remedy,
        )
    if a.succeeded_since_count_began():
        return Check("no_invalid_nonce", a.label, CheckStatus.PASS, f"none {a.counted}")
    detail = f"no private call has succeeded {a.counted} yet"
    return Check("no_invalid_nonce", a.label, CheckStatus.PENDING, detail)


def _permission(a: AccountStatus, perm: str, name: str, title: str, *, probe_trade: bool) -> Check:
    if perm == "trade" and not probe_trade:
        detail = "not probed (set KRAKENWATCH_PROBE_TRADE=1 for trading keys)"
        return Check(name, a.label, CheckStatus.SKIPPED, detail, required=False)
    granted = a.permissions.get(perm)
    if granted is True:
        return Check(name, a.label, CheckStatus.PASS, f"{title} granted")
    if granted is False:
        detail = f"{title} denied (EGeneral:Permission denied)"
        return Check(name, a.label, CheckStatus.FAIL, detail, PermissionDeniedError.remedy)
    return Check(name, a.label, CheckStatus.PENDING, f"{title} not probed yet")


def _dedicated_key(a: AccountStatus) -> Check:
    if a.shared_with:
        return Check(
            "dedicated_key",
            a.label,
            CheckStatus.FAIL,
            f"same API key as {', '.join(a.shared_with)}",
            SHARED_KEY_REMEDY,
            required=False,
        )
    detail = "no other label uses this key"
    return Check("dedicated_key", a.label, CheckStatus.PASS, detail, required=False)
