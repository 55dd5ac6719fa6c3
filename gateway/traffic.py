"""What the gateway's private calls looked like lately, for a dashboard: calls per account and
client by outcome, outcomes over time, queue waits, the last errors, and Kraken's error answers per
account (the checklist's "no invalid-nonce or rate-limit answers from Kraken").

In memory and bounded (an hour of 10-second buckets, the last waits and errors); the totals count
since the gateway started. Thread-safe: the gateway's event loop records, the dashboard's page
threads read :meth:`Traffic.snapshot`, an immutable copy. Prometheus gets the same calls through
:mod:`gateway.metrics`; this is the part a page can draw without a Prometheus.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "BUCKET_S",
    "ClientAuth",
    "ErrorRecord",
    "Traffic",
    "TrafficSnapshot",
]

#: width of one bucket of the outcomes-over-time series
BUCKET_S = 10.0
#: how long buckets are kept
KEEP_S = 3600.0
#: queue waits kept per account (for percentiles)
WAITS_KEPT = 500
RECENT_ERRORS = 100
#: clients that are not bots: the dashboard's monitor (``up --gateway``), other in-process callers
IN_PROCESS_CLIENTS = frozenset({"monitor", "internal"})


@dataclass(frozen=True)
class ErrorRecord:
    """One answer that was not ``ok`` (for the dashboard's "last errors"; never a body)."""

    at: float
    client: str
    account: str
    method: str
    outcome: str
    status: int
    code: str | None
    by_gateway: bool

    @property
    def from_bot(self) -> bool:
        """A bot's call, not one of the process's own (the dashboard's monitor)."""
        return self.client not in IN_PROCESS_CLIENTS


@dataclass(frozen=True)
class ClientAuth:
    """How a named client's authentication went (its key is known; its signature may not be)."""

    #: wrong signatures in a row (0 after a right one)
    failures_in_row: int = 0
    failures: int = 0
    last_failure_at: float | None = None
    last_success_at: float | None = None


@dataclass(frozen=True)
class TrafficSnapshot:
    started_at: float
    taken_at: float
    #: ``(account, client, outcome)`` -> calls since the gateway started
    totals: Mapping[tuple[str, str, str], int]
    #: ``(bucket start, account, client, outcome, calls)``, oldest first (the last hour)
    buckets: tuple[tuple[float, str, str, str, int], ...]
    #: account -> the last queue waits in seconds, oldest first
    queue_waits: Mapping[str, tuple[float, ...]]
    #: account -> Kraken's error code -> answers since start (the watched codes from 0)
    kraken_errors: Mapping[str, Mapping[str, int]]
    #: the last answers that were not ``ok``, oldest first
    errors: tuple[ErrorRecord, ...]
    #: client credential name -> how its authentication went (clients seen since start)
    auth: Mapping[str, ClientAuth] = field(default_factory=dict)

    def calls(self, account: str | None = None) -> int:
        return sum(n for (a, _, _), n in self.totals.items() if account in (None, a))


class Traffic:
    """The recent picture of the gateway's private calls (see the module docstring)."""

    def __init__(
        self,
        accounts: Iterable[str],
        watched_codes: Iterable[str],
        *,
        clock: Callable[[], float] = time.time,
    ):
        self._clock = clock
        self._lock = threading.Lock()
        self.started_at = clock()
        self._totals: Counter[tuple[str, str, str]] = Counter()
        self._buckets: deque[tuple[float, Counter[tuple[str, str, str]]]] = deque()
        self._waits: dict[str, deque[float]] = {}
        self._kraken: dict[str, Counter[str]] = {}
        for account in accounts:
            self._kraken[account] = Counter(dict.fromkeys(watched_codes, 0))
            self._waits[account] = deque(maxlen=WAITS_KEPT)
        #: the bots' errors, and the in-process clients' (the dashboard's monitor, whose
        #: repeated probes must not push a bot's errors out)
        self._errors: deque[ErrorRecord] = deque(maxlen=RECENT_ERRORS)
        self._own_errors: deque[ErrorRecord] = deque(maxlen=RECENT_ERRORS)
        self._auth: dict[str, ClientAuth] = {}

    def record(
        self,
        client: str,
        account: str,
        outcome: str,
        *,
        kraken_codes: Iterable[str] = (),
        queue_wait_s: float | None = None,
        error: ErrorRecord | None = None,
    ) -> None:
        """One answered call; ``kraken_codes``: the error codes Kraken itself answered."""
        now = self._clock()
        start = math.floor(now / BUCKET_S) * BUCKET_S
        with self._lock:
            self._totals[(account, client, outcome)] += 1
            if not self._buckets or self._buckets[-1][0] != start:
                self._buckets.append((start, Counter()))
                while self._buckets and self._buckets[0][0] < start - KEEP_S:
                    self._buckets.popleft()
            self._buckets[-1][1][(account, client, outcome)] += 1
            if queue_wait_s is not None:
                self._waits.setdefault(account, deque(maxlen=WAITS_KEPT)).append(queue_wait_s)
            if kraken_codes:
                self._kraken.setdefault(account, Counter()).update(kraken_codes)
            if error is not None:
                own = error.client in IN_PROCESS_CLIENTS
                (self._own_errors if own else self._errors).append(error)

    def authenticated(self, client: str, ok: bool) -> None:
        """A named client's signature was right (``ok``) or wrong."""
        now = self._clock()
        with self._lock:
            before = self._auth.get(client, ClientAuth())
            if ok:
                self._auth[client] = ClientAuth(0, before.failures, before.last_failure_at, now)
            else:
                self._auth[client] = ClientAuth(
                    before.failures_in_row + 1, before.failures + 1, now, before.last_success_at
                )

    @property
    def errors(self) -> tuple[ErrorRecord, ...]:
        """The recent errors, oldest first: the bots', then the in-process clients'."""
        with self._lock:
            return (*self._errors, *self._own_errors)

    def snapshot(self) -> TrafficSnapshot:
        with self._lock:
            return TrafficSnapshot(
                started_at=self.started_at,
                taken_at=self._clock(),
                totals=dict(self._totals),
                buckets=tuple(
                    (start, account, client, outcome, n)
                    for start, counts in self._buckets
                    for (account, client, outcome), n in counts.items()
                ),
                queue_waits={a: tuple(w) for a, w in self._waits.items()},
                kraken_errors={a: dict(c) for a, c in self._kraken.items()},
                errors=(*self._errors, *self._own_errors),
                auth=dict(self._auth),
            )
