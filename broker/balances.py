"""Balances as Kraken sends them: asset code -> decimal string. Never parsed through a float."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from .errors import ResponseFormatError

__all__ = ["parse_balances"]

_DECIMAL = re.compile(r"^-?\d{1,40}(\.\d{1,40})?$")
_ASSET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-_]{0,31}$")


def parse_balances(result: Any, *, account: str | None = None) -> dict[str, str]:
    """Validate a ``Balance`` result and return it as exact decimal strings.

    Unknown assets and extra precision are fine; anything that could turn into a wrong number
    (floats, booleans, nested objects, non-numeric text, absurd lengths) raises
    :class:`~broker.errors.ResponseFormatError` naming the asset.
    """
    where = {"account": account, "method": "Balance"}
    if not isinstance(result, dict):
        raise ResponseFormatError(
            f"Balance result is a {type(result).__name__}, not an object", **where
        )
    balances: dict[str, str] = {}
    for asset, amount in result.items():
        if not isinstance(asset, str) or not _ASSET.match(asset):
            raise ResponseFormatError(
                f"Balance has an invalid asset code {str(asset)[:40]!r}", **where
            )
        if isinstance(amount, bool) or not isinstance(amount, str | int):
            raise ResponseFormatError(
                f"Balance of {asset} is a {type(amount).__name__}, not a decimal string", **where
            )
        text = str(amount).strip()
        if not _DECIMAL.match(text):
            raise ResponseFormatError(
                f"Balance of {asset} is not a decimal number: {text[:40]!r}", **where
            )
        Decimal(text)  # cannot fail after the pattern; kept as the exact string
        balances[asset] = text
    return balances
