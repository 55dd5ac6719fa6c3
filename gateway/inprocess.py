"""A call of an in-process client's own ``KrakenClient`` (the dashboard's monitor under ``up
--gateway``), run in its key's lane by :meth:`Gateway.take_turn <gateway.core.Gateway.take_turn>`.

The lane runs it in the writer's slot, like a bot's call, and counts it by the :class:`Reply` that
:meth:`OwnCall.run` makes of how it went; its value, or the error it raised, goes back to the
caller's thread (:meth:`OwnCall.outcome`). A call the lane refused never ran: the caller gets the
:class:`~broker.KrakenAPIError` a bot would have been answered with.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Generic, TypeVar

from broker import KrakenError, KrakenTimeout
from broker.codes import api_error_from_codes

from .answers import Reply, from_call

__all__ = ["OwnCall"]

T = TypeVar("T")


class OwnCall(Generic[T]):
    """``call``, one private call of ``method`` for ``account``, made by the caller's own client."""

    def __init__(self, call: Callable[[], T], account: str, method: str):
        self._call = call
        self.account = account
        self.method = method
        self._value: list[T] = []
        self._failure: KrakenError | None = None

    def run(self) -> Reply:
        """Make the call (in the lane's worker thread); how it went, for the metrics."""
        try:
            self._value.append(self._call())
        except KrakenError as exc:
            self._failure = exc
            return from_call(exc)
        return from_call(None)

    def outcome(self, turn: concurrent.futures.Future[Reply], timeout_s: float) -> T:
        """Wait up to ``timeout_s`` for the lane's answer to ``turn``; then what the call
        returned, or raise what it raised, or the lane's refusal when it never ran."""
        try:
            reply = turn.result(timeout_s)
        except concurrent.futures.TimeoutError:
            raise KrakenTimeout(
                "no answer from the gateway's lane in time; the call may have been sent",
                account=self.account,
                method=self.method,
            ) from None
        if self._failure is not None:
            raise self._failure
        if self._value:
            return self._value[0]
        raise api_error_from_codes(list(reply.codes), account=self.account, method=self.method)
