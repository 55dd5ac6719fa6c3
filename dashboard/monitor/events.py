"""The monitor's events: what happened, to which account, when. Stored, counted and shown.

An event never holds a secret or a full API key: ``detail`` is one human line, ``data`` a small
JSON-serialisable dict (state names, error codes, balances as decimal strings, skew figures).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["GUARD_KINDS", "KINDS", "Event", "EventQueue", "Publisher"]

log = logging.getLogger(__name__)

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
STREAM = "stream"  # data: {"state", "previous", "reason"} (the account's WebSocket stream)
#: data: {"event": placed|fill|filled|cancelled|expired, "order_id", "pair", "side", "order_type",
#: "volume", "price"} (a fill: the fill's volume and price)
ORDER = "order"
#: data: {"assets": {asset: {"stream": "decimal string" | None, "rest": ...}}}
BALANCE_MISMATCH = "balance_mismatch"
# the signing gateway's trading guard (``up --gateway``), named as :mod:`gateway.guardview` names
# its events (not imported from there: ``krakenwatch check`` loads no gateway)
HALT = "halt"  # data: {"client", "reason", "origin"} (client None: every caller of the account)
RESUME = "resume"  # data: {"client", "origin"}
#: Kraken refused one of the gateway's own nonces: another program signs with the key
FOREIGN_WRITER = "foreign_writer"  # data: {"method", "diagnosis", "count"}
#: the dead man's switch (``KRAKEN_<ACCOUNT>_CANCEL_AFTER``) could not be re-armed
CANCEL_AFTER_FAILED = "cancel_after_failed"  # data: {"error", "failures"}
GUARD_KINDS = (HALT, RESUME, FOREIGN_WRITER, CANCEL_AFTER_FAILED)
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
    STREAM,
    ORDER,
    BALANCE_MISMATCH,
    *GUARD_KINDS,
)


@dataclass(frozen=True)
class Event:
    kind: str
    account: str | None
    detail: str
    data: dict[str, Any] = field(default_factory=dict)
    ts: float = field(default_factory=time.time)
    #: the store's row id once stored
    id: int | None = None


@dataclass(frozen=True)
class Publisher:
    """Stamps events with one clock and hands them to one sink (the monitor's :meth:`emit`).

    The monitor's parts share it, so every event they make carries the monitor's time.
    """

    sink: Callable[[Event], object]
    clock: Callable[[], float] = time.time

    def __call__(
        self, kind: str, account: str | None, detail: str, data: dict[str, Any] | None = None
    ) -> None:
        self.sink(Event(kind, account, detail, data or {}, ts=self.clock()))


class EventQueue:
    """A sink that never waits: events are put on a queue and handed to ``sink`` by a thread of
    its own, in order. For a producer that serves many accounts at once (the stream hub's one
    event loop), whom a slow listener (a busy database) must not hold up."""

    def __init__(self, sink: Callable[[Event], object], name: str = "kw-events"):
        self._sink = sink
        self._queue: queue.SimpleQueue[Event | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def __call__(self, event: Event) -> None:
        self._queue.put(event)

    def close(self, timeout: float) -> None:
        """Hand over what is queued, then end the thread (waits at most ``timeout``)."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while (event := self._queue.get()) is not None:
            try:
                self._sink(event)
            except Exception:
                log.exception("event not handed on")
