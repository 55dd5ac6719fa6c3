"""``krakenwatch up --gateway``: the signing gateway inside the dashboard's process.

The gateway serves the bots on its own port (a uvicorn thread, :class:`gateway.server.GatewayThread`)
and signs through the same nonce store, data dir, tier and timeouts as the monitor. The monitor's
private calls take their turn in the gateway's lane of their key (:class:`~dashboard.monitor.gateway_lane.LaneClient`): the
monitor's polling and the bots' calls then share one writer and one rate budget per key, so the
dashboard never spends budget the gateway does not know about. The gateway's metrics join the
dashboard's registry (one ``krakenwatch_invalid_nonce_errors_total`` family per process), and its
traffic joins the monitor's snapshot (the Gateway page, the ``gateway_kraken_errors`` checks).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from broker import ConfigurationError
from dashboard.config import Settings
from dashboard.errors import DashboardError

if TYPE_CHECKING:
    from dashboard.exporter.metrics import Metrics
    from gateway import Gateway, GatewaySettings
    from gateway.server import GatewayThread

__all__ = [
    "DEFAULT_GATEWAY_PORT",
    "EmbeddedGateway",
    "GatewayError",
    "GatewayOptions",
    "gateway_settings",
]

DEFAULT_GATEWAY_PORT = 8788


class GatewayError(DashboardError):
    """The embedded gateway cannot run; the message names the flag or setting at fault."""


@dataclass(frozen=True)
class GatewayOptions:
    """What ``up --gateway`` was told: where the gateway listens, where its client credentials
    are (``None``: ``gateway.toml`` in the data dir)."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_GATEWAY_PORT
    config: Path | None = None


def gateway_settings(settings: Settings, config: Path | None = None) -> GatewaySettings:
    """The gateway's settings from the dashboard's: same Kraken URL, nonce store (file or Redis,
    with the same sync), tier and request timeout as the monitor; the client file ``config``, or
    the data dir's; ``KRAKENWATCH_ADMIN_TOKEN`` guards its admin routes (the kill switch's
    ``POST /admin/halt`` and ``/admin/resume``), as it does the dashboard's deploy routes."""
    from gateway import GatewaySettings

    if settings.api_url is None:
        raise GatewayError("--gateway: KRAKEN_API_URL is invalid; nothing can be forwarded")
    return GatewaySettings.from_shared(
        settings.shared, config_path=config, admin_token=settings.admin_token
    )


class EmbeddedGateway:
    """A :class:`~gateway.Gateway` for the dashboard's accounts, served from a thread of this
    process on its own port."""

    def __init__(self, gateway: Gateway, server: GatewayThread):
        self.gateway = gateway
        self.server = server

    @classmethod
    def create(
        cls, settings: Settings, metrics: Metrics, options: GatewayOptions
    ) -> EmbeddedGateway:
        """Build the gateway and bind its port (nothing is served until :meth:`start`).

        Raises :class:`GatewayError` without an account to sign for, for a client file that is
        malformed or open to others, a replay memory that cannot be opened, or when the port is
        taken.
        """
        if not settings.accounts:
            raise GatewayError(
                "--gateway needs at least one valid Kraken account to sign for; fix the "
                "configuration or run without --gateway"
            )
        from gateway import Gateway
        from gateway.replaystore import ReplayStoreError
        from gateway.server import GatewayThread

        try:
            gateway = Gateway(
                settings.accounts,
                gateway_settings(settings, options.config),
                registry=metrics.registry,
                invalid_nonces=metrics.invalid_nonces,
            )
        except ConfigurationError as exc:
            raise GatewayError(f"gateway: {exc.message}") from None
        except ReplayStoreError as exc:
            raise GatewayError(f"gateway: {exc}") from None
        try:
            server = GatewayThread(gateway, options.host, options.port)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise GatewayError(
                f"the gateway cannot listen on {options.host}:{options.port} (--gateway-port): "
                f"{reason}"
            ) from None
        return cls(gateway, server)

    @property
    def url(self) -> str:
        return self.server.url

    def client_accounts(self) -> frozenset[str]:
        """The accounts the gateway's client credentials name (bots are expected there)."""
        credentials = self.gateway.credentials
        if credentials is None:
            return frozenset()
        return frozenset(client.account for client in credentials.table.clients)

    def start(self) -> None:
        """Serve, and wait until the gateway accepts calls (the monitor's included)."""
        self.server.start()

    def stop(self) -> None:
        """Refuse what is queued, let calls in flight finish, stop serving."""
        self.server.stop()
