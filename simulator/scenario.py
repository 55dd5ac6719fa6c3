"""Scenarios: the account state a simulated Kraken starts from (keys, clock, latency, limits),
and the parsing of each field.

A scenario comes from a TOML or JSON file (:mod:`simulator.scenario_file`) or is a built-in
(:mod:`simulator.builtin`). Every user mistake raises :class:`ScenarioError` naming the file
and the field; secrets never appear in a message.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from broker.limits import TIERS as KRAKEN_TIERS
from broker.signing import mask_key

from .market import DEFAULT_USD_PRICES, QUOTE, altname_of

__all__ = [
    "MAX_NONCE",
    "NONCE_UNITS",
    "PERMISSIONS",
    "SYSTEM_STATUSES",
    "TIERS",
    "TRADING_TIERS",
    "KeySpec",
    "OtherWriter",
    "Scenario",
    "ScenarioError",
    "TradingSpec",
    "mask_key",
    "resolve_nonce",
]

PERMISSIONS = frozenset({"funds", "orders", "trade", "websocket"})
#: tier name -> (maximum counter, decay per second), Kraken's published tiers plus ``unlimited``
#: (``None``: no private rate limit), for tests that are not about rate limits
TIERS: dict[str, tuple[float, float] | None] = {
    **{name: (tier.maximum, tier.decay_per_s) for name, tier in KRAKEN_TIERS.items()},
    "unlimited": None,
}
#: tier name -> (threshold, decay per second) of Kraken's per-pair *trading* counter (kraken-api.md
#: "Spot trading limits"; Starter from secondary sources). ``unlimited`` counts with Pro's numbers
#: but never refuses.
TRADING_TIERS: dict[str, tuple[float, float]] = {
    "starter": (60.0, 1.0),
    "intermediate": (125.0, 2.34),
    "pro": (180.0, 3.75),
    "unlimited": (180.0, 3.75),
}
SYSTEM_STATUSES = ("online", "maintenance", "cancel_only", "post_only")
NONCE_UNITS = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
MAX_NONCE = 2**64 - 1
_ACCOUNT_RE = re.compile(r"MASTER|USER:[a-z0-9_]+")
_ASSET_CODE_RE = re.compile(r"[A-Z0-9]{2,12}")
_NONCE_EXPR_RE = re.compile(r"now(?:_(s|ms|us|ns))?(?:([+-])(\d+(?:\.\d+)?)s)?")


class ScenarioError(ValueError):
    """A scenario (file, built-in name or admin patch) is invalid. Never contains a secret.

    Not part of :mod:`broker.errors`: that tree describes what a Kraken client meets, and the
    simulator stands on Kraken's side of the wire (it depends on broker's signing only).
    """


@dataclass
class OtherWriter:
    """Another program on the same key: every ``interval_ms`` it gets a nonce accepted that is
    ``lead_ms`` ahead of the real clock (in the key's ``nonce_unit``)."""

    interval_ms: float = 100.0
    lead_ms: float = 2000.0

    def __post_init__(self) -> None:
        if self.interval_ms <= 0:
            raise ValueError("other_writer.interval_ms must be > 0")


@dataclass
class TradingSpec:
    """A key that trades by itself (the demo): about ``orders_per_minute`` limit orders of
    ``volume`` on ``pair`` (a pair name or altname the simulator prices), each filled or, for a
    ``cancel_ratio`` share of them, cancelled."""

    orders_per_minute: float = 4.0
    pair: str = "XBTUSD"
    volume: str = "0.001"
    cancel_ratio: float = 0.25

    def __post_init__(self) -> None:
        if not 0 < self.orders_per_minute <= 600:
            raise ValueError("trading.orders_per_minute must be in (0, 600]")
        if not 0 <= self.cancel_ratio <= 1:
            raise ValueError("trading.cancel_ratio must be within 0..1")
        try:
            ok = Decimal(self.volume) > 0
        except InvalidOperation:
            ok = False
        if not ok:
            raise ValueError("trading.volume must be a positive decimal string")


@dataclass
class KeySpec:
    """One API key as Kraken knows it."""

    key: str
    secret: str = field(repr=False)
    permissions: set[str] = field(default_factory=lambda: set(PERMISSIONS))
    balances: dict[str, str] = field(default_factory=dict)
    last_nonce: int | str = 0  # a str ("now_us+30s") is resolved to an int at construction
    nonce_window: int = 0
    name: str = ""
    account: str | None = None
    nonce_unit: str = "us"
    other_writer: OtherWriter | None = None
    trading: TradingSpec | None = None

    def __post_init__(self) -> None:
        if not self.key or not isinstance(self.key, str):
            raise ValueError("key must be a non-empty string")
        if not self.name:
            self.name = mask_key(self.key)
        self.permissions = set(self.permissions)
        unknown = self.permissions - PERMISSIONS
        if unknown:
            raise ValueError(f"unknown permission(s) {sorted(unknown)} for key {self.name}")
        if self.nonce_unit not in NONCE_UNITS:
            raise ValueError(f"nonce_unit must be one of {', '.join(NONCE_UNITS)}")
        try:
            self.last_nonce = resolve_nonce(self.last_nonce, self.nonce_unit)
        except ValueError as exc:
            raise ValueError(f"last_nonce of key {self.name}: {exc}") from None
        if self.nonce_window < 0:
            raise ValueError(f"nonce_window of key {self.name} must be >= 0")
        _check_secret(self.secret, f"secret of key {self.name}")


@dataclass
class Scenario:
    """Everything a :class:`~simulator.Simulator` starts from."""

    clock_offset_s: float = 0.0
    latency_ms: tuple[float, float] = (0.0, 0.0)
    tier: str = "starter"
    lockout_threshold: int = 20
    lockout_window_s: float = 60.0
    lockout_seconds: float = 900.0
    system_status: str = "online"
    keys: list[KeySpec] = field(default_factory=list)
    #: USD prices (asset -> decimal string) over the built-in ones, for TradeBalance and Ticker
    prices: dict[str, str] = field(default_factory=dict)
    #: a WebSocket token expires when unused (no subscription holds it) for this many seconds
    token_ttl_s: float = 900.0
    #: seconds between two ``{"channel": "heartbeat"}`` messages on every WebSocket connection
    ws_heartbeat_s: float = 1.0
    #: fees of a fill, in percent of its cost, in the quote currency: a limit order's fills pay
    #: the maker fee, a market order's the taker fee (Kraken's starter schedule by default)
    maker_fee_pct: str = "0.25"
    taker_fee_pct: str = "0.40"
    #: multiplies the decay of every tier's trading counter (:data:`TRADING_TIERS`): 20 lets a
    #: benchmark grind hundreds of orders in seconds instead of an hour; thresholds stay Kraken's
    trading_decay_scale: float = 1.0

    def __post_init__(self) -> None:
        self.prices = parse_prices(self.prices, "prices")
        self.trading_decay_scale = parse_decay_scale(
            self.trading_decay_scale, "field 'trading_decay_scale'"
        )
        if self.token_ttl_s <= 0 or self.ws_heartbeat_s <= 0:
            raise ValueError("token_ttl_s and ws_heartbeat_s must be > 0")
        for name in ("maker_fee_pct", "taker_fee_pct"):
            parse_fee(getattr(self, name), name)
        if self.tier not in TIERS:
            raise ValueError(f"tier must be one of {', '.join(TIERS)}")
        if self.system_status not in SYSTEM_STATUSES:
            raise ValueError(f"system_status must be one of {', '.join(SYSTEM_STATUSES)}")
        lo, hi = self.latency_ms
        if not 0 <= lo <= hi:
            raise ValueError("latency_ms must be [lo, hi] with 0 <= lo <= hi")
        self.latency_ms = (float(lo), float(hi))
        if self.lockout_threshold < 0 or self.lockout_seconds < 0 or self.lockout_window_s <= 0:
            raise ValueError("lockout settings must be >= 0 (lockout_window_s > 0)")
        seen_keys: set[str] = set()
        seen_names: set[str] = set()
        for spec in self.keys:
            if spec.key in seen_keys:
                raise ValueError(f"key {spec.name} appears twice")
            if spec.name in seen_names:
                raise ValueError(f"key name {spec.name!r} appears twice")
            seen_keys.add(spec.key)
            seen_names.add(spec.name)


def _check_secret(secret: object, where: str) -> None:
    if not isinstance(secret, str) or not secret.strip():
        raise ValueError(f"{where} must be a non-empty base64 string")
    try:
        base64.b64decode(secret.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{where} is not valid base64") from None


def resolve_nonce(value: int | str, default_unit: str = "us", now: float | None = None) -> int:
    """Resolve a ``last_nonce`` value: an int, a decimal string, or ``now[_unit][+|-Ns]``.

    ``"now_us+30s"`` is the current time in microseconds plus 30 seconds' worth of microseconds;
    plain ``"now"`` uses ``default_unit``.
    """
    if isinstance(value, bool):
        raise ValueError("must be an integer or a 'now_us+30s' style string, not a boolean")
    if isinstance(value, int):
        result = value
    elif isinstance(value, str):
        text = value.replace(" ", "")
        if re.fullmatch(r"[0-9]+", text):
            result = int(text)
        else:
            match = _NONCE_EXPR_RE.fullmatch(text)
            if match is None:
                raise ValueError(
                    f"{value!r} is neither an integer nor an expression like 'now_us', "
                    "'now_ms+30s' or 'now_ns-5s'"
                )
            unit, sign, seconds = match.groups()
            factor = NONCE_UNITS[unit or default_unit]
            current = time.time() if now is None else now
            delta = Decimal(seconds or "0") * factor
            result = int(Decimal(repr(current)) * factor) + int(delta if sign != "-" else -delta)
    else:
        raise ValueError("must be an integer or a 'now_us+30s' style string")
    if not 0 <= result <= MAX_NONCE:
        raise ValueError("must be within 0..2^64-1")
    return result


# --------------------------------------------------------------------------- field parsers
# Each takes the raw value and ``where`` ("file: field 'keys[0].balances'") for its messages.


def parse_permissions(value: object, where: str) -> set[str]:
    if not isinstance(value, list | tuple | set | frozenset) or not all(
        isinstance(p, str) for p in value
    ):
        raise ScenarioError(f"{where}: must be a list of strings (funds, orders, trade, websocket)")
    unknown = sorted(set(value) - PERMISSIONS)
    if unknown:
        raise ScenarioError(
            f"{where}: unknown permission {unknown[0]!r} (allowed: funds, orders, trade, websocket)"
        )
    return set(value)


def _item(where: str, name: str) -> str:
    """``where`` ("file: field 'prices'") narrowed to one entry ("file: field 'prices.XXBT'")."""
    return f"{where[:-1]}.{name}'" if where.endswith("'") else f"{where}.{name}"


def _asset_amounts(value: object, where: str, example: str) -> dict[str, str]:
    """A table of asset = "plain non-negative decimal string" (the exact digits are kept)."""
    if not isinstance(value, Mapping):
        raise ScenarioError(f'{where}: must be a table of asset = "decimal string"')
    out: dict[str, str] = {}
    for asset, amount in value.items():
        if not isinstance(asset, str) or not asset:
            raise ScenarioError(f"{where}: asset names must be non-empty strings")
        if not isinstance(amount, str):
            raise ScenarioError(
                f'{_item(where, asset)}: must be a decimal string like "{example}" '
                "(strings keep the exact digits)"
            )
        try:
            number = Decimal(amount)
        except InvalidOperation:
            raise ScenarioError(
                f"{_item(where, asset)}: {amount!r} is not a decimal number"
            ) from None
        if not number.is_finite() or number < 0 or not re.fullmatch(r"[0-9]+(\.[0-9]+)?", amount):
            raise ScenarioError(f"{_item(where, asset)}: must be a plain non-negative decimal")
        out[asset] = amount
    return out


def parse_balances(value: object, where: str) -> dict[str, str]:
    return _asset_amounts(value, where, "1234.5600")


def parse_prices(value: object, where: str) -> dict[str, str]:
    """USD prices by Kraken asset code (``XXBT``, ``USDT``): positive decimal strings, one per
    asset (``XBT`` next to the built-in ``XXBT`` would be the same pair twice)."""
    prices = _asset_amounts(value, where, "50000.0")
    owners = {altname_of(asset): asset for asset in DEFAULT_USD_PRICES}
    for asset, text in prices.items():
        price = Decimal(text)
        if not _ASSET_CODE_RE.fullmatch(asset):
            raise ScenarioError(
                f"{_item(where, asset)}: not an asset code (upper-case letters and digits, no staking "
                "suffix: price the base asset, e.g. XETH for ETH2.S)"
            )
        if asset == QUOTE and price != 1:
            raise ScenarioError(
                f"{_item(where, asset)}: {QUOTE} is the quote currency, its price is 1"
            )
        if price <= 0:
            raise ScenarioError(f"{_item(where, asset)}: must be a price above 0")
        owner = owners.setdefault(altname_of(asset), asset)
        if owner != asset:
            raise ScenarioError(
                f"{_item(where, asset)}: the same asset as {owner} (use Kraken's code {owner})"
            )
    return prices


def parse_other_writer(value: object, where: str) -> OtherWriter | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ScenarioError(f"{where}: must be a table with interval_ms and lead_ms")
    extra = set(value) - {"interval_ms", "lead_ms"}
    if extra:
        raise ScenarioError(f"{where}: unknown field {sorted(extra)[0]!r}")
    interval = _number(value.get("interval_ms", 100.0), _item(where, "interval_ms"))
    lead = _number(value.get("lead_ms", 2000.0), _item(where, "lead_ms"))
    if interval <= 0:
        raise ScenarioError(f"{_item(where, 'interval_ms')}: must be > 0")
    return OtherWriter(interval_ms=interval, lead_ms=lead)


def parse_fee(value: object, where: str) -> str:
    """A fee in percent: a decimal string within 0..100 ("0.25")."""
    try:
        fee = Decimal(value) if isinstance(value, str) else None
    except InvalidOperation:
        fee = None
    if fee is None or not fee.is_finite() or not 0 <= fee <= 100:
        raise ScenarioError(f'{where}: must be a percentage as a decimal string, e.g. "0.25"')
    return str(value)


def parse_trading(value: object, where: str) -> TradingSpec | None:
    """``trading = {orders_per_minute = 4, pair = "XBTUSD", volume = "0.001"}`` (or null)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ScenarioError(f"{where}: must be a table with orders_per_minute, pair and volume")
    known = {"orders_per_minute", "pair", "volume", "cancel_ratio"}
    extra = sorted(set(value) - known)
    if extra:
        raise ScenarioError(
            f"{_item(where, extra[0])}: unknown field (known: {', '.join(sorted(known))})"
        )
    rate = _number(value.get("orders_per_minute", 4.0), _item(where, "orders_per_minute"))
    if not 0 < rate <= 600:
        raise ScenarioError(f"{_item(where, 'orders_per_minute')}: must be > 0 and <= 600")
    pair = value.get("pair", "XBTUSD")
    if not isinstance(pair, str) or not pair:
        raise ScenarioError(f'{_item(where, "pair")}: must be a pair name such as "XBTUSD"')
    volume = value.get("volume", "0.001")
    try:
        positive = isinstance(volume, str) and Decimal(volume) > 0
    except InvalidOperation:
        positive = False
    if not positive:
        raise ScenarioError(
            f'{_item(where, "volume")}: must be a positive decimal string like "0.001"'
        )
    ratio = _number(value.get("cancel_ratio", 0.25), _item(where, "cancel_ratio"))
    if not 0 <= ratio <= 1:
        raise ScenarioError(f"{_item(where, 'cancel_ratio')}: must be within 0..1")
    return TradingSpec(orders_per_minute=rate, pair=pair, volume=str(volume), cancel_ratio=ratio)


def parse_decay_scale(value: object, where: str) -> float:
    """``trading_decay_scale``: a finite number above 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ScenarioError(f"{where}: must be a number > 0 (1.0 is Kraken's decay), got {value!r}")
    return float(value)


def parse_nonce_window(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ScenarioError(f"{where}: must be an integer >= 0 (in the nonce's own unit)")
    return value


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScenarioError(f"{where}: must be a number")
    return float(value)


def _int(value: object, where: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ScenarioError(f"{where}: must be an integer >= {minimum}")
    return value


def _choice(value: object, where: str, allowed: Iterable[str]) -> str:
    allowed = list(allowed)
    if value not in allowed:
        raise ScenarioError(f"{where}: must be one of {', '.join(allowed)} (got {value!r})")
    return str(value)
