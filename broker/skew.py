"""Clock skew: local clock minus Kraken's clock, from ``GET /0/public/Time``.

``/0/public/Time`` answers whole seconds only, so one sample is off by up to a second. Each probe
sent at local time ``t0`` and answered at ``t1`` with server second ``S`` proves that at some local
instant ``t`` in ``[t0, t1]`` the server clock read a value in ``[S, S + 1)``. With
``offset = local - server`` that gives ``t0 - S - 1 < offset <= t1 - S``. Intersecting the
intervals of several probes narrows the estimate; sending each probe so that the server's next
second boundary falls in the middle of the current interval halves it every time (a bisection),
down to about the round-trip time. The result carries its uncertainty: half the interval's width.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .public import unixtime

__all__ = ["SkewEstimate", "estimate_clock_skew", "single_sample_skew"]


class _PublicCaller(Protocol):
    """What the estimate needs of a client: a :class:`~broker.public.PublicClient` or a
    :class:`~broker.client.KrakenClient`."""

    def call_public(self, method: str, data: Any = None, timeout: float | None = None) -> Any: ...


@dataclass(frozen=True)
class SkewEstimate:
    #: local clock minus Kraken's clock in seconds (positive: local ahead)
    offset_s: float
    #: half-width of the interval the true offset is known to lie in
    uncertainty_s: float
    probes: int
    rtt_s: float
    sampled_at: float


def _server_second(client: _PublicCaller, timeout: float | None) -> int:
    return unixtime(client.call_public("Time", timeout=timeout))


def single_sample_skew(
    client: _PublicCaller, *, clock: Callable[[], float] = time.time
) -> SkewEstimate:
    """The naive estimate (one probe): the baseline to beat. Unbiased: the server's clock read
    somewhere in ``[S, S + 1)`` while the local clock was somewhere in ``[t0, t1]``, so the
    midpoints of both are compared."""
    t0 = clock()
    second = _server_second(client, None)
    t1 = clock()
    return SkewEstimate((t0 + t1) / 2 - (second + 0.5), 0.5 + (t1 - t0) / 2, 1, t1 - t0, t1)


def estimate_clock_skew(
    client: _PublicCaller,
    *,
    max_probes: int = 10,
    target_uncertainty_s: float = 0.01,
    deadline_s: float | None = None,
    timeout: float | None = None,
    decide_bound_s: float | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> SkewEstimate:
    """Estimate local minus Kraken time by bisecting the server's second boundary.

    Stops after ``max_probes`` probes, when the uncertainty is below ``target_uncertainty_s``,
    when the next probe would end after ``deadline_s`` seconds (wall time) from now, or, with
    ``decide_bound_s``, as soon as the interval lies entirely within ``±decide_bound_s`` or
    entirely outside it (enough to decide a skew check; the estimate keeps the uncertainty it has).
    Raises :class:`~broker.errors.KrakenError` when the first probe fails.
    """
    if max_probes < 1:
        raise ValueError("max_probes must be at least 1")
    start = clock()
    lo, hi = -math.inf, math.inf
    rtts: list[float] = []
    probes = 0
    while probes < max_probes:
        if probes:
            rtt = statistics.median(rtts)
            mid = (lo + hi) / 2
            # local time at which the server's clock crosses its next whole second, sent so that
            # the server reads its clock (~rtt/2 after sending) right at that moment
            boundary = math.floor(clock() - mid + rtt / 2) + 1
            send_at = boundary + mid - rtt / 2
            if deadline_s is not None and send_at + rtt - start > deadline_s:
                break
            delay = send_at - clock()
            if delay > 0:
                sleep(delay)
        t0 = clock()
        try:
            second = _server_second(client, timeout)
        except Exception:
            if probes == 0:
                raise
            break
        t1 = clock()
        probes += 1
        rtts.append(t1 - t0)
        new_lo, new_hi = max(lo, t0 - second - 1), min(hi, t1 - second)
        if new_lo > new_hi:  # the server clock jumped (or rounds): start over from this probe
            new_lo, new_hi = t0 - second - 1, t1 - second
        lo, hi = new_lo, new_hi
        if (hi - lo) / 2 <= target_uncertainty_s or _decides(lo, hi, decide_bound_s):
            break
    return SkewEstimate((lo + hi) / 2, (hi - lo) / 2, probes, statistics.median(rtts), clock())


def _decides(lo: float, hi: float, bound: float | None) -> bool:
    """Whether every offset in ``[lo, hi]`` is on the same side of ``±bound``."""
    if bound is None:
        return False
    return (-bound <= lo and hi <= bound) or hi < -bound or lo > bound
