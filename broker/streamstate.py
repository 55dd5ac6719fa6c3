"""What a private stream knows about itself (state, times, counters), readable from any thread,
and how its messages and state changes become events. The base of
:class:`~broker.stream.AccountStream`; no I/O here."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .streamevents import StreamEvent, StreamState, StreamStateChanged
from .streamparse import Frame, MalformedMessage, MessageParser

__all__ = ["StreamInfo", "StreamRecord"]

log = logging.getLogger("broker.stream")


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """A consistent reading of a stream's state and counters (times: ``time.time()``)."""

    account: str
    url: str
    state: StreamState
    reason: str | None
    #: when the current connection came up (both subscriptions acknowledged), else ``None``
    connected_since: float | None
    #: when the last message of any kind arrived (on any connection)
    last_message_at: float | None
    #: connection attempts after the first one
    reconnects: int
    #: ``GetWebSocketsToken`` calls made (each spends a nonce of the key)
    tokens: int
    messages: int
    #: messages skipped: not JSON, or not shaped as Kraken documents them
    malformed: int
    #: well-formed messages of no known kind, and error answers that did not end the connection
    unexpected: int
    #: the messages per channel (``heartbeat``, ``status``, ``balances``, ``executions``; the
    #: answers to requests under ``method``: acknowledgements, pongs)
    channels: Mapping[str, int]


class StreamRecord:
    """State and counters of one stream: written on its event loop under a lock, read anywhere.
    ``on_event`` gets every event; an exception it raises is logged and swallowed."""

    def __init__(
        self,
        account: str,
        url: str,
        on_event: Callable[[StreamEvent], None],
        clock: Callable[[], float],
        heartbeat_events: bool = True,
    ):
        self.account = account
        self.url = url
        self.on_event = on_event
        self.clock = clock
        self.heartbeat_events = heartbeat_events
        self._lock = threading.Lock()
        self._state: StreamState = "stopped"
        self._reason: str | None = None
        self._connected_since: float | None = None
        self._last_message_at: float | None = None
        self._reconnects = self._tokens = 0
        self._messages = self._malformed = self._unexpected = 0
        self._channels: dict[str, int] = {}

    def info(self) -> StreamInfo:
        with self._lock:
            return StreamInfo(
                self.account,
                self.url,
                self._state,
                self._reason,
                self._connected_since,
                self._last_message_at,
                self._reconnects,
                self._tokens,
                self._messages,
                self._malformed,
                self._unexpected,
                dict(self._channels),
            )

    @property
    def state(self) -> StreamState:
        return self._state

    @property
    def reason(self) -> str | None:
        return self._reason

    @property
    def connected_since(self) -> float | None:
        """When the current connection came up (both subscriptions acknowledged), else ``None``."""
        return self._connected_since

    @property
    def last_message_at(self) -> float | None:
        """When the last message of any kind arrived (on any connection)."""
        return self._last_message_at

    @property
    def reconnects(self) -> int:
        """Connection attempts after the first one."""
        return self._reconnects

    @property
    def tokens(self) -> int:
        """``GetWebSocketsToken`` calls made (each spends a nonce of the key)."""
        return self._tokens

    # -- written on the stream's loop -----------------------------------------------------------

    def _count_reconnect(self) -> None:
        with self._lock:
            self._reconnects += 1

    def _count_token(self) -> None:
        with self._lock:
            self._tokens += 1

    def _count_unexpected(self) -> None:
        with self._lock:
            self._unexpected += 1

    def _record_up(self) -> None:
        with self._lock:
            self._connected_since = self.clock()
        self._set_state("up", None)

    def _set_state(self, state: StreamState, reason: str | None) -> None:
        with self._lock:
            if (state, reason) == (self._state, self._reason):
                return
            self._state, self._reason = state, reason
            if state != "up":
                self._connected_since = None
            event = StreamStateChanged(
                self.account, state, reason, self.clock(), self._reconnects, self._tokens
            )
        level = logging.WARNING if state in ("down", "refused") and reason else logging.INFO
        log.log(level, "stream %s: %s%s", self.account, state, f" ({reason})" if reason else "")
        self._emit(event)

    def _take(self, raw: str | bytes, parser: MessageParser) -> Frame | None:
        """Count and read one message, hand its events out; ``None`` for a malformed one."""
        with self._lock:
            self._messages += 1
            self._last_message_at = self.clock()
        try:
            frame = parser.parse(raw)
        except MalformedMessage as exc:
            with self._lock:
                self._malformed += 1
            log.debug("stream %s: skipped a malformed message: %s", self.account, exc)
            return None
        channel = frame.channel or "method"
        with self._lock:
            self._channels[channel] = self._channels.get(channel, 0) + 1
        if frame.unexpected:
            self._count_unexpected()
        for event in frame.events:
            if self.heartbeat_events or frame.channel != "heartbeat":
                self._emit(event)
        return frame

    def _emit(self, event: StreamEvent) -> None:
        try:
            self.on_event(event)
        except Exception:
            log.exception("stream %s: on_event raised (ignored)", self.account)
