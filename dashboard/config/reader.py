"""Reading the settings from one environment mapping: numbers within range, flags, paths, the
bot-log patterns, the streams' URL, account labels, passwords; every problem named by its
variable (the loader, :func:`dashboard.config.load_settings`, collects them)."""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import Field
from pathlib import Path
from typing import Any

from broker import Problem
from broker.errors import ConfigurationError
from broker.limits import TIERS
from broker.paths import API_URL_VARIABLE, WS_URL_VARIABLE, ws_url_default
from broker.variables import MIN_SECRET_CHARS
from dashboard.config.variable import VARIABLE, Variable
from dashboard.errors import LogPatternError
from dashboard.logpatterns import DEFAULT_PATTERNS, LogPattern, load_patterns

__all__ = ["BUDGET_SHARE", "Reader", "min_poll_interval"]

#: share of a tier's decay rate the monitor allows itself (the bot needs the rest)
BUDGET_SHARE = 0.25
#: private calls per poll cycle on average (Balance every cycle, permission probes now and then)
CALLS_PER_CYCLE = 1.2


def min_poll_interval(tier: str) -> float:
    """The shortest poll interval that keeps the monitor within its share of the tier's budget."""
    return math.ceil(CALLS_PER_CYCLE / (TIERS[tier].decay_per_s * BUDGET_SHARE))


class Reader:
    """Reads settings from one environment mapping, collecting the problems found."""

    def __init__(self, env: Mapping[str, str], fields: Mapping[str, Field[Any]]):
        self.env = env
        #: the Settings fields by name: each one's variable and default
        self.fields = fields
        self.problems: list[Problem] = []

    def variable(self, setting: str) -> Variable:
        found: Variable = self.fields[setting].metadata[VARIABLE]
        return found

    def default(self, setting: str) -> Any:
        return self.fields[setting].default

    def raw(self, setting: str) -> tuple[str, str]:
        """(variable name, stripped value; empty when unset)."""
        name = self.variable(setting).name
        return name, self.env.get(name, "").strip()

    def number(self, setting: str, default: float | None = None) -> float:
        """A number within the variable's range; ``default``: the field's default."""
        variable = self.variable(setting)
        name, raw = self.raw(setting)
        fallback: float = self.default(setting) if default is None else default
        if not raw:
            return fallback
        try:
            value = float(raw)
        except ValueError:
            self.problems.append(Problem(name, f"{raw!r} is not a number; using {fallback:g}"))
            return fallback
        if not math.isfinite(value) or not variable.minimum <= value <= variable.maximum:
            self.problems.append(
                Problem(
                    name,
                    f"{raw} is out of range [{variable.minimum:g}, {variable.maximum:g}]; "
                    f"using {fallback:g}",
                )
            )
            return fallback
        return value

    def flag(self, setting: str) -> bool:
        name, raw = self.raw(setting)
        default: bool = self.default(setting)
        if not raw:
            return default
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        self.problems.append(
            Problem(name, f"{raw!r} is not a boolean (use 1/0, true/false); using {default}")
        )
        return default

    def path(self, setting: str) -> Path | None:
        _, raw = self.raw(setting)
        return Path(raw).expanduser() if raw else None

    def poll_interval(self, tier: str) -> float:
        floor = min_poll_interval(tier)
        poll = self.number("poll_interval_s", max(30.0, floor))
        if poll < floor:
            self.problems.append(
                Problem(
                    self.variable("poll_interval_s").name,
                    f"{poll:g} s uses more than {BUDGET_SHARE:.0%} of the {tier} tier's call "
                    f"budget per key (at least {floor:g} s is safe); the bot may hit "
                    "EAPI:Rate limit exceeded",
                    severity="warning",
                )
            )
        return poll

    def patterns(self) -> tuple[Path | None, tuple[LogPattern, ...]]:
        path = self.path("bot_log_patterns")
        if path is None:
            return None, DEFAULT_PATTERNS
        try:
            return path, tuple(load_patterns(path))
        except LogPatternError as exc:
            name = self.variable("bot_log_patterns").name
            self.problems.append(Problem(name, f"{exc}; using the default patterns"))
            return None, DEFAULT_PATTERNS

    def streams(self, api_url: str | None) -> tuple[bool, str | None, str | None]:
        """(streams on, their URL, why there are none): a WebSocket URL only where it is safe
        (:func:`broker.paths.ws_url_default`: never Kraken's own behind a simulator or proxy)."""
        if not self.flag("streams"):
            return False, None, f"{self.variable('streams').name}=0: polling only"
        if api_url is None:
            return True, None, f"{API_URL_VARIABLE} is invalid: nothing is sent"
        try:
            return True, ws_url_default(self.env, api_url=api_url), None
        except ConfigurationError as exc:
            self.problems.append(
                Problem(WS_URL_VARIABLE, _without_name(str(exc)), severity="warning")
            )
            return True, None, f"{exc}; polling only"

    def labels(self, setting: str, known: list[str]) -> tuple[str, ...]:
        """Comma-separated account labels, each one configured (else a problem naming it)."""
        name, raw = self.raw(setting)
        found: list[str] = []
        for label in (part.strip() for part in raw.split(",")):
            if not label:
                continue
            if label not in known:
                near = difflib.get_close_matches(label, known, n=1)
                hint = (
                    f"; did you mean {near[0]}?"
                    if near
                    else f" (configured: {', '.join(known) or 'none'})"
                )
                self.problems.append(Problem(name, f"{label!r} is not a configured account{hint}"))
                continue
            found.append(label)
        return tuple(dict.fromkeys(found))

    def secret(self, setting: str, what: str) -> str | None:
        """A password or token (``what``): at least :data:`MIN_SECRET_CHARS` characters, else a
        problem is named."""
        name = self.variable(setting).name
        raw = self.env.get(name)
        if not raw:
            return None
        if len(raw) < MIN_SECRET_CHARS:
            self.problems.append(
                Problem(
                    name, f"is shorter than {MIN_SECRET_CHARS} characters; use a long random {what}"
                )
            )
        return raw


def _without_name(message: str) -> str:
    """A configuration error's text without its leading ``VARIABLE: `` (the problem names it)."""
    return message.removeprefix(f"{WS_URL_VARIABLE}: ")
