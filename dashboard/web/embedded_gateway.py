"""``krakenwatch up --gateway``: the signing gateway inside the dashboard's process.

The gateway serves the bots on its own port (a uvicorn thread, :class:`gateway.server.GatewayThread`)
and signs through the same nonce store, data dir, tier and timeouts as the monitor. The monitor's
private calls take their turn in the gateway's lane of their key (:class:`LaneClient`): the
monitor's polling and the bots' calls then share one writer and one rate budget per key, so the
dashboard never spends budget the gateway does not know about. The gateway's metrics join the
dashboard's registry (one ``krakenwatch_invalid_nonce_errors_total`` family per process), and its
traffic joins the monitor's snapshot (the Gateway page, the ``gateway_kraken_errors`` checks).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from broker import ConfigurationError, KrakenClient
from broker.paths import nonce_store_dir

from .config import Settings
from .errors import DashboardError

if TYPE_CHECKING:
    from broker.transport import Timeout
    from gateway import Gateway, GatewaySettings
    from gateway.server import GatewayThread

    from .metrics import Metrics

__all__ = [
    "DEFAULT_GATEWAY_PORT",
    "MONITOR_CLIENT",
    "EmbeddedGateway",
    "GatewayError",
    "GatewayOptions",
    "LaneClient",
    "gateway_settings",
]

DEFAULT_GATEWAY_PORT = 8788
#: the ``client`` label of the monitor's calls in the gateway's metrics
MONITOR_CLIENT = "monitor"
#: how long a monitor call may wait for its turn (longer than a bot's: a poll is not in a hurry,
#: and refusing it would show a healthy account as degraded)
MONITOR_MAX_WAIT_S = 60.0


class GatewayError(DashboardError):
    """The embedded gateway cannot run; the message names the flag or setting at fault."""


@dataclass(frozen=True)
class GatewayOptions:
    """What ``up --gateway`` was told: where the gateway listens, where its client credentials
    are (``None``: ``gateway.toml`` in the data dir)."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_GATEWAY_PORT
    config: Path | None = None


class LaneClient(KrakenClient):
    """An account's client for the monitor under ``up --gateway``: every private call (``connect``
    and the permission probes included) is made in the gateway's lane of its key."""

    def __init__(self, *args: Any, gateway: Gateway, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.gateway = gateway

    def call_private(self, method: str, data: Any = None, timeout: Timeout | None = None) -> Any:
        own = super().call_private
        return self.gateway.take_turn(
            self.account,
            method,
            lambda: own(method, data, timeout),
            client=MONITOR_CLIENT,
            max_wait_s=MONITOR_MAX_WAIT_S,
        )


def gateway_settings(settings: Settings, config: Path | None = None) -> GatewaySettings:
    """The gateway's settings from the dashboard's: same Kraken URL, nonce store (file or Redis,
    with the same sync), tier and request timeout as the monitor; the client file ``config``, or
    the data dir's."""
    from gateway import GatewaySettings
    from gateway.clientfile import default_config_path

    if settings.api_url is None:
        raise GatewayError("--gateway: KRAKEN_API_URL is invalid; nothing can be forwarded")
    return GatewaySettings(
        config_path=config or default_config_path(settings.data_dir),
        api_url=settings.api_url,
        store_dir=nonce_store_dir(settings.data_dir),
        nonce_store=settings.nonce_store,
        durable=settings.nonce_sync,
        default_tier=settings.tier,
        request_timeout_s=settings.request_timeout_s,
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

    def start(self) -> None:
        """Serve, and wait until the gateway accepts calls (the monitor's included)."""
        self.server.start()

    def stop(self) -> None:
        """Refuse what is queued, let calls in flight finish, stop serving."""
        self.server.stop()
