"""The monitor's current picture: account states, per-account status and a point-in-time snapshot."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from broker import (
    NONCE_DIAGNOSES,
    InvalidNonceError,
    KrakenAPIError,
    KrakenError,
    NonceStatus,
    SkewEstimate,
)
from dashboard.monitor.streamstatus import StreamActivity, StreamStatus

if TYPE_CHECKING:
    from gateway.guardview import GuardSnapshot
    from gateway.traffic import TrafficSnapshot

__all__ = ["AccountState", "AccountStatus", "ErrorInfo", "Snapshot", "counted_from"]


def counted_from(marker: float | None) -> str:
    """Since when counts are counted, in words: from a deploy marker, or from the start."""
    return "since the deploy" if marker is not None else "since start"


class AccountState(StrEnum):
    """Where an account's connection stands (the values are what JSON and metrics show)."""

    #: refreshing the nonce baseline and making the first private call
    CONNECTING = "connecting"
    #: the last private call succeeded
    CONNECTED = "connected"
    #: was connected; the last call failed with a passing kind of trouble
    DEGRADED = "degraded"
    #: the last calls failed; retried with backoff (or stopped: see ``AccountStatus.stopped``)
    DISCONNECTED = "disconnected"
    #: the account's variables are invalid: shown, never connected
    INVALID_CONFIG = "invalid_config"


@dataclass(frozen=True)
class ErrorInfo:
    kind: str
    code: str | None
    message: str
    explanation: str
    remedy: str
    at: float
    diagnosis: str | None = None

    @classmethod
    def from_error(cls, exc: KrakenError, at: float) -> ErrorInfo:
        code = exc.code if isinstance(exc, KrakenAPIError) else None
        diagnosis = exc.diagnosis if isinstance(exc, InvalidNonceError) else None
        remedy = exc.remedy
        if diagnosis in NONCE_DIAGNOSES:
            remedy = f"{NONCE_DIAGNOSES[diagnosis]} {remedy}"
        return cls(exc.kind, code, str(exc), exc.explanation, remedy, at, diagnosis)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "code": self.code,
            "message": self.message,
            "remedy": self.remedy,
            "diagnosis": self.diagnosis,
        }


@dataclass
class AccountStatus:
    label: str
    masked_key: str
    key_id: str
    nonce_unit: str
    state: AccountState
    since: float
    reason: str = ""
    last_success_at: float | None = None
    last_call_at: float | None = None
    balances: dict[str, str] | None = None
    balances_at: float | None = None
    balance_error: str | None = None
    #: permission -> True granted / False denied / None not known (yet)
    permissions: dict[str, bool | None] = field(
        default_factory=lambda: {"funds": None, "orders": None, "trade": None}
    )
    invalid_nonce_count: int = 0
    refresh_count: int = 0
    last_error: ErrorInfo | None = None
    #: the key's nonce high-water mark, unit and lead, read after the last successful call
    nonce_status: NonceStatus | None = None
    shared_with: list[str] = field(default_factory=list)
    #: False for an account whose variables are invalid: it is shown, never connected
    configured: bool = True
    #: consecutive authentication failures (invalid key, signature or nonce; permission denied)
    auth_failures: int = 0
    #: True once the monitor stopped calling after too many authentication failures; it calls
    #: again when asked to retry, or after a restart
    stopped: bool = False
    #: the deploy marker this status is counted from (``invalid_nonce_count`` since then, and a
    #: success or balance counts only from then), else ``None``: counted from the monitor's start
    counting_since: float | None = None
    #: the account's WebSocket v2 stream (state ``off`` without one)
    stream: StreamStatus = field(default_factory=StreamStatus)

    def is_fresh(self, now: float, freshness_s: float) -> bool:
        """A recent successful private call, or the stream up now (its watchdog takes it down
        after a few seconds without a message, and a stream needs a token the key asked for), or
        up until recently."""
        if self.stream.up:
            return True
        # a stream that just went down was the proof until then (REST resumes within a poll)
        seen = max((t for t in (self.last_success_at, self.stream.down_since) if t), default=None)
        return seen is not None and now - seen <= freshness_s

    def is_up(self, now: float, freshness_s: float) -> bool:
        """Health = a recent successful private call, and the last one did not fail."""
        return self.state == AccountState.CONNECTED and self.is_fresh(now, freshness_s)

    @property
    def counted(self) -> str:
        """What the counts are counted from, in words: ``"since the deploy"``, ``"since start"``."""
        return counted_from(self.counting_since)

    def succeeded_since_count_began(self) -> bool:
        """A successful private REST call since the marker (any, without one). A stream up does
        not count: the marker wants a call of its own after it (the monitor makes one at once)."""
        since, seen = self.counting_since, self.last_success_at
        return seen is not None and (since is None or seen >= since)


@dataclass(frozen=True)
class Snapshot:
    started_at: float | None
    taken_at: float
    accounts: list[AccountStatus]
    skew: SkewEstimate | None
    system_status: str | None
    log_matches: dict[str, int]
    #: True when a bot-log watcher feeds ``log_matches`` (``up``; not the one-shot ``check``)
    log_watching: bool = False
    #: the traffic of the gateway running in this process (``up --gateway``), else ``None``
    gateway: TrafficSnapshot | None = None
    #: the marker of the deploy this snapshot is counted from (:mod:`dashboard.deploys`): the
    #: bot-log matches and the gateway's answers are counted since then; ``None``: since start
    counting_since: float | None = None
    #: after a marker: the accounts a bot is expected to call through the gateway on (a client
    #: credential names them, or bots called before the marker): their ``gateway_kraken_errors``
    #: item waits for a bot's call after it
    gateway_bot_accounts: frozenset[str] = frozenset()
    #: account label -> what its stream received (the accounts with a stream)
    stream_activity: dict[str, StreamActivity] = field(default_factory=dict)
    #: the trading guard of the gateway running in this process (halts, dead man's switches,
    #: other writers, modelled trading counters), else ``None``
    gateway_guard: GuardSnapshot | None = None

    @property
    def counted(self) -> str:
        """What the counts are counted from, in words: ``"since the deploy"``, ``"since start"``."""
        return counted_from(self.counting_since)

    def account(self, label: str) -> AccountStatus:
        for status in self.accounts:
            if status.label == label:
                return status
        raise KeyError(label)
