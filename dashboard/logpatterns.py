"""The bot-log patterns: the lines a bot built on this library logs, and the operator's own.

A pattern file (TOML or JSON, ``KRAKENWATCH_BOT_LOG_PATTERNS``) is read and checked with the rest of
the settings; the bot-log watcher (:mod:`dashboard.history.logwatch`) searches each line with them.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dashboard.errors import LogPatternError

__all__ = ["DEFAULT_PATTERNS", "LogPattern", "LogPatternError", "load_patterns"]

_RESERVED_GROUPS = frozenset({"pattern", "line"})


@dataclass(frozen=True)
class LogPattern:
    """``regex`` is searched in each line; its named groups go into the event's data. The group
    named ``account_group`` (default: ``account`` when the regex has one) names the account."""

    name: str
    regex: str
    account_group: str | None = None
    compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise LogPatternError(f"log pattern {self.name!r}: the name must be a non-empty string")
        try:
            compiled = re.compile(self.regex)
        except (re.error, TypeError) as exc:
            raise LogPatternError(
                f"log pattern {self.name!r}: invalid regex {self.regex!r}: {exc}"
            ) from exc
        groups = set(compiled.groupindex)
        if self.account_group is not None and self.account_group not in groups:
            raise LogPatternError(
                f"log pattern {self.name!r}: account_group {self.account_group!r} is not a named "
                f"group of the regex (groups: {sorted(groups) or 'none'})"
            )
        if groups & _RESERVED_GROUPS:
            raise LogPatternError(
                f"log pattern {self.name!r}: group names {sorted(_RESERVED_GROUPS)} are reserved"
            )
        object.__setattr__(self, "compiled", compiled)

    @property
    def account_key(self) -> str | None:
        if self.account_group is not None:
            return self.account_group
        return "account" if "account" in self.compiled.groupindex else None


#: the lines a bot built on this library logs as it connects and trades, and the errors to notice
DEFAULT_PATTERNS: tuple[LogPattern, ...] = (
    LogPattern("kraken_connected", r"KRAKEN PRO CONNECTED \((?P<account>[^)]+)\)"),
    LogPattern("invalid_nonce", r"EAPI:Invalid nonce|Invalid nonce"),
    LogPattern(
        "nonce_refreshed", r"Refreshed nonce baseline to (?P<nonce>\d+) for (?P<account>\S+)"
    ),
    LogPattern(
        "connection_failed", r"Kraken connection test failed \((?P<account>[^)]+)\): (?P<error>.+)"
    ),
    LogPattern("permission_error", r"API KEY PERMISSION ERROR"),
    LogPattern("credentials_missing", r"credentials not configured for (?P<account>\S+)"),
    LogPattern(
        "other_broker_connected",
        r"(?i)\b(?P<broker>Coinbase|Alpaca|OKX|Binance)\b(?!.*\b(?:not|failed)\b).*\bconnected\b",
    ),
    LogPattern("trading_cycle", r"(?i)\btrading cycle\b|\bcycle #?\d+ (?:started|complete)"),
    LogPattern("bot_started", r"(?i)\bbot start|\bstarting (?:the )?bot\b"),
)


def _pattern_from(item: Any, where: str) -> LogPattern:
    if not isinstance(item, dict):
        raise LogPatternError(f"{where}: expected a table with name and regex")
    unknown = set(item) - {"name", "regex", "account_group"}
    if unknown:
        raise LogPatternError(f"{where}.{sorted(unknown)[0]}: unknown field")
    for key in ("name", "regex"):
        if not isinstance(item.get(key), str) or not item[key]:
            raise LogPatternError(f"{where}.{key}: missing or not a non-empty string")
    group = item.get("account_group")
    if group is not None and not isinstance(group, str):
        raise LogPatternError(f"{where}.account_group: must be a string")
    try:
        return LogPattern(item["name"], item["regex"], group)
    except LogPatternError as exc:  # names the pattern and what is wrong with it
        raise LogPatternError(f"{where}: {exc}") from exc


def load_patterns(spec: str | Path | None) -> list[LogPattern]:
    """The patterns from a TOML or JSON file (``[[patterns]]`` with ``name``, ``regex`` and
    optionally ``account_group``); ``extend = true`` keeps the defaults (same name: replaced).
    ``None`` gives the defaults."""
    if spec is None:
        return list(DEFAULT_PATTERNS)
    path = Path(spec)
    try:
        text = path.read_text(encoding="utf-8")
        doc = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # JSON/TOML errors are ValueErrors
        raise LogPatternError(f"{path}: cannot read the log patterns ({exc})") from exc
    if not isinstance(doc, dict):
        raise LogPatternError(f"{path}: expected a table with a 'patterns' list")
    extend = doc.get("extend", False)
    if not isinstance(extend, bool):
        raise LogPatternError(f"{path}: extend: must be true or false")
    items = doc.get("patterns", [])
    if not isinstance(items, list):
        raise LogPatternError(f"{path}: patterns: must be a list of tables ([[patterns]])")
    loaded = [_pattern_from(item, f"{path}: patterns[{i}]") for i, item in enumerate(items)]
    names = [p.name for p in loaded]
    for name in names:
        if names.count(name) > 1:
            raise LogPatternError(f"{path}: patterns: the name {name!r} is used twice")
    if not extend:
        if not loaded:
            raise LogPatternError(f"{path}: patterns: none defined (extend = true keeps defaults)")
        return loaded
    mine = {p.name: p for p in loaded}
    merged = [mine.pop(p.name, p) for p in DEFAULT_PATTERNS]
    return merged + [p for p in loaded if p.name in mine]
