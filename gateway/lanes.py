"""One lane per API key: a bounded queue of private calls and the single writer that sends them.

A :class:`Lane` sends one call at a time (Kraken sees at most one request per key in flight, in
the order the gateway issued their nonces), in a worker thread, so many keys proceed in parallel
and a slow key never holds up another. Calls wait on the event loop, not in a thread: a waiting
call costs no thread, and a call whose client went away is taken out of the queue
(:meth:`Lane.withdraw`).

Order: counted calls (those that add to Kraken's call counter) leave in arrival order once the
:class:`~gateway.ratemodel.RateModel` says they fit; a call the counter does not judge (cost 0:
``AddOrder``, ``CancelOrder``...) does not wait behind one that waits for budget.

Every call has a deadline, ``max_wait_s`` after it arrived, enforced whatever it waits for, and
the refusal names the cause (nothing is sent):

* ``EService:Busy`` — the key stayed busy: the queue was full, or the deadline passed while other
  calls of the key were in flight (here, or in another process or replica: the nonce store's lock
  or lease is waited for only until the deadline).
* ``EAPI:Rate limit exceeded`` — the modelled rate budget would not allow the call in time.

Nothing leaves after its caller gave up: the worker checks, once it holds the key and right
before the request leaves, that the deadline has not passed and the client is still connected
(:attr:`Job.abandoned`, set when its connection closes), else the call is answered (or dropped)
as not sent.

A job may also carry its own ``run`` instead of form fields: a call made by an in-process client
of the key (the dashboard's monitor under ``up --gateway``, with its own ``KrakenClient``), run in
the writer's slot, so it takes its turn and is charged like the bots' calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace

from broker import (
    CallAbandonedError,
    ForwardedAnswer,
    KeyBusyError,
    KrakenError,
    TransportError,
)
from broker.limits import call_cost

from .answers import (
    ABANDONED,
    BUSY,
    INTERNAL_ERROR,
    RATE_LIMITED,
    Reply,
    code_label,
    from_kraken,
    from_transport,
    not_sent,
    refusal,
)
from .guard import (
    ORDER_RATE_LIMITED,
    GuardHalted,
    GuardNotYet,
    TradeJob,
    TradingGuard,
    halted_refusal,
)
from .guardstore import GuardStoreError
from .ratemodel import RateModel
from .replay import REPLAYED, Claim
from .replaystore import ReplayStoreError

__all__ = ["REFUSAL_REASONS", "STOPPING", "Job", "Lane", "Send"]

log = logging.getLogger("krakenwatch.gateway")

#: sends one private call: (method, form fields without a nonce, deadline=, before_send=) ->
#: Kraken's answer (``KrakenClient.forward_private``)
Send = Callable[..., ForwardedAnswer]
#: makes one private call itself (an in-process client's) and says how it went
Run = Callable[[], Reply]
#: why the lane refused a call: the queue was full, the rate budget would not allow it in time
#: (``wait``), the key stayed busy past the deadline (``busy``), a pair's order budget would not
#: allow it in time (``order_budget``), the account or the caller is halted (``halted``)
REFUSAL_REASONS = ("queue_full", "wait", "busy", "order_budget", "halted")
STOPPING = "EService:Unavailable:the krakenwatch gateway is stopping; nothing was sent"
#: something unexpected broke while the call was being forwarded: it may have reached Kraken
_INTERNAL = replace(refusal(INTERNAL_ERROR, outcome="upstream_error", status=500), sent=True)
#: the worker found the key busy until the deadline (the nonce store's lock or lease elsewhere)
_KEY_BUSY = refusal(BUSY)
#: the replay store had seen the request already
_REPLAYED = refusal(REPLAYED)
#: right before sending: a pair's order budget does not allow the call yet (see Job.retry_in)
_RETRY = refusal(ORDER_RATE_LIMITED, outcome="rate_limited")
#: right before sending: the account or the caller was found halted
_HALTED = halted_refusal()


class _Replay(CallAbandonedError):
    """Right before sending: the request's nonce predates a data loss of the shared nonce store,
    which took the replay memory with it; it may be a replay."""


@dataclass(eq=False)
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


class Lane:
    """The queue and the single writer of one API key (see the module docstring)."""

    def __init__(
        self,
        account: str,
        send: Send,
        rate: RateModel,
        executor: Executor,
        *,
        capacity: int,
        max_wait_s: float,
        clock: Callable[[], float] = time.monotonic,
        store_lost_at: Callable[[], float | None] = lambda: None,
        guard: TradingGuard | None = None,
    ):
        #: the account label the lane's calls are counted under
        self.account = account
        self.rate = rate
        self.capacity = capacity
        self.max_wait_s = max_wait_s
        self._send = send
        self._executor = executor
        self._clock = clock
        #: when the key's shared nonce store was found to have lost its data (Unix time)
        self._store_lost_at = store_lost_at
        #: halts and order budgets (``None``: no trading guard)
        self.guard = guard
        self._queue: deque[Job] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._sending: asyncio.Future[Reply] | None = None
        self._closing = False
        self.in_flight: Job | None = None
        #: calls answered ``EAPI:Rate limit exceeded`` by the lane, by reason: the queue was full,
        #: or the call would have waited (or did wait) longer than ``max_wait_s``
        self.refused = dict.fromkeys(REFUSAL_REASONS, 0)

    @property
    def depth(self) -> int:
        """Calls waiting (the one in flight not included)."""
        return len(self._queue)

    def submit(
        self,
        method: str,
        fields: bytes,
        *,
        run: Run | None = None,
        max_wait_s: float | None = None,
        claim: Claim | None = None,
        trade: TradeJob | None = None,
    ) -> Job | Reply:
        """Queue a call (sent at once when the key is free and the call fits); a :class:`Reply`
        instead when it is refused at once (nothing sent). Call it on the event loop. ``run``:
        the call of an in-process client, made in the writer's slot; ``max_wait_s``: this call's
        own limit on waiting (default: the lane's); ``claim``: what the replay store must
        remember of it; ``trade``: what the trading guard decides right before it leaves."""
        if self._closing:
            return refusal(STOPPING, outcome="upstream_error", status=503)
        cost = call_cost(method)
        ahead = sum(job.cost for job in self._queue)
        if len(self._queue) >= self.capacity:
            return self._refused("queue_full")
        patience = self.max_wait_s if max_wait_s is None else max_wait_s
        if self.rate.wait_s(cost, ahead) > patience:
            return self._refused("wait")
        loop = asyncio.get_running_loop()
        now = self._clock()
        job = Job(method, fields, cost, now, now + patience, loop.create_future(), run)
        job.claim, job.trade = claim, trade
        self._queue.append(job)
        self._pump()
        return job

    def withdraw(self, job: Job) -> bool:
        """Take a call whose client went away out of the queue; ``False`` once it was sent."""
        if job.started_at is not None or job not in self._queue:
            return False
        self._queue.remove(job)
        job.future.cancel()
        self._pump()
        return True

    async def close(self) -> None:
        """Refuse everything still queued and let the call in flight finish."""
        self._closing = True
        if self._timer is not None:
            self._timer.cancel()
        while self._queue:
            stopping = refusal(STOPPING, outcome="upstream_error", status=503)
            self._resolve(self._queue.popleft(), stopping)
        if self._sending is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._sending)

    # -- the single writer ------------------------------------------------------------------------

    def _pump(self) -> None:
        """Refuse the calls whose deadline passed, send the next call if the key is free and it
        fits, and set a timer for the next deadline or for when a call may fit."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._closing:
            return
        now = self._clock()
        self._expire(now)
        delay = None
        if self.in_flight is None:
            job, delay = self._pick(now)
            if job is not None:
                self._start(job)
                delay = None
        if self._queue:
            first_deadline = min(j.deadline for j in self._queue) - now
            delay = first_deadline if delay is None else min(delay, first_deadline)
        if delay is not None:
            self._timer = asyncio.get_running_loop().call_later(max(delay, 0.0), self._pump)

    def _expire(self, now: float) -> None:
        """Refuse every queued call whose deadline passed, by what held it: its pair's order
        budget when it was waiting for it, the rate budget when the model still would not let
        it go, else the key (calls in flight or ahead of it)."""
        for job in [j for j in self._queue if j.deadline <= now]:
            self._queue.remove(job)
            if job.not_before:
                self.refused["order_budget"] += 1
                self._resolve(job, _RETRY)
                continue
            by_rate = self.in_flight is None and self.rate.wait_s(job.cost) > 0
            self._resolve(job, self._refused("wait" if by_rate else "busy"))

    def _pick(self, now: float) -> tuple[Job | None, float | None]:
        """The call to send now, or when to look again (``None``: when something happens)."""
        later: float | None = None
        for job in self._queue:  # not judged by the call counter: no need to wait for budget
            if job.cost <= 0:
                if job.not_before > now:  # its pair's order budget said when
                    wait = job.not_before - now
                    later = wait if later is None else min(later, wait)
                    continue
                self._queue.remove(job)
                return job, None
        while True:  # the counted calls, in arrival order
            head = next((j for j in self._queue if j.cost > 0), None)
            if head is None:
                return None, later
            wait = self.rate.wait_s(head.cost)
            if wait <= 0:
                self._queue.remove(head)
                return head, None
            if now + wait <= head.deadline:
                return None, wait if later is None else min(wait, later)
            # it cannot fit in time: say so now rather than at its deadline
            self._queue.remove(head)
            self._resolve(head, self._refused("wait"))

    def _start(self, job: Job) -> None:
        job.started_at = self._clock()
        self.in_flight = job
        self.rate.begin(job.cost)
        loop = asyncio.get_running_loop()
        self._sending = loop.run_in_executor(self._executor, self._forward, job)
        self._sending.add_done_callback(lambda sent: self._finished(job, sent))

    def _finished(self, job: Job, sent: asyncio.Future[Reply]) -> None:
        job.finished_at = self._clock()
        self.in_flight = None
        self._sending = None
        # a cancelled hand-over (the loop is going away) leaves the call's fate unknown
        reply = _INTERNAL if sent.cancelled() else sent.result()
        if reply is _KEY_BUSY:  # counted here, on the event loop
            reply = self._refused("busy")
        elif reply is _HALTED:
            self.refused["halted"] += 1
        full = any(code_label(code) == RATE_LIMITED for code in reply.codes if not reply.by_gateway)
        self.rate.settle(job.cost if reply.sent else 0.0, full=full)
        answer = self._retry(job) if reply is _RETRY else reply
        if answer is not None:
            self._resolve(job, answer)
        self._pump()

    def _retry(self, job: Job) -> Reply | None:
        """The order budget does not allow ``job`` yet: back to the front of the queue until it
        may, when that is before its deadline (``None``), else refused now."""
        not_before = self._clock() + job.retry_in
        if not_before > job.deadline:
            self.refused["order_budget"] += 1
            return _RETRY
        job.not_before, job.started_at = not_before, None
        self._queue.appendleft(job)
        return None

    def _still_wanted(self, job: Job) -> None:
        """In the worker, with the key held, right before the request leaves: raise when the
        caller gave up (its connection closed), the call's deadline passed, or its nonce predates
        a data loss of the shared nonce store (the replay memory went with it)."""
        if job.abandoned:
            raise CallAbandonedError("the client went away before its call was sent")
        if self._clock() > job.deadline:
            raise KeyBusyError("the call's deadline passed before the key was free")
        lost_at = self._store_lost_at()
        stands_for = job.claim.nonce_time if job.claim is not None else None
        if lost_at is not None and stands_for is not None and stands_for < lost_at:
            raise _Replay("its nonce predates the nonce store's data loss")
        if job.trade is not None and self.guard is not None:
            self.guard.before_send(job.trade)

    def _forward(self, job: Job) -> Reply:
        """In a worker thread: claim the request in the replay store, send it, and turn whatever
        happens into a reply; a claim whose request was not sent is given back."""
        claim = job.claim
        try:
            if claim is not None and not claim.take():
                return _REPLAYED
        except ReplayStoreError as exc:
            log.warning("%s %s: not sent: %s", self.account, job.method, exc)
            return not_sent(exc)
        reply = self._send_once(job)
        if job.trade is not None and self.guard is not None:
            self.guard.answered(job.trade, reply.sent, reply.body, reply.codes)
        if claim is not None and not reply.sent:
            try:
                claim.give_back()
            except ReplayStoreError as exc:  # the same bytes stay refused: safe, and said
                log.warning(
                    "%s %s: could not forget a request not sent: %s", self.account, job.method, exc
                )
        return reply

    def _send_once(self, job: Job) -> Reply:
        try:
            if job.run is not None:
                self._still_wanted(job)
                return job.run()
            answer = self._send(
                job.method,
                job.fields,
                deadline=time.monotonic() + job.deadline - self._clock(),  # in the store's clock
                before_send=lambda: self._still_wanted(job),
            )
            return from_kraken(answer)
        except TransportError as exc:
            log.warning("%s %s: %s", self.account, job.method, exc.message)
            return from_transport(exc)
        except KeyBusyError:
            return _KEY_BUSY
        except _Replay:
            return _REPLAYED
        except GuardHalted:
            return _HALTED
        except GuardNotYet as exc:
            job.retry_in = exc.wait_s
            return _RETRY
        except GuardStoreError as exc:
            log.warning("%s %s: not sent: %s", self.account, job.method, exc)
            return not_sent(exc)
        except CallAbandonedError:
            return ABANDONED
        except KrakenError as exc:
            log.warning("%s %s: not sent: %s", self.account, job.method, exc.message)
            return not_sent(exc)
        except Exception:
            log.exception("%s %s: forwarding failed", self.account, job.method)
            return _INTERNAL

    def _refused(self, reason: str) -> Reply:
        """The gateway's answer to a call it did not send: ``EAPI:Rate limit exceeded`` when the
        rate budget held it, else ``EService:Busy`` (the key was busy)."""
        self.refused[reason] += 1
        if reason == "wait":
            return refusal(RATE_LIMITED, outcome="rate_limited")
        return refusal(BUSY)

    @staticmethod
    def _resolve(job: Job, reply: Reply) -> None:
        if not job.future.done():
            job.future.set_result(reply)
