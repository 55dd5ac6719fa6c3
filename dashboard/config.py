"""krakenwatch settings: built once, from the environment (and ``.env``), then passed in.

Nothing reads the environment at import time; :func:`load_settings` is the one place it happens.
Every problem names its variable; account problems never stop the other accounts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from broker import AccountConfig, Discovery, Problem, discover_accounts, load_environment
from broker.limits import TIERS

__all__ = ["Settings", "load_settings"]

#: share of a tier's decay rate the monitor allows itself (the bot needs the rest)
BUDGET_SHARE = 0.25
#: private calls per poll cycle on average (Balance every cycle, permission probes now and then)
CALLS_PER_CYCLE = 1.2


@dataclass(frozen=True)
class Settings:
    discovery: Discovery
    tier: str = "starter"
    poll_interval_s: float = 30.0
    skew_interval_s: float = 300.0
    max_skew_s: float = 1.0
    freshness_s: float = 120.0
    request_timeout_s: float = 10.0
    lockout_wait_s: float = 900.0
    probe_trade: bool = False
    balance_metrics: bool = True
    retention_days: float = 30.0
    bot_log: Path | None = None
    bot_log_patterns: Path | None = None
    #: protects the pages and the HTTP routes when set (KRAKENWATCH_PASSWORD); never shown
    password: str | None = field(default=None, repr=False)
    problems: list[Problem] = field(default_factory=list)

    @property
    def accounts(self) -> list[AccountConfig]:
        return self.discovery.accounts

    @property
    def api_url(self) -> str:
        return self.discovery.api_url

    @property
    def data_dir(self) -> Path:
        return self.discovery.data_dir

    @property
    def all_problems(self) -> list[Problem]:
        return [*self.discovery.problems, *self.problems]

    @property
    def config_errors(self) -> list[Problem]:
        return [p for p in self.all_problems if p.severity == "error"]

    def secrets(self) -> list[str]:
        """Every key, secret and password in use, for redaction (never to be shown)."""
        found = [s for a in self.accounts for s in (a.key, a.secret)]
        return [*found, self.password] if self.password else found


def min_poll_interval(tier: str) -> float:
    """The shortest poll interval that keeps the monitor within its share of the tier's budget."""
    return math.ceil(CALLS_PER_CYCLE / (TIERS[tier].decay_per_s * BUDGET_SHARE))


def _number(
    env: Mapping[str, str],
    name: str,
    default: float,
    problems: list[Problem],
    *,
    minimum: float,
    maximum: float,
) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        problems.append(Problem(name, f"{raw!r} is not a number; using {default:g}"))
        return default
    if not math.isfinite(value) or not minimum <= value <= maximum:
        problems.append(
            Problem(name, f"{raw} is out of range [{minimum:g}, {maximum:g}]; using {default:g}")
        )
        return default
    return value


def _flag(env: Mapping[str, str], name: str, default: bool, problems: list[Problem]) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    problems.append(
        Problem(name, f"{raw!r} is not a boolean (use 1/0, true/false); using {default}")
    )
    return default


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name, "").strip()
    return Path(raw).expanduser() if raw else None


def _password(env: Mapping[str, str], problems: list[Problem]) -> str | None:
    raw = env.get("KRAKENWATCH_PASSWORD")
    if raw is None or raw == "":
        return None
    if len(raw) < 12:
        problems.append(
            Problem(
                "KRAKENWATCH_PASSWORD", "is shorter than 12 characters; use a long random password"
            )
        )
    return raw


def load_settings(
    environ: Mapping[str, str] | None = None,
    env_file: str | Path | None = None,
    *,
    use_dotenv: bool = True,
) -> Settings:
    """Build the settings from the environment over ``.env`` (``env_file`` when given).

    Raises :class:`broker.ConfigurationError` only for an explicit env file that cannot be read.
    """
    env = load_environment(environ, env_file, use_dotenv=use_dotenv)
    problems: list[Problem] = []
    tier = env.get("KRAKENWATCH_TIER", "starter").strip().lower() or "starter"
    if tier not in TIERS:
        problems.append(
            Problem("KRAKENWATCH_TIER", f"unknown tier {tier!r}; use starter, intermediate or pro")
        )
        tier = "starter"
    floor = min_poll_interval(tier)
    poll = _number(
        env, "KRAKENWATCH_POLL_INTERVAL", max(30.0, floor), problems, minimum=1, maximum=86400
    )
    if poll < floor:
        problems.append(
            Problem(
                "KRAKENWATCH_POLL_INTERVAL",
                f"{poll:g} s uses more than {BUDGET_SHARE:.0%} of the {tier} tier's call budget per "
                f"key (at least {floor:g} s is safe); the bot may hit EAPI:Rate limit exceeded",
                severity="warning",
            )
        )
    bot_log = _path(env, "KRAKENWATCH_BOT_LOG")
    patterns = _path(env, "KRAKENWATCH_BOT_LOG_PATTERNS")
    if patterns is not None and not patterns.is_file():
        problems.append(
            Problem(
                "KRAKENWATCH_BOT_LOG_PATTERNS",
                f"{patterns} does not exist; using the default patterns",
            )
        )
        patterns = None
    return Settings(
        discovery=discover_accounts(env),
        tier=tier,
        poll_interval_s=poll,
        skew_interval_s=_number(
            env, "KRAKENWATCH_SKEW_INTERVAL", 300.0, problems, minimum=10, maximum=86400
        ),
        max_skew_s=_number(env, "KRAKENWATCH_MAX_SKEW", 1.0, problems, minimum=0.001, maximum=3600),
        freshness_s=_number(
            env, "KRAKENWATCH_FRESHNESS", 4 * poll, problems, minimum=1, maximum=86400 * 7
        ),
        request_timeout_s=_number(
            env, "KRAKENWATCH_REQUEST_TIMEOUT", 10.0, problems, minimum=0.1, maximum=300
        ),
        lockout_wait_s=_number(
            env, "KRAKENWATCH_LOCKOUT_WAIT", 900.0, problems, minimum=1, maximum=86400
        ),
        probe_trade=_flag(env, "KRAKENWATCH_PROBE_TRADE", False, problems),
        balance_metrics=_flag(env, "KRAKENWATCH_BALANCE_METRICS", True, problems),
        retention_days=_number(
            env, "KRAKENWATCH_RETENTION_DAYS", 30.0, problems, minimum=0.01, maximum=3650
        ),
        bot_log=bot_log,
        bot_log_patterns=patterns,
        password=_password(env, problems),
        problems=problems,
    )
