"""Prometheus metrics: counters and histograms on a private registry (never the global one), and
the gauges that describe "now".

Counters and the latency histograms are fed by the broker's observer interface as calls happen.
Gauges that describe "now" (up, state, balances, checks, skew) are written from the monitor's
snapshot at scrape time by :class:`~dashboard.exporter.gauges.SnapshotGauges`, so freshness is judged when
Prometheus asks, while an account's lines are only written again when the account changed.

The latency histogram is per method; ``KRAKENWATCH_METRICS_PER_ACCOUNT_LATENCY=1`` adds the
``account`` label (at 200 accounts that is 4,400 series more per scrape).
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
)

from broker import (
    CallEvent,
    InvalidNonceError,
    NonceStoreError,
    NonceStoreUnavailable,
    RefreshEvent,
)
from dashboard.config import Settings
from dashboard.exporter.deploy_gauges import DeployCollector
from dashboard.exporter.gauges import SnapshotGauges
from dashboard.exporter.stream_gauges import StreamCollector
from dashboard.exporter.text import TextWriter
from dashboard.exporter.value_gauges import BalanceValueCollector
from dashboard.history.deploy_book import Deploy
from dashboard.monitor.prices import PriceSource
from dashboard.monitor.status import Snapshot

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PRIVATE_METHODS = ("Balance", "OpenOrders")


class Metrics:
    """The krakenwatch exporter. Pass it to ``Monitor.add_observer`` and give it a snapshot source.

    ``registry`` holds what the broker's reports feed (counters, histograms); ``gauges`` writes the
    snapshot's gauges; :meth:`exposition` is both.
    """

    def __init__(
        self,
        settings: Settings,
        snapshot: Callable[[], Snapshot],
        prices: PriceSource | None = None,
        deploy: Callable[[], Deploy | None] | None = None,
    ):
        # no *_created series: they double the series count and Prometheus does not need them
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.settings = settings
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.refreshes = Counter(
            "krakenwatch_nonce_refreshes", "Nonce baseline refreshes.", ["account"], registry=r
        )
        self.invalid_nonces = Counter(
            "krakenwatch_invalid_nonce_errors",
            "EAPI:Invalid nonce answers from Kraken.",
            ["account"],
            registry=r,
        )
        self.requests = Counter(
            "krakenwatch_api_requests",
            "Private Kraken API calls by outcome (ok or the error kind).",
            ["account", "method", "outcome"],
            registry=r,
        )
        #: the latency histogram's labels: per method, or per account and method when asked
        self.per_account_latency = settings.metrics_per_account_latency
        self.duration = Histogram(
            "krakenwatch_api_request_duration_seconds",
            "Private Kraken API call latency, including the wait for the key's lock.",
            ["account", "method"] if self.per_account_latency else ["method"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=r,
        )
        self.lock_wait = Histogram(
            "krakenwatch_nonce_lock_wait_seconds",
            "How long private calls waited for their key (other calls of the key, the nonce "
            "store's lock, a hold after an unknown outcome).",
            buckets=(0.001, 0.01, 0.05, 0.25, 1.0, 5.0, 30.0),
            registry=r,
        )
        self.store_errors = Counter(
            "krakenwatch_nonce_store_errors",
            "Calls refused because the nonce store could not be used, by error kind.",
            ["account", "kind"],
            registry=r,
        )
        self._start_at_zero(settings)
        self.gauges = SnapshotGauges(settings, snapshot)
        # valued at scrape time (prices move without any account changing): not cached gauges
        if settings.balance_metrics and prices is not None:
            r.register(BalanceValueCollector(snapshot, prices))
        if deploy is not None:
            r.register(DeployCollector(deploy, settings.deploy_timeout_s))
        r.register(StreamCollector(snapshot))
        self._text = TextWriter()

    def _start_at_zero(self, settings: Settings) -> None:
        """Every account's counters exist from the first scrape, at 0 (a rate over a series that
        appears at its first increment misses that increment)."""
        invalid = {p.account for p in settings.discovery.errors if p.account}
        for label in [*(a.label for a in settings.accounts), *sorted(invalid)]:
            self.refreshes.labels(label)
            self.invalid_nonces.labels(label)
        for account in settings.accounts:
            for method in PRIVATE_METHODS:
                self.requests.labels(account.label, method, "ok")
            for kind in (NonceStoreError.kind, NonceStoreUnavailable.kind):
                self.store_errors.labels(account.label, kind)

    # broker observer interface
    def on_call(self, event: CallEvent) -> None:
        if not event.private:
            return
        self.requests.labels(event.account, event.method, event.outcome).inc()
        latency = (event.account, event.method) if self.per_account_latency else (event.method,)
        self.duration.labels(*latency).observe(event.duration_s)
        self.lock_wait.observe(event.waited_s)
        if isinstance(event.error, InvalidNonceError):
            self.invalid_nonces.labels(event.account).inc()
        elif isinstance(event.error, NonceStoreError):
            self.store_errors.labels(event.account, event.error.kind).inc()

    def on_refresh(self, event: RefreshEvent) -> None:
        self.refreshes.labels(event.account).inc()

    def exposition(self) -> bytes:
        """The whole ``/metrics`` text: the registry's counters and histograms, then the gauges."""
        return self._text.write(self.registry.collect()) + self.gauges.exposition().encode("utf-8")
