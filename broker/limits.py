"""Kraken's published REST rate limits: one table for the monitor, the gateway and the simulator.

Every API key has a call counter. Ledger and trade-history queries add 2, most other private
calls add 1; ``AddOrder`` and ``CancelOrder`` (and their batch/edit variants) are judged by the
matching engine's per-pair trading limiter instead (``EOrder:Rate limit exceeded``) and add
nothing here. The counter decays continuously at the tier's rate; a call that would take it over
the tier's maximum is answered ``EAPI:Rate limit exceeded``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DEFAULT_TIER",
    "TIERS",
    "TRADING_THRESHOLDS",
    "Tier",
    "call_cost",
    "parse_tier",
    "trading_cost",
]


@dataclass(frozen=True)
class Tier:
    name: str
    #: the highest counter value a call may reach
    maximum: float
    #: how much the counter decays per second
    decay_per_s: float

    def seconds_to_decay(self, amount: float) -> float:
        """How long the counter takes to fall by ``amount``."""
        return max(0.0, amount) / self.decay_per_s


TIERS: dict[str, Tier] = {
    "starter": Tier("starter", 15.0, 0.33),
    "intermediate": Tier("intermediate", 20.0, 0.5),
    "pro": Tier("pro", 20.0, 1.0),
}
DEFAULT_TIER = "starter"

#: private methods that add 2 to the counter (ledger and trade-history queries)
_COST_TWO = frozenset({"Ledgers", "QueryLedgers", "TradesHistory", "QueryTrades"})
#: private methods judged by the per-pair trading limiter instead of the call counter
#: (``CancelAll`` and ``CancelAllOrdersAfter`` count on the call counter: kraken-api.md)
_TRADING = frozenset(
    {
        "AddOrder",
        "AddOrderBatch",
        "AmendOrder",
        "EditOrder",
        "CancelOrder",
        "CancelOrderBatch",
    }
)


def call_cost(method: str) -> float:
    """What one private call of ``method`` adds to the key's call counter."""
    if method in _TRADING:
        return 0.0
    return 2.0 if method in _COST_TWO else 1.0


def parse_tier(value: str) -> Tier:
    """A tier by name (case-insensitive); ``ValueError`` naming the known tiers otherwise."""
    name = value.strip().lower()
    try:
        return TIERS[name]
    except KeyError:
        raise ValueError(f"unknown tier {value.strip()!r}; use {', '.join(TIERS)}") from None


#: the per-pair trading counter of each tier: (threshold, decay per second) (kraken-api.md,
#: "Spot trading limits"); shared by REST, WebSocket and FIX
TRADING_THRESHOLDS: dict[str, tuple[float, float]] = {
    "starter": (60.0, 1.0),
    "intermediate": (125.0, 2.34),
    "pro": (180.0, 3.75),
}
#: the fixed count of a transaction on the trading counter
_TRADING_FIXED = {"add": 1.0, "amend": 1.0, "edit": 1.0, "cancel": 0.0}
#: the extra count by the order's age (since it was created or last amended): (below s, count)
_TRADING_BY_AGE: dict[str, tuple[tuple[float, float], ...]] = {
    "add": (),
    "amend": ((5.0, 3.0), (10.0, 2.0), (15.0, 1.0)),
    "edit": ((5.0, 6.0), (10.0, 5.0), (15.0, 4.0), (45.0, 2.0), (90.0, 1.0)),
    "cancel": ((5.0, 8.0), (10.0, 6.0), (15.0, 5.0), (45.0, 4.0), (90.0, 2.0), (300.0, 1.0)),
}
#: past this age no transaction adds by age any more
TRADING_AGE_HORIZON_S = 300.0


def trading_cost(kind: str, age_s: float | None = None) -> float:
    """What one transaction of ``kind`` (``add``, ``amend``, ``edit``, ``cancel``) adds to its
    pair's trading counter, for an order ``age_s`` seconds old (``None``: no known order, the
    fixed count only)."""
    cost = _TRADING_FIXED[kind]
    if age_s is None:
        return cost
    for below, extra in _TRADING_BY_AGE[kind]:
        if age_s < below:
            return cost + extra
    return cost
