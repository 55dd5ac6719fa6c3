"""Public market data: ``Ticker`` and ``AssetPairs`` for every asset the simulator has a price for.

Prices are fake USD prices: a built-in table (:data:`DEFAULT_USD_PRICES`) that a scenario's
``prices`` field overrides or extends. Every priced asset but the quote (``ZUSD``) is the base of
one pair quoted in ``ZUSD``, named the way Kraken names it: a legacy X/Z asset (four letters,
``XXBT``) gives ``XXBTZUSD`` (altname ``XBTUSD``, wsname ``XBT/USD``); any other asset gives its
code + ``USD`` (``USDTUSD``, ``USDT/USD``). A pair is asked for by its name or its altname and
answered under its name. Staking suffixes (``ETH2.S``, ``XXBT.M``) and legacy codes are the
client's to map: there is no ``ETH2.SUSD``.

The ticker is flat: the last trade (``c``), today's open (``o``) and the average (``p``) are the
price; the bid is one tick below and the ask one tick above (``l``/``h`` the same). A pair has as
many price decimals as its price is written with (``"3000.00"``: 2, at least 1), so a scenario's
price comes back digit for digit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_UP, Decimal
from typing import Any
from urllib.parse import parse_qs

from broker.assets import ws_asset

__all__ = [
    "DEFAULT_USD_PRICES",
    "MARKET_METHODS",
    "QUOTE",
    "Market",
    "Pair",
    "altname_of",
    "is_legacy",
]

#: the quote currency of every pair (its price is 1)
QUOTE = "ZUSD"
#: built-in fake USD prices, by Kraken asset code (as ``Balance`` names them)
DEFAULT_USD_PRICES: dict[str, str] = {
    "ZUSD": "1",
    "USDT": "1.0000",
    "USDC": "1.0000",
    "XXBT": "50000.0",
    "XETH": "3000.00",
}
#: balance names Kraken values like another asset in ``TradeBalance``
_VALUED_AS = {"USD": "ZUSD", "XBT": "XXBT", "ETH": "XETH", "ETH2": "XETH"}
MARKET_METHODS = ("Ticker", "AssetPairs")
UNKNOWN_PAIR = "EQuery:Unknown asset pair"
_LOT_DECIMALS = 8
_LEGACY_RE = re.compile(r"[XZ][A-Z0-9]{3}")
#: taker/maker fee schedules of a starter account: [30-day volume in USD, fee in percent]
_FEES = [[0, 0.4], [10000, 0.35], [50000, 0.24], [100000, 0.22], [250000, 0.2]]
_FEES_MAKER = [[0, 0.25], [10000, 0.2], [50000, 0.14], [100000, 0.12], [250000, 0.1]]
#: AssetPairs ``info`` views: the fields each one shows (``info``: all of them)
_INFO_VIEWS = {
    "leverage": ("leverage_buy", "leverage_sell"),
    "fees": ("fees", "fees_maker", "fee_volume_currency"),
    "margin": ("margin_call", "margin_stop"),
}


def is_legacy(asset: str) -> bool:
    """A legacy Kraken code: four characters, X for crypto or Z for fiat (``XXBT``, ``ZUSD``)."""
    return _LEGACY_RE.fullmatch(asset) is not None


def altname_of(asset: str) -> str:
    """The short name of an asset: ``XXBT`` -> ``XBT``, ``ZUSD`` -> ``USD``, ``USDT`` -> ``USDT``."""
    return asset[1:] if is_legacy(asset) else asset


def _decimals(price: Decimal) -> int:
    """A pair's price decimals: as many as its price is written with ("3000.00": 2), at least 1."""
    return max(1, -int(price.as_tuple().exponent))


@dataclass(frozen=True)
class Pair:
    name: str
    base: str
    price: Decimal

    @classmethod
    def for_asset(cls, base: str, price: Decimal) -> Pair:
        name = base + QUOTE if is_legacy(base) else base + altname_of(QUOTE)
        return cls(name, base, price)

    @property
    def altname(self) -> str:
        return altname_of(self.base) + altname_of(QUOTE)

    @property
    def quote(self) -> str:
        return QUOTE

    @property
    def symbol(self) -> str:
        """The WebSocket v2 symbol: ``BTC/USD``."""
        return f"{ws_asset(self.base)}/{ws_asset(QUOTE)}"

    @property
    def pair_decimals(self) -> int:
        return _decimals(self.price)

    def _fmt(self, value: Decimal, decimals: int | None = None) -> str:
        places = self.pair_decimals if decimals is None else decimals
        return str(value.quantize(Decimal(1).scaleb(-places)))

    def ticker(self) -> dict[str, Any]:
        tick = Decimal(1).scaleb(-self.pair_decimals)
        price, bid, ask = (
            self._fmt(self.price),
            self._fmt(self.price - tick),
            self._fmt(self.price + tick),
        )
        lot = self._fmt(Decimal("0.01"), _LOT_DECIMALS)
        return {
            "a": [ask, "1", "1.000"],
            "b": [bid, "1", "1.000"],
            "c": [price, lot],
            "v": [self._fmt(Decimal(100), _LOT_DECIMALS), self._fmt(Decimal(250), _LOT_DECIMALS)],
            "p": [price, price],
            "t": [100, 250],
            "l": [bid, bid],
            "h": [ask, ask],
            "o": price,
        }

    def info(self) -> dict[str, Any]:
        ordermin = (Decimal(5) / self.price).quantize(Decimal("1E-8"), ROUND_UP)
        ordermin = ordermin.quantize(Decimal(1).scaleb(ordermin.adjusted()), ROUND_UP)
        return {
            "altname": self.altname,
            "wsname": f"{altname_of(self.base)}/{altname_of(QUOTE)}",
            "aclass_base": "currency",
            "base": self.base,
            "aclass_quote": "currency",
            "quote": QUOTE,
            "lot": "unit",
            "cost_decimals": 5,
            "pair_decimals": self.pair_decimals,
            "lot_decimals": _LOT_DECIMALS,
            "lot_multiplier": 1,
            "leverage_buy": [],
            "leverage_sell": [],
            "fees": _FEES,
            "fees_maker": _FEES_MAKER,
            "fee_volume_currency": QUOTE,
            "margin_call": 80,
            "margin_stop": 40,
            "ordermin": f"{ordermin:f}",
            "costmin": "0.5",
            "tick_size": f"{Decimal(1).scaleb(-self.pair_decimals):f}",
            "status": "online",
        }


class Market:
    """The priced assets and their pairs: the built-in prices with ``overrides`` applied
    (asset -> USD price as a decimal string, validated by the scenario)."""

    def __init__(self, overrides: Mapping[str, str] | None = None) -> None:
        prices = {**DEFAULT_USD_PRICES, **(overrides or {})}
        self.prices: dict[str, Decimal] = {asset: Decimal(p) for asset, p in prices.items()}
        self.pairs: dict[str, Pair] = {}
        self._names: dict[str, str] = {}  # name or altname -> name
        for asset, price in sorted(self.prices.items()):
            if asset == QUOTE:
                continue
            pair = Pair.for_asset(asset, price)
            self.pairs[pair.name] = pair
            self._names[pair.name] = self._names[pair.altname] = pair.name

    def pair(self, name: str) -> Pair | None:
        """A pair by its name or altname (``XXBTZUSD``, ``XBTUSD``); ``None`` when unknown."""
        known = self._names.get(name)
        return None if known is None else self.pairs[known]

    def usd_price(self, balance_asset: str) -> Decimal | None:
        """What ``TradeBalance`` values one unit of a balance at (``ETH2.S`` like ``XETH``)."""
        asset = balance_asset.split(".")[0]
        return self.prices.get(asset, self.prices.get(_VALUED_AS.get(asset, "")))

    def result(self, method: str, query: str) -> dict[str, Any] | str:
        """The ``result`` of ``Ticker`` or ``AssetPairs`` for a query string, or its error."""
        params = {name: values[0] for name, values in parse_qs(query).items()}
        pairs = self._select(params.get("pair", ""))
        if isinstance(pairs, str):
            return pairs
        if method == "Ticker":
            return {pair.name: pair.ticker() for pair in pairs}
        view = params.get("info", "info")
        if view != "info" and view not in _INFO_VIEWS:
            return "EGeneral:Invalid arguments:info"
        infos = {pair.name: pair.info() for pair in pairs}
        if view == "info":
            return infos
        return {name: {k: info[k] for k in _INFO_VIEWS[view]} for name, info in infos.items()}

    def _select(self, requested: str) -> list[Pair] | str:
        """The pairs a comma-separated ``pair`` parameter names (all when empty), in the order
        asked, each once; ``EQuery:Unknown asset pair`` when one is unknown."""
        if not requested:
            return list(self.pairs.values())
        chosen: dict[str, Pair] = {}
        for name in requested.split(","):
            known = self._names.get(name)
            if known is None:
                return UNKNOWN_PAIR
            chosen[known] = self.pairs[known]
        return list(chosen.values())
