"""The deploy document (``/api/deploys``, ``krakenwatch deploy``), and the verify document judged
for the latest deploy (``/api/verify``)."""

from __future__ import annotations

from typing import Any

from dashboard.checks.item import Check
from dashboard.checks.verify import iso_time, verify_document
from dashboard.config import Settings
from dashboard.deploys.verdict import deploy_ok, in_scope
from dashboard.history.deploy_book import Deploy
from dashboard.monitor.status import Snapshot

__all__ = ["deploy_document", "verify_for_deploy"]


def deploy_document(deploy: Deploy, settings: Settings) -> dict[str, Any]:
    """``deploy`` as JSON: the contract's fields, the reason in words, and the judging periods."""
    seconds = deploy.seconds_to_verdict
    return {
        "id": deploy.id,
        "version": deploy.version,
        "accounts": list(deploy.accounts),
        "note": deploy.note,
        "marked_at": iso_time(deploy.marked_at),
        "marked_at_seconds": deploy.marked_at,
        "state": str(deploy.state),
        "verified_at": iso_time(deploy.decided_at) if deploy.state == "verified" else None,
        "decided_at": iso_time(deploy.decided_at),
        "seconds_to_verdict": None if seconds is None else round(seconds, 3),
        "reason": deploy.reason,
        "failing": [dict(c) for c in deploy.failing],
        "gateway_accounts": list(deploy.gateway_accounts),
        "grace_seconds": settings.deploy_grace_s,
        "timeout_seconds": settings.deploy_timeout_s,
    }


def verify_for_deploy(
    snapshot: Snapshot, settings: Settings, checks: list[Check], deploy: Deploy | None
) -> dict[str, Any]:
    """The verify document; after a marker (``snapshot`` re-based on it) it carries the deploy,
    each check says whether it judges the deploy (``in_deploy``), and ``ok`` is judged on those
    and on the deploy's verdict (:func:`~dashboard.deploys.verdict.deploy_ok`)."""
    doc = verify_document(snapshot, settings, checks)
    doc["deploy"] = None if deploy is None else deploy_document(deploy, settings)
    if deploy is None:
        return doc
    doc["ok"] = deploy_ok(checks, deploy)
    for check, listed in zip(checks, doc["checks"], strict=True):
        listed["in_deploy"] = in_scope(check, deploy.accounts)
    return doc
