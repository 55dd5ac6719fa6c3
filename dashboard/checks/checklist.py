"""The live post-deploy verification checklist: each item checked against the monitor's snapshot.

Every item has a :class:`CheckStatus`: ``pass``, ``fail``, ``pending`` (no data yet) or
``skipped`` (does not apply). ``ok`` is true when no *required* item is ``fail`` or ``pending``:
no data is never a pass. The same items feed the Overview page, ``/api/verify``,
``krakenwatch check`` and the ``krakenwatch_check_success`` gauge.
"""

from __future__ import annotations

from broker import ConfigurationError, InvalidNonceError, PermissionDeniedError

from .checkitem import CHECK_TITLES, Check, CheckStatus, ago, check_title, counted
from .config import NO_ACCOUNT, NO_ACCOUNT_HELP, Settings
from .gateway_checks import gateway_checks
from .status import AccountState, AccountStatus, Snapshot

__all__ = [  # the item types are re-exported: pages and tests import them from here
    "CHECK_TITLES",
    "Check",
    "CheckStatus",
    "account_checks",
    "build_checklist",
    "check_title",
    "global_checks",
]


def build_checklist(snapshot: Snapshot, settings: Settings) -> list[Check]:
    configuration, started, *others = global_checks(snapshot, settings)
    per_account = [
        check
        for status in snapshot.accounts
        for check in account_checks(status, snapshot.taken_at, settings)
    ]
    return [configuration, started, *per_account, *others]


def global_checks(snapshot: Snapshot, settings: Settings) -> list[Check]:
    """The items that are not per account: configuration, monitor started, then the clock,
    Kraken's status, the bot-log items and the gateway's (which change with its traffic)."""
    return [
        _configuration(settings),
        _started(snapshot),
        _clock(snapshot, settings),
        _kraken_status(snapshot),
        *_bot_log(snapshot, settings),
        *gateway_checks(snapshot),
    ]


def _configuration(settings: Settings) -> Check:
    errors = settings.config_errors
    if not settings.accounts and not errors:
        return Check(
            "configuration",
            None,
            CheckStatus.FAIL,
            NO_ACCOUNT,
            NO_ACCOUNT_HELP,
        )
    if errors:
        return Check(
            "configuration",
            None,
            CheckStatus.FAIL,
            "; ".join(str(p) for p in errors),
            "Fix the named variables; the other accounts keep running.",
        )
    warnings = [str(p) for p in settings.all_problems if p.severity != "error"]
    detail = f"{counted(len(settings.accounts), 'account')} configured" + (
        f"; warnings: {'; '.join(warnings)}" if warnings else ""
    )
    return Check("configuration", None, CheckStatus.PASS, detail)


def _started(snapshot: Snapshot) -> Check:
    if snapshot.started_at is None:
        return Check(
            "monitor_started", None, CheckStatus.PENDING, "the monitor has not started yet"
        )
    return Check(
        "monitor_started",
        None,
        CheckStatus.PASS,
        f"started {ago(snapshot.taken_at - snapshot.started_at)}",
    )


def account_checks(a: AccountStatus, now: float, settings: Settings) -> list[Check]:
    """One account's items at ``now``. Time matters to them only through the freshness of the
    last success (:meth:`AccountStatus.is_fresh`), apart from the ages written in details."""
    if not a.configured:
        return [
            Check(
                "connected",
                a.label,
                CheckStatus.FAIL,
                f"invalid configuration: {a.reason}",
                ConfigurationError.remedy,
            ),
            *(
                Check(
                    name,
                    a.label,
                    CheckStatus.SKIPPED,
                    "not connected: the configuration is invalid",
                    required=False,
                )
                for name in (
                    "balance_fetched",
                    "no_invalid_nonce",
                    "permission_query_funds",
                    "permission_query_orders",
                )
            ),
        ]
    error = a.last_error
    remedy = error.remedy if error else None
    label = a.label
    if a.is_up(now, settings.freshness_s):
        connected = Check(
            "connected",
            label,
            CheckStatus.PASS,
            f"last successful call {ago(now - (a.last_success_at or now))}",
        )
    elif a.state in (
        AccountState.DISCONNECTED,
        AccountState.INVALID_CONFIG,
        AccountState.DEGRADED,
    ):
        connected = Check("connected", label, CheckStatus.FAIL, f"{a.state}: {a.reason}", remedy)
    elif a.last_success_at is not None:
        connected = Check(
            "connected",
            label,
            CheckStatus.FAIL,
            f"no successful call for {ago(now - a.last_success_at)}",
            "Check the account's recent errors on the timeline.",
        )
    else:
        connected = Check(
            "connected", label, CheckStatus.PENDING, "connecting: no answer from Kraken yet"
        )

    if a.balance_error:
        balance = Check(
            "balance_fetched", label, CheckStatus.FAIL, f"unknown ({a.balance_error})", remedy
        )
    elif a.balances is not None:
        shown = ", ".join(f"{k} {v}" for k, v in sorted(a.balances.items())[:6]) or "no assets"
        balance = Check("balance_fetched", label, CheckStatus.PASS, shown)
    else:
        balance = Check("balance_fetched", label, CheckStatus.PENDING, "no balance read yet")

    if a.invalid_nonce_count:
        nonce_error = error if error and error.kind == InvalidNonceError.kind else None
        diagnosis = nonce_error.diagnosis if nonce_error else None
        nonce = Check(
            "no_invalid_nonce",
            label,
            CheckStatus.FAIL,
            f"{a.invalid_nonce_count} invalid-nonce answer(s) since start"
            + (f" ({diagnosis})" if diagnosis else ""),
            nonce_error.remedy if nonce_error else InvalidNonceError.remedy,
        )
    elif a.last_success_at is not None:
        nonce = Check("no_invalid_nonce", label, CheckStatus.PASS, "none since start")
    else:
        nonce = Check(
            "no_invalid_nonce", label, CheckStatus.PENDING, "no private call has succeeded yet"
        )

    checks = [connected, balance, nonce]
    for perm, name, title in (
        ("funds", "permission_query_funds", "Query Funds"),
        ("orders", "permission_query_orders", "Query Open Orders & Trades"),
        ("trade", "permission_create_orders", "Create & Modify Orders"),
    ):
        granted = a.permissions.get(perm)
        if perm == "trade" and not settings.probe_trade:
            checks.append(
                Check(
                    name,
                    label,
                    CheckStatus.SKIPPED,
                    "not probed (set KRAKENWATCH_PROBE_TRADE=1 for trading keys)",
                    required=False,
                )
            )
        elif granted is True:
            checks.append(Check(name, label, CheckStatus.PASS, f"{title} granted"))
        elif granted is False:
            checks.append(
                Check(
                    name,
                    label,
                    CheckStatus.FAIL,
                    f"{title} denied (EGeneral:Permission denied)",
                    PermissionDeniedError.remedy,
                )
            )
        else:
            checks.append(Check(name, label, CheckStatus.PENDING, f"{title} not probed yet"))
    if a.shared_with:
        checks.append(
            Check(
                "dedicated_key",
                label,
                CheckStatus.FAIL,
                f"same API key as {', '.join(a.shared_with)}",
                "Give each account and program its own API key; a shared key is the classic cause of invalid nonces.",
                required=False,
            )
        )
    else:
        checks.append(
            Check(
                "dedicated_key",
                label,
                CheckStatus.PASS,
                "no other label uses this key",
                required=False,
            )
        )
    return checks


def _clock(snapshot: Snapshot, settings: Settings) -> Check:
    skew = snapshot.skew
    if skew is None:
        return Check("clock_skew", None, CheckStatus.PENDING, "no clock sample yet")
    detail = f"local - Kraken = {skew.offset_s:+.3f} s ± {skew.uncertainty_s:.3f} s (bound {settings.max_skew_s:g} s)"
    if abs(skew.offset_s) > settings.max_skew_s:
        return Check(
            "clock_skew",
            None,
            CheckStatus.FAIL,
            detail,
            "Synchronise this host's clock (chrony/systemd-timesyncd with NTP); a clock behind Kraken's makes time-based nonces start too low.",
        )
    return Check("clock_skew", None, CheckStatus.PASS, detail)


def _kraken_status(snapshot: Snapshot) -> Check:
    status = snapshot.system_status
    if status is None:
        return Check(
            "kraken_status", None, CheckStatus.PENDING, "SystemStatus not read yet", required=False
        )
    if status == "online":
        return Check("kraken_status", None, CheckStatus.PASS, "online", required=False)
    return Check(
        "kraken_status",
        None,
        CheckStatus.FAIL,
        status,
        "Kraken-side: trading is restricted until Kraken is back online (status.kraken.com).",
        required=False,
    )


def _bot_log(snapshot: Snapshot, settings: Settings) -> list[Check]:
    names = {
        "bot_kraken_connected": "kraken_connected",
        "bot_other_brokers": "other_broker_connected",
        "bot_trading_cycles": "trading_cycle",
        "bot_no_invalid_nonce": "invalid_nonce",
    }
    if settings.bot_log is not None and not snapshot.log_watching:
        return [
            Check(
                name,
                None,
                CheckStatus.SKIPPED,
                "bot-log checks run in `krakenwatch up`, which follows the log since it started",
                required=False,
            )
            for name in names
        ]
    if settings.bot_log is None:
        return [
            Check(
                name,
                None,
                CheckStatus.SKIPPED,
                "no bot log configured (KRAKENWATCH_BOT_LOG)",
                required=False,
            )
            for name in names
        ]
    checks = []
    for name, pattern in names.items():
        seen = snapshot.log_matches.get(pattern, 0)
        if name == "bot_no_invalid_nonce":
            checks.append(
                Check(
                    name,
                    None,
                    CheckStatus.FAIL,
                    f"{seen} Invalid nonce line(s) in {settings.bot_log}",
                    InvalidNonceError.remedy,
                )
                if seen
                else Check(
                    name,
                    None,
                    CheckStatus.PASS,
                    f"no Invalid nonce line in {settings.bot_log} since start",
                )
            )
        elif seen:
            checks.append(
                Check(
                    name, None, CheckStatus.PASS, f"{seen} matching line(s) in {settings.bot_log}"
                )
            )
        else:
            checks.append(
                Check(
                    name, None, CheckStatus.PENDING, f"no matching line in {settings.bot_log} yet"
                )
            )
    return checks
