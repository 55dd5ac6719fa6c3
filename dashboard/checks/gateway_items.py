"""The checklist's gateway items, present when a gateway runs in the dashboard's process: per
account, Kraken never answered a call through it with an invalid nonce or a rate limit; per
gateway client, it does not keep failing authentication."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from dashboard.checks.item import Check, CheckStatus, ago
from dashboard.monitor.status import Snapshot

if TYPE_CHECKING:
    from gateway.traffic import ClientAuth, TrafficSnapshot

__all__ = ["AUTH_FAILURES_FLAGGED", "GATEWAY_PREVENTS", "bot_calls", "gateway_checks"]

#: Kraken's answers a gateway exists to prevent, as the ``gateway_kraken_errors`` check counts them
GATEWAY_PREVENTS = ("EAPI:Invalid nonce", "EAPI:Rate limit exceeded")
GATEWAY_REMEDY = (
    "Something signs with this key outside the gateway (a bot still pointed at api.kraken.com, a "
    "script, a gateway with another data dir) and takes nonces or rate budget, or "
    "KRAKEN_<ACCOUNT>_TIER names a higher tier than the account has. Point every program that "
    "uses the key at the gateway, or give it its own key (runbook: KrakenGatewayInvalidNonce, "
    "KrakenGatewayRateLimited)."
)


#: a gateway client with this many wrong signatures in a row "keeps failing authentication"
AUTH_FAILURES_FLAGGED = 3
CLIENT_AUTH_REMEDY = (
    "The bot signs with a wrong secret for its gateway client key (copied incompletely, or an "
    "old one after a rotation). Give it the secret `krakenwatch gateway add-client` printed, or "
    "issue a new credential (remove-client, then add-client) and deploy the bot with it."
)


def gateway_checks(snapshot: Snapshot) -> list[Check]:
    """When a gateway runs in this process: per account, Kraken never answered its calls with an
    invalid nonce or a rate limit (counted from the gateway's start); per gateway client that
    called, it does not keep failing authentication."""
    traffic = snapshot.gateway
    if traffic is None:
        return []
    clients = [
        _client_auth(client, auth, snapshot.taken_at, snapshot.counting_since)
        for client, auth in sorted(traffic.auth.items())
    ]
    if snapshot.counting_since is None:
        accounts = [
            _kraken_errors(account, counts, traffic.calls(account), "since it started")
            for account, counts in traffic.kraken_errors.items()
        ]
    else:
        accounts = [
            _deploy_errors(account, counts, bot_calls(traffic, account), snapshot)
            for account, counts in traffic.kraken_errors.items()
        ]
    return clients + accounts


def _deploy_errors(
    account: str, counts: Mapping[str, int], calls: int, snapshot: Snapshot
) -> Check:
    """After a deploy marker the item is judged on the bots' calls since it (the monitor's own
    calls through the gateway do not show that the new bot runs): an account a bot is expected
    on (a client credential names it, or bots called through it before the marker) waits for a
    call after it; another is not judged."""
    if calls or any(counts.get(code, 0) for code in GATEWAY_PREVENTS):
        return _kraken_errors(account, counts, calls, "since the deploy")
    if account in snapshot.gateway_bot_accounts:
        detail = "no call by a bot through the gateway since the deploy yet"
        return Check("gateway_kraken_errors", account, CheckStatus.PENDING, detail)
    detail = "no bot has called through the gateway on this account; nothing to judge"
    return Check("gateway_kraken_errors", account, CheckStatus.SKIPPED, detail, required=False)


def bot_calls(traffic: TrafficSnapshot, account: str) -> int:
    """The calls through the gateway on ``account`` by its clients (bots), not by this process."""
    from gateway.traffic import IN_PROCESS_CLIENTS  # loaded already: the traffic is the gateway's

    return sum(
        n
        for (a, client, _), n in traffic.totals.items()
        if a == account and client not in IN_PROCESS_CLIENTS
    )


def _client_auth(client: str, auth: ClientAuth, now: float, since: float | None) -> Check:
    # one item per client: its name stands where an account label would
    scope = f"client:{client}"
    last = auth.last_failure_at
    if since is not None and auth.failures_in_row and (last is None or last < since):
        detail = f"no wrong signature since the deploy ({auth.failures_in_row} in a row before it)"
        return Check("gateway_client_auth", scope, CheckStatus.PASS, detail)
    if auth.failures_in_row >= AUTH_FAILURES_FLAGGED:
        when = f", last {ago(now - last)}" if last is not None else ""
        detail = f"{auth.failures_in_row} wrong signatures in a row{when}"
        return Check("gateway_client_auth", scope, CheckStatus.FAIL, detail, CLIENT_AUTH_REMEDY)
    detail = (
        f"{auth.failures_in_row} wrong signature(s) in a row (flagged from {AUTH_FAILURES_FLAGGED})"
        if auth.failures_in_row
        else f"signs right ({auth.failures} wrong signature(s) since start)"
    )
    return Check("gateway_client_auth", scope, CheckStatus.PASS, detail)


def _kraken_errors(account: str, counts: Mapping[str, int], calls: int, since: str) -> Check:
    seen = {code: counts.get(code, 0) for code in GATEWAY_PREVENTS}
    if any(seen.values()):
        said = ", ".join(f"{n} {code}" for code, n in seen.items() if n)
        detail = f"Kraken answered {said} to calls through the gateway {since}"
        return Check("gateway_kraken_errors", account, CheckStatus.FAIL, detail, GATEWAY_REMEDY)
    if calls:
        detail = (
            f"no {' or '.join(GATEWAY_PREVENTS)} in {calls} call(s) through the gateway {since}"
        )
        return Check("gateway_kraken_errors", account, CheckStatus.PASS, detail)
    detail = "no call through the gateway yet"
    return Check("gateway_kraken_errors", account, CheckStatus.PENDING, detail)
