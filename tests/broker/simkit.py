"""Shared helpers for broker tests: fake-but-well-formed keys and a one-key simulator."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from broker.simulator import KeySpec, Scenario, Simulator
from broker.simulator.rawclient import RawResponse, form, signed_post


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


def call(
    sim: Simulator,
    spec: KeySpec,
    nonce: int | str | None,
    method: str = "Balance",
    *,
    body: str | bytes | None = None,
    api_sign: str | None = None,
    timeout: float = 5.0,
    **fields: Any,
) -> RawResponse:
    """A raw private call signed with ``spec``'s secret over ``nonce`` (any text; ``None`` for no
    nonce field) and the form-encoded ``fields``, unless ``body`` or ``api_sign`` say otherwise."""
    return signed_post(
        sim.url,
        method,
        key=spec.key,
        secret=spec.secret,
        body=form(nonce, **fields) if body is None else body,
        nonce="" if nonce is None else nonce,
        api_sign=api_sign,
        timeout=timeout,
    )
