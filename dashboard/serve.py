"""``krakenwatch up``: one process for the pages, ``/metrics``, ``/api/verify`` and the monitor."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from broker import ConfigurationError

from .config import Settings, add_env_file_argument, load_settings
from .errors import DashboardError

__all__ = ["add_up_arguments", "run_up", "serve"]

LAUNCHER = Path(__file__).with_name("app.py")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def add_up_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address", default="127.0.0.1", help="address to bind (default 127.0.0.1: this host only)"
    )
    parser.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    add_env_file_argument(parser)


def run_up(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(env_file=args.env_file)
    except ConfigurationError as exc:
        print(f"krakenwatch up: {exc}", file=sys.stderr)
        return 2
    return serve(settings, args.address, args.port)


def serve(settings: Settings, address: str, port: int) -> int:
    """Serve the app for ``settings`` on ``address:port`` until the server stops; the exit code."""
    # imported here: `krakenwatch check` builds the same parser and needs none of this
    from .runtime import build_app
    from .service import Service

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
    host = f"[{address}]" if ":" in address else address
    base = f"http://{host}:{port}"
    print(f"dashboard: {base}/\nmetrics: {base}/metrics\nverify: {base}/api/verify", flush=True)
    # st.App.run() takes sys.argv[0] as the launcher script: make it ours, not the console script
    sys.argv = [str(LAUNCHER)]
    try:
        build_app(service).run(
            config={
                "server.address": address,
                "server.port": port,
                "server.headless": True,
                "server.fileWatcherType": "none",
                "server.enableXsrfProtection": True,
                "browser.gatherUsageStats": False,
            }
        )
    finally:
        service.stop()
    return 0
