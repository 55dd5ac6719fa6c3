"""Refusing replays of state-changing calls: a captured request never runs twice, not after an
hour, not after a restart, not on another replica.

The gateway replaces every bot nonce with its own, so Kraken can no longer refuse a replayed
request: a captured or re-sent ``AddOrder`` would be signed afresh and placed twice. So, for every
method that is not read-only (see :mod:`gateway.methods`; ``GetWebSocketsToken`` included):

1. **Fresh.** The bot's nonce is read as a timestamp in its own unit (s, ms, µs, 10 ns or ns,
   chosen by magnitude: the one that lands nearest the gateway's clock). Further than the replay
   window (``--replay-window``, default 300 s) from the gateway's clock: refused with
   ``EAPI:Invalid nonce:...`` saying why, nothing sent. A request captured longer ago than the
   window can never run.
2. **Once.** A digest of the credential, the method and the raw body (which holds the bot's nonce)
   is claimed in the replay store (:mod:`gateway.replaystore`, where the nonces are kept: the data
   dir, or Redis shared by the replicas) right before the request is sent, and kept until its
   nonce falls out of the window. Claimed already: refused with ``EAPI:Invalid nonce``, what
   Kraken itself would answer; never sent: the claim is given back, so a retry of the same bytes
   works.
3. **Counter nonces.** A bot whose nonce is a counter (1, 2, 3...) is not a timestamp: step 1
   refuses it with an answer that says so. Such clients are named with ``--counter-nonces NAME``
   (a client credential's name, or ``account-key``): for them the rule is Kraken's own, their
   state-changing calls must carry a nonce above the last one the gateway accepted from them
   (kept in the same store), instead of steps 1 and 2.

Read-only calls are neither checked nor remembered: identical twins are both answered.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from .methods import is_read_only
from .replaystore import ReplayStore

__all__ = [
    "DEFAULT_WINDOW_S",
    "NOT_A_TIMESTAMP",
    "Claim",
    "ReplayGuard",
    "nonce_seconds",
]

DEFAULT_WINDOW_S = 300.0
#: ticks per second of the units nonces are read in (s, ms, µs, 10 ns, ns)
_UNITS = (1, 10**3, 10**6, 10**8, 10**9)
REPLAYED = "EAPI:Invalid nonce"
NOT_A_TIMESTAMP = (
    "EAPI:Invalid nonce:the krakenwatch gateway reads the nonce of a state-changing call as a "
    "timestamp and this one is {age}; send a time-based nonce (ms, us or ns), or have the "
    "gateway run with --counter-nonces {client}; nothing was sent"
)
COUNTER_BEHIND = "EAPI:Invalid nonce:not above the last nonce this client sent; nothing was sent"


def nonce_seconds(nonce: int, now: float) -> float:
    """The Unix time ``nonce`` stands for, read in the unit that lands nearest ``now``."""
    readings = [nonce / per_second for per_second in _UNITS]
    return min(readings, key=lambda t: abs(math.log10(max(t, 1e-9) / now)))


@dataclass
class Claim:
    """What to remember of one state-changing request, taken right before it is sent."""

    store: ReplayStore
    #: the request's digest (time-based nonces), remembered until ``expires_at``
    digest: bytes | None = None
    expires_at: float = 0.0
    #: the Unix time its nonce stands for (``None``: a counter nonce)
    nonce_time: float | None = None
    #: ``(credential id, nonce)`` for a counter client
    counter: tuple[str, int] | None = None
    taken: bool = False

    def take(self) -> bool:
        """Claim the request; ``False`` when it was seen already (a replay). Raises
        :class:`~gateway.replaystore.ReplayStoreError` when the store cannot say."""
        if self.counter is not None:
            return self.store.advance(*self.counter)
        assert self.digest is not None
        self.taken = self.store.claim(self.digest, self.expires_at)
        return self.taken

    def give_back(self) -> None:
        """The request was not sent: the same bytes may come again (a counter stays raised)."""
        if self.taken and self.digest is not None:
            self.store.release(self.digest)
            self.taken = False


class ReplayGuard:
    """Decides, per request, what the replay store must remember (see the module docstring)."""

    def __init__(
        self,
        store: ReplayStore,
        window_s: float = DEFAULT_WINDOW_S,
        *,
        counter_clients: frozenset[str] = frozenset(),
        clock: Callable[[], float] = time.time,
    ):
        self.store = store
        self.window_s = window_s
        self.counter_clients = counter_clients
        self._clock = clock

    def check(
        self, credential: str, client: str, method: str, nonce_text: str, body: bytes
    ) -> Claim | str | None:
        """``None`` for a read-only call (nothing to remember), the refusal's error code when
        the nonce is refused at once, else the :class:`Claim` to take right before sending."""
        if is_read_only(method):
            return None
        nonce = int(nonce_text)
        ident = hashlib.sha256(credential.encode()).hexdigest()[:32]
        if client in self.counter_clients:
            return Claim(self.store, counter=(ident, nonce))
        now = self._clock()
        stands_for = nonce_seconds(nonce, now)
        off = stands_for - now
        if abs(off) > self.window_s:
            return NOT_A_TIMESTAMP.format(age=_describe(off, self.window_s), client=client)
        digest = hashlib.sha256(b"\0".join((ident.encode(), method.encode(), body))).digest()
        return Claim(
            self.store,
            digest=digest[:20],
            expires_at=stands_for + self.window_s + 1.0,
            nonce_time=stands_for,
        )


def _describe(off: float, window_s: float) -> str:
    if abs(off) > 10 * 365 * 86400:
        return "no time at all (a counter?)"
    side = "behind" if off < 0 else "ahead of"
    return f"{abs(off):.0f} s {side} the gateway's clock (more than {window_s:g} s)"
