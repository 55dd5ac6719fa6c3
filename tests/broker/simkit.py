"""Shared helpers for broker tests: fake-but-well-formed keys and a one-key simulator."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from broker.simulator import KeySpec, Scenario, Simulator


def make_key(name: str) -> tuple[str, str]:
    """A 56-character public key and a base64 64-byte secret, derived from ``name``."""
    digest = hashlib.sha512(f"krakenwatch-test-{name}".encode()).digest()
    key = base64.b64encode(hashlib.sha512(digest).digest()).decode()[:56]
    return key, base64.b64encode(digest).decode()


@contextmanager
def one_key_simulator(name: str, **scenario: Any) -> Iterator[tuple[Simulator, str, str]]:
    """A running simulator with one key (all permissions, unlimited tier unless overridden)."""
    key, secret = make_key(name)
    spec_fields = {
        k: scenario.pop(k)
        for k in ("permissions", "last_nonce", "nonce_window", "balances")
        if k in scenario
    }
    spec_fields.setdefault("balances", {"ZUSD": "1000.0000", "USDT": "50.00000000"})
    scenario.setdefault("tier", "unlimited")
    scenario.setdefault("lockout_threshold", 0)
    spec = KeySpec(key=key, secret=secret, name=name, **spec_fields)
    sim = Simulator(Scenario(keys=[spec], **scenario)).start()
    try:
        yield sim, key, secret
    finally:
        sim.stop()
