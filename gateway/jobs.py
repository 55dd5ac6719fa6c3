"""A private call in a key's lane (:class:`Job`), the lane's own answers, and what a call that
raised is answered (:func:`failure_reply`): shared by the lane's two ways of sending, from the
event loop and from a worker thread (:mod:`gateway.lanes`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from broker import (
    CallAbandonedError,
    ForwardedAnswer,
    KeyBusyError,
    KrakenError,
    TransportError,
)

from .answers import (
    ABANDONED,
    BUSY,
    INTERNAL_ERROR,
    Reply,
    from_transport,
    not_sent,
    refusal,
)
from .guard import ORDER_RATE_LIMITED, GuardHalted, GuardNotYet, TradeJob, halted_refusal
from .guardstore import GuardStoreError
from .replay import REPLAYED, Claim

__all__ = [
    "HALTED",
    "INTERNAL",
    "KEY_BUSY",
    "REFUSAL_REASONS",
    "REPLAYED_REPLY",
    "RETRY",
    "STOPPING",
    "Job",
    "Run",
    "Send",
    "SendOnLoop",
    "StoreLostReplay",
    "failure_reply",
]

log = logging.getLogger("krakenwatch.gateway")

#: sends one private call: (method, form fields without a nonce, deadline=, before_send=) ->
#: Kraken's answer (``KrakenClient.forward_private``)
Send = Callable[..., ForwardedAnswer]
#: makes one private call itself (an in-process client's) and says how it went
Run = Callable[[], Reply]
#: ``send`` from the event loop: ``WouldBlock`` (nothing sent) when it would block
SendOnLoop = Callable[..., Awaitable[ForwardedAnswer]]
#: why the lane refused a call: the queue was full, the rate budget would not allow it in time
#: (``wait``), the key stayed busy past the deadline (``busy``), a pair's order budget would not
#: allow it in time (``order_budget``), the account or the caller is halted (``halted``)
REFUSAL_REASONS = ("queue_full", "wait", "busy", "order_budget", "halted")
STOPPING = "EService:Unavailable:the krakenwatch gateway is stopping; nothing was sent"
#: something unexpected broke while the call was being forwarded: it may have reached Kraken
INTERNAL = replace(refusal(INTERNAL_ERROR, outcome="upstream_error", status=500), sent=True)
#: the worker found the key busy until the deadline (the nonce store's lock or lease elsewhere)
KEY_BUSY = refusal(BUSY)
#: the replay store had seen the request already
REPLAYED_REPLY = refusal(REPLAYED)
#: right before sending: a pair's order budget does not allow the call yet (see Job.retry_in)
RETRY = refusal(ORDER_RATE_LIMITED, outcome="rate_limited")
#: right before sending: the account or the caller was found halted
HALTED = halted_refusal()


class StoreLostReplay(CallAbandonedError):
    """Right before sending: the request's nonce predates a data loss of the shared nonce store,
    which took the replay memory with it; it may be a replay."""


@dataclass(eq=False, slots=True)
class Job:
    """One private call waiting for, or holding, its key."""

    method: str
    fields: bytes
    cost: float
    queued_at: float
    deadline: float
    future: asyncio.Future[Reply] = field(repr=False)
    #: the call itself, for an in-process client (``None``: send ``fields``)
    run: Run | None = field(default=None, repr=False)
    started_at: float | None = None
    finished_at: float | None = None
    #: the client went away (set on the event loop, read by the worker right before sending)
    abandoned: bool = False
    #: what the replay store must remember of it, taken right before it is sent
    claim: Claim | None = field(default=None, repr=False)
    #: a trading call: what the trading guard decides of it, right before it leaves
    trade: TradeJob | None = field(default=None, repr=False)
    #: not to be sent before this (the order budget of its pair said so)
    not_before: float = 0.0
    #: set by the worker when the order budget does not allow the call yet
    retry_in: float = 0.0
    #: being sent from the event loop (nothing to watch unless it waits: see ``falls_back``)
    on_loop: bool = False
    #: to be sent by its caller's coroutine (:meth:`Lane.send_inline`), not by a task
    inline: bool = False
    #: called when a call being sent from the loop waits before it leaves (a connection, or a
    #: worker thread after all): its client is watched from then on
    falls_back: Callable[[], None] | None = field(default=None, repr=False)

    @property
    def queue_wait_s(self) -> float | None:
        """Seconds from arrival to sending (``None``: never sent)."""
        return None if self.started_at is None else self.started_at - self.queued_at

    @property
    def upstream_s(self) -> float | None:
        """Seconds the call spent with Kraken (``None``: never sent)."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


def failure_reply(job: Job, exc: Exception, account: str) -> Reply:
    """The reply to a call that raised ``exc`` (call it from the ``except`` block)."""
    if isinstance(exc, TransportError):
        log.warning("%s %s: %s", account, job.method, exc.message)
        return from_transport(exc)
    if isinstance(exc, KeyBusyError):
        return KEY_BUSY
    if isinstance(exc, StoreLostReplay):
        return REPLAYED_REPLY
    if isinstance(exc, GuardHalted):
        return HALTED
    if isinstance(exc, GuardNotYet):
        job.retry_in = exc.wait_s
        return RETRY
    if isinstance(exc, GuardStoreError):
        log.warning("%s %s: not sent: %s", account, job.method, exc)
        return not_sent(exc)
    if isinstance(exc, CallAbandonedError):
        return ABANDONED
    if isinstance(exc, KrakenError):
        log.warning("%s %s: not sent: %s", account, job.method, exc.message)
        return not_sent(exc)
    log.exception("%s %s: forwarding failed", account, job.method)
    return INTERNAL
