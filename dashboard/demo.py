"""``krakenwatch demo``: the dashboard against the built-in Kraken simulator, no credentials needed.

The simulator is imported only here, and only when the demo runs: ``up`` never loads it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from .config import load_settings

__all__ = ["add_demo_arguments", "run_demo"]


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address", default="127.0.0.1", help="address to bind (default 127.0.0.1)"
    )
    parser.add_argument("--port", type=int, default=8501, help="dashboard port (default 8501)")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="state directory (default: a new temporary one)"
    )


def run_demo(args: argparse.Namespace) -> int:
    from simulator import Simulator, builtin_scenario, scenario_environment

    from .serve import serve

    scenario = builtin_scenario("demo")
    scenario.tier = "pro"
    sim = Simulator(scenario).start()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="krakenwatch-demo-"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("KRAKEN_", "KRAKENWATCH_"))},
        **scenario_environment(scenario, sim.url),
        "KRAKENWATCH_DATA_DIR": str(data_dir),
        "KRAKENWATCH_TIER": "pro",
        "KRAKENWATCH_POLL_INTERVAL": "5",
        "KRAKENWATCH_SKEW_INTERVAL": "60",
    }
    print(
        f"demo: Kraken simulator ({', '.join(k.account or '?' for k in scenario.keys)}) at {sim.url}"
    )
    print(f"demo: state in {data_dir}")
    try:
        return serve(load_settings(env, use_dotenv=False), args.address, args.port)
    finally:
        sim.stop()
