"""A :class:`broker.Observer` that keeps what it is told, for tests to read."""

from __future__ import annotations

import threading

from broker import CallEvent, RefreshEvent

__all__ = ["Recorder"]


class Recorder:
    """Every call and nonce refresh reported, in order (thread-safe: clients report from their
    callers' threads)."""

    def __init__(self) -> None:
        self.calls: list[CallEvent] = []
        self.refreshes: list[RefreshEvent] = []
        self._lock = threading.Lock()

    def on_call(self, event: CallEvent) -> None:
        with self._lock:
            self.calls.append(event)

    def on_refresh(self, event: RefreshEvent) -> None:
        with self._lock:
            self.refreshes.append(event)
