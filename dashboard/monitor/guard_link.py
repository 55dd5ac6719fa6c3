"""Under ``up --gateway``: the signing gateway's trading guard joined to the monitor.

The guard's events (a halt, a resume, another program signing with a key, a dead man's switch
that could not be re-armed) become the monitor's events, so the store keeps them and the timeline
shows them; the trading counters the accounts' streams report reach the guard's per-pair model
(:meth:`GuardLink.observe_counter`).

The guard calls its listeners on the gateway's own threads (its event loop among them), so
:meth:`GuardLink.on_guard_event` only puts the event on an :class:`~.events.EventQueue`: the
store's writes happen on the queue's thread, never on the gateway's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from dashboard.monitor import events as ev
from dashboard.monitor.events import Event, EventQueue

if TYPE_CHECKING:
    from gateway import Gateway
    from gateway.guardview import GuardEvent

__all__ = ["GuardLink", "guard_detail", "guard_event", "scope"]

log = logging.getLogger(__name__)
_PLAIN = (str, int, float, bool, type(None))


def scope(account: str | None, client: object) -> str:
    """``MASTER`` (every caller of the account) or ``MASTER/grid-bot`` (one client credential)."""
    shown = account or "?"
    return shown if client in (None, "", "*") else f"{shown}/{client}"


def guard_detail(kind: str, account: str | None, data: Mapping[str, Any], said: str) -> str:
    """The event's line on the timeline: a halt with its scope, reason and who asked; a resume
    with its scope and who asked; the others as the guard said them (``said``)."""
    where = scope(account, data.get("client"))
    origin = data.get("origin") or "unknown"
    if kind == ev.HALT:
        return f"halted {where}: {data.get('reason') or said or 'no reason given'} (by {origin})"
    if kind == ev.RESUME:
        return f"resumed {where} (by {origin})"
    if said:
        return said
    if kind == ev.FOREIGN_WRITER:
        return f"another program signs with {where}'s key ({data.get('count', '?')} seen)"
    if kind == ev.CANCEL_AFTER_FAILED:
        return f"dead man's switch of {where} not re-armed: {data.get('error') or 'unknown error'}"
    return kind


def guard_event(event: GuardEvent, now: float) -> Event:
    """``event`` as the monitor's :class:`~.events.Event`, stamped with the guard's time (a halt
    made by another process is told up to a second later) or ``now`` without one."""
    data = {str(k): v if isinstance(v, _PLAIN) else str(v) for k, v in event.data.items()}
    detail = guard_detail(event.kind, event.account, data, event.detail)
    return Event(event.kind, event.account, detail, data, ts=event.at or now)


class GuardLink:
    """Registers on ``gateway``'s guard at once; hands its events to ``sink`` (the monitor's
    ``emit``) from a thread of its own; passes the streams' trading counters on."""

    def __init__(
        self, gateway: Gateway, sink: Callable[[Event], object], clock: Callable[[], float]
    ):
        self._gateway = gateway
        self._clock = clock
        self._queue = EventQueue(sink, name="kw-guard-events")
        gateway.add_guard_listener(self.on_guard_event)

    def on_guard_event(self, event: GuardEvent) -> None:
        """The guard's listener: called on the gateway's threads, never waits."""
        try:
            self._queue(guard_event(event, self._clock()))
        except Exception:  # a listener must never break the guard
            log.exception("guard event not taken: %s", getattr(event, "kind", event))

    def observe_counter(self, account: str, pair: str, level: float) -> None:
        """Kraken's trading counter of ``account``'s ``pair`` as its stream reported it, for the
        guard's model (called on the stream hub's thread; the gateway only takes a lock)."""
        try:
            self._gateway.observe_trading_counter(account, pair, level)
        except Exception:  # the stream goes on whatever the gateway says
            log.exception("trading counter of %s %s not passed to the gateway", account, pair)

    def close(self, timeout: float) -> None:
        """Hand over the events queued, then end the queue's thread."""
        self._queue.close(timeout)
