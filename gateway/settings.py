"""The gateway's configuration: the accounts (same environment and ``.env`` as ``up``) and its
settings, built in one place and passed in.

Unlike ``up``, which shows a broken account on the dashboard and carries on, the gateway refuses
to start with any configuration error: it is the bots' trading path, and a bot whose account is
misconfigured would only see ``EAPI:Invalid key``. Errors raise :class:`broker.ConfigurationError`
naming the variable; warnings (a key under two labels) are returned for printing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from broker import (
    AccountConfig,
    ConfigurationError,
    Problem,
    discover_accounts,
    load_environment,
)
from broker.limits import DEFAULT_TIER, Tier, parse_tier
from broker.paths import API_URL_VARIABLE, DEFAULT_API_URL, default_data_dir, nonce_store_dir
from broker.sharedsettings import SharedSettings, read_shared_settings
from broker.variables import MIN_SECRET_CHARS, variable_problems

from .clientfile import default_config_path
from .replay import DEFAULT_WINDOW_S

__all__ = ["ADMIN_TOKEN_VARIABLE", "GatewayConfig", "GatewaySettings", "load_config"]

ADMIN_TOKEN_VARIABLE = "KRAKENWATCH_ADMIN_TOKEN"  # noqa: S105 (the variable's name)


@dataclass(frozen=True)
class GatewaySettings:
    api_url: str = DEFAULT_API_URL
    #: the nonce store shared with ``up``, ``check`` and Python bots on this host
    store_dir: Path = field(default_factory=lambda: nonce_store_dir(default_data_dir()))
    #: ``file`` or a Redis URL (``KRAKENWATCH_NONCE_STORE``); ``None``: the process environment's
    nonce_store: str | None = None
    #: sync each nonce record to disk before its request (``KRAKENWATCH_NONCE_SYNC``); ``None``:
    #: the process environment's
    durable: bool | None = None
    #: the tier of accounts without ``KRAKEN_<ACCOUNT>_TIER`` (``KRAKENWATCH_TIER``)
    default_tier: str = DEFAULT_TIER
    #: per request to Kraken (``KRAKENWATCH_REQUEST_TIMEOUT``)
    request_timeout_s: float = 10.0
    #: a call that would wait longer for its key is answered ``EAPI:Rate limit exceeded``
    max_queue_wait_s: float = 5.0
    #: calls that may wait per key
    max_queue: int = 64
    #: the largest private request body accepted
    max_body_bytes: int = 64 * 1024
    #: how long ``Assets``/``AssetPairs`` answers are reused (0: never)
    public_cache_s: float = 60.0
    #: ``False`` only against a simulator without rate limits (tests, benchmarks): calls are
    #: counted but never held
    rate_limited: bool = True
    #: a state-changing call whose nonce, read as a timestamp, is further from the gateway's
    #: clock is refused (``--replay-window``)
    replay_window_s: float = DEFAULT_WINDOW_S
    #: clients (credential names, or ``account-key``) whose nonces are counters, not timestamps
    #: (``--counter-nonces``): their state-changing calls must rise instead
    counter_clients: frozenset[str] = frozenset()
    #: a request's headers and body must arrive within this (``--read-timeout``)
    read_timeout_s: float = 10.0
    #: the client credentials file (``None``: only the accounts' own keys)
    config_path: Path | None = None
    #: how often the client file is checked for changes (besides SIGHUP)
    reload_interval_s: float = 1.0
    #: the bearer token of ``POST /admin/halt`` and ``/admin/resume``
    #: (``KRAKENWATCH_ADMIN_TOKEN``; ``None``: no admin routes)
    admin_token: str | None = field(default=None, repr=False)
    #: scales the decay of the per-pair trading counters (1.0: Kraken's; a simulator that runs
    #: its trading counters faster, for benchmarks, sets the same factor on both)
    trading_decay_scale: float = 1.0

    @classmethod
    def from_shared(cls, shared: SharedSettings, **overrides: Any) -> GatewaySettings:
        """The gateway's settings on the ones every part shares (the Kraken URL, the nonce
        directory, store and sync, the tier, the request timeout); ``overrides`` set the
        gateway's own (the command line's flags). The client file is ``config_path`` when given,
        else ``gateway.toml`` in the data dir."""
        if shared.api_url is None:
            raise ConfigurationError(
                f"{API_URL_VARIABLE}: invalid; nothing can be forwarded", variable=API_URL_VARIABLE
            )
        if overrides.get("config_path") is None:
            overrides["config_path"] = default_config_path(shared.data_dir)
        return cls(
            api_url=shared.api_url,
            store_dir=shared.nonce_dir,
            nonce_store=shared.nonce_store,
            durable=shared.nonce_sync,
            default_tier=shared.tier,
            request_timeout_s=shared.request_timeout_s,
            **overrides,
        )

    def tier_of(self, account: AccountConfig) -> Tier:
        return parse_tier(account.tier or self.default_tier)


@dataclass(frozen=True)
class GatewayConfig:
    accounts: list[AccountConfig]
    settings: GatewaySettings
    #: problems that do not stop the gateway (printed at start)
    warnings: list[Problem]


def _admin_token(env: Mapping[str, str]) -> str | None:
    token = env.get(ADMIN_TOKEN_VARIABLE, "").strip() or None
    if token is not None and len(token) < MIN_SECRET_CHARS:
        raise ConfigurationError(
            f"{ADMIN_TOKEN_VARIABLE}: shorter than {MIN_SECRET_CHARS} characters; use a long "
            "random token",
            variable=ADMIN_TOKEN_VARIABLE,
        )
    return token


def load_config(
    environ: Mapping[str, str] | None = None,
    env_file: str | Path | None = None,
    *,
    use_dotenv: bool = True,
    **overrides: object,
) -> GatewayConfig:
    """Accounts and settings from the environment over ``.env``; ``overrides`` set
    :class:`GatewaySettings` fields (the command line's flags). The client file is
    ``config_path`` when given, else ``gateway.toml`` in the data dir."""
    env = load_environment(environ, env_file, use_dotenv=use_dotenv)
    discovery = discover_accounts(env)
    found = [*variable_problems(env), *discovery.problems]
    errors = [p for p in found if p.severity == "error"]
    if errors:
        raise ConfigurationError("; ".join(str(p) for p in errors), variable=errors[0].variable)
    assert discovery.api_url is not None  # else an error above
    if not discovery.accounts:
        raise ConfigurationError(
            "no Kraken account configured: set KRAKEN_MASTER_API_KEY and KRAKEN_MASTER_API_SECRET "
            "(or KRAKEN_USER_<NAME>_API_KEY and _API_SECRET) in the environment or .env"
        )
    shared = read_shared_settings(env, strict=True)
    overrides.setdefault("admin_token", _admin_token(env))
    settings = GatewaySettings.from_shared(shared, **overrides)
    return GatewayConfig(list(discovery.accounts), settings, found)
