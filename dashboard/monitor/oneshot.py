"""What the one-shot verification (``krakenwatch check``) does differently from ``up``: each
account's client (a :class:`~broker.KrakenClient` with ``keep_alive``) makes its private calls
on a kept-alive connection instead of through requests, which prepares, merges settings, picks a
pooled connection and wraps the answer for every call: about half a millisecond of CPU per call
(measured on 2 cores: ~0.67 ms per steady private call through requests, ~0.13 ms on the
kept-alive line, nonce store and signature included), with 50 accounts at once most of the
check's time. The line is used only where it cannot behave differently from requests (no proxy,
certificate, ``verify`` or adapter of the caller's). :func:`step_once` makes an account's one
attempt and closes its client (the connection with it).

:func:`one_cpu`: the verification's threads run on one CPU. They take turns on the interpreter
lock anyway (one of them runs Python at a time), and each of an account's ~50 system calls (the
nonce store's locks, reads and writes, the socket's) hands the lock over: spread over CPUs, every
hand-over wakes a waiting thread on another CPU, which then finds the lock taken again: with 50
accounts at once on 2 CPUs, about a millisecond per account (measured: ~5,000 context switches,
against ~600 on one CPU), as much as the accounts' own work. On one CPU, a thread waits its turn
until the running one blocks.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dashboard.monitor.polling import AccountPoller

__all__ = ["one_cpu", "step_once"]


def step_once(poller: AccountPoller) -> None:
    """The account's one attempt (connect, balance, permission probe), then its client closed:
    nothing of it is used afterwards."""
    try:
        poller.step(False)
    finally:
        poller.client.close()


@contextlib.contextmanager
def one_cpu() -> Iterator[None]:
    """The threads the calling thread starts in the block run on the CPU it runs on now (see the
    module docstring); the caller's own CPUs are given back at the end. Where that cannot be done
    (no CPU affinity on this system, a single CPU allowed, the CPU not known) nothing changes."""
    allowed, cpu = _cpus()
    pinned = False
    if cpu is not None and len(allowed) > 1:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {cpu})
            pinned = True
    try:
        yield
    finally:
        if pinned:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, allowed)


def _cpus() -> tuple[set[int], int | None]:
    """The CPUs the calling thread may run on, and the one it runs on now (``None``: unknown)."""
    try:
        allowed = os.sched_getaffinity(0)
        # field 39 of the thread's stat: the CPU it last ran on (the name before it may hold
        # blanks and parentheses: the fields are counted after its closing parenthesis)
        stat = Path("/proc/thread-self/stat").read_text(encoding="ascii", errors="replace")
        cpu = int(stat.rsplit(")", 1)[1].split()[36])
    except (AttributeError, OSError, ValueError, IndexError):
        return set(), None
    return allowed, cpu if cpu in allowed else None
