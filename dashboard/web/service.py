"""The krakenwatch service: settings + store + monitor + metrics + prices (+ bot-log watcher),
wired once.

The app factory of the project: ``krakenwatch up``, the Streamlit app, the headless server and the
tests all build it here, with their dependencies injected, and nothing connects at import time.
With ``gateway`` options (``up --gateway``) it also runs the signing gateway, whose lanes the
monitor's calls then take their turn in (:mod:`dashboard.web.embedded_gateway`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from broker.private import private_data_dir
from dashboard.config import Settings
from dashboard.deploys.judge import DeployJudge
from dashboard.errors import StoreError
from dashboard.exporter.metrics import Metrics
from dashboard.history.logwatch import LogWatcher
from dashboard.history.store import EventStore
from dashboard.monitor.facade import Monitor
from dashboard.monitor.polling import Pause, wait_for_wake
from dashboard.monitor.prices import PriceSource
from dashboard.monitor.retry import RetryPolicy
from dashboard.monitor.status import Snapshot
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
    #: the deploys: marked, judged, and the snapshot counted from the latest marker
    deploys: DeployJudge
    log_watcher: LogWatcher | None = None
    #: the signing gateway served by this process (``up --gateway``)
    gateway: EmbeddedGateway | None = None
    #: failed password attempts per client address, for the login form and the HTTP routes
    password_throttle: PasswordThrottle = field(default_factory=PasswordThrottle)
    #: the command that runs this server (``krakenwatch up``, ``krakenwatch demo``), for the
    #: pages' hints
    command: str = "krakenwatch up"
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _judging: threading.Thread | None = field(default=None, repr=False)

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
        store = EventStore(
            settings.data_dir / DATABASE_NAME,
            retention_days=settings.retention_days,
            redact=settings.secrets(),
        )
        watcher = _log_watcher(settings, monitor)
        embedded: list[EmbeddedGateway] = []  # set below: the gateway needs the metrics first
        deploys = DeployJudge(
            settings,
            monitor.snapshot,
            store,
            poll_soon=monitor.poll_soon,
            before_mark=watcher.drain if watcher is not None else lambda: None,
            gateway_clients=lambda: embedded[0].client_accounts() if embedded else frozenset(),
        )
        prices = PriceSource(api_url=settings.api_url, timeout_s=settings.request_timeout_s)
        metrics = Metrics(settings, deploys.snapshot, prices, deploy=deploys.latest)
        monitor.add_observer(metrics)
        if gateway is not None:
            embedded.append(EmbeddedGateway.create(settings, metrics, gateway))
            monitor.attach_gateway(embedded[0].gateway)
        monitor.add_listener(store.append)
        monitor.add_listener(deploys.on_event)
        deploys.restore()
        return cls(
            settings,
            monitor,
            metrics,
            store,
            prices,
            deploys,
            watcher,
            embedded[0] if embedded else None,
            command=command,
        )

    def start(self) -> None:
        if self.gateway is not None:  # first: the monitor's calls go through it
            self.gateway.start()
        self.monitor.start()
        if self.log_watcher is not None:
            self.log_watcher.start()
        self._judging = threading.Thread(
            target=self.deploys.run, args=(self._stop,), name="kw-deploys", daemon=True
        )
        self._judging.start()

    def stop(self) -> None:
        self._stop.set()
        if self._judging is not None:
            self._judging.join(5.0)
        if self.log_watcher is not None:
            self.log_watcher.stop()
        self.monitor.stop()
        if self.gateway is not None:
            self.gateway.stop()
        self.store.close()

    def snapshot(self) -> Snapshot:
        """The monitor's snapshot, counted from the latest deploy marker (what every page,
        gauge and ``/api/verify`` reads)."""
        return self.deploys.snapshot()

    def verify(self) -> dict[str, Any]:
        """The verify document, judged for the latest deploy."""
        return self.deploys.verify()


def _log_watcher(settings: Settings, monitor: Monitor) -> LogWatcher | None:
    """The bot-log watcher feeding ``monitor`` (``KRAKENWATCH_BOT_LOG``), not started."""
    if settings.bot_log is None:
        return None
    monitor.log_watching = True
    return LogWatcher(
        settings.bot_log, settings.log_patterns, monitor.emit, redact=settings.secrets()
    )
