"""Refusing replays of state-changing calls.

The gateway replaces every bot nonce with its own, so Kraken can no longer refuse a replayed
request: a captured or re-sent ``AddOrder`` would be signed afresh and placed twice. The gateway
therefore remembers a digest of every state-changing request it accepted (credential, method and
raw body, which includes the bot's nonce) for ``window_s`` seconds and refuses a byte-identical
repeat with ``EAPI:Invalid nonce``, what Kraken itself would answer. Read-only methods are not
remembered: identical twins are both answered (see :mod:`gateway.methods`).

Only digests are kept, never bodies, in insertion order with a bound on their number. When the
bound is reached the oldest digest goes first (``evicted`` counts them): size the bound above the
state-changing calls of one window.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable

from .methods import is_read_only

__all__ = ["DEFAULT_CAPACITY", "DEFAULT_WINDOW_S", "ReplayGuard"]

DEFAULT_WINDOW_S = 3600.0
DEFAULT_CAPACITY = 100_000


class ReplayGuard:
    """Digests of recent state-changing requests. Not thread-safe: one event loop uses it."""

    def __init__(
        self,
        window_s: float = DEFAULT_WINDOW_S,
        capacity: int = DEFAULT_CAPACITY,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.window_s = window_s
        self.capacity = capacity
        self._clock = clock
        self._seen: OrderedDict[bytes, float] = OrderedDict()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._seen)

    def admit(self, credential: str, method: str, body: bytes) -> bytes | None:
        """Remember a state-changing request and return its digest (``b""`` for read-only ones,
        which are never remembered); ``None`` when it is a replay."""
        if is_read_only(method):
            return b""
        now = self._clock()
        self._expire(now)
        digest = hashlib.sha256(b"\0".join((credential.encode(), method.encode(), body))).digest()[
            :20
        ]
        if digest in self._seen:
            return None
        if len(self._seen) >= self.capacity:
            self._seen.popitem(last=False)
            self.evicted += 1
        self._seen[digest] = now + self.window_s
        return digest

    def forget(self, digest: bytes) -> None:
        """The request was never sent (refused, dropped, nothing reached Kraken): the same bytes
        may be sent again."""
        if digest:
            self._seen.pop(digest, None)

    def _expire(self, now: float) -> None:
        seen = self._seen
        while seen:
            digest, expires = next(iter(seen.items()))
            if expires > now:
                return
            del seen[digest]
