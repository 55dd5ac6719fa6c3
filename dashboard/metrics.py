"""Prometheus metrics on a private registry (never the global one).

Counters and the latency histogram are fed by the broker's observer interface as calls happen;
gauges that describe "now" (up, balances, checks, skew) are computed from the monitor's snapshot at
scrape time by a custom collector, so freshness is judged when Prometheus asks.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from broker import CallEvent, InvalidNonceError, NonceStoreError, RefreshEvent

from . import __version__
from .checklist import CheckStatus, build_checklist
from .config import Settings
from .prices import PriceSource
from .status import AccountState, Snapshot
from .value_metrics import BalanceValueCollector

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PRIVATE_METHODS = ("Balance", "OpenOrders")


class Metrics:
    """The krakenwatch exporter. Pass it to ``Monitor.add_observer`` and give it a snapshot source."""

    def __init__(
        self,
        settings: Settings,
        snapshot: Callable[[], Snapshot],
        prices: PriceSource | None = None,
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
        self.duration = Histogram(
            "krakenwatch_api_request_duration_seconds",
            "Private Kraken API call latency, including the wait for the key's lock.",
            ["account", "method"],
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
        invalid = {p.account for p in settings.discovery.errors if p.account}
        for label in [*(a.label for a in settings.accounts), *sorted(invalid)]:
            self.refreshes.labels(label)
            self.invalid_nonces.labels(label)
        for account in settings.accounts:
            for method in PRIVATE_METHODS:
                self.requests.labels(account.label, method, "ok")
        r.register(_SnapshotCollector(settings, snapshot))
        if settings.balance_metrics and prices is not None:
            r.register(BalanceValueCollector(snapshot, prices))

    # broker observer interface
    def on_call(self, event: CallEvent) -> None:
        if not event.private:
            return
        self.requests.labels(event.account, event.method, event.outcome).inc()
        self.duration.labels(event.account, event.method).observe(event.duration_s)
        self.lock_wait.observe(event.waited_s)
        if isinstance(event.error, InvalidNonceError):
            self.invalid_nonces.labels(event.account).inc()
        elif isinstance(event.error, NonceStoreError):
            self.store_errors.labels(event.account, event.error.kind).inc()

    def on_refresh(self, event: RefreshEvent) -> None:
        self.refreshes.labels(event.account).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _SnapshotCollector(Collector):
    def __init__(
        self,
        settings: Settings,
        snapshot: Callable[[], Snapshot],
        prices: PriceSource | None = None,
    ):
        self.settings = settings
        self.snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily | InfoMetricFamily]:
        settings = self.settings
        snap = self.snapshot()
        now = snap.taken_at
        yield InfoMetricFamily(
            "krakenwatch_build",
            "krakenwatch build information.",
            value={"version": __version__, "python": platform.python_version()},
        )
        up = GaugeMetricFamily(
            "krakenwatch_account_up",
            "1 if the account's last private call succeeded and is fresh.",
            labels=["account"],
        )
        state = GaugeMetricFamily(
            "krakenwatch_account_state",
            "1 for the account's current connection state.",
            labels=["account", "state"],
        )
        last_ok = GaugeMetricFamily(
            "krakenwatch_last_success_timestamp_seconds",
            "Unix time of the account's last successful private call.",
            labels=["account"],
        )
        lead = GaugeMetricFamily(
            "krakenwatch_nonce_lead_seconds",
            "How far the key's nonce high-water mark runs ahead of the wall clock.",
            labels=["account"],
        )
        balance = GaugeMetricFamily(
            "krakenwatch_balance",
            "Balance per asset as last read from Kraken.",
            labels=["account", "asset"],
        )
        for a in snap.accounts:
            up.add_metric([a.label], 1.0 if a.is_up(now, settings.freshness_s) else 0.0)
            for name in AccountState:
                state.add_metric([a.label, name.value], 1.0 if a.state == name else 0.0)
            if a.last_success_at is not None:
                last_ok.add_metric([a.label], a.last_success_at)
            if a.nonce_status is not None:
                lead.add_metric([a.label], a.nonce_status.lead_seconds)
            if settings.balance_metrics and a.balances and not a.balance_error:
                for asset, value in sorted(a.balances.items()):
                    try:
                        balance.add_metric([a.label, asset], float(value))
                    except ValueError:
                        continue
        yield from (up, state, last_ok, lead)
        if settings.balance_metrics:
            yield balance
        yield GaugeMetricFamily(
            "krakenwatch_accounts_configured",
            "Accounts configured and valid.",
            value=len(settings.accounts),
        )
        yield GaugeMetricFamily(
            "krakenwatch_config_errors",
            "Configuration problems that stop an account or setting.",
            value=len(settings.config_errors),
        )
        yield GaugeMetricFamily(
            "krakenwatch_clock_skew_max_seconds",
            "The configured bound for the clock_skew check (KRAKENWATCH_MAX_SKEW).",
            value=settings.max_skew_s,
        )
        if snap.skew is not None:
            yield GaugeMetricFamily(
                "krakenwatch_clock_skew_seconds",
                "Local clock minus Kraken's clock (positive: local ahead).",
                value=snap.skew.offset_s,
            )
            yield GaugeMetricFamily(
                "krakenwatch_clock_skew_uncertainty_seconds",
                "Half-width of the interval the true clock skew lies in.",
                value=snap.skew.uncertainty_s,
            )
            yield GaugeMetricFamily(
                "krakenwatch_clock_skew_sample_timestamp_seconds",
                "Unix time of the last clock skew sample.",
                value=snap.skew.sampled_at,
            )
        checks = GaugeMetricFamily(
            "krakenwatch_check_success",
            "1 if the checklist item passes, 0 if it fails or is pending (skipped items are absent).",
            labels=["check", "account"],
        )
        for check in build_checklist(snap, settings):
            if check.status != CheckStatus.SKIPPED:
                passed = check.status == CheckStatus.PASS
                checks.add_metric([check.name, check.account or ""], 1.0 if passed else 0.0)
        yield checks
        if snap.started_at is not None:
            yield GaugeMetricFamily(
                "krakenwatch_start_time_seconds",
                "Unix time the monitor started.",
                value=snap.started_at,
            )
