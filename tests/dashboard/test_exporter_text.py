"""The exporter's scrape-time shortcuts write exactly what the plain way writes: the registry's text
(:class:`~dashboard.exporter.text.TextWriter` against ``generate_latest``), and the stream and USD
value families cached per status copy (against a collector that has seen nothing before)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from decimal import Decimal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dashboard.exporter.stream_gauges import StreamCollector
from dashboard.exporter.text import TextWriter
from dashboard.exporter.value_gauges import BalanceValueCollector
from dashboard.monitor.board import detached
from dashboard.monitor.prices import PriceSource
from dashboard.monitor.status import AccountState, AccountStatus, Snapshot
from dashboard.monitor.streamstatus import RateCounter, StreamActivity, StreamState, StreamStatus
from dashboard.monitor.valuation import UsdPrices


class _Stamped(Collector):
    """A family with a timestamped sample, one with its ``_created`` sample (whatever
    ``disable_created_metrics`` says), and one without samples."""

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("stamped", "With a\ntimestamp \\ here.", labels=["x"])
        family.add_metric(["a"], 2.5, timestamp=1700000000.123)
        yield family
        yield CounterMetricFamily("jobs", "Jobs.", value=3, created=1700000000.0)
        yield GaugeMetricFamily("empty", "No samples.")


def _registry() -> tuple[CollectorRegistry, Counter, Histogram]:
    r = CollectorRegistry()
    counter = Counter("calls", "Calls.", ["account", "method"], registry=r)
    histogram = Histogram("latency_seconds", "Latency.", ["method"], buckets=(0.1, 1.0), registry=r)
    gauge = Gauge("level", "A level.", registry=r)
    Info("build", "Build.", registry=r).info({"version": "1.0"})
    r.register(_Stamped())
    counter.labels('we"ird\\one\nx', "Balance").inc()
    counter.labels("MASTER", "OpenOrders").inc(3)
    histogram.labels("Balance").observe(0.5)
    gauge.set(1e22)
    return r, counter, histogram


def test_the_writer_writes_what_generate_latest_writes_scrape_after_scrape() -> None:
    registry, counter, histogram = _registry()
    writer = TextWriter()
    first = writer.write(registry.collect())
    assert first == generate_latest(registry)
    assert (
        b'account="we\\"ird\\\\one\\nx"' in first
        and b"# TYPE jobs_created gauge\njobs_created 1.7e+09\n" in first
    )
    # the series known, their values changed, one series more: still the same text
    counter.labels("MASTER", "OpenOrders").inc()
    histogram.labels("Balance").observe(5.0)
    counter.labels("USER:new", "Balance").inc(float("inf"))
    again = writer.write(registry.collect())
    assert again != first and again == generate_latest(registry)


def _account(label: str, **changes: object) -> AccountStatus:
    stream = StreamStatus(
        state=StreamState.UP,
        reconnects=2,
        tokens=3,
        orders={("BTC/USD", "placed"): 2, ("BTC/USD", "filled"): 1, ("ETH/USD", "placed"): 1},
        rate_counters={
            "BTC/USD": RateCounter(4.0, 60.0, 1.0),
            "ETH/USD": RateCounter(1.0, None, 1.0),
        },
        balance_mismatches=1,
    )
    status = AccountStatus(
        label,
        "masked",
        "id",
        "ms",
        AccountState.CONNECTED,
        0.0,
        balances={"ZUSD": "10.5", "XXBT": "0.5"},
        stream=stream,
    )
    return dataclasses.replace(status, **changes)  # type: ignore[arg-type]


def _snapshot(accounts: list[AccountStatus], heartbeats: int) -> Snapshot:
    activity = {
        a.label: StreamActivity({"heartbeat": heartbeats, "executions": 2}, 100.0 + heartbeats)
        for a in accounts
    }
    return Snapshot(None, 200.0, accounts, None, None, {}, stream_activity=activity)


def _text(collector: Collector) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry)


def test_cached_stream_families_are_what_a_fresh_collector_writes() -> None:
    accounts = [_account("MASTER"), _account("USER:a")]
    now = [_snapshot(accounts, 1)]
    cached = StreamCollector(lambda: now[0])
    assert _text(cached) == _text(StreamCollector(lambda: now[0]))
    # the activity moves on; USER:a changed (a new copy: its stream went down, one more order)
    changed = detached(accounts[1])
    changed.stream.state = StreamState.DOWN
    changed.stream.orders[("ETH/USD", "filled")] = 1
    now[0] = _snapshot([accounts[0], changed], 5)
    text = _text(cached)
    assert text == _text(StreamCollector(lambda: now[0]))
    assert b'krakenwatch_stream_state{account="USER:a",state="down"} 1.0' in text
    assert b'krakenwatch_stream_messages_total{account="MASTER",channel="heartbeat"} 5.0' in text


class _Prices(PriceSource):
    def __init__(self, prices: dict[str, Decimal]):
        self.table = prices

    def usd_prices(self, assets: Iterable[str]) -> UsdPrices:
        return UsdPrices(dict(self.table))


def test_cached_values_follow_the_prices_and_the_accounts() -> None:
    accounts = [_account("MASTER"), _account("USER:a", balances={"KFEE": "5"})]
    now = [_snapshot(accounts, 1)]
    prices = _Prices({"ZUSD": Decimal(1), "XXBT": Decimal(100)})
    cached = BalanceValueCollector(lambda: now[0], prices)

    def fresh() -> bytes:
        return _text(BalanceValueCollector(lambda: now[0], prices))

    def scraped() -> bytes:
        text = _text(cached)
        assert text == fresh()
        return text

    assert b'krakenwatch_balance_value_usd{account="MASTER"} 60.5' in scraped()
    prices.table["XXBT"] = Decimal(200)  # the same statuses, a new price
    assert b'krakenwatch_balance_value_usd{account="MASTER"} 110.5' in scraped()
    now[0] = _snapshot([accounts[0], _account("USER:a", balances={"ZUSD": "1"})], 1)
    assert b'krakenwatch_balance_value_usd{account="USER:a"} 1.0' in scraped()
