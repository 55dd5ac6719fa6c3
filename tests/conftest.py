"""Shared fixtures. Tests talk to real simulators over HTTP on 127.0.0.1.

* ``start_simulator(scenario=None, **kwargs) -> Simulator``: start a :class:`Simulator` (kwargs go
  to its constructor: ``state_file``, ``seed``...); every one started is stopped at teardown.
  ``simulator`` is the same factory.
* ``make_keyspec(name="k1", **kwargs) -> KeySpec``: a key with a fresh random secret.
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:  # `pytest` (unlike `python -m pytest`) does not add the repo root
    sys.path.insert(0, str(_ROOT))

from broker.simulator import KeySpec, Scenario, Simulator  # noqa: E402

StartSimulator = Callable[..., Simulator]


@pytest.fixture
def start_simulator() -> Iterator[StartSimulator]:
    started: list[Simulator] = []

    def start(scenario: Scenario | None = None, **kwargs: Any) -> Simulator:
        sim = Simulator(scenario if scenario is not None else Scenario(), **kwargs).start()
        started.append(sim)
        return sim

    yield start
    for sim in reversed(started):
        sim.stop()


@pytest.fixture
def simulator(start_simulator: StartSimulator) -> StartSimulator:
    """Alias of ``start_simulator``."""
    return start_simulator


@pytest.fixture
def make_keyspec() -> Callable[..., KeySpec]:
    def make(name: str = "k1", **kwargs: Any) -> KeySpec:
        kwargs.setdefault("key", f"SIMtest{name}{secrets.token_hex(8)}")
        kwargs.setdefault("secret", base64.b64encode(os.urandom(64)).decode("ascii"))
        return KeySpec(name=name, **kwargs)

    return make
