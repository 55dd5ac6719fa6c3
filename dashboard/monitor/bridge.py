"""From the broker's observer reports to the dashboard's events.

Every account's :class:`~broker.KrakenClient` reports its calls and nonce refreshes through the
broker's observer interface. :class:`EventBridge` turns a refresh and a failed private call into an
event, and keeps the account's counters on the :class:`~dashboard.monitor.board.AccountBoard`.
"""

from __future__ import annotations

from broker import CallEvent, InvalidNonceError, KrakenAPIError, RefreshEvent
from dashboard.monitor import events as ev
from dashboard.monitor.board import AccountBoard
from dashboard.monitor.events import Publisher

__all__ = ["EventBridge"]


class EventBridge:
    """A broker observer (``on_call``, ``on_refresh``) feeding ``board`` and ``publish``."""

    def __init__(self, board: AccountBoard, publish: Publisher):
        self.board = board
        self.publish = publish

    def on_refresh(self, event: RefreshEvent) -> None:
        self.board.count_refresh(event.account)
        self.publish(
            ev.NONCE_REFRESH,
            event.account,
            f"nonce baseline {event.baseline} ({event.reason})",
            {
                "baseline": event.baseline,
                "previous": event.previous,
                "lead_seconds": event.lead_seconds,
                "unit": event.unit,
                "reason": event.reason,
            },
        )

    def on_call(self, event: CallEvent) -> None:
        error = event.error
        if error is None or not event.private:
            return
        self.board.note_call(event.account, event.started_at)
        if isinstance(error, InvalidNonceError):
            self.board.count_invalid_nonce(event.account)
            self.publish(
                ev.INVALID_NONCE,
                event.account,
                f"{error.code} on {event.method} ({error.diagnosis or 'unknown cause'})",
                {"code": error.code, "method": event.method, "diagnosis": error.diagnosis},
            )
        else:
            code = error.code if isinstance(error, KrakenAPIError) else None
            self.publish(
                ev.API_ERROR,
                event.account,
                f"{event.method}: {error}",
                {"kind": error.kind, "code": code, "method": event.method},
            )
