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

from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from dashboard.monitor.prices import PriceSource
from dashboard.monitor.status import Snapshot
from dashboard.monitor.valuation import held_assets, value_fleet

__all__ = ["BalanceValueCollector"]


class BalanceValueCollector(Collector):
    def __init__(self, snapshot: Callable[[], Snapshot], prices: PriceSource):
        self.snapshot = snapshot
        self.prices = prices

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The families without samples (so that registering never fetches prices)."""
        yield from _families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        accounts = self.snapshot().accounts
        fleet = value_fleet(accounts, self.prices.usd_prices(held_assets(accounts)))
        value, unpriced = _families()
        for account in fleet.accounts:
            if account.error is not None:
                continue
            unpriced.add_metric([account.label], float(len(account.unpriced)))
            total = account.total
            if total is not None:
                value.add_metric([account.label], float(total))
        yield value
        yield unpriced


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
