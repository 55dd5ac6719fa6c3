"""Kraken's published REST rate limits: one table for the monitor, the gateway and the simulator.

Every API key has a call counter. Ledger and trade-history queries add 2, most other private
calls add 1; ``AddOrder`` and ``CancelOrder`` (and their batch/edit variants) are judged by the
matching engine's per-pair trading limiter instead (``EOrder:Rate limit exceeded``) and add
nothing here. The counter decays continuously at the tier's rate; a call that would take it over
the tier's maximum is answered ``EAPI:Rate limit exceeded``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_TIER", "TIERS", "Tier", "call_cost", "parse_tier"]


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
_TRADING = frozenset(
    {
        "AddOrder",
        "AddOrderBatch",
        "AmendOrder",
        "EditOrder",
        "CancelOrder",
        "CancelOrderBatch",
        "CancelAll",
        "CancelAllOrdersAfter",
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
