"""``krakenwatch demo``: the dashboard against the built-in Kraken simulator, no credentials needed.

The simulator is imported only here, and only when the demo runs: ``up`` never loads it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from dashboard.config import load_settings
from dashboard.web.embedded_gateway import GatewayOptions
from dashboard.web.terminal import run_until_stopped
from dashboard.web.up import add_gateway_arguments, gateway_options, serve

if TYPE_CHECKING:
    from dashboard.web.service import Service

__all__ = ["DEMO_VERSION", "add_demo_arguments", "mark_demo_deploy", "run_demo"]

#: the version of the deploy the demo marks at its start
DEMO_VERSION = "demo-1"


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address", default="127.0.0.1", help="address to bind (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=int, default=8501, help="dashboard port (default 8501; 0: any free)"
    )
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="state directory (default: a new temporary one)"
    )
    add_gateway_arguments(parser)


def run_demo(args: argparse.Namespace) -> int:
    """The demo until it is stopped (Ctrl-C: one line ``stopped``, exit code 0)."""
    try:
        gateway = gateway_options(args, args.address)
    except ValueError as exc:
        print(f"krakenwatch demo: {exc}", file=sys.stderr)
        return 2
    return run_until_stopped(lambda: _demo(args, gateway))


def mark_demo_deploy(service: Service) -> None:
    """Mark a deploy of every account as the demo starts, as a pipeline would: the Overview then
    leads with it, pending until the grace period ends, and failed on the account whose key
    lacks a permission (with what to do)."""
    from dashboard.deploys.request import MarkRequest

    accounts = tuple(a.label for a in service.settings.accounts)
    note = "marked by krakenwatch demo at its start"
    deploy = service.deploys.mark(MarkRequest(DEMO_VERSION, accounts, note))
    print(
        f"demo: marked deploy #{deploy.id} {deploy.version} on every account; its verdict: "
        "GET /api/deploys/latest, or `krakenwatch deploy wait`",
        flush=True,
    )


#: what a key needs for its stream to carry the orders (the token, balances, executions)
STREAMED = frozenset({"websocket", "funds", "orders"})


def _demo(args: argparse.Namespace, gateway: GatewayOptions | None) -> int:
    from simulator import Simulator, builtin_scenario, scenario_environment

    scenario = builtin_scenario("demo")
    scenario.tier = "pro"
    sim = Simulator(scenario).start()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="krakenwatch-demo-"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("KRAKEN_", "KRAKENWATCH_"))},
        **scenario_environment(scenario, sim.url, sim.ws_url),
        "KRAKENWATCH_DATA_DIR": str(data_dir),
        # the demo's bot trades on these accounts, and their streams can see it: their
        # trading_active item is required
        "KRAKENWATCH_EXPECT_TRADING": ",".join(
            k.account
            for k in scenario.keys
            if k.account and k.trading is not None and k.permissions >= STREAMED
        ),
        "KRAKENWATCH_TIER": "pro",
        "KRAKENWATCH_POLL_INTERVAL": "5",
        "KRAKENWATCH_SKEW_INTERVAL": "60",
    }
    print(
        f"demo: Kraken simulator ({', '.join(k.account or '?' for k in scenario.keys)}) at {sim.url}"
    )
    print(f"demo: state in {data_dir}" + ("" if args.data_dir else " (removed at the end)"))
    master = scenario.keys[0]

    def bot_hints(url: str) -> list[str]:
        """How a bot tries the gateway: a demo account's (simulated) key, and a snippet."""
        return [
            f"demo bot: KRAKEN_API_KEY={master.key}",
            f"demo bot: KRAKEN_API_SECRET={master.secret}",
            'demo bot: try it: python -c "import krakenex; api = krakenex.API('
            f"'{master.key}', '{master.secret}'); api.uri = '{url}'; "
            "print(api.query_private('Balance'))\"",
        ]

    try:
        return serve(
            load_settings(env, use_dotenv=False),
            args.address,
            args.port,
            gateway,
            command="krakenwatch demo",
            gateway_hints=bot_hints,
            on_started=mark_demo_deploy,
        )
    finally:
        sim.stop()
        if args.data_dir is None:  # the demo's own temporary state
            shutil.rmtree(data_dir, ignore_errors=True)
