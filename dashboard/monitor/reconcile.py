"""REST ``Balance`` against the stream's balances: which assets differ (pure code).

While an account's stream is up, the balances shown come from it; every
``KRAKENWATCH_RECONCILE_INTERVAL`` the poller reads REST ``Balance`` once and compares. Amounts
are compared as numbers (``"1.0"`` equals ``"1.00000"``), and an asset missing on one side counts
as zero there (Kraken lists an emptied asset on one and not the other).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

__all__ = ["balance_differences", "in_places_of"]


def _amount(value: str | None) -> Decimal | None:
    if value is None:
        return Decimal(0)
    try:
        return Decimal(value)
    except (InvalidOperation, ValueError):
        return None


def balance_differences(
    stream: dict[str, str], rest: dict[str, str]
) -> dict[str, dict[str, str | None]]:
    """``{asset: {"stream": ..., "rest": ...}}`` for every asset whose amounts differ."""
    found: dict[str, dict[str, str | None]] = {}
    for asset in sorted(set(stream) | set(rest)):
        ours, theirs = stream.get(asset), rest.get(asset)
        a, b = _amount(ours), _amount(theirs)
        if a is None or b is None or a != b:
            found[asset] = {"stream": ours, "rest": theirs}
    return found


def in_places_of(amount: str, like: str | None) -> str:
    """``amount`` written with as many decimals as ``like`` (REST ``Balance`` writes each asset
    with its own decimals, the stream writes JSON numbers: ``1250.0`` shown as ``1250.00``),
    when that loses nothing; else ``amount`` as it is."""
    if like is None or "." not in like:
        return amount
    places = Decimal(1).scaleb(-len(like.partition(".")[2]))
    try:
        value = Decimal(amount)
        shaped = value.quantize(places)
    except (InvalidOperation, ValueError):
        return amount
    return str(shaped) if shaped == value else amount
