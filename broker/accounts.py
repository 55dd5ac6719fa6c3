"""Account discovery from the environment and ``.env`` (the contract in DESIGN.md).

=====================================================  ==========================================
variable                                               meaning
=====================================================  ==========================================
``KRAKEN_MASTER_API_KEY`` / ``_API_SECRET``            the MASTER account, label ``MASTER``
``KRAKEN_USER_<NAME>_API_KEY`` / ``_API_SECRET``       a user account, label ``USER:<name>``
``KRAKEN_<ACCOUNT>_NONCE_UNIT``                        ``ms``, ``us`` (default) or ``ns``
``KRAKEN_<ACCOUNT>_TIER``                             ``starter``, ``intermediate`` or ``pro``
                                                       (default: ``KRAKENWATCH_TIER``)
``KRAKEN_<ACCOUNT>_CANCEL_AFTER``                     the gateway's dead man's switch, seconds
                                                       (0 or unset: off; else 15-86400)
``KRAKEN_API_URL``                                     base URL (default ``https://api.kraken.com``)
``KRAKENWATCH_DATA_DIR``                               nonce store and database directory
=====================================================  ==========================================

Bad input never raises: every problem becomes a :class:`Problem` naming the variable, and the
accounts that are fine carry on. Secrets are kept out of ``repr`` and of every message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values

from .errors import ConfigurationError
from .limits import parse_tier
from .nonce import parse_unit
from .paths import (
    API_URL_VARIABLE,
    DATA_DIR_VARIABLE,
    DEFAULT_API_URL,
    api_url_default,
    default_data_dir,
)
from .signing import InvalidSecretError, decode_secret, header_safe, key_id, mask_key

__all__ = [
    "ACCOUNT_SUFFIXES",
    "DEFAULT_API_URL",
    "AccountConfig",
    "Discovery",
    "Problem",
    "account_variable",
    "discover_accounts",
    "load_environment",
]

#: what follows an account's prefix in its variables' names
ACCOUNT_SUFFIXES = ("API_KEY", "API_SECRET", "NONCE_UNIT", "TIER", "CANCEL_AFTER")
#: the dead man's switch timeouts the gateway arms (``KRAKEN_<ACCOUNT>_CANCEL_AFTER``), seconds
CANCEL_AFTER_RANGE_S = (15, 86400)
_ACCOUNT_VAR = re.compile(
    rf"^KRAKEN_(MASTER|USER_(?P<name>.*?))_(?P<what>{'|'.join(ACCOUNT_SUFFIXES)})$"
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class AccountConfig:
    label: str  # "MASTER" or "USER:<name>"
    prefix: str  # "MASTER" or "USER_<NAME>" as in the variable names
    key: str = field(repr=False)
    secret: str = field(repr=False)
    nonce_unit: str = "us"
    #: the account's Kraken tier (``KRAKEN_<ACCOUNT>_TIER``); ``None``: the global default
    tier: str | None = None
    #: the dead man's switch the gateway keeps armed (``KRAKEN_<ACCOUNT>_CANCEL_AFTER``),
    #: seconds; ``None``: off
    cancel_after_s: int | None = None

    @property
    def masked_key(self) -> str:
        return mask_key(self.key)

    @property
    def key_id(self) -> str:
        return key_id(self.key)

    def __repr__(self) -> str:
        return f"AccountConfig(label={self.label!r}, key={self.masked_key!r}, nonce_unit={self.nonce_unit!r})"


@dataclass(frozen=True)
class Problem:
    variable: str
    message: str
    account: str | None = None
    #: "error": the account (or setting) is not used; "warning": it runs, but look at it
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.variable}: {self.message}"


@dataclass
class Discovery:
    accounts: list[AccountConfig]
    problems: list[Problem]
    #: the Kraken base URL; ``None`` when ``KRAKEN_API_URL`` is invalid (then nothing may be sent,
    #: and ``accounts`` is empty)
    api_url: str | None
    data_dir: Path

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def shared_keys(self) -> dict[str, list[str]]:
        """key id -> labels, for keys configured under more than one label (a hazard)."""
        by_key: dict[str, list[str]] = {}
        for account in self.accounts:
            by_key.setdefault(account.key_id, []).append(account.label)
        return {k: v for k, v in by_key.items() if len(v) > 1}


def load_environment(
    environ: Mapping[str, str] | None = None,
    env_file: str | Path | None = None,
    *,
    use_dotenv: bool = True,
) -> dict[str, str]:
    """The process environment over the ``.env`` file (explicit ``env_file``, else ``./.env``
    unless ``use_dotenv`` is false).

    A missing or unreadable explicit ``env_file`` raises :class:`ConfigurationError` naming it.
    """
    env = dict(os.environ if environ is None else environ)
    if env_file is None and not use_dotenv:
        return env
    path = Path(env_file) if env_file is not None else Path(".env")
    if env_file is not None and not path.is_file():
        raise ConfigurationError(
            f"env file {path} does not exist or is not a file", variable=str(path)
        )
    if not path.is_file():
        return env
    try:
        values = dotenv_values(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(
            f"env file {path} cannot be read: {type(exc).__name__}", variable=str(path)
        ) from None
    merged = {k: v for k, v in values.items() if v is not None}
    merged.update(env)
    return merged


def account_variable(name: str) -> str | None:
    """The account prefix (``MASTER``, ``USER_<NAME>``) when ``name`` is an account's variable
    (a well-formed name), else ``None``."""
    match = _ACCOUNT_VAR.match(name)
    if match is None:
        return None
    user = match.group("name")
    if user is None:
        return "MASTER"
    return f"USER_{user.upper()}" if _NAME.match(user) else None


def discover_accounts(env: Mapping[str, str]) -> Discovery:
    """Find every configured account in ``env`` (see :func:`load_environment`)."""
    problems: list[Problem] = []
    groups: dict[str, dict[str, tuple[str, str]]] = {}
    for variable, value in env.items():
        match = _ACCOUNT_VAR.match(variable)
        if not match:
            continue
        name = match.group("name")
        if name is not None and not _NAME.match(name):
            problems.append(
                Problem(
                    variable,
                    "the account name between KRAKEN_USER_ and the suffix must be letters, digits and underscores",
                )
            )
            continue
        prefix = "MASTER" if name is None else f"USER_{name.upper()}"
        groups.setdefault(prefix, {})[match.group("what")] = (variable, value)

    accounts: list[AccountConfig] = []
    for prefix in sorted(groups, key=lambda p: (p != "MASTER", p)):
        account = _build_account(prefix, groups[prefix], problems)
        if account is not None:
            accounts.append(account)

    seen: dict[str, AccountConfig] = {}
    for account in accounts:
        first = seen.setdefault(account.key_id, account)
        if first is not account:
            problems.append(
                Problem(
                    f"KRAKEN_{account.prefix}_API_KEY",
                    f"the same API key is also configured for {first.label}; both share one nonce "
                    "sequence, but two programs on one key is the classic cause of invalid nonces",
                    account.label,
                    severity="warning",
                )
            )

    api_url = _api_url(env, problems)
    if api_url is None:  # no account may send anything anywhere: each is shown invalid
        url_problem = problems[-1]
        for account in accounts:
            problems.append(Problem(API_URL_VARIABLE, url_problem.message, account.label))
        accounts = []
    try:
        data_dir = default_data_dir(env)
    except RuntimeError:
        problems.append(Problem(DATA_DIR_VARIABLE, "not set and no home directory to default to"))
        data_dir = Path(".krakenwatch")
    return Discovery(accounts, problems, api_url, data_dir)


def _label(prefix: str) -> str:
    return "MASTER" if prefix == "MASTER" else "USER:" + prefix[len("USER_") :].lower()


def _build_account(
    prefix: str, parts: dict[str, tuple[str, str]], problems: list[Problem]
) -> AccountConfig | None:
    """The account whose variables ``parts`` holds (by suffix: variable name and value), or
    ``None`` with every reason added to ``problems``."""
    label = _label(prefix)
    if "API_KEY" not in parts and "API_SECRET" not in parts:
        for setting_var, _ in parts.values():
            problems.append(
                Problem(
                    setting_var,
                    f"set, but {label} has no KRAKEN_{prefix}_API_KEY/KRAKEN_{prefix}_API_SECRET; "
                    "ignored",
                    label,
                    "warning",
                )
            )
        return None
    found: list[Problem] = []
    key, secret = _credentials(prefix, label, parts, found)
    unit = _nonce_unit(label, parts, found)
    tier = _tier(label, parts, found)
    cancel_after = _cancel_after(label, parts, found)
    problems.extend(found)
    return None if found else AccountConfig(label, prefix, key, secret, unit, tier, cancel_after)


def _credentials(
    prefix: str, label: str, parts: dict[str, tuple[str, str]], found: list[Problem]
) -> tuple[str, str]:
    """The key and the secret (stripped), with what is wrong with them added to ``found``: one
    of the pair missing or empty, a key that cannot be sent, a secret that is not base64."""
    key_var, secret_var = f"KRAKEN_{prefix}_API_KEY", f"KRAKEN_{prefix}_API_SECRET"
    key = parts.get("API_KEY", (key_var, ""))[1].strip()
    secret = parts.get("API_SECRET", (secret_var, ""))[1].strip()
    for what, variable, value, other in (
        ("API_KEY", key_var, key, secret_var),
        ("API_SECRET", secret_var, secret, key_var),
    ):
        if what not in parts:
            found.append(
                Problem(variable, f"missing: {other} is set, but {variable} is not", label)
            )
        elif not value:
            found.append(Problem(variable, "is empty", label))
    if key and not header_safe(key):
        found.append(
            Problem(
                key_var, "contains whitespace or non-ASCII characters; copy the key again", label
            )
        )
    if secret:
        try:
            decode_secret(secret)
        except InvalidSecretError:
            found.append(
                Problem(secret_var, "is not valid base64; copy the private key again, whole", label)
            )
    return key, secret


def _nonce_unit(label: str, parts: dict[str, tuple[str, str]], found: list[Problem]) -> str:
    """``KRAKEN_<ACCOUNT>_NONCE_UNIT``, else ``us``; a bad value is added to ``found``."""
    if "NONCE_UNIT" not in parts:
        return "us"
    variable, value = parts["NONCE_UNIT"]
    try:
        return parse_unit(value)
    except ConfigurationError as exc:
        found.append(Problem(variable, exc.message, label))
        return "us"


def _tier(label: str, parts: dict[str, tuple[str, str]], found: list[Problem]) -> str | None:
    """``KRAKEN_<ACCOUNT>_TIER``, else ``None`` (the global default); a bad value is added to
    ``found``."""
    if "TIER" not in parts:
        return None
    variable, value = parts["TIER"]
    try:
        return parse_tier(value).name
    except ValueError as exc:
        found.append(Problem(variable, str(exc), label))
        return None


def _cancel_after(
    label: str, parts: dict[str, tuple[str, str]], found: list[Problem]
) -> int | None:
    """``KRAKEN_<ACCOUNT>_CANCEL_AFTER`` in seconds, ``None`` when unset or 0; a bad value is
    added to ``found``."""
    if "CANCEL_AFTER" not in parts:
        return None
    variable, value = parts["CANCEL_AFTER"]
    low, high = CANCEL_AFTER_RANGE_S
    text = value.strip()
    seconds = int(text) if text.isdigit() else -1
    if seconds == 0:
        return None
    if not low <= seconds <= high:
        found.append(
            Problem(
                variable,
                f"must be whole seconds, 0 (off) or {low}-{high}, not {text!r}",
                label,
            )
        )
        return None
    return seconds


def _api_url(env: Mapping[str, str], problems: list[Problem]) -> str | None:
    """The base URL, or ``None`` (a problem recorded) when ``KRAKEN_API_URL`` is invalid."""
    try:
        return api_url_default(env)
    except ConfigurationError as exc:
        problems.append(
            Problem(API_URL_VARIABLE, exc.message.removeprefix(f"{API_URL_VARIABLE}: "))
        )
        return None
