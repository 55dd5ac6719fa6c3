"""``python -m simulator``: run the Kraken API simulator."""

from .cli import run_simulator_cli

raise SystemExit(run_simulator_cli())
