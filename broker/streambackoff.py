"""How long a stream waits before it connects again: exponential backoff with full jitter.

The n-th wait in a row is a uniformly random time between 0 and ``min(cap_s, base_s * 2**n)``
(AWS's "full jitter"), so a fleet of streams that lost Kraken at the same moment does not come
back in lockstep. A connection that stayed up longer than ``reset_after_s`` starts the series
again. The random source and the clock are injectable for tests.
"""

from __future__ import annotations

import random as _random
import time
from collections.abc import Callable

__all__ = ["Backoff"]


class Backoff:
    """Full-jitter exponential backoff. Not thread-safe: one stream uses it from its loop."""

    def __init__(
        self,
        base_s: float = 0.5,
        cap_s: float = 30.0,
        reset_after_s: float = 60.0,
        *,
        random: Callable[[], float] = _random.random,
        clock: Callable[[], float] = time.monotonic,
    ):
        if base_s <= 0 or cap_s < base_s or reset_after_s < 0:
            raise ValueError("backoff: need 0 < base_s <= cap_s and reset_after_s >= 0")
        self.base_s = base_s
        self.cap_s = cap_s
        self.reset_after_s = reset_after_s
        self.random = random
        self.clock = clock
        #: waits in a row since the last reset
        self.attempt = 0
        self._up_since: float | None = None

    def ceiling(self) -> float:
        """The longest the next wait can be."""
        # 2**attempt overflows a float past ~1024; the cap is reached long before
        return min(self.cap_s, self.base_s * 2.0 ** min(self.attempt, 64))

    def next_delay(self) -> float:
        """The next wait in seconds (and one more in the series)."""
        delay = self.random() * self.ceiling()
        self.attempt += 1
        return delay

    def connected(self) -> None:
        """A connection is up (its length decides whether the series starts again)."""
        self._up_since = self.clock()

    def disconnected(self) -> None:
        """The connection ended: after a long one the series starts again."""
        if self._up_since is not None and self.clock() - self._up_since >= self.reset_after_s:
            self.attempt = 0
        self._up_since = None

    def reset(self) -> None:
        self.attempt = 0
        self._up_since = None
