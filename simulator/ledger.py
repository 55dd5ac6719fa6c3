"""Balances as the order book moves them, and the ledger entries the ``balances`` WebSocket channel
shows for each move. The caller holds the state lock (:attr:`SimState.lock`); every entry is
published to the key's subscriptions (:class:`~simulator.hub.StreamHub`) before it is released.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from broker.assets import ws_asset

from .hub import StreamHub
from .keys import KeyState
from .orders import asset_decimals, kraken_id, quantize, rfc3339

__all__ = ["Ledger", "balance", "balance_name"]


def balance_name(ks: KeyState, asset: str) -> str:
    """The key's REST name for ``asset`` (``XXBT``), or ``asset`` when it holds none."""
    spelled = ws_asset(asset)
    return next((name for name in ks.balances if ws_asset(name) == spelled), asset)


def balance(ks: KeyState, asset: str) -> Decimal:
    """What the key holds of ``asset``, under whichever name it holds it."""
    return Decimal(ks.balances.get(balance_name(ks, asset), "0"))


class Ledger:
    def __init__(self, hub: StreamHub, clock: Callable[[], float]) -> None:
        self._hub = hub
        self._clock = clock

    def move(
        self,
        ks: KeyState,
        changes: list[tuple[str, Decimal, Decimal]],
        ref_id: str,
        kind: str,
        t: float,
    ) -> None:
        """Apply ``(asset, amount, fee)`` changes to the key's balances as one transaction."""
        balances, entries = dict(ks.balances), []
        for name, amount, fee in changes:
            current = balances.get(name)
            new = quantize(Decimal(current or "0") + amount - fee, asset_decimals(name, current))
            balances[name] = f"{new:f}"
            entries.append(_entry(name, amount, fee, new, ref_id, kind, t))
        ks.balances = balances
        self._hub.publish(ks.key, "balances", entries)

    def adjusted(self, ks: KeyState, old: dict[str, str], new: dict[str, str]) -> None:
        """An admin patch replaced the balances: one ``adjustment`` ledger entry per change."""
        t, ref, entries = self._clock(), kraken_id("A"), []
        for name in sorted(set(old) | set(new)):
            before, after = Decimal(old.get(name, "0")), Decimal(new.get(name, "0"))
            if before != after:
                entries.append(
                    _entry(name, after - before, Decimal(0), after, ref, "adjustment", t)
                )
        if entries:
            self._hub.publish(ks.key, "balances", entries)

    @staticmethod
    def snapshot(ks: KeyState) -> list[dict[str, Any]]:
        """The ``balances`` channel's snapshot."""
        return [
            {
                "asset": ws_asset(name),
                "asset_class": "currency",
                "balance": float(Decimal(amount)),
                "wallets": [{"type": "spot", "id": "main", "balance": float(Decimal(amount))}],
            }
            for name, amount in ks.balances.items()
        ]


def _entry(
    name: str, amount: Decimal, fee: Decimal, balance: Decimal, ref_id: str, kind: str, t: float
) -> dict[str, Any]:
    return {
        "ledger_id": kraken_id("L"),
        "ref_id": ref_id,
        "timestamp": rfc3339(t),
        "type": kind,
        "asset": ws_asset(name),
        "asset_class": "currency",
        "category": kind,
        "wallet_type": "spot",
        "wallet_id": "main",
        "amount": float(amount),
        "fee": float(fee),
        "balance": float(balance),
    }
