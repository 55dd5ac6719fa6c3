"""What the trading guard shows a dashboard: halts, the dead man's switches, other writers named,
the modelled per-pair trading counters, and the guard's events. Immutable values only; the guard
(:mod:`gateway.guard`) makes them, a page or a checklist reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CANCEL_AFTER_FAILED",
    "FOREIGN_WRITER",
    "GUARD_EVENT_KINDS",
    "HALT",
    "RESUME",
    "DeadManState",
    "GuardEvent",
    "GuardSnapshot",
    "HaltRecord",
    "PairCounter",
]

#: guard event kinds
HALT = "halt"  # data: {"client", "reason", "origin"}
RESUME = "resume"  # data: {"client", "origin"}
FOREIGN_WRITER = "foreign_writer"  # data: {"method", "diagnosis", "count"}
CANCEL_AFTER_FAILED = "cancel_after_failed"  # data: {"error", "failures"}
GUARD_EVENT_KINDS = (HALT, RESUME, FOREIGN_WRITER, CANCEL_AFTER_FAILED)


@dataclass(frozen=True)
class HaltRecord:
    """One halt in force: ``account``'s calls that open or change orders are refused (only
    ``client``'s when it is set)."""

    account: str
    #: the gateway client credential halted (``None``: every caller of the account)
    client: str | None
    reason: str
    #: who asked: ``cli root@host``, ``admin 10.0.0.7``, ``dashboard``
    origin: str
    #: when (Unix time)
    at: float

    @property
    def scope(self) -> str:
        """``MASTER`` or ``MASTER/grid-bot``."""
        return self.account if self.client is None else f"{self.account}/{self.client}"


@dataclass(frozen=True)
class DeadManState:
    """An account's dead man's switch (``KRAKEN_<ACCOUNT>_CANCEL_AFTER``), as the gateway keeps
    it armed."""

    account: str
    #: the timeout the gateway arms, in seconds
    timeout_s: float
    #: the last re-arm Kraken confirmed (Unix time), ``None``: not armed yet
    armed_at: float | None = None
    #: when Kraken would cancel the account's open orders (Unix time, from its ``triggerTime``)
    trigger_at: float | None = None
    #: the last call of a bot (not the dashboard's) through the gateway on the account
    last_bot_call_at: float | None = None
    #: re-arms that failed since the gateway started
    failures: int = 0
    #: why the last re-arm failed (``None`` once one succeeded again)
    last_error: str | None = None

    def seconds_left(self, now: float) -> float | None:
        """Seconds until Kraken cancels the account's orders (``None``: not armed)."""
        return None if self.trigger_at is None else max(0.0, self.trigger_at - now)


@dataclass(frozen=True)
class PairCounter:
    """The modelled trading counter of one pair."""

    level: float
    threshold: float


@dataclass(frozen=True)
class GuardEvent:
    """Something the operator should see on the timeline."""

    kind: str
    account: str
    detail: str
    data: Mapping[str, Any] = field(default_factory=dict)
    at: float = 0.0


@dataclass(frozen=True)
class GuardSnapshot:
    taken_at: float
    #: the halts in force, oldest first
    halts: tuple[HaltRecord, ...] = ()
    #: account -> its dead man's switch (accounts with ``CANCEL_AFTER`` only)
    dead_man: Mapping[str, DeadManState] = field(default_factory=dict)
    #: account -> invalid nonces Kraken answered to the gateway's own nonces since it started
    #: (another program signs with the key)
    foreign_writers: Mapping[str, int] = field(default_factory=dict)
    #: account -> when the last one happened (Unix time)
    foreign_writer_at: Mapping[str, float] = field(default_factory=dict)
    #: account -> pair -> its modelled trading counter
    trading: Mapping[str, Mapping[str, PairCounter]] = field(default_factory=dict)

    def halted(self, account: str) -> list[HaltRecord]:
        """The halts in force on ``account`` (its own and its clients')."""
        return [h for h in self.halts if h.account == account]
