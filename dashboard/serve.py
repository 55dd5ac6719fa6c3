"""``krakenwatch up``: one process for the pages, ``/metrics``, ``/api/verify`` and the monitor."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from broker import ConfigurationError

from .config import Settings, add_env_file_argument, load_settings
from .errors import DashboardError
from .lifecycle import ReadyAnnouncer, run_until_stopped
from .service import Service

__all__ = ["SERVER_CONFIG", "add_up_arguments", "run_up", "serve"]

LAUNCHER = Path(__file__).with_name("app.py")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
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
    add_env_file_argument(parser)


def run_up(args: argparse.Namespace) -> int:
    def up() -> int:
        try:
            settings = load_settings(env_file=args.env_file)
        except ConfigurationError as exc:
            print(f"krakenwatch up: {exc}", file=sys.stderr)
            return 2
        return serve(settings, args.address, args.port)

    return run_until_stopped(up)


def serve(settings: Settings, address: str, port: int) -> int:
    """Serve the app for ``settings`` on ``address:port`` until the server stops; the exit code.

    The URLs are printed once the server answers. A signal ends the server gracefully and then
    raises ``KeyboardInterrupt`` here (see :func:`~dashboard.lifecycle.run_until_stopped`).
    """
    from streamlit import config as streamlit_config

    from .runtime import build_app

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
    try:
        service = Service.create(settings)
    except DashboardError as exc:
        print(f"krakenwatch: {exc}", file=sys.stderr)
        return 2
    # the bound port (``--port 0`` asks the OS for one) once the lifespan runs
    announcer = ReadyAnnouncer(address, lambda: int(streamlit_config.get_option("server.port")))
    # st.App.run() takes sys.argv[0] as the launcher script: make it ours, not the console script
    sys.argv = [str(LAUNCHER)]
    try:
        announcer.start()
        build_app(service, on_start=announcer.started).run(
            config={**SERVER_CONFIG, "server.address": address, "server.port": port}
        )
    finally:
        announcer.stop()
        service.stop()
    return 0
