"""Helpers for dashboard tests: a simulator with a built-in scenario, and its environment."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from broker.simulator import Simulator, builtin_scenario, scenario_environment


@contextmanager
def scenario_simulator(name: str, **overrides: Any) -> Iterator[tuple[Simulator, dict[str, str]]]:
    """A running simulator for a built-in scenario, and the KRAKEN_* environment pointing at it."""
    scenario = builtin_scenario(name)
    for field, value in overrides.items():
        setattr(scenario, field, value)
    sim = Simulator(scenario).start()
    try:
        yield sim, scenario_environment(scenario, sim.url)
    finally:
        sim.stop()
