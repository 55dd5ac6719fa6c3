"""The krakenwatch service: settings + store + monitor + metrics + prices (+ bot-log watcher),
wired once.

The app factory of the project: ``krakenwatch up``, the Streamlit app, the headless server and the
tests all build it here, with their dependencies injected, and nothing connects at import time.
With ``gateway`` options (``up --gateway``) it also runs the signing gateway, whose lanes the
monitor's calls then take their turn in (:mod:`dashboard.web.embedded_gateway`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from broker.private import private_data_dir
from dashboard.checks.checklist import build_checklist
from dashboard.checks.verify import verify_document
from dashboard.config import Settings
from dashboard.errors import StoreError
from dashboard.exporter.metrics import Metrics
from dashboard.history.logwatch import LogWatcher
from dashboard.history.store import EventStore
from dashboard.monitor.facade import Monitor
from dashboard.monitor.polling import Pause, wait_for_wake
from dashboard.monitor.prices import PriceSource
from dashboard.monitor.retry import RetryPolicy
from dashboard.web.auth import PasswordThrottle
from dashboard.web.embedded_gateway import EmbeddedGateway, GatewayOptions

__all__ = ["Service"]

DATABASE_NAME = "krakenwatch.sqlite3"


@dataclass
class Service:
    settings: Settings
    monitor: Monitor
    metrics: Metrics
    store: EventStore
    #: USD prices for the balances (pages and metrics)
    prices: PriceSource
    log_watcher: LogWatcher | None = None
    #: the signing gateway served by this process (``up --gateway``)
    gateway: EmbeddedGateway | None = None
    #: failed password attempts per client address, for the login form and the HTTP routes
    password_throttle: PasswordThrottle = field(default_factory=PasswordThrottle)
    #: the command that runs this server (``krakenwatch up``, ``krakenwatch demo``), for the
    #: pages' hints
    command: str = "krakenwatch up"

    @classmethod
    def create(
        cls,
        settings: Settings,
        *,
        retry_policy: RetryPolicy | None = None,
        pause: Pause = wait_for_wake,
        gateway: GatewayOptions | None = None,
        command: str = "krakenwatch up",
    ) -> Service:
        """Wire the parts for ``settings``; nothing runs until :meth:`start`. ``gateway``: also
        run the signing gateway there.

        Raises :class:`~dashboard.errors.StoreError` when the data dir cannot be made private
        (0700, with its nonce dir) or the event database cannot be opened,
        :class:`~dashboard.web.embedded_gateway.GatewayError` when the gateway cannot run.
        """
        try:  # first: everything below may create files in it
            private_data_dir(settings.data_dir)
        except OSError as exc:
            raise StoreError(f"cannot make the data directory private ({exc})") from exc
        monitor = Monitor(settings, retry_policy=retry_policy, pause=pause)
        prices = PriceSource(
            api_url=settings.api_url,
            timeout_s=settings.request_timeout_s,
        )
        metrics = Metrics(settings, monitor.snapshot, prices)
        monitor.add_observer(metrics)
        embedded = None
        if gateway is not None:
            embedded = EmbeddedGateway.create(settings, metrics, gateway)
            monitor.attach_gateway(embedded.gateway)
        store = EventStore(
            settings.data_dir / DATABASE_NAME,
            retention_days=settings.retention_days,
            redact=settings.secrets(),
        )
        monitor.add_listener(store.append)
        watcher = None
        if settings.bot_log is not None:
            watcher = LogWatcher(
                settings.bot_log,
                settings.log_patterns,
                monitor.emit,
                redact=settings.secrets(),
            )
            monitor.log_watching = True
        return cls(settings, monitor, metrics, store, prices, watcher, embedded, command=command)

    def start(self) -> None:
        if self.gateway is not None:  # first: the monitor's calls go through it
            self.gateway.start()
        self.monitor.start()
        if self.log_watcher is not None:
            self.log_watcher.start()

    def stop(self) -> None:
        if self.log_watcher is not None:
            self.log_watcher.stop()
        self.monitor.stop()
        if self.gateway is not None:
            self.gateway.stop()
        self.store.close()

    def verify(self) -> dict[str, Any]:
        snapshot = self.monitor.snapshot()
        return verify_document(snapshot, self.settings, build_checklist(snapshot, self.settings))
