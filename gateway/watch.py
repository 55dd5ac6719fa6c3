"""Waiting for a queued call's answer while watching its client: nothing leaves after its
caller gave up (:mod:`gateway.lanes`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from .answers import Reply
from .jobs import Job
from .lanes import Lane

__all__ = ["answer"]

Disconnected = Callable[[], Awaitable[object]]


async def answer(lane: Lane, job: Job, disconnected: Disconnected | None) -> Reply:
    """The answer to ``job``, submitted to ``lane`` (sent by this coroutine when the lane started
    it inline). ``disconnected`` returns when the client goes away: a queued call is then dropped
    (answered :data:`~gateway.answers.ABANDONED`), one being sent from a worker thread is marked
    for the worker to check right before it leaves. A call sent from the loop is watched only
    once it waits before it leaves (for a connection, or a worker thread after all): without a
    wait no disconnect could be seen before it leaves."""
    watching: list[asyncio.Future[object]] = []
    if disconnected is not None:

        def watch() -> None:
            if not watching:
                watching.append(_watch(disconnected, lane, job))

        if job.on_loop:
            job.falls_back = watch
        else:
            watch()
    try:
        return await (lane.send_inline(job) if job.inline else asyncio.shield(job.future))
    finally:
        for watched in watching:
            watched.cancel()


def _watch(disconnected: Disconnected, lane: Lane, job: Job) -> asyncio.Future[object]:
    """A task that watches the client until ``job`` is answered (cancel it then)."""

    def gone(watched: asyncio.Future[object]) -> None:
        if job.future.done() or watched.cancelled():
            return
        if not lane.withdraw(job):  # being sent
            job.abandoned = True

    watch = asyncio.ensure_future(disconnected())
    watch.add_done_callback(gone)
    return watch
