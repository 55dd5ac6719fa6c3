"""The verify document: the checklist, the accounts and the configuration problems as one JSON
object, served by ``/api/verify`` and printed by ``krakenwatch check --json``."""

from __future__ import annotations

import time
from typing import Any

from dashboard.checks.checklist import build_checklist
from dashboard.checks.item import Check, CheckStatus
from dashboard.config import Settings
from dashboard.monitor.status import AccountState, Snapshot

__all__ = ["iso_time", "verify_document"]


def verify_document(
    snapshot: Snapshot, settings: Settings, checks: list[Check] | None = None
) -> dict[str, Any]:
    """The verify document served by ``/api/verify`` and printed by ``krakenwatch check --json``."""
    checks = build_checklist(snapshot, settings) if checks is None else checks
    ok = not any(c.required and c.status in (CheckStatus.FAIL, CheckStatus.PENDING) for c in checks)
    skew = snapshot.skew
    return {
        "ok": ok,
        "generated_at": iso_time(snapshot.taken_at),
        "started_at": iso_time(snapshot.started_at),
        "clock_skew_seconds": None if skew is None else round(skew.offset_s, 6),
        "clock_skew_uncertainty_seconds": None if skew is None else round(skew.uncertainty_s, 6),
        "kraken_status": snapshot.system_status,
        "accounts": [
            {
                "account": a.label,
                "state": a.state,
                "since": iso_time(a.since),
                "reason": a.reason,
                "key": a.masked_key,
                "nonce_unit": a.nonce_unit,
                "nonce_store": a.nonce_status.store if a.nonce_status else None,
                "balances": None if a.balance_error else a.balances,
                "balance_error": a.balance_error,
                "last_known_balances": a.balances,
                "last_success_at": iso_time(a.last_success_at),
                "invalid_nonce_errors": a.invalid_nonce_count,
                "nonce_refreshes": a.refresh_count,
                "permissions": dict(a.permissions),
                "error": a.last_error.as_dict()
                if a.last_error and a.state != AccountState.CONNECTED
                else None,
                "last_error": a.last_error.as_dict() if a.last_error else None,
            }
            for a in snapshot.accounts
        ],
        "problems": [
            {
                "variable": p.variable,
                "message": p.message,
                "severity": p.severity,
                "account": p.account,
            }
            for p in settings.all_problems
        ],
        "checks": [c.as_dict() for c in checks],
    }


def iso_time(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
