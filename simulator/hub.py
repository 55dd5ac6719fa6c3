"""Who listens to which key's account streams: the subscriptions of the WebSocket connections, the
fan-out of the order book's and balances' events to them, and the per-key stream statistics.

The order book publishes while it holds the state lock (so events reach every connection in the
order they happened); the hub has its own lock, always taken after the state lock, never before.
A connection's :meth:`Listener.push` only schedules the message on the server's event loop: no
I/O ever happens under a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

__all__ = ["Listener", "StreamHub", "StreamStats", "Subscription"]

#: one entry of a channel message's ``data`` list
Entry = dict[str, Any]


@dataclass(frozen=True)
class StreamStats:
    """A key's account streams, as the simulated Kraken saw them.

    ``connections_opened`` counts connections that subscribed with one of the key's tokens (a
    connection belongs to the key of its first successful subscription); ``messages_sent`` counts
    every message written to them (acknowledgements, snapshots, updates, heartbeats).
    """

    tokens_issued: int = 0
    connections_opened: int = 0
    connections_open: int = 0
    subscriptions_active: int = 0
    messages_sent: int = 0


@dataclass
class Subscription:
    """One channel subscribed on one connection, with its options."""

    channel: str
    key: str
    token: str
    ratecounter: bool = False
    order_status: bool = True

    def shape(self, entry: Entry) -> Entry | None:
        """``entry`` as this subscription shows it: ``None`` when it is not sent."""
        if self.channel != "executions":
            return entry
        if not self.order_status and entry.get("exec_type") in ("pending_new", "amended"):
            return None  # only open / close transitions (and trades) without order_status
        if not self.ratecounter and "ratecount" in entry:
            return {k: v for k, v in entry.items() if k != "ratecount"}
        return entry


class Listener(Protocol):
    """A WebSocket connection as the hub sees it."""

    id: int
    key: str | None

    def push(self, channel: str, data: list[Entry]) -> None:
        """Send an ``update`` of ``channel`` (thread-safe, never blocks)."""

    def stall(self) -> None: ...

    def resume(self) -> None: ...

    def drop(self) -> None: ...

    def end_session(self) -> None: ...


@dataclass
class _Counts:
    tokens_issued: int = 0
    connections_opened: int = 0
    connections_open: int = 0
    subscriptions_active: int = 0
    messages_sent: int = 0


class StreamHub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        # key -> channel -> connection id -> (connection, subscription)
        self._subs: dict[str, dict[str, dict[int, tuple[Listener, Subscription]]]] = {}
        self._open: dict[int, Listener] = {}
        self._counts: dict[str, _Counts] = {}

    # ------------------------------------------------------------------ publishing
    def publish(self, key: str, channel: str, entries: list[Entry]) -> None:
        """Send ``entries`` as one update to every subscription of ``key`` to ``channel``."""
        with self._lock:
            targets = list(self._subs.get(key, {}).get(channel, {}).values())
        for listener, sub in targets:
            shaped = [e for e in (sub.shape(entry) for entry in entries) if e is not None]
            if shaped:
                listener.push(channel, shaped)

    # ------------------------------------------------------------------ registry
    def opened(self, listener: Listener) -> None:
        with self._lock:
            self._open[listener.id] = listener

    def closed(self, listener: Listener) -> list[Subscription]:
        """Forget a closed connection; the subscriptions it still held."""
        with self._lock:
            self._open.pop(listener.id, None)
            ended = []
            for channels in self._subs.values():
                for subs in channels.values():
                    held = subs.pop(listener.id, None)
                    if held is not None:
                        ended.append(held[1])
                        self._count(held[1].key).subscriptions_active -= 1
            if listener.key is not None:
                self._count(listener.key).connections_open -= 1
            self._changed.notify_all()
            return ended

    def bind(self, listener: Listener, key: str) -> None:
        """``listener`` subscribed for the first time, with a token of ``key``."""
        with self._lock:
            listener.key = key
            counts = self._count(key)
            counts.connections_opened += 1
            counts.connections_open += 1
            self._changed.notify_all()

    def add(self, listener: Listener, sub: Subscription) -> None:
        with self._lock:
            channels = self._subs.setdefault(sub.key, {})
            channels.setdefault(sub.channel, {})[listener.id] = (listener, sub)
            self._count(sub.key).subscriptions_active += 1
            self._changed.notify_all()

    def remove(self, listener: Listener, sub: Subscription) -> None:
        with self._lock:
            held = self._subs.get(sub.key, {}).get(sub.channel, {}).pop(listener.id, None)
            if held is not None:
                self._count(sub.key).subscriptions_active -= 1
            self._changed.notify_all()

    def listeners(self, key: str | None = None) -> list[Listener]:
        """The open connections (of ``key``: those that belong to it)."""
        with self._lock:
            return [c for c in self._open.values() if key is None or c.key == key]

    # ------------------------------------------------------------------ statistics
    def count_token(self, key: str) -> None:
        with self._lock:
            self._count(key).tokens_issued += 1
            self._changed.notify_all()

    def count_sent(self, key: str | None) -> None:
        if key is None:
            return
        with self._lock:
            self._count(key).messages_sent += 1
            self._changed.notify_all()

    def stats(self, key: str) -> StreamStats:
        with self._lock:
            return self._snapshot(key)

    def wait_for(
        self, key: str, predicate: Callable[[StreamStats], bool], timeout: float
    ) -> StreamStats:
        """Block until ``predicate(stats)`` holds for ``key``; ``TimeoutError`` otherwise."""
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self._snapshot(key)), timeout):
                raise TimeoutError(f"stream condition not met within {timeout} s")
            return self._snapshot(key)

    def _snapshot(self, key: str) -> StreamStats:
        return StreamStats(**asdict(self._counts.get(key, _Counts())))

    def _count(self, key: str) -> _Counts:
        return self._counts.setdefault(key, _Counts())
