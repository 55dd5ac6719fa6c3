"""How a setting names its environment variable and how its value is shown (the Settings page):
declared once, on the :class:`~dashboard.config.Settings` field's metadata."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from broker.paths import NONCE_SYNC_VARIABLE
from broker.sharedsettings import REQUEST_TIMEOUT_VARIABLE, TIER_VARIABLE
from broker.storespec import NONCE_STORE_VARIABLE, masked_spec

__all__ = ["HIDDEN", "SHARED_VARIABLES", "VARIABLE", "Variable", "declared"]

HIDDEN = "set (hidden)"
#: the field metadata key holding its :class:`Variable`
VARIABLE = "variable"


@dataclass(frozen=True)
class Variable:
    """The environment variable a setting is read from, and how its value is shown."""

    name: str
    unit: str = ""
    minimum: float = -math.inf
    maximum: float = math.inf
    #: a password: shown as set or not, never its value
    secret: bool = False
    #: a URL that may carry a password: shown without it
    url: bool = False

    def show(self, value: Any) -> str:
        if value is None:
            return "-"
        if self.secret:
            return HIDDEN
        if self.url:
            return masked_spec(str(value))
        if isinstance(value, bool):
            return "1" if value else "0"
        if isinstance(value, tuple):
            return ",".join(value) or "-"
        if isinstance(value, float):
            return f"{value:g} {self.unit}".rstrip()
        return str(value)


def declared(name: str, **how: Any) -> dict[str, Variable]:
    """Field metadata: the setting comes from variable ``name``."""
    return {VARIABLE: Variable(name, **how)}


#: the shared settings (:class:`broker.sharedsettings.SharedSettings`) as the Settings page shows them
SHARED_VARIABLES = {
    "tier": Variable(TIER_VARIABLE),
    "request_timeout_s": Variable(REQUEST_TIMEOUT_VARIABLE, unit="s"),
    "nonce_store": Variable(NONCE_STORE_VARIABLE, url=True),
    "nonce_sync": Variable(NONCE_SYNC_VARIABLE),
}
