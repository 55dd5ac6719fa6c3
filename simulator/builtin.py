"""Built-in scenarios: fixed, clearly fake but well-formed keys for tests, the demo and bench.

Public keys are 56 characters starting with ``SIM``; secrets are base64 of 64 bytes (88 characters)
derived from SHA-512 of a label, so they are stable across runs and never real credentials.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

from .scenario import (
    PERMISSIONS,
    KeySpec,
    OtherWriter,
    Scenario,
    ScenarioError,
    TradingSpec,
    resolve_nonce,
)

__all__ = ["BUILTIN_SCENARIOS", "builtin_scenario", "fake_key", "fake_secret"]


def fake_key(label: str) -> str:
    """A 56-character, base64-looking public key for ``label`` (starts with ``SIM``)."""
    digest = hashlib.sha512(f"krakenwatch simulator public key {label}".encode()).digest()
    return "SIM" + base64.b64encode(digest).decode("ascii")[:53]


def fake_secret(label: str) -> str:
    """A base64 secret of 64 bytes (88 characters, ending in ``==``) for ``label``."""
    digest = hashlib.sha512(f"krakenwatch simulator secret {label}".encode()).digest()
    return base64.b64encode(digest).decode("ascii")


_MASTER_BALANCES = {
    "ZUSD": "1234.5600",
    "USDT": "500.00000000",
    "XXBT": "0.1234567890",
    "ETH2.S": "1.0000000000",
}
_DAIVON_BALANCES = {"ZUSD": "250.0000", "USDT": "75.50000000", "XXBT": "0.0050000000"}
_TANIA_BALANCES = {"ZUSD": "98.7600", "USDT": "0.00000000"}


def _key(
    scenario: str,
    account: str,
    balances: dict[str, str],
    permissions: frozenset[str] = PERMISSIONS,
    **extra: object,
) -> KeySpec:
    label = f"{scenario}/{account}"
    return KeySpec(
        key=fake_key(label),
        secret=fake_secret(label),
        permissions=set(permissions),
        balances=dict(balances),
        name=account,
        account=account,
        **extra,  # type: ignore[arg-type]
    )


def _healthy() -> Scenario:
    return Scenario(
        keys=[
            _key("healthy", "MASTER", _MASTER_BALANCES),
            _key("healthy", "USER:daivon", _DAIVON_BALANCES),
            _key("healthy", "USER:tania_gilbert", _TANIA_BALANCES),
        ]
    )


#: Kraken fee credits: the simulator has no price for them (no KFEEUSD pair), like Kraken
_UNPRICED_BALANCES = {"KFEE": "1250.00"}


def _demo_trading() -> TradingSpec:
    """A few small XBTUSD orders a minute (filled, or now and then cancelled)."""
    return TradingSpec(orders_per_minute=4, pair="XBTUSD", volume="0.001")


def _demo() -> Scenario:
    # every demo key may trade, so every one trades by itself; the fills are at the simulator's
    # own price and free, so each account's value at that price (what the pages total) never
    # moves while its assets do
    return Scenario(
        keys=[
            _key("demo", "MASTER", _MASTER_BALANCES, trading=_demo_trading()),
            _key(
                "demo",
                "USER:daivon",
                {**_DAIVON_BALANCES, **_UNPRICED_BALANCES},
                trading=_demo_trading(),
            ),
            _key(
                "demo",
                "USER:tania_gilbert",
                _TANIA_BALANCES,
                frozenset({"funds", "trade", "websocket"}),
                trading=_demo_trading(),
            ),
        ],
        maker_fee_pct="0",
        taker_fee_pct="0",
    )


def _previous_session() -> Scenario:
    return Scenario(
        keys=[
            _key(
                "previous-session-nonce",
                "MASTER",
                _MASTER_BALANCES,
                last_nonce=resolve_nonce("now_us+30s"),
            ),
        ]
    )


def _finer_unit() -> Scenario:
    return Scenario(
        keys=[
            _key(
                "finer-unit",
                "MASTER",
                _MASTER_BALANCES,
                last_nonce=resolve_nonce("now_ns"),
                nonce_unit="ns",
            ),
        ]
    )


def _shared_key() -> Scenario:
    return Scenario(
        keys=[
            _key(
                "shared-key",
                "MASTER",
                _MASTER_BALANCES,
                other_writer=OtherWriter(interval_ms=100, lead_ms=2000),
            ),
        ]
    )


def _permission_denied() -> Scenario:
    return Scenario(
        keys=[
            _key(
                "permission-denied",
                "MASTER",
                _MASTER_BALANCES,
                frozenset({"orders", "trade", "websocket"}),
            ),
        ]
    )


_FACTORIES: dict[str, tuple[Callable[[], Scenario], str]] = {
    "healthy": (_healthy, "MASTER + USER:daivon + USER:tania_gilbert, all permissions, balances"),
    "demo": (
        _demo,
        "like healthy, but USER:tania_gilbert lacks 'orders' (OpenOrders is denied) and "
        "USER:daivon holds unpriced KFEE; every key trades XBTUSD by itself (fee-free)",
    ),
    "previous-session-nonce": (
        _previous_session,
        "MASTER whose last nonce is 30 s ahead (a previous session, in µs)",
    ),
    "finer-unit": (
        _finer_unit,
        "MASTER already used with nanosecond nonces: every µs nonce fails forever",
    ),
    "shared-key": (
        _shared_key,
        "MASTER shared with another bot whose µs nonces run 2 s ahead every 100 ms",
    ),
    "permission-denied": (
        _permission_denied,
        "MASTER without 'funds': Balance is denied (orders, trade, websocket allowed)",
    ),
}

#: built-in scenario name -> one-line description
BUILTIN_SCENARIOS: dict[str, str] = {name: desc for name, (_, desc) in _FACTORIES.items()}


def builtin_scenario(name: str) -> Scenario:
    """A fresh built-in scenario (relative nonces resolved now). Raises :class:`ScenarioError`."""
    try:
        factory = _FACTORIES[name][0]
    except KeyError:
        raise ScenarioError(
            f"unknown built-in scenario {name!r} (known: {', '.join(BUILTIN_SCENARIOS)})"
        ) from None
    return factory()
