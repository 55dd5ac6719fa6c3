"""The ``krakenwatch`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__

DESCRIPTION = """\
krakenwatch: an observable ops dashboard for Kraken trading-bot accounts.

Connects the configured MASTER and USER Kraken accounts with nonce-safe logic, verifies them
against the post-deploy checklist, and exports Prometheus metrics.
"""


def build_parser() -> argparse.ArgumentParser:
    from broker.simulator import cli as simulator_cli

    from . import check, serve

    parser = argparse.ArgumentParser(
        prog="krakenwatch",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"krakenwatch {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    sim = commands.add_parser(
        "simulator",
        help="run the local Kraken API simulator (for tests, the demo and bots)",
        description="Run the Kraken spot REST API simulator on 127.0.0.1 (strict nonce, signature, "
        "permission and rate-limit checks, fault injection). Prints 'listening on URL' when ready.",
        epilog=simulator_cli.HELP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    simulator_cli.add_arguments(sim)
    sim.set_defaults(run=simulator_cli.run_from_args)
    chk = commands.add_parser(
        "check",
        help="verify every configured account once; exit 0 ok, 1 a check failed, 2 configuration error",
        description=check.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_arguments(chk)
    chk.set_defaults(run=check.run_from_args)
    up = commands.add_parser(
        "up",
        help="run the dashboard, /metrics, /api/verify and the monitor in one process",
        description="Serve the Streamlit dashboard, GET /metrics and GET /api/verify, and run the "
        "monitor, in one process. Binds 127.0.0.1 unless --address says otherwise.",
    )
    serve.add_up_arguments(up)
    up.set_defaults(run=serve.run_up)
    demo = commands.add_parser(
        "demo",
        help="the dashboard against the built-in Kraken simulator (no credentials needed)",
        description="Start the Kraken simulator with demo accounts (a healthy MASTER, a healthy user, "
        "a user whose key lacks a permission) and run `up` against it.",
    )
    serve.add_demo_arguments(demo)
    demo.set_defaults(run=serve.run_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "run", None) is None:
        parser.print_help()
        return 2
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
