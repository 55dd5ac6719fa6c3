"""The live post-deploy verification checklist: each item checked against the monitor's snapshot.

Every item has a :class:`CheckStatus`: ``pass``, ``fail``, ``pending`` (no data yet) or
``skipped`` (does not apply). ``ok`` is true when no *required* item is ``fail`` or ``pending``:
no data is never a pass. The same items feed the Overview page, ``/api/verify``,
``krakenwatch check`` and the ``krakenwatch_check_success`` gauge.
"""

from __future__ import annotations

from broker import InvalidNonceError
from dashboard.checks.account_items import account_checks
from dashboard.checks.gateway_items import gateway_checks
from dashboard.checks.item import CHECK_TITLES, Check, CheckStatus, ago, check_title, counted
from dashboard.config import NO_ACCOUNT, NO_ACCOUNT_HELP, Settings
from dashboard.monitor.status import Snapshot

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
        for check in account_checks(status, snapshot.taken_at, settings, snapshot.gateway_guard)
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


#: the bot-log items and the pattern each counts
BOT_LOG_ITEMS = {
    "bot_kraken_connected": "kraken_connected",
    "bot_other_brokers": "other_broker_connected",
    "bot_trading_cycles": "trading_cycle",
    "bot_no_invalid_nonce": "invalid_nonce",
}


def _bot_log(snapshot: Snapshot, settings: Settings) -> list[Check]:
    log = settings.bot_log
    if log is None:
        why = "no bot log configured (KRAKENWATCH_BOT_LOG)"
    elif not snapshot.log_watching:
        why = "bot-log checks run in `krakenwatch up`, which follows the log since it started"
    else:
        return [
            _bot_log_item(name, snapshot.log_matches.get(pattern, 0), str(log), snapshot.counted)
            for name, pattern in BOT_LOG_ITEMS.items()
        ]
    return [Check(name, None, CheckStatus.SKIPPED, why, required=False) for name in BOT_LOG_ITEMS]


def _bot_log_item(name: str, seen: int, log: str, counted: str) -> Check:
    """One bot-log item, from how many lines matched its pattern (``counted``: since when)."""
    if name == "bot_no_invalid_nonce":
        if seen:
            return Check(
                name,
                None,
                CheckStatus.FAIL,
                f"{seen} Invalid nonce line(s) in {log} {counted}",
                InvalidNonceError.remedy,
            )
        return Check(name, None, CheckStatus.PASS, f"no Invalid nonce line in {log} {counted}")
    if seen:
        return Check(name, None, CheckStatus.PASS, f"{seen} matching line(s) in {log} {counted}")
    return Check(name, None, CheckStatus.PENDING, f"no matching line in {log} {counted} yet")
