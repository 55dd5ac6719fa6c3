"""A conservative model of Kraken's per-key call counter, so Kraken never sees a rate-limit burst.

Kraken adds each private call's cost (:func:`broker.limits.call_cost`) to a per-key counter that
decays at the tier's rate, and refuses a call that would take it over the tier's maximum (failed
calls count too). The gateway holds a call until the model says it fits. The model errs on the safe
side in four ways:

* **Charged at the latest possible arrival.** A call is charged when its answer comes back (it
  reached Kraken at some point before that), and counted in full while it is in flight.
* **Headroom for one unseen call.** :data:`HEADROOM_CALLS` below the maximum is kept free for a
  call on the same key the gateway does not know about yet (the dashboard's own poll in another
  process, reported only after it completes).
* **Stepped decay.** Kraken's counter decays "every couple of seconds", not continuously: another
  :data:`DECAY_STEP_S` seconds' worth of decay is kept free.
* **Slower decay.** The model decays at :data:`DECAY_SHARE` of the published rate.

Every forwarded call is charged, whatever Kraken answered. When Kraken answers ``EAPI:Rate limit
exceeded`` anyway (another program spends the key's budget) the model takes the counter as full.
Thread-safe: the dashboard's monitor may report its calls from its own threads
(:class:`RateObserver`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

from broker import CallEvent, RefreshEvent
from broker.errors import nothing_sent_kinds
from broker.limits import Tier, call_cost

__all__ = [
    "DECAY_SHARE",
    "DECAY_STEP_S",
    "HEADROOM_CALLS",
    "RateModel",
    "RateObserver",
]

HEADROOM_CALLS = 1.0
DECAY_STEP_S = 2.0
DECAY_SHARE = 0.9
#: error kinds of calls that were refused before anything was sent (they cost nothing)
_NOT_SENT = nothing_sent_kinds()


class RateModel:
    """One key's modelled call counter (see the module docstring)."""

    def __init__(
        self, tier: Tier, *, enforce: bool = True, clock: Callable[[], float] = time.monotonic
    ):
        self.tier = tier
        #: ``False``: count, but never hold a call (a simulator without limits, benchmarks)
        self.enforce = enforce
        #: the highest modelled value a call may bring the counter to
        self.limit = tier.maximum - HEADROOM_CALLS - DECAY_STEP_S * tier.decay_per_s
        #: the modelled decay per second
        self.decay_per_s = tier.decay_per_s * DECAY_SHARE
        self._clock = clock
        self._lock = threading.Lock()
        self._settled = 0.0
        self._at = clock()
        self._in_flight = 0.0

    def _decayed(self, now: float) -> float:
        """The settled counter at ``now`` (call with the lock held)."""
        return max(0.0, self._settled - max(0.0, now - self._at) * self.decay_per_s)

    def level(self) -> float:
        """The modelled counter now, calls in flight included."""
        with self._lock:
            return self._decayed(self._clock()) + self._in_flight

    def wait_s(self, cost: float, ahead: float = 0.0) -> float:
        """Seconds until a call of ``cost`` fits, behind ``ahead`` cost of calls queued first."""
        if cost <= 0 or not self.enforce:
            return 0.0
        with self._lock:
            excess = self._decayed(self._clock()) + self._in_flight + ahead + cost - self.limit
        return max(0.0, excess / self.decay_per_s)

    def begin(self, cost: float) -> None:
        """A call of ``cost`` is being sent."""
        with self._lock:
            self._in_flight += cost

    def settle(self, cost: float, *, full: bool = False) -> None:
        """The call :meth:`begin` announced is over: charge it now (its latest possible arrival).
        ``full``: Kraken answered ``EAPI:Rate limit exceeded``, so its counter is full."""
        with self._lock:
            self._in_flight = max(0.0, self._in_flight - cost)
            self._charge(cost, full=full)

    def charge(self, cost: float, *, full: bool = False) -> None:
        """A call of ``cost`` on this key went to Kraken outside the gateway."""
        with self._lock:
            self._charge(cost, full=full)

    def _charge(self, cost: float, *, full: bool) -> None:
        now = self._clock()
        self._settled = self._decayed(now) + cost
        if full:
            self._settled = max(self._settled, self.tier.maximum)
        self._at = now


class RateObserver:
    """A :class:`broker.Observer` that charges calls made by other clients of the same keys
    (e.g. the dashboard's monitor under ``up --gateway``) to the gateway's models."""

    def __init__(self, models: Mapping[str, RateModel]):
        #: key id -> model
        self.models = models

    def on_call(self, event: CallEvent) -> None:
        model = self.models.get(event.key_id)
        if model is None or not event.private or event.outcome in _NOT_SENT:
            return
        model.charge(call_cost(event.method), full=event.outcome == "rate_limited")

    def on_refresh(self, event: RefreshEvent) -> None:
        return
