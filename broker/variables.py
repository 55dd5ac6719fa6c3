"""Every environment variable krakenwatch reads, in one table, and the problems of an environment
against it: a ``KRAKEN_*`` or ``KRAKENWATCH_*`` name nobody reads (a typo: named, with the nearest
known name), and a setting given an empty value.

The account variables (``KRAKEN_MASTER_*``, ``KRAKEN_USER_<NAME>_*``) are judged by
:mod:`broker.accounts`; the settings by whoever reads them (the dashboard, the gateway, the
client). This table is what every part agrees on; the README's configuration table is kept equal
to it by a test.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping

from .accounts import ACCOUNT_SUFFIXES, Problem, account_variable
from .paths import API_URL_VARIABLE

__all__ = ["MIN_SECRET_CHARS", "SETTINGS", "variable_problems"]

#: the fewest characters a password or a bearer token may have
MIN_SECRET_CHARS = 12
#: every setting's variable -> what it means (accounts aside)
SETTINGS: dict[str, str] = {
    "KRAKEN_API_URL": "Kraken's base URL (the simulator in tests and the demo)",
    "KRAKENWATCH_DATA_DIR": "the nonce store (nonces/) and the event database",
    "KRAKENWATCH_ENV_FILE": "the env file to read (what --env-file sets)",
    "KRAKENWATCH_NONCE_STORE": "file, or a redis:// URL shared by every host",
    "KRAKENWATCH_NONCE_SYNC": "0: do not sync each nonce record to disk before its request",
    "KRAKENWATCH_TIER": "the Kraken tier of accounts without their own",
    "KRAKENWATCH_REQUEST_TIMEOUT": "seconds per Kraken request",
    "KRAKENWATCH_POLL_INTERVAL": "seconds between Balance polls per account",
    "KRAKENWATCH_FRESHNESS": "how recent the last good call must be for account_up",
    "KRAKENWATCH_SKEW_INTERVAL": "seconds between clock-skew samples",
    "KRAKENWATCH_MAX_SKEW": "bound of the clock_skew check, seconds",
    "KRAKENWATCH_LOCKOUT_WAIT": "seconds without private calls after a lockout",
    "KRAKENWATCH_PROBE_TRADE": "1: probe Create & Modify Orders (validate only)",
    "KRAKENWATCH_BALANCE_METRICS": "0: no balance metrics",
    "KRAKENWATCH_METRICS_PER_ACCOUNT_LATENCY": "1: latency histogram per account",
    "KRAKENWATCH_RETENTION_DAYS": "days of events kept",
    "KRAKENWATCH_BOT_LOG": "the bot's log file to follow",
    "KRAKENWATCH_BOT_LOG_PATTERNS": "a TOML/JSON file of bot-log patterns",
    "KRAKENWATCH_PASSWORD": "protects the pages and the HTTP routes",
    "KRAKENWATCH_ADMIN_TOKEN": "bearer token for marking deploys and the gateway's /admin routes",
    "KRAKENWATCH_DEPLOY_GRACE": "seconds a new deploy may fail checks before it is failed",
    "KRAKENWATCH_DEPLOY_TIMEOUT": "seconds a deploy has to be verified",
    "KRAKENWATCH_URL": "the dashboard `krakenwatch deploy mark` / `wait` talk to",
    "KRAKEN_WS_AUTH_URL": "Kraken's private WebSocket v2 URL (required when KRAKEN_API_URL is not Kraken's)",
    "KRAKENWATCH_STREAMS": "0: no WebSocket streams; poll Balance as before",
    "KRAKENWATCH_RECONCILE_INTERVAL": "seconds between REST Balance reconciliations while a stream is up",
    "KRAKENWATCH_EXPECT_TRADING": "account labels whose trading_active item is required (comma-separated)",
}
_OURS = re.compile(r"^KRAKEN(WATCH)?_")
_ROLES = ("MASTER", "USER")


def variable_problems(env: Mapping[str, str]) -> list[Problem]:
    """An error for each setting set to an empty value; a warning naming the nearest known name
    for each ``KRAKEN_*`` / ``KRAKENWATCH_*`` variable nobody reads."""
    problems: list[Problem] = []
    accounts = {f"KRAKEN_{prefix}" for name in env if (prefix := account_variable(name))}
    for name in sorted(env):
        if name in SETTINGS:
            # an empty KRAKEN_API_URL is judged with its accounts (nothing is sent then)
            if not env[name].strip() and name != API_URL_VARIABLE:
                problems.append(
                    Problem(name, "is empty: give it a value, or remove it for the default")
                )
        elif _OURS.match(name) and not account_variable(name):
            nearest = _nearest(name, accounts)
            hint = f"; did you mean {nearest}?" if nearest else ""
            problems.append(
                Problem(
                    name, f"is not a krakenwatch variable, and is ignored{hint}", severity="warning"
                )
            )
    return problems


def _nearest(name: str, account_prefixes: set[str]) -> str | None:
    """The known name ``name`` most likely misspells: a setting, or an account variable (the
    configured accounts' own, MASTER's, or ``name`` read as a user account's)."""
    candidates = set(SETTINGS)
    suffix = _suffix_of(name)
    body = name.removeprefix("KRAKEN_")
    for prefix in {*account_prefixes, "KRAKEN_MASTER"}:
        candidates.update(f"{prefix}_{s}" for s in ACCOUNT_SUFFIXES)
    if suffix is not None:
        middle = body[: -len(suffix)].strip("_")
        words = middle.split("_")
        if words and words[0] not in _ROLES and len(words) > 1:
            candidates.add(f"KRAKEN_USER_{'_'.join(words[1:])}_{_fixed(suffix)}")  # USR_BOB
        if words and words[0] and words[0] != "USER":
            candidates.add(f"KRAKEN_USER_{middle}_{_fixed(suffix)}")  # KRAKEN_BOB_API_KEY
    found = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.6)
    return found[0] if found else None


def _suffix_of(name: str) -> str | None:
    """The account suffix ``name`` ends with, or nearly does (``NONCE_UINT``)."""
    for size in (2, 1):
        tail = "_".join(name.split("_")[-size:])
        close = difflib.get_close_matches(tail, ACCOUNT_SUFFIXES, n=1, cutoff=0.7)
        if close and len(tail.split("_")) == len(close[0].split("_")):
            return tail
    return None


def _fixed(suffix: str) -> str:
    close = difflib.get_close_matches(suffix, ACCOUNT_SUFFIXES, n=1, cutoff=0.7)
    return close[0] if close else suffix
