"""One lane per API key: a bounded queue of private calls and the single writer that sends them.

A :class:`Lane` sends one call at a time (Kraken sees at most one request per key in flight, in
the order the gateway issued their nonces), in a worker thread, so many keys proceed in parallel
and a slow key never holds up another. Calls wait on the event loop, not in a thread: a waiting
call costs no thread, and a call whose client went away is taken out of the queue
(:meth:`Lane.withdraw`).

Order: counted calls (those that add to Kraken's call counter) leave in arrival order once the
:class:`~gateway.ratemodel.RateModel` says they fit; a call the counter does not judge (cost 0:
``AddOrder``, ``CancelOrder``...) does not wait behind one that waits for budget.

A call is answered ``EAPI:Rate limit exceeded`` by the gateway, and never sent, when the queue is
full, when the rate model already predicts a wait beyond ``max_wait_s``, or when it is still
queued ``max_wait_s`` after it arrived.

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

from broker import ForwardedAnswer, KrakenError, TransportError
from broker.limits import call_cost

from .answers import (
    INTERNAL_ERROR,
    RATE_LIMITED,
    Reply,
    code_label,
    from_kraken,
    from_transport,
    not_sent,
    refusal,
)
from .ratemodel import RateModel

__all__ = ["REFUSAL_REASONS", "STOPPING", "Job", "Lane", "Send"]

log = logging.getLogger("krakenwatch.gateway")

#: sends one private call: (method, form fields without a nonce) -> Kraken's answer
Send = Callable[[str, bytes], ForwardedAnswer]
#: makes one private call itself (an in-process client's) and says how it went
Run = Callable[[], Reply]
REFUSAL_REASONS = ("queue_full", "wait")
STOPPING = "EService:Unavailable:the krakenwatch gateway is stopping; nothing was sent"
#: something unexpected broke while the call was being forwarded: it may have reached Kraken
_INTERNAL = replace(refusal(INTERNAL_ERROR, outcome="upstream_error", status=500), sent=True)


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
    ):
        #: the account label the lane's calls are counted under
        self.account = account
        self.rate = rate
        self.capacity = capacity
        self.max_wait_s = max_wait_s
        self._send = send
        self._executor = executor
        self._clock = clock
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
    ) -> Job | Reply:
        """Queue a call (sent at once when the key is free and the call fits); a :class:`Reply`
        instead when it is refused at once (nothing sent). Call it on the event loop. ``run``:
        the call of an in-process client, made in the writer's slot; ``max_wait_s``: this call's
        own limit on waiting (default: the lane's)."""
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
        """Send the next call if the key is free and it fits; else set a timer for when one may."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.in_flight is not None or self._closing:
            return
        job, delay = self._pick(self._clock())
        if job is not None:
            self._start(job)
        elif delay is not None:
            self._timer = asyncio.get_running_loop().call_later(delay, self._pump)

    def _pick(self, now: float) -> tuple[Job | None, float | None]:
        """The call to send now, or when to look again (``None``: when something happens)."""
        for job in [j for j in self._queue if j.deadline <= now]:
            self._queue.remove(job)
            self._resolve(job, self._refused("wait"))
        for job in self._queue:  # not judged by the call counter: no need to wait for budget
            if job.cost <= 0:
                self._queue.remove(job)
                return job, None
        while self._queue:
            head = self._queue[0]
            wait = self.rate.wait_s(head.cost)
            if wait <= 0:
                return self._queue.popleft(), None
            if now + wait <= head.deadline:
                return None, min(wait, min(j.deadline for j in self._queue) - now)
            # it cannot fit in time: say so now rather than at its deadline
            self._resolve(self._queue.popleft(), self._refused("wait"))
        return None, None

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
        full = any(code_label(code) == RATE_LIMITED for code in reply.codes if not reply.by_gateway)
        self.rate.settle(job.cost if reply.sent else 0.0, full=full)
        self._resolve(job, reply)
        self._pump()

    def _forward(self, job: Job) -> Reply:
        """In a worker thread: send the call and turn whatever happens into a reply."""
        try:
            if job.run is not None:
                return job.run()
            return from_kraken(self._send(job.method, job.fields))
        except TransportError as exc:
            log.warning("%s %s: %s", self.account, job.method, exc.message)
            return from_transport(exc)
        except KrakenError as exc:
            log.warning("%s %s: not sent: %s", self.account, job.method, exc.message)
            return not_sent(exc)
        except Exception:
            log.exception("%s %s: forwarding failed", self.account, job.method)
            return _INTERNAL

    def _refused(self, reason: str) -> Reply:
        self.refused[reason] += 1
        return refusal(RATE_LIMITED, outcome="rate_limited")

    @staticmethod
    def _resolve(job: Job, reply: Reply) -> None:
        if not job.future.done():
            job.future.set_result(reply)
