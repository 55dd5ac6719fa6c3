"""A strict, faithful local Kraken spot REST API simulator (a real HTTP server on 127.0.0.1).

Used by the tests, the demo and the benchmarks; bots can be tested against it too
(``krakenwatch simulator`` / ``python -m simulator``). Stdlib only, plus :mod:`broker.signing` and :mod:`broker.limits`.

Nonce rule, per key, judged in arrival order (after the simulated latency), ``EAPI:Invalid nonce``
otherwise: the nonce is a decimal integer string in 1..2^64-1; with ``nonce_window == 0`` it is
accepted iff it is greater than the last accepted nonce; with a window ``W > 0`` it is accepted iff
it is greater than ``last - W`` and was not accepted before; then ``last = max(last, nonce)``.
See :mod:`simulator.state` for the judging order and :mod:`simulator.faults`.
"""

from .builtin import BUILTIN_SCENARIOS, builtin_scenario, fake_key, fake_secret
from .environment import scenario_environment
from .faults import Faults
from .keys import KeyStats
from .scenario import (
    PERMISSIONS,
    TIERS,
    KeySpec,
    OtherWriter,
    Scenario,
    ScenarioError,
)
from .scenario_file import load_scenario
from .simulator import Simulator
from .state import KEEP
from .store import StateFileError

__all__ = [
    "BUILTIN_SCENARIOS",
    "KEEP",
    "PERMISSIONS",
    "TIERS",
    "Faults",
    "KeySpec",
    "KeyStats",
    "OtherWriter",
    "Scenario",
    "ScenarioError",
    "Simulator",
    "StateFileError",
    "builtin_scenario",
    "fake_key",
    "fake_secret",
    "load_scenario",
    "scenario_environment",
]
