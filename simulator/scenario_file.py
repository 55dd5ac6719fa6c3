"""Scenario files: TOML or JSON (same fields, chosen by the extension) turned into a
:class:`~simulator.scenario.Scenario`. Every user mistake raises
:class:`~simulator.scenario.ScenarioError` naming the file and the field; secrets never appear
in a message."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .market import Market
from .scenario import (
    _ACCOUNT_RE,
    NONCE_UNITS,
    PERMISSIONS,
    SYSTEM_STATUSES,
    TIERS,
    KeySpec,
    Scenario,
    ScenarioError,
    TradingSpec,
    _check_secret,
    _choice,
    _int,
    _number,
    parse_balances,
    parse_decay_scale,
    parse_fee,
    parse_nonce_window,
    parse_other_writer,
    parse_permissions,
    parse_prices,
    parse_trading,
    resolve_nonce,
)

__all__ = ["load_scenario", "scenario_from_mapping"]


_TOP_FIELDS = {
    "clock_offset_s",
    "latency_ms",
    "tier",
    "lockout_threshold",
    "lockout_window_s",
    "lockout_seconds",
    "system_status",
    "keys",
    "prices",
    "token_ttl_s",
    "ws_heartbeat_s",
    "maker_fee_pct",
    "taker_fee_pct",
    "trading_decay_scale",
}
_KEY_FIELDS = {
    "key",
    "secret",
    "permissions",
    "balances",
    "last_nonce",
    "nonce_window",
    "name",
    "account",
    "nonce_unit",
    "other_writer",
    "trading",
}


def _parse_key(raw: object, source: str, index: int, market: Market) -> KeySpec:
    base = f"keys[{index}]"

    def at(name: str) -> str:
        return f"{source}: field '{base}.{name}'"

    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{source}: field '{base}': must be a table ([[keys]])")
    extra = sorted(set(raw) - _KEY_FIELDS)
    if extra:
        raise ScenarioError(f"{at(extra[0])}: unknown field")
    key = raw.get("key")
    if not isinstance(key, str) or not key.strip() or key != key.strip():
        raise ScenarioError(f"{at('key')}: required, a non-empty string without spaces")
    try:
        _check_secret(raw.get("secret"), "the secret")
    except ValueError as exc:
        raise ScenarioError(f"{at('secret')}: {exc} (required)") from None
    unit = _choice(raw.get("nonce_unit", "us"), at("nonce_unit"), NONCE_UNITS)
    try:
        last_nonce = resolve_nonce(raw.get("last_nonce", 0), unit)
    except ValueError as exc:
        raise ScenarioError(f"{at('last_nonce')}: {exc}") from None
    name = raw.get("name", "")
    if not isinstance(name, str):
        raise ScenarioError(f"{at('name')}: must be a string")
    account = raw.get("account")
    if account is not None and (not isinstance(account, str) or not _ACCOUNT_RE.fullmatch(account)):
        raise ScenarioError(f"{at('account')}: must be 'MASTER' or 'USER:<name>' (lower case)")
    return KeySpec(
        key=key,
        secret=str(raw["secret"]).strip(),
        permissions=parse_permissions(
            raw.get("permissions", sorted(PERMISSIONS)), at("permissions")
        ),
        balances=parse_balances(raw.get("balances", {}), at("balances")),
        last_nonce=last_nonce,
        nonce_window=parse_nonce_window(raw.get("nonce_window", 0), at("nonce_window")),
        name=name or (account or ""),
        account=account,
        nonce_unit=unit,
        other_writer=parse_other_writer(raw.get("other_writer"), at("other_writer")),
        trading=_trading(raw.get("trading"), at("trading"), market),
    )


def _trading(raw: object, where: str, market: Market) -> TradingSpec | None:
    spec = parse_trading(raw, where)
    if spec is not None and market.pair(spec.pair) is None:
        raise ScenarioError(
            f"{where[:-1]}.pair': {spec.pair!r} is not a pair of the simulator's prices "
            f"(known: {', '.join(sorted(p.altname for p in market.pairs.values()))})"
        )
    return spec


def _positive(data: Mapping[str, Any], name: str, default: float, where: str) -> float:
    value = _number(data.get(name, default), where)
    if value <= 0:
        raise ScenarioError(f"{where}: must be > 0")
    return value


def scenario_from_mapping(data: object, source: str = "scenario") -> Scenario:
    """Build a :class:`Scenario` from parsed TOML/JSON, validating every field."""
    if not isinstance(data, Mapping):
        raise ScenarioError(f"{source}: the top level must be a table/object")
    extra = sorted(set(data) - _TOP_FIELDS)
    if extra:
        raise ScenarioError(f"{source}: field '{extra[0]}': unknown field")

    def at(name: str) -> str:
        return f"{source}: field '{name}'"

    latency = data.get("latency_ms", [0, 0])
    if (
        not isinstance(latency, list | tuple)
        or len(latency) != 2
        or not 0 <= _number(latency[0], at("latency_ms")) <= _number(latency[1], at("latency_ms"))
    ):
        raise ScenarioError(f"{at('latency_ms')}: must be [lo, hi] with 0 <= lo <= hi")
    raw_keys = data.get("keys", [])
    if not isinstance(raw_keys, list):
        raise ScenarioError(f"{at('keys')}: must be a list of tables ([[keys]])")
    prices = parse_prices(data.get("prices", {}), at("prices"))
    market = Market(prices)
    keys = [_parse_key(raw, source, i, market) for i, raw in enumerate(raw_keys)]
    for i, spec in enumerate(keys):
        for j in range(i):
            if keys[j].key == spec.key:
                raise ScenarioError(f"{at(f'keys[{i}].key')}: the same key as keys[{j}]")
            if keys[j].name == spec.name:
                raise ScenarioError(f"{at(f'keys[{i}].name')}: the same name as keys[{j}]")
    window = _number(data.get("lockout_window_s", 60.0), at("lockout_window_s"))
    if window <= 0:
        raise ScenarioError(f"{at('lockout_window_s')}: must be > 0")
    seconds = _number(data.get("lockout_seconds", 900.0), at("lockout_seconds"))
    if seconds < 0:
        raise ScenarioError(f"{at('lockout_seconds')}: must be >= 0")
    return Scenario(
        clock_offset_s=_number(data.get("clock_offset_s", 0.0), at("clock_offset_s")),
        latency_ms=(float(latency[0]), float(latency[1])),
        tier=_choice(data.get("tier", "starter"), at("tier"), TIERS),
        lockout_threshold=_int(data.get("lockout_threshold", 20), at("lockout_threshold")),
        lockout_window_s=window,
        lockout_seconds=seconds,
        system_status=_choice(
            data.get("system_status", "online"), at("system_status"), SYSTEM_STATUSES
        ),
        keys=keys,
        prices=prices,
        token_ttl_s=_positive(data, "token_ttl_s", 900.0, at("token_ttl_s")),
        ws_heartbeat_s=_positive(data, "ws_heartbeat_s", 1.0, at("ws_heartbeat_s")),
        maker_fee_pct=parse_fee(data.get("maker_fee_pct", "0.25"), at("maker_fee_pct")),
        taker_fee_pct=parse_fee(data.get("taker_fee_pct", "0.40"), at("taker_fee_pct")),
        trading_decay_scale=parse_decay_scale(
            data.get("trading_decay_scale", 1.0), at("trading_decay_scale")
        ),
    )


def load_scenario(path: str | Path) -> Scenario:
    """Load a ``.toml`` or ``.json`` scenario file. Raises :class:`ScenarioError`."""
    source = str(path)
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise ScenarioError(f"{source}: unsupported extension (use .toml or .json)")
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"{source}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{source}: cannot read ({type(exc).__name__})") from None
    data: Any
    try:
        data = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: not valid TOML: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"{source}: not valid JSON: {exc.msg} (line {exc.lineno})") from None
    return scenario_from_mapping(data, source)
