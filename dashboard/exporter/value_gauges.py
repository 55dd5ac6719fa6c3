"""The accounts' USD value as Prometheus gauges (switched off with the balances).

* ``krakenwatch_balance_value_usd{account}``: the account's value in US dollars, present only when
  the last balance read succeeded and every asset with a non-zero balance has a price. Never a
  partial total: an account holding an asset without a USD price (``KFEE``), or whose prices could
  not be read, has no sample.
* ``krakenwatch_balance_unpriced_assets{account}``: how many of its non-zero assets have no USD
  price right now (0 when the value is complete); absent while the balance is unknown.

Computed at scrape time from the monitor's snapshot and :class:`~dashboard.monitor.prices.PriceSource`
(cached for a minute, so a scrape rarely waits for Kraken).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from dashboard.monitor.prices import PriceSource
from dashboard.monitor.status import AccountStatus, Snapshot
from dashboard.monitor.valuation import UsdPrices, held_assets, value_account

__all__ = ["BalanceValueCollector"]


class BalanceValueCollector(Collector):
    """An account is valued again only when its status copy (a new one per change) or the prices
    changed."""

    def __init__(self, snapshot: Callable[[], Snapshot], prices: PriceSource):
        self.snapshot = snapshot
        self.prices = prices
        #: the prices the values below were computed with
        self._priced_with: Mapping[str, Decimal] = {}
        #: label -> the status copy, and its unpriced assets and total (``None``: no sample)
        self._valued: dict[str, _Valued] = {}

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The families without samples (so that registering never fetches prices)."""
        yield from _families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        accounts = self.snapshot().accounts
        prices = self.prices.usd_prices(held_assets(accounts))
        known = self._valued if prices.prices == self._priced_with else {}
        valued: dict[str, _Valued] = {}
        value, unpriced = _families()
        for a in accounts:
            found = known.get(a.label)
            if found is None or found[0] is not a:
                found = _value(a, prices)
            valued[a.label] = found
            _, missing, total = found
            if missing is not None:
                unpriced.add_metric([a.label], missing)
            if total is not None:
                value.add_metric([a.label], total)
        self._priced_with, self._valued = prices.prices, valued
        yield value
        yield unpriced


#: an account's status copy, how many of its assets are unpriced and its total (``None``: absent)
_Valued = tuple[AccountStatus, float | None, float | None]


def _value(a: AccountStatus, prices: UsdPrices) -> _Valued:
    account = value_account(a, prices)
    if account.error is not None:
        return a, None, None
    total = account.total
    return a, float(len(account.unpriced)), None if total is None else float(total)


def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
    value = GaugeMetricFamily(
        "krakenwatch_balance_value_usd",
        "The account's value in US dollars (Kraken's last trade prices); absent while its "
        "balance or the price of a non-zero asset is unknown.",
        labels=["account"],
    )
    unpriced = GaugeMetricFamily(
        "krakenwatch_balance_unpriced_assets",
        "Non-zero assets of the account without a USD price (its value is then absent).",
        labels=["account"],
    )
    return value, unpriced
