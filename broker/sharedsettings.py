"""The settings every part shares, read in one place: the Kraken URL, the data directory (and
the nonce directory in it), the nonce store and its sync, the default tier, the request timeout.

``up``, ``check``, ``demo`` and the gateway read them with :func:`read_shared_settings`, from the
environment they were given (the process's over ``.env``), once, when they start:

* lenient (the dashboard): a bad value is a :class:`~broker.accounts.Problem` naming its
  variable, the default is used (or, for ``KRAKEN_API_URL``, nothing is sent), the rest runs;
* strict (the gateway, the bots' trading path): the first bad value raises
  :class:`~broker.errors.ConfigurationError` naming its variable.

A Python bot's :class:`~broker.KrakenClient` without explicit arguments reads the same
variables with the same rules (:mod:`broker.paths`, :mod:`broker.storespec`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from .accounts import Problem
from .errors import ConfigurationError
from .limits import DEFAULT_TIER, parse_tier
from .paths import (
    API_URL_VARIABLE,
    DATA_DIR_VARIABLE,
    NONCE_SYNC_VARIABLE,
    api_url_default,
    default_data_dir,
    nonce_store_dir,
    nonce_sync_default,
)
from .storespec import NONCE_STORE_VARIABLE, check_store_spec

__all__ = [
    "REQUEST_TIMEOUT_RANGE_S",
    "REQUEST_TIMEOUT_VARIABLE",
    "TIER_VARIABLE",
    "SharedSettings",
    "read_shared_settings",
]

TIER_VARIABLE = "KRAKENWATCH_TIER"
REQUEST_TIMEOUT_VARIABLE = "KRAKENWATCH_REQUEST_TIMEOUT"
#: the request timeout's accepted range, in seconds
REQUEST_TIMEOUT_RANGE_S = (0.1, 300.0)
DEFAULT_REQUEST_TIMEOUT_S = 10.0
#: where the data dir goes when it is not set and there is no home directory to default to
NO_HOME_DATA_DIR = Path(".krakenwatch")

T = TypeVar("T")


@dataclass(frozen=True)
class SharedSettings:
    #: the Kraken base URL; ``None`` when ``KRAKEN_API_URL`` is invalid (nothing may be sent)
    api_url: str | None
    data_dir: Path
    #: ``file`` or a Redis URL (``KRAKENWATCH_NONCE_STORE``), checked
    nonce_store: str = "file"
    #: sync each nonce record to disk before its request leaves (``KRAKENWATCH_NONCE_SYNC``)
    nonce_sync: bool = True
    #: the tier of accounts without ``KRAKEN_<ACCOUNT>_TIER``
    tier: str = DEFAULT_TIER
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
    #: what was wrong (lenient reading only; each named its variable and a default was used)
    problems: tuple[Problem, ...] = ()
    #: the file nonce store's directory, shared by every process of the host: ``<data dir>/nonces``
    nonce_dir: Path = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "nonce_dir", nonce_store_dir(self.data_dir))


def read_shared_settings(env: Mapping[str, str], *, strict: bool = False) -> SharedSettings:
    """The shared settings in ``env`` (see the module's docstring for ``strict``)."""
    problems: list[Problem] = []

    def read(variable: str, parse: Callable[[], T], default: T, shown: str = "") -> T:
        """``parse()``; in lenient reading, its error becomes a problem and ``default`` (said
        as ``shown``) is used."""
        try:
            return parse()
        except ConfigurationError as exc:
            if strict:
                raise
            said = exc.message.removeprefix(f"{variable}: ")
            problems.append(Problem(variable, f"{said}; using {shown}" if shown else said))
            return default

    api_url = read(API_URL_VARIABLE, lambda: api_url_default(env), None)
    data_dir = read(DATA_DIR_VARIABLE, lambda: _data_dir(env), NO_HOME_DATA_DIR)
    return SharedSettings(
        api_url=api_url,
        data_dir=data_dir,
        # a bad store spec is kept, not replaced: every account then fails closed on it with
        # the same named error, rather than silently coordinating nothing
        nonce_store=_nonce_store(env, read),
        nonce_sync=read(NONCE_SYNC_VARIABLE, lambda: nonce_sync_default(env), True, "1"),
        tier=read(TIER_VARIABLE, lambda: _tier(env), DEFAULT_TIER, DEFAULT_TIER),
        request_timeout_s=read(
            REQUEST_TIMEOUT_VARIABLE,
            lambda: _timeout(env),
            DEFAULT_REQUEST_TIMEOUT_S,
            f"{DEFAULT_REQUEST_TIMEOUT_S:g}",
        ),
        problems=tuple(problems),
    )


def _data_dir(env: Mapping[str, str]) -> Path:
    try:
        return default_data_dir(env)
    except RuntimeError:  # Path.home() without a home directory
        raise ConfigurationError(
            f"{DATA_DIR_VARIABLE}: not set and no home directory to default to",
            variable=DATA_DIR_VARIABLE,
        ) from None


def _nonce_store(env: Mapping[str, str], read: Callable[[str, Callable[[], str], str], str]) -> str:
    spec = env.get(NONCE_STORE_VARIABLE, "").strip() or "file"

    def checked() -> str:
        check_store_spec(spec)
        return spec

    return read(NONCE_STORE_VARIABLE, checked, spec)


def _tier(env: Mapping[str, str]) -> str:
    raw = env.get(TIER_VARIABLE, "").strip().lower() or DEFAULT_TIER
    try:
        return parse_tier(raw).name
    except ValueError as exc:
        raise ConfigurationError(f"{TIER_VARIABLE}: {exc}", variable=TIER_VARIABLE) from None


def _timeout(env: Mapping[str, str]) -> float:
    raw = env.get(REQUEST_TIMEOUT_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_REQUEST_TIMEOUT_S
    low, high = REQUEST_TIMEOUT_RANGE_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not low <= value <= high:
        raise ConfigurationError(
            f"{REQUEST_TIMEOUT_VARIABLE}: {raw!r} is not a number of seconds in [{low:g}, "
            f"{high:g}]",
            variable=REQUEST_TIMEOUT_VARIABLE,
        )
    return value
