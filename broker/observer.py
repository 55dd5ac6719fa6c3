"""How ``broker`` reports what happens: a small observer interface.

A client calls ``on_call`` after every request (success or failure) and ``on_refresh`` after every
nonce-baseline refresh. Observers must be quick and must not raise; an exception from an observer is
logged and swallowed so that reporting can never break trading.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from .errors import KrakenAPIError, KrakenError, OutcomeUnknownError

__all__ = ["CallEvent", "FanOut", "Observer", "RefreshEvent", "notify"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallEvent:
    account: str
    key_id: str
    method: str
    private: bool
    started_at: float
    duration_s: float
    #: ``"ok"`` or the error's ``kind`` (``invalid_nonce``, ``timeout``, ...)
    outcome: str
    nonce: int | None = None
    error: KrakenError | None = field(default=None, compare=False)
    #: how long the call waited for its key (other requests of the key, a shared store's lock)
    waited_s: float = 0.0

    @property
    def error_code(self) -> str | None:
        return self.error.code if isinstance(self.error, KrakenAPIError) else None

    @property
    def outcome_unknown(self) -> bool:
        """The request was sent but no answer came back: it may have reached Kraken."""
        return isinstance(self.error, OutcomeUnknownError)


@dataclass(frozen=True)
class RefreshEvent:
    account: str
    key_id: str
    unit: str
    previous: int
    baseline: int
    #: how far the baseline runs ahead of the wall clock, in seconds
    lead_seconds: float
    reason: str


class Observer(Protocol):
    def on_call(self, event: CallEvent) -> None: ...

    def on_refresh(self, event: RefreshEvent) -> None: ...


class FanOut:
    """An observer that forwards to several observers."""

    def __init__(self, observers: Iterable[Observer]):
        self.observers = list(observers)

    def on_call(self, event: CallEvent) -> None:
        for observer in self.observers:
            notify(observer, "on_call", event)

    def on_refresh(self, event: RefreshEvent) -> None:
        for observer in self.observers:
            notify(observer, "on_refresh", event)


def notify(observer: Observer | None, hook: str, event: CallEvent | RefreshEvent) -> None:
    if observer is None:
        return
    try:
        getattr(observer, hook)(event)
    except Exception:
        log.exception("krakenwatch observer %r failed in %s; ignored", observer, hook)
