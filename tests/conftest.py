"""Shared fixtures. Tests talk to real simulators over HTTP on 127.0.0.1.

* ``start_simulator(scenario=None, **kwargs) -> Simulator``: start a :class:`Simulator` (kwargs go
  to its constructor: ``state_file``, ``seed``...); every one started is stopped at teardown.
  ``simulator`` is the same factory.
* ``make_keyspec(name="k1", **kwargs) -> KeySpec``: a key with a fresh random secret.
* ``clean_env``: removes every KRAKEN_*/KRAKENWATCH_* variable of the outer environment for the
  test (a developer's real configuration never reaches a test).
* every test gets its own ``XDG_RUNTIME_DIR`` (autouse): the file nonce store's host-wide records
  live there, so each test is one "host" of its own, shared by the processes it starts.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from simulator import KeySpec, Scenario, Simulator
from testkit.env import is_ours

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
def make_keyspec() -> Callable[..., KeySpec]:
    def make(name: str = "k1", **kwargs: Any) -> KeySpec:
        kwargs.setdefault("key", f"SIMtest{name}{secrets.token_hex(8)}")
        kwargs.setdefault("secret", base64.b64encode(os.urandom(64)).decode("ascii"))
        return KeySpec(name=name, **kwargs)

    return make


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if is_ours(n)]:
        monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def private_runtime_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    runtime = tmp_path_factory.mktemp("run")
    runtime.chmod(0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    return runtime
