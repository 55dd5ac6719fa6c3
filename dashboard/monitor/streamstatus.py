"""An account's live stream as the pages, the checklist and the metrics see it: the connection,
the open orders, the trading counter per pair, and the running totals.

Plain data, copied with the account's status (:class:`~dashboard.monitor.status.AccountStatus`
holds one :class:`StreamStatus`); :mod:`dashboard.monitor.streaming` fills it in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "NOT_YET",
    "ONE_SHOT",
    "ORDER_EVENTS",
    "OpenOrder",
    "RateCounter",
    "StreamActivity",
    "StreamState",
    "StreamStatus",
]

#: the order events counted and shown: an order placed, a fill (whole or part), its end
ORDER_EVENTS = ("placed", "fill", "filled", "cancelled", "expired")

#: the reason of a stream the monitor will open, before the account's first successful call
NOT_YET = "opens after the account's first successful call"
#: the reason every account has no stream in a one-shot verification (``krakenwatch check``)
ONE_SHOT = "a one-shot check opens no stream (krakenwatch up's /api/verify watches them)"


class StreamState(StrEnum):
    """Where an account's stream stands (the values are what JSON and the pages show)."""

    #: no stream: switched off, no safe URL, or the monitor has not started it (polling only)
    OFF = "off"
    #: getting a token, connecting, subscribing
    CONNECTING = "connecting"
    #: both subscriptions acknowledged: balances and orders come from Kraken as they change
    UP = "up"
    #: was up or trying; reconnecting with backoff (polling resumes after a poll interval)
    DOWN = "down"
    #: the key may not use the WebSocket API (permission), or Kraken refused the subscription
    REFUSED = "refused"


@dataclass(frozen=True)
class OpenOrder:
    order_id: str
    pair: str
    side: str
    order_type: str
    volume: str
    price: str | None
    status: str
    filled: str
    opened_at: float


@dataclass(frozen=True)
class RateCounter:
    """Kraken's trading rate counter of one pair, against the account's threshold."""

    count: float
    threshold: float | None
    at: float

    @property
    def share(self) -> float | None:
        """The counter as a share of the threshold (``None`` without a threshold)."""
        return self.count / self.threshold if self.threshold else None


@dataclass(frozen=True)
class StreamActivity:
    """What a stream received, read live at snapshot time (kept apart from the account's status:
    a heartbeat a second must not make every account "changed" for the pages and the scrape)."""

    #: messages received per channel (heartbeat, status, balances, executions)
    messages: dict[str, int] = field(default_factory=dict)
    last_message_at: float | None = None


@dataclass
class StreamStatus:
    state: StreamState = StreamState.OFF
    #: why the stream is in this state, in words (the reason it is off, down or refused)
    reason: str = ""
    since: float | None = None
    #: when it was last up since (``None``: never up)
    connected_since: float | None = None
    #: when it last went down from up (``None``: up, or never up): polling resumes after a poll
    #: interval down
    down_since: float | None = None
    reconnects: int = 0
    tokens: int = 0
    #: order id -> the open order, from the executions snapshot and its updates
    open_orders: dict[str, OpenOrder] = field(default_factory=dict)
    #: (pair, event) -> how many since start (events: :data:`ORDER_EVENTS`)
    orders: dict[tuple[str, str], int] = field(default_factory=dict)
    #: pair -> Kraken's trading rate counter
    rate_counters: dict[str, RateCounter] = field(default_factory=dict)
    #: the last time an order was placed or filled (not the snapshot's orders): trading_active
    last_trade_activity_at: float | None = None
    #: REST reconciliations that found the stream's balances differing
    balance_mismatches: int = 0
    last_reconciled_at: float | None = None

    @property
    def up(self) -> bool:
        return self.state == StreamState.UP
