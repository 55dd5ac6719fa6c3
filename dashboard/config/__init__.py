"""krakenwatch settings: built once, from the environment (and an env file), then passed in.

:func:`load_settings` is the one place the app reads its environment, and it runs only when a
command or the server starts, never at import time. Each setting's variable is declared once, on
its :class:`Settings` field; the loader reads it from there and :meth:`Settings.variables` lists
it for the Settings page. Every problem names its variable; account problems never stop the other
accounts.

The env file is ``--env-file``, else ``$KRAKENWATCH_ENV_FILE``, else ``./.env``; the process
environment wins over it.

============  ======================================================================
module        concern
============  ======================================================================
``config``    :class:`Settings` and :func:`load_settings` (this package)
``reader``    one environment read: ranges, flags, paths, the streams' URL, labels
``variable``  the variable a setting is read from, and how the Settings page shows it
============  ======================================================================
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any

from broker import (
    AccountConfig,
    Discovery,
    Problem,
    discover_accounts,
    load_environment,
)
from broker.paths import API_URL_VARIABLE, DATA_DIR_VARIABLE, WS_URL_VARIABLE
from broker.sharedsettings import SharedSettings, read_shared_settings
from broker.variables import variable_problems
from dashboard.config.reader import Reader, min_poll_interval
from dashboard.config.variable import HIDDEN, SHARED_VARIABLES, VARIABLE, Variable, declared
from dashboard.logpatterns import DEFAULT_PATTERNS, LogPattern

__all__ = [
    "ENV_FILE_VARIABLE",
    "HIDDEN",
    "NO_ACCOUNT",
    "NO_ACCOUNT_HELP",
    "SHARED_VARIABLES",
    "Settings",
    "Variable",
    "add_env_file_argument",
    "load_settings",
    "min_poll_interval",
]

ENV_FILE_VARIABLE = "KRAKENWATCH_ENV_FILE"
#: what ``check``, the checklist and the pages say when no account is configured
NO_ACCOUNT = "no Kraken account is configured"
NO_ACCOUNT_HELP = (
    "Set KRAKEN_MASTER_API_KEY and KRAKEN_MASTER_API_SECRET for the MASTER account, and "
    "KRAKEN_USER_<NAME>_API_KEY and KRAKEN_USER_<NAME>_API_SECRET for each user (label "
    "USER:<name>), in the environment or in ./.env (or the file given by --env-file). Use a "
    "dedicated read-only key per account (Query Funds, Query Open Orders & Trades): a second "
    "program signing with the bot's own key is the classic cause of EAPI:Invalid nonce."
)


@dataclass(frozen=True)
class Settings:
    discovery: Discovery
    #: the settings the gateway and the bots share (read by :func:`broker.read_shared_settings`)
    shared: SharedSettings
    poll_interval_s: float = field(
        default=30.0,
        metadata=declared("KRAKENWATCH_POLL_INTERVAL", unit="s", minimum=1, maximum=86400),
    )
    freshness_s: float = field(
        default=120.0,
        metadata=declared("KRAKENWATCH_FRESHNESS", unit="s", minimum=1, maximum=86400 * 7),
    )
    skew_interval_s: float = field(
        default=300.0,
        metadata=declared("KRAKENWATCH_SKEW_INTERVAL", unit="s", minimum=10, maximum=86400),
    )
    max_skew_s: float = field(
        default=1.0,
        metadata=declared("KRAKENWATCH_MAX_SKEW", unit="s", minimum=0.001, maximum=3600),
    )
    lockout_wait_s: float = field(
        default=900.0,
        metadata=declared("KRAKENWATCH_LOCKOUT_WAIT", unit="s", minimum=1, maximum=86400),
    )
    probe_trade: bool = field(default=False, metadata=declared("KRAKENWATCH_PROBE_TRADE"))
    balance_metrics: bool = field(default=True, metadata=declared("KRAKENWATCH_BALANCE_METRICS"))
    #: the latency histogram per account and method (else per method only)
    metrics_per_account_latency: bool = field(
        default=False, metadata=declared("KRAKENWATCH_METRICS_PER_ACCOUNT_LATENCY")
    )
    retention_days: float = field(
        default=30.0,
        metadata=declared("KRAKENWATCH_RETENTION_DAYS", unit="days", minimum=0.01, maximum=3650),
    )
    bot_log: Path | None = field(default=None, metadata=declared("KRAKENWATCH_BOT_LOG"))
    bot_log_patterns: Path | None = field(
        default=None, metadata=declared("KRAKENWATCH_BOT_LOG_PATTERNS")
    )
    #: the patterns the bot-log watcher looks for (from ``bot_log_patterns``, or the defaults)
    log_patterns: tuple[LogPattern, ...] = DEFAULT_PATTERNS
    #: protects the pages and the HTTP routes when set; never shown
    password: str | None = field(
        default=None, repr=False, metadata=declared("KRAKENWATCH_PASSWORD", secret=True)
    )
    #: a deploy whose required checks fail this long after its marker has failed
    deploy_grace_s: float = field(
        default=120.0,
        metadata=declared("KRAKENWATCH_DEPLOY_GRACE", unit="s", minimum=0, maximum=86400),
    )
    #: a deploy not verified this long after its marker has failed
    deploy_timeout_s: float = field(
        default=600.0,
        metadata=declared("KRAKENWATCH_DEPLOY_TIMEOUT", unit="s", minimum=1, maximum=86400 * 7),
    )
    #: the bearer token that may mark deploys (``POST /api/deploys``); never shown
    admin_token: str | None = field(
        default=None, repr=False, metadata=declared("KRAKENWATCH_ADMIN_TOKEN", secret=True)
    )
    #: one private WebSocket v2 stream per account whose key may use it (else polling only)
    streams: bool = field(default=True, metadata=declared("KRAKENWATCH_STREAMS"))
    #: where the streams connect; ``None``: no stream (see ``streams_off``)
    ws_url: str | None = field(default=None, metadata=declared(WS_URL_VARIABLE, url=True))
    #: why no account has a stream (switched off, or no safe URL), else ``None``
    streams_off: str | None = None
    #: while an account's stream is up, REST Balance runs only this often (a reconciliation)
    reconcile_interval_s: float = field(
        default=300.0,
        metadata=declared("KRAKENWATCH_RECONCILE_INTERVAL", unit="s", minimum=1, maximum=86400),
    )
    #: the accounts whose ``trading_active`` item is required
    expect_trading: tuple[str, ...] = field(
        default=(), metadata=declared("KRAKENWATCH_EXPECT_TRADING")
    )
    #: the env file the variables were read from, if any
    env_file: Path | None = field(default=None, metadata=declared(ENV_FILE_VARIABLE))
    problems: list[Problem] = field(default_factory=list)

    @property
    def accounts(self) -> list[AccountConfig]:
        return self.discovery.accounts

    @property
    def api_url(self) -> str | None:
        """The Kraken base URL; ``None`` when ``KRAKEN_API_URL`` is invalid (nothing is sent)."""
        return self.shared.api_url

    @property
    def data_dir(self) -> Path:
        return self.shared.data_dir

    @property
    def nonce_dir(self) -> Path:
        """The file nonce store's directory in the data dir, shared by every process of the host."""
        return self.shared.nonce_dir

    @property
    def tier(self) -> str:
        """The tier of accounts without ``KRAKEN_<ACCOUNT>_TIER``."""
        return self.shared.tier

    @property
    def request_timeout_s(self) -> float:
        return self.shared.request_timeout_s

    @property
    def nonce_store(self) -> str:
        """``file`` or a Redis URL: where the nonces of every account are coordinated."""
        return self.shared.nonce_store

    @property
    def nonce_sync(self) -> bool:
        """Sync each nonce record to disk before its request leaves."""
        return self.shared.nonce_sync

    @property
    def all_problems(self) -> list[Problem]:
        """Every problem once (a bad ``KRAKEN_API_URL`` is also each account's, said once)."""
        once: dict[tuple[str, str], Problem] = {}
        for problem in [*self.discovery.problems, *self.shared.problems, *self.problems]:
            once.setdefault((problem.severity, str(problem)), problem)
        return list(once.values())

    @property
    def config_errors(self) -> list[Problem]:
        return [p for p in self.all_problems if p.severity == "error"]

    def secrets(self) -> list[str]:
        """Every key, secret and password in use, for redaction (never to be shown)."""
        found = [s for a in self.accounts for s in (a.key, a.secret)]
        return [*found, *(s for s in (self.password, self.admin_token) if s)]

    def variables(self) -> list[tuple[str, str]]:
        """``(variable, value)`` for every setting these settings were built from: keys masked,
        secrets and the password never shown (only that they are set)."""
        rows: list[tuple[str, str]] = []
        for a in self.accounts:
            rows += [
                (f"KRAKEN_{a.prefix}_API_KEY", a.masked_key),
                (f"KRAKEN_{a.prefix}_API_SECRET", HIDDEN),
                (f"KRAKEN_{a.prefix}_NONCE_UNIT", a.nonce_unit),
                (f"KRAKEN_{a.prefix}_TIER", a.tier or f"{self.tier} (KRAKENWATCH_TIER)"),
                (f"KRAKEN_{a.prefix}_CANCEL_AFTER", _cancel_after(a.cancel_after_s)),
            ]
        rows += [
            (API_URL_VARIABLE, self.api_url or "invalid (nothing is sent)"),
            (DATA_DIR_VARIABLE, str(self.data_dir)),
        ]
        for setting, shared in SHARED_VARIABLES.items():
            rows.append((shared.name, shared.show(getattr(self.shared, setting))))
        for f in fields(self):
            if (variable := f.metadata.get(VARIABLE)) is not None:
                rows.append((variable.name, variable.show(getattr(self, f.name))))
        return rows


_FIELDS: dict[str, Field[Any]] = {f.name: f for f in fields(Settings)}


def load_settings(
    environ: Mapping[str, str] | None = None,
    env_file: str | Path | None = None,
    *,
    use_dotenv: bool = True,
) -> Settings:
    """Build the settings from ``environ`` (default: the process environment) over the env file:
    ``env_file`` when given, else ``$KRAKENWATCH_ENV_FILE``, else ``./.env`` (neither of these
    two when ``use_dotenv`` is false).

    Raises :class:`broker.ConfigurationError` only for an explicit env file that cannot be read.
    """
    base = dict(os.environ if environ is None else environ)
    if env_file is None and use_dotenv:
        env_file = base.get(ENV_FILE_VARIABLE, "").strip() or None
    if env_file is None and use_dotenv and Path(".env").is_file():
        env_file = ".env"
    source = Path(env_file).expanduser().absolute() if env_file is not None else None
    env = load_environment(base, source, use_dotenv=False)
    shared = read_shared_settings(env)
    read = Reader(env, _FIELDS)
    poll = read.poll_interval(shared.tier)
    patterns_file, patterns = read.patterns()
    discovery = discover_accounts(env)
    streams, ws_url, streams_off = read.streams(shared.api_url)
    return Settings(
        discovery=discovery,
        shared=shared,
        poll_interval_s=poll,
        freshness_s=read.number("freshness_s", 4 * poll),
        skew_interval_s=read.number("skew_interval_s"),
        max_skew_s=read.number("max_skew_s"),
        lockout_wait_s=read.number("lockout_wait_s"),
        probe_trade=read.flag("probe_trade"),
        balance_metrics=read.flag("balance_metrics"),
        metrics_per_account_latency=read.flag("metrics_per_account_latency"),
        retention_days=read.number("retention_days"),
        bot_log=read.path("bot_log"),
        bot_log_patterns=patterns_file,
        log_patterns=patterns,
        deploy_grace_s=read.number("deploy_grace_s"),
        deploy_timeout_s=read.number("deploy_timeout_s"),
        password=read.secret("password", "password"),
        admin_token=read.secret("admin_token", "token"),
        streams=streams,
        ws_url=ws_url,
        streams_off=streams_off,
        reconcile_interval_s=read.number("reconcile_interval_s"),
        expect_trading=read.labels("expect_trading", [a.label for a in discovery.accounts]),
        env_file=source,
        problems=[*variable_problems(env), *read.problems],
    )


def _cancel_after(seconds: int | None) -> str:
    """An account's dead man's switch as the Settings page shows it."""
    return f"{seconds} s (the gateway's dead man's switch)" if seconds else "off"


def add_env_file_argument(parser: argparse.ArgumentParser) -> None:
    """``--env-file F``: the commands' way to say which env file :func:`load_settings` reads."""
    parser.add_argument(
        "--env-file",
        type=Path,
        default=None,
        metavar="F",
        help=f"read variables from F instead of ${ENV_FILE_VARIABLE} or ./.env",
    )
