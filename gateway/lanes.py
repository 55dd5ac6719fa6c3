"""One lane per API key: a bounded queue of private calls and the single writer that sends them.

A :class:`Lane` sends one call at a time (Kraken sees at most one request per key in flight, in
the order the gateway issued their nonces), so many keys proceed in parallel and a slow key never
holds up another. A call that neither claims a digest in the replay memory nor is judged by the
trading guard (those write to their stores) is sent from the event loop itself when nothing on
its way would block (``send_on_loop``: the file store's key free, no disk sync due, the upstream
connection awaited): a thread hand-over costs more than the rest of the gateway's work on a call.
Every other call, and one that would block, is sent from a worker thread. Calls wait on the event loop, not in a thread: a waiting
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
from typing import Any

from broker import (
    CallAbandonedError,
    KeyBusyError,
)
from broker.limits import call_cost
from broker.nonce import WouldBlock
from broker.stages import mark

from .answers import (
    ABANDONED,
    BUSY,
    RATE_LIMITED,
    Reply,
    code_label,
    from_kraken,
    not_sent,
    refusal,
)
from .guard import (
    TradeJob,
    TradingGuard,
)
from .jobs import (
    HALTED,
    INTERNAL,
    KEY_BUSY,
    REFUSAL_REASONS,
    REPLAYED_REPLY,
    RETRY,
    STOPPING,
    Job,
    Run,
    Send,
    SendOnLoop,
    StoreLostReplay,
    failure_reply,
)
from .ratemodel import RateModel
from .replay import Claim
from .replaystore import ReplayStoreError

__all__ = ["Lane"]

log = logging.getLogger("krakenwatch.gateway")


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
        send_on_loop: SendOnLoop | None = None,
    ):
        #: the account label the lane's calls are counted under
        self.account = account
        self.rate = rate
        self.capacity = capacity
        self.max_wait_s = max_wait_s
        self._send = send
        self._send_on_loop = send_on_loop
        self._executor = executor
        self._clock = clock
        #: when the key's shared nonce store was found to have lost its data (Unix time)
        self._store_lost_at = store_lost_at
        #: halts and order budgets (``None``: no trading guard)
        self.guard = guard
        self._queue: deque[Job] = deque()
        self._timer: asyncio.TimerHandle | None = None
        #: what the call in flight is awaited by, when the lane closes
        self._sending: asyncio.Future[Any] | None = None
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
        ahead = sum(job.cost for job in self._queue) if self._queue else 0.0
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
        self._pump(submitted=job)
        return job

    async def send_inline(self, job: Job) -> Reply:
        """Send ``job``, which :meth:`submit` started inline (:attr:`Job.inline`), from the
        caller's own coroutine (no task in between), and return its answer."""
        await self._forward_on_loop(job)
        return await asyncio.shield(job.future)

    def withdraw(self, job: Job) -> bool:
        """Take a call whose client went away out of the queue; ``False`` once it was sent."""
        if job.started_at is not None or job not in self._queue:
            return False
        self._queue.remove(job)
        self._resolve(job, ABANDONED)
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

    def _pump(self, submitted: Job | None = None) -> None:
        """Refuse the calls whose deadline passed, send the next call if the key is free and it
        fits, and set a timer for the next deadline or for when a call may fit. ``submitted``:
        the call just submitted, whose caller sends it inline when it starts now."""
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
                self._start(job, inline=job is submitted)
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
                self._resolve(job, RETRY)
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

    def _start(self, job: Job, *, inline: bool = False) -> None:
        """Send ``job``: from the event loop when it may be (by its caller when ``inline``, else
        in a task), else from a worker thread whose reply comes back in one call on the loop (no
        futures chained between the executor and the loop)."""
        job.started_at = self._clock()
        self.in_flight = job
        self.rate.begin(job.cost)
        loop = asyncio.get_running_loop()
        if self._send_on_loop is not None and job.run is job.claim is job.trade is None:
            job.on_loop = True
            if inline:  # its caller sends it (send_inline): no task, no hand-over
                job.inline = True
                self._sending = job.future
            else:
                self._sending = loop.create_task(self._forward_on_loop(job))
            return
        sending: asyncio.Future[Reply] = loop.create_future()
        self._sending = sending

        def work() -> None:
            reply = self._forward(job)
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits for it
                loop.call_soon_threadsafe(self._finished, job, sending, reply)

        try:
            self._executor.submit(work)
        except RuntimeError:  # the executor is shut down: nothing was sent
            self._finished(job, sending, refusal(STOPPING, outcome="upstream_error", status=503))

    async def _forward_on_loop(self, job: Job) -> None:
        """:meth:`_forward` on the event loop (a call without claim or trade); from a worker
        thread after all when a step would block."""
        mark("picked")
        mark("claimed")
        assert self._send_on_loop is not None
        try:
            try:
                answer = await self._send_on_loop(
                    job.method,
                    job.fields,
                    deadline=time.monotonic() + job.deadline - self._clock(),  # the store's clock
                    before_send=lambda: self._still_wanted(job),
                    pausing=lambda: _pausing(job),
                )
                reply = from_kraken(answer)
            except WouldBlock:  # nothing issued or sent
                job.on_loop = False
                _pausing(job)
                reply = await self._forward_in_thread(job)
        except asyncio.CancelledError:  # the loop is going away: the call's fate is unknown
            self._finished(job, None, INTERNAL)
            raise
        except Exception as exc:
            reply = failure_reply(job, exc, self.account)
        mark("judged")
        self._finished(job, None, reply)

    async def _forward_in_thread(self, job: Job) -> Reply:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._forward, job)
        except RuntimeError:  # the executor is shut down: nothing was sent
            return refusal(STOPPING, outcome="upstream_error", status=503)

    def _finished(self, job: Job, sending: asyncio.Future[Reply] | None, reply: Reply) -> None:
        job.finished_at = self._clock()
        self.in_flight = None
        self._sending = None
        if sending is not None and not sending.done():
            sending.set_result(reply)
        if reply is KEY_BUSY:  # counted here, on the event loop
            reply = self._refused("busy")
        elif reply is HALTED:
            self.refused["halted"] += 1
        full = any(code_label(code) == RATE_LIMITED for code in reply.codes if not reply.by_gateway)
        self.rate.settle(job.cost if reply.sent else 0.0, full=full)
        answer = self._retry(job) if reply is RETRY else reply
        if answer is not None:
            self._resolve(job, answer)
        self._pump()

    def _retry(self, job: Job) -> Reply | None:
        """The order budget does not allow ``job`` yet: back to the front of the queue until it
        may, when that is before its deadline (``None``), else refused now."""
        not_before = self._clock() + job.retry_in
        if not_before > job.deadline:
            self.refused["order_budget"] += 1
            return RETRY
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
        stands_for = job.claim.nonce_time if job.claim is not None else None
        lost_at = None if stands_for is None else self._store_lost_at()
        if lost_at is not None and stands_for is not None and stands_for < lost_at:
            raise StoreLostReplay("its nonce predates the nonce store's data loss")
        if job.trade is not None and self.guard is not None:
            self.guard.before_send(job.trade)

    def _forward(self, job: Job) -> Reply:
        """In a worker thread: claim the request in the replay store, send it, and turn whatever
        happens into a reply; a claim whose request was not sent is given back."""
        mark("picked")
        claim = job.claim
        try:
            if claim is not None and not claim.take():
                return REPLAYED_REPLY
        except ReplayStoreError as exc:
            log.warning("%s %s: not sent: %s", self.account, job.method, exc)
            return not_sent(exc)
        mark("claimed")
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
        mark("judged")
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
        except Exception as exc:
            return failure_reply(job, exc, self.account)

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


def _pausing(job: Job) -> None:
    """``job``, being sent from the loop, waits before it leaves (a connection, or a worker
    thread after all): its client is watched from now on."""
    if job.falls_back is not None:
        job.falls_back()
