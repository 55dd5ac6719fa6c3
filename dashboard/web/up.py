"""``krakenwatch up``: one process for the pages, ``/metrics``, ``/api/verify`` and the monitor (and,
with ``--gateway``, the signing gateway)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from broker import ConfigurationError
from dashboard.config import Settings, add_env_file_argument, load_settings
from dashboard.errors import DashboardError
from dashboard.web.embedded_gateway import DEFAULT_GATEWAY_PORT, GatewayOptions
from dashboard.web.terminal import ReadyAnnouncer, run_until_stopped

if TYPE_CHECKING:
    from dashboard.web.service import Service

__all__ = [
    "SERVER_CONFIG",
    "add_gateway_arguments",
    "add_up_arguments",
    "gateway_options",
    "run_up",
    "serve",
]

LAUNCHER = Path(__file__).parent.parent / "app.py"
#: Streamlit options of every ``up``/``demo`` server (the address and port are added)
SERVER_CONFIG = {
    "server.headless": True,
    "server.fileWatcherType": "none",
    "server.enableXsrfProtection": True,
    "browser.gatherUsageStats": False,
    # an ops dashboard: no "Deploy" button, no developer menu (rerun, clear cache, settings)
    "client.toolbarMode": "viewer",
    # the URLs are printed by krakenwatch once the server answers (lifecycle.ReadyAnnouncer)
    "logger.hideWelcomeMessage": True,
}


def add_up_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address", default="127.0.0.1", help="address to bind (default 127.0.0.1: this host only)"
    )
    parser.add_argument("--port", type=int, default=8501, help="port (default 8501; 0: any free)")
    add_gateway_arguments(parser)
    add_env_file_argument(parser)


def add_gateway_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gateway",
        action="store_true",
        help="also run the signing gateway in this process (bots use it instead of "
        "https://api.kraken.com; the monitor's calls share its lanes and rate budget)",
    )
    parser.add_argument(
        "--gateway-port",
        type=int,
        default=None,
        metavar="P",
        help=f"the gateway's port, on the same address as the dashboard (default "
        f"{DEFAULT_GATEWAY_PORT}; 0: any free one)",
    )
    parser.add_argument(
        "--gateway-config",
        type=Path,
        default=None,
        metavar="FILE",
        help="the gateway's client credentials file (default: gateway.toml in the data dir; "
        "see `krakenwatch gateway add-client`)",
    )


def gateway_options(args: argparse.Namespace, address: str) -> GatewayOptions | None:
    """The gateway's options from ``--gateway``/``--gateway-port``/``--gateway-config``
    (``None``: no gateway); ``ValueError`` naming the flag for a bad combination."""
    port = args.gateway_port
    for flag, value in (("--gateway-port", port), ("--gateway-config", args.gateway_config)):
        if value is not None and not args.gateway:
            raise ValueError(f"{flag} needs --gateway")
    if port is not None and not 0 <= port <= 65535:
        raise ValueError(f"--gateway-port: {port} is not a port number (0-65535)")
    if not args.gateway:
        return None
    return GatewayOptions(
        address, DEFAULT_GATEWAY_PORT if port is None else port, args.gateway_config
    )


def run_up(args: argparse.Namespace) -> int:
    def up() -> int:
        try:
            gateway = gateway_options(args, args.address)
            settings = load_settings(env_file=args.env_file)
        except (ConfigurationError, ValueError) as exc:
            print(f"krakenwatch up: {exc}", file=sys.stderr)
            return 2
        return serve(settings, args.address, args.port, gateway)

    return run_until_stopped(up)


def port_taken(address: str, port: int) -> str | None:
    """Why ``address:port`` cannot be listened on (a port in use, an address not of this host),
    or ``None``: asked before Streamlit starts, so the mistake is one line, not its traceback."""
    from gateway.server import bind

    if port == 0:
        return None
    try:
        bind(address, port).close()
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None


def serve(
    settings: Settings,
    address: str,
    port: int,
    gateway: GatewayOptions | None = None,
    *,
    command: str = "krakenwatch up",
    gateway_hints: Callable[[str], list[str]] | None = None,
    on_started: Callable[[Service], object] | None = None,
) -> int:
    """Serve the app for ``settings`` on ``address:port`` (and the signing gateway, when asked)
    until the server stops; the exit code. ``on_started``: called with the service once it runs.

    The URLs are printed once the server answers. A signal ends the server gracefully and then
    raises ``KeyboardInterrupt`` here (see :func:`~dashboard.web.terminal.run_until_stopped`).
    """
    # imported here: `krakenwatch check` builds the same parser and needs none of this
    from streamlit import config as streamlit_config

    from dashboard.web.service import Service
    from dashboard.web.streamlit_app import build_app

    _warn_before_start(settings, address)
    busy = port_taken(address, port)
    if busy is not None:
        print(
            f"krakenwatch: cannot listen on {address}:{port} (--address/--port): {busy}",
            file=sys.stderr,
        )
        return 2
    try:
        service = Service.create(settings, gateway=gateway, command=command)
    except DashboardError as exc:
        print(f"krakenwatch: {exc}", file=sys.stderr)
        return 2
    extra = _gateway_lines(service, address, gateway_hints)
    # the bound port (``--port 0`` asks the OS for one) once the lifespan runs
    announcer = ReadyAnnouncer(
        address, lambda: int(streamlit_config.get_option("server.port")), extra=extra
    )
    # st.App.run() takes sys.argv[0] as the launcher script: make it ours, not the console script
    sys.argv = [str(LAUNCHER)]
    try:
        announcer.start()

        def started() -> None:
            if on_started is not None:
                on_started(service)
            announcer.started()

        build_app(service, on_start=started).run(
            config={**SERVER_CONFIG, "server.address": address, "server.port": port}
        )
    finally:
        announcer.stop()
        service.stop()
    return 0


def _warn_before_start(settings: Settings, address: str) -> None:
    """The configuration's problems, and a warning when the pages are open beyond loopback."""
    from gateway.server import LOOPBACK

    for problem in settings.all_problems:
        print(f"krakenwatch: {problem.severity}: {problem}", file=sys.stderr)
    if not settings.accounts:
        print(
            "krakenwatch: no Kraken account configured; the dashboard says how to add them",
            file=sys.stderr,
        )
    if address not in LOOPBACK and settings.password is None:
        print(
            f"krakenwatch: warning: listening on {address} without KRAKENWATCH_PASSWORD: anyone who "
            "can reach this port sees balances and account states",
            file=sys.stderr,
        )


def _gateway_lines(
    service: Service, address: str, gateway_hints: Callable[[str], list[str]] | None
) -> list[str]:
    """With ``--gateway``: its warnings printed now; the lines printed with the URLs returned."""
    if service.gateway is None:
        return []
    from gateway.server import exposure_warning

    warning = exposure_warning(address)
    credentials = service.gateway.gateway.credentials
    skipped = credentials.table.skipped if credentials is not None else ()
    for note in [*([warning] if warning else []), *(f"warning: {r}" for r in skipped)]:
        print(f"krakenwatch: gateway: {note}", file=sys.stderr)
    lines = [f"gateway: {service.gateway.url} (bots use it instead of Kraken's URL)"]
    return lines + (gateway_hints(service.gateway.url) if gateway_hints is not None else [])
