"""USD prices from Kraken's public market data, cached for a minute.

:meth:`PriceSource.usd_prices` values the asset codes of the balances:

* ``AssetPairs`` (read once, then every ``pairs_ttl_s``) says which pair quotes each asset in US
  dollars (``XXBT`` -> ``XXBTZUSD``); :func:`~dashboard.monitor.valuation.priced_as` maps a balance
  code (``XBT.M``, ``ETH2.S``) to one of those assets;
* one batched ``Ticker`` request for every pair whose price is older than ``ttl_s`` gives the last
  trade price of each.

Both go through a :class:`~broker.PublicClient` on the configured base URL (the simulator
serves them too). A failure is never a made-up number: the assets concerned get no price, with
the reason, until the next attempt (after ``ttl_s`` too, so that a Kraken outage does not slow
every page and scrape). Callers share the cache and wait for one request at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from broker import KrakenError, Observer, PublicClient
from dashboard.monitor.valuation import USD, UsdPrices, priced_as

__all__ = ["PriceSource"]

log = logging.getLogger(__name__)
#: how long a price (or the failure to get one) is used before Kraken is asked again
TTL_S = 60.0
#: how long the list of pairs is used (pairs are rarely listed or delisted)
PAIRS_TTL_S = 3600.0
#: the longest a price request may take (pages and scrapes wait for it)
MAX_TIMEOUT_S = 5.0
NO_PAIR = "no USD pair on Kraken"
UNKNOWN_PAIR = "EQuery:Unknown asset pair"


@dataclass(frozen=True)
class _Reading:
    #: when it was read, on the source's clock (for the cache)
    at: float
    price: Decimal | None
    #: why ``price`` is missing
    error: str | None = None
    #: when it was read, Unix time (for the pages)
    wall: float = 0.0


class PriceSource:
    """USD prices by balance asset code, from ``AssetPairs`` and one batched ``Ticker`` request."""

    def __init__(
        self,
        *,
        api_url: str | None,
        timeout_s: float,
        ttl_s: float = TTL_S,
        pairs_ttl_s: float = PAIRS_TTL_S,
        clock: Callable[[], float] = time.monotonic,
        observer: Observer | None = None,
    ):
        self.ttl_s = ttl_s
        self.pairs_ttl_s = pairs_ttl_s
        self.clock = clock
        #: ``None`` when ``KRAKEN_API_URL`` is invalid: no price is asked for anywhere
        self._client = (
            None
            if api_url is None
            else PublicClient(
                base_url=api_url,
                timeout=min(timeout_s, MAX_TIMEOUT_S),
                account="prices",
                observer=observer,
            )
        )
        self._lock = threading.Lock()
        #: base asset -> its USD pair, or why there is none; and when it was read
        self._pairs: dict[str, str] | str | None = None
        self._pairs_at = 0.0
        self._readings: dict[str, _Reading] = {}

    def usd_prices(self, assets: Iterable[str]) -> UsdPrices:
        """The USD price of each balance code in ``assets``, or why it has none."""
        codes = sorted(set(assets))
        if not codes:
            return UsdPrices()
        if self._client is None:
            return self._everything_missing(codes, "KRAKEN_API_URL is invalid")
        with self._lock:
            pairs = self._usd_pairs()
            if isinstance(pairs, str):
                return self._everything_missing(codes, f"AssetPairs failed: {pairs}")
            wanted: dict[str, str] = {}  # balance code -> pair
            prices: dict[str, Decimal] = {}
            missing: dict[str, str] = {}
            for code in codes:
                asset = priced_as(code, {*pairs, USD})
                if asset == USD:
                    prices[code] = Decimal(1)
                elif asset is None:
                    missing[code] = NO_PAIR
                else:
                    wanted[code] = pairs[asset]
            self._refresh(set(wanted.values()))
            for code, pair in wanted.items():
                reading = self._readings[pair]
                if reading.price is not None:
                    prices[code] = reading.price
                else:
                    missing[code] = reading.error or "no price"
            fetched = [self._readings[p].wall for p in wanted.values()]
        return UsdPrices(prices, missing, min(fetched) if fetched else None)

    def _public(self) -> PublicClient:
        assert self._client is not None  # usd_prices asks nothing without one
        return self._client

    def _everything_missing(self, codes: list[str], reason: str) -> UsdPrices:
        missing = {c: reason for c in codes if priced_as(c, {USD}) != USD}
        return UsdPrices({c: Decimal(1) for c in codes if c not in missing}, missing)

    def _usd_pairs(self) -> dict[str, str] | str:
        """Base asset -> the pair that quotes it in USD (from ``AssetPairs``), or the error."""
        now = self.clock()
        fresh_for = self.pairs_ttl_s if isinstance(self._pairs, dict) else self.ttl_s
        if self._pairs is None or now - self._pairs_at >= fresh_for:
            try:
                self._pairs = _usd_pairs(self._public().call_public("AssetPairs"))
            except KrakenError as exc:
                log.warning("AssetPairs failed: %s", exc)
                self._pairs = exc.message
            self._pairs_at = now
        return self._pairs

    def _refresh(self, pairs: set[str]) -> None:
        """One ``Ticker`` request for every pair in ``pairs`` whose reading has expired."""
        now = self.clock()
        stale = sorted(p for p in pairs if p not in self._readings or self._expired(p, now))
        if not stale:
            return
        wall = time.time()
        try:
            result = self._public().call_public("Ticker", {"pair": ",".join(stale)})
        except KrakenError as exc:
            log.warning("Ticker failed for %s: %s", ",".join(stale), exc)
            if exc.message.startswith(UNKNOWN_PAIR):
                self._pairs = None  # a pair went away: read AssetPairs again next time
            for pair in stale:
                self._readings[pair] = _Reading(now, None, f"Ticker failed: {exc.message}", wall)
            return
        for pair in stale:
            price, error = _last_price(result, pair)
            self._readings[pair] = _Reading(now, price, error, wall)

    def _expired(self, pair: str, now: float) -> bool:
        return now - self._readings[pair].at >= self.ttl_s


def _usd_pairs(result: Any) -> dict[str, str] | str:
    """Base asset -> pair name for the pairs quoted in USD (the first name wins), or the error."""
    if not isinstance(result, dict):
        return f"AssetPairs answered a {type(result).__name__}, not an object"
    pairs: dict[str, str] = {}
    for name, info in sorted(result.items()):
        if (
            isinstance(info, dict)
            and info.get("quote") == USD
            and isinstance(info.get("base"), str)
            and info.get("status", "online") != "delisted"
        ):
            pairs.setdefault(info["base"], name)
    return pairs


def _last_price(result: Any, pair: str) -> tuple[Decimal | None, str | None]:
    """The last trade price of ``pair`` in a ``Ticker`` result (``c[0]``, a decimal string), or
    why there is none."""
    ticker = result.get(pair) if isinstance(result, dict) else None
    if not isinstance(ticker, dict):
        return None, f"{pair} missing from Kraken's Ticker answer"
    last = ticker.get("c")
    text = last[0] if isinstance(last, list) and last else None
    if not isinstance(text, str):
        return None, f"{pair}: no last trade price in Kraken's Ticker answer"
    try:
        price = Decimal(text)
    except InvalidOperation:
        price = Decimal("NaN")
    if not price.is_finite() or price <= 0:
        return None, f"{pair}: invalid last trade price {text[:20]!r}"
    return price, None
