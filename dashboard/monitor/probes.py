"""Which permissions an API key has, proven by calls that change nothing.

* *Query Open Orders & Trades*: ``OpenOrders``.
* *Create & Modify Orders* (only when asked for): ``AddOrder`` with ``validate=true``, which Kraken
  judges and never places.

Only an answer that got past Kraken's permission check proves a permission: success, an
``EOrder:*`` rejection (the trading engine judged the order) or a market restriction
(``EService:Market in cancel_only/post_only mode``). ``EGeneral:Permission denied`` disproves it.
Anything else (bad arguments, Kraken unavailable, rate limits, nonce or transport trouble) proves
nothing: the permission stays unknown, and the checklist shows it as pending.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from broker import (
    KrakenAPIError,
    KrakenClient,
    KrakenError,
    MarketRestrictedError,
    PermissionDeniedError,
)

__all__ = ["ProbeResult", "probe_permissions", "read_permission", "trade_permission"]

#: a tiny limit order far below the market; with ``validate=true`` it is never placed
VALIDATE_ONLY_ORDER: Mapping[str, str] = {
    "pair": "XBTUSD",
    "type": "buy",
    "ordertype": "limit",
    "price": "1",
    "volume": "0.0001",
    "validate": "true",
}


@dataclass(frozen=True)
class ProbeResult:
    permission: str  # "orders" or "trade"
    #: True proven, False denied, None not proven either way
    granted: bool | None
    #: the raw Kraken code (or the error kind) of a failed probe
    code: str | None = None


def read_permission(exc: KrakenError) -> bool | None:
    """What a failed read-only call proves: denied, or nothing."""
    return False if isinstance(exc, PermissionDeniedError) else None


def trade_permission(exc: KrakenError) -> bool | None:
    """What a failed ``AddOrder validate=true`` proves (see the module docstring)."""
    if isinstance(exc, PermissionDeniedError):
        return False
    if isinstance(exc, MarketRestrictedError):
        return True
    if isinstance(exc, KrakenAPIError) and exc.code.startswith("EOrder:"):
        return True
    return None


def _probe(
    client: KrakenClient,
    permission: str,
    method: str,
    data: Mapping[str, str],
    judge: Callable[[KrakenError], bool | None],
) -> ProbeResult:
    try:
        client.call_private(method, data)
    except KrakenError as exc:
        code = exc.code if isinstance(exc, KrakenAPIError) else exc.kind
        return ProbeResult(permission, judge(exc), code)
    return ProbeResult(permission, True)


def probe_permissions(client: KrakenClient, *, trade: bool) -> list[ProbeResult]:
    """Probe *Query Open Orders & Trades*, then (when ``trade``) *Create & Modify Orders*; an
    unknown answer to the first ends the probing (the key or Kraken has trouble right now)."""
    results = [_probe(client, "orders", "OpenOrders", {}, read_permission)]
    if trade and results[0].granted is not None:
        results.append(_probe(client, "trade", "AddOrder", VALIDATE_ONLY_ORDER, trade_permission))
    return results
