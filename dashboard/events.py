"""The monitor's events: what happened, to which account, when. Stored, counted and shown.

An event never holds a secret or a full API key: ``detail`` is one human line, ``data`` a small
JSON-serialisable dict (state names, error codes, balances as decimal strings, skew figures).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["KINDS", "STATES", "Event"]

#: event kinds
STATE = "state"  # data: {"state", "previous", "reason"}
NONCE_REFRESH = "nonce_refresh"  # data: {"baseline", "previous", "lead_seconds", "unit", "reason"}
INVALID_NONCE = "invalid_nonce"  # data: {"code", "method", "diagnosis"}
API_ERROR = "api_error"  # data: {"kind", "code", "method"}
BALANCE = "balance"  # data: {"balances": {asset: "decimal string"}}  or {"error": "..."}
SKEW = "skew"  # data: {"offset_s", "uncertainty_s", "probes", "rtt_s"}
SYSTEM_STATUS = "system_status"  # data: {"status"}
PERMISSION = "permission"  # data: {"permission", "granted": bool | None, "code"}
LOG_MATCH = "log_match"  # data: {"pattern", "line"} (the bot-log watcher)
KINDS = (
    STATE,
    NONCE_REFRESH,
    INVALID_NONCE,
    API_ERROR,
    BALANCE,
    SKEW,
    SYSTEM_STATUS,
    PERMISSION,
    LOG_MATCH,
)

#: account states
NOT_CONFIGURED = "not_configured"
INVALID_CONFIG = "invalid_config"
CONNECTING = "connecting"
CONNECTED = "connected"
DEGRADED = "degraded"
DISCONNECTED = "disconnected"
STATES = (NOT_CONFIGURED, INVALID_CONFIG, CONNECTING, CONNECTED, DEGRADED, DISCONNECTED)


@dataclass(frozen=True)
class Event:
    kind: str
    account: str | None
    detail: str
    data: dict[str, Any] = field(default_factory=dict)
    ts: float = field(default_factory=time.time)
    #: the store's row id once stored
    id: int | None = None
