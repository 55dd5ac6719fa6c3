"""``krakenwatch up``: one process for the pages, ``/metrics``, ``/api/verify`` and the monitor."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from broker import ConfigurationError

from .config import Settings, load_settings

__all__ = ["add_up_arguments", "run_up", "serve"]

LAUNCHER = Path(__file__).with_name("app.py")


def add_up_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address", default="127.0.0.1", help="address to bind (default 127.0.0.1: this host only)"
    )
    parser.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    parser.add_argument(
        "--env-file",
        type=Path,
        default=None,
        metavar="F",
        help="read variables from F instead of ./.env",
    )


def run_up(args: argparse.Namespace) -> int:
    env_file = args.env_file.resolve() if args.env_file else None
    try:
        settings = load_settings(env_file=env_file)
    except ConfigurationError as exc:
        print(f"krakenwatch up: {exc}", file=sys.stderr)
        return 2
    return serve(lambda: load_settings(env_file=env_file), settings, args.address, args.port)


def serve(factory: Callable[[], Settings], settings: Settings, address: str, port: int) -> int:
    from .runtime import build_app

    for problem in settings.all_problems:
        print(f"krakenwatch: {problem.severity}: {problem}", file=sys.stderr)
    if not settings.accounts:
        print(
            "krakenwatch: no Kraken account configured; the dashboard says how to add them",
            file=sys.stderr,
        )
    if address not in ("127.0.0.1", "localhost", "::1") and settings.password is None:
        print(
            f"krakenwatch: warning: listening on {address} without KRAKENWATCH_PASSWORD: anyone who "
            "can reach this port sees balances and account states",
            file=sys.stderr,
        )
    host = f"[{address}]" if ":" in address else address
    base = f"http://{host}:{port}"
    print(f"dashboard: {base}/\nmetrics: {base}/metrics\nverify: {base}/api/verify", flush=True)
    # st.App.run() takes sys.argv[0] as the launcher script: make it ours, not the console script
    sys.argv = [str(LAUNCHER)]
    build_app(factory).run(
        config={
            "server.address": address,
            "server.port": port,
            "server.headless": True,
            "server.fileWatcherType": "none",
            "server.enableXsrfProtection": True,
            "browser.gatherUsageStats": False,
        }
    )
    return 0
