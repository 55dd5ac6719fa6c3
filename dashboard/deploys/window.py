"""The counts since the deploy marker, and the monitor's snapshot re-based on them.

The monitor counts from its start; a deploy's checklist counts from the marker. The window keeps
what happened since the marker (invalid-nonce answers per account and bot-log matches per pattern,
from the monitor's events; the gateway's answers as a difference from its counters at the marker)
and re-bases a snapshot on it (:meth:`DeployWindow.rebase`), so that every checklist item, page and
gauge built from that snapshot counts from the marker.

An event counts when it was stamped at or after the marker: the check and the count happen under
one lock with the marker's opening, so an event is never counted for the wrong deploy. After a
restart of ``up`` the counts since a marker from before the start are read back from the event
database (:func:`counts_since`); the gateway in this process then started after the marker, and
all of its counts are the deploy's.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from dashboard.history.store import EventStore
from dashboard.monitor import events as ev
from dashboard.monitor.events import Event
from dashboard.monitor.status import AccountStatus, Snapshot

__all__ = ["Counts", "DeployWindow", "counts_since"]

#: (invalid-nonce answers per account, bot-log matches per pattern)
Counts = tuple[Counter[str], Counter[str]]


def counts_since(store: EventStore, marked_at: float) -> Counts:
    """The counts of the events stored since ``marked_at`` (two aggregate queries)."""
    with store.database("count the events since the deploy") as conn:
        nonces = conn.execute(
            "SELECT account, count(*) FROM events WHERE kind = ? AND ts >= ? GROUP BY account",
            (ev.INVALID_NONCE, marked_at),
        ).fetchall()
        matches = conn.execute(
            "SELECT json_extract(data, '$.pattern'), count(*) FROM events"
            " WHERE kind = ? AND ts >= ? GROUP BY 1",
            (ev.LOG_MATCH, marked_at),
        ).fetchall()
    return (
        Counter({str(a): int(n) for a, n in nonces if a is not None}),
        Counter({str(p): int(n) for p, n in matches if p is not None}),
    )


@dataclass
class _Since:
    """What the window counts from one marker (swapped whole when a marker opens)."""

    marked_at: float
    nonces: Counter[str] = field(default_factory=Counter)
    matches: Counter[str] = field(default_factory=Counter)
    #: the gateway's counters at the marker (when it ran before it): errors, calls
    errors_at_mark: dict[str, Mapping[str, int]] = field(default_factory=dict)
    totals_at_mark: Mapping[tuple[str, str, str], int] = field(default_factory=dict)
    gateway_started_at: float | None = None
    #: the accounts a bot is expected to call through the gateway on after the marker
    gateway_accounts: frozenset[str] = frozenset()


class DeployWindow:
    """What happened since the latest marker. Closed (nothing re-based) until a marker opens."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: _Since | None = None
        #: label -> (the status copy it was made from, its re-based copy)
        self._copies: dict[str, tuple[AccountStatus, AccountStatus]] = {}

    @property
    def marked_at(self) -> float | None:
        since = self._since
        return None if since is None else since.marked_at

    def open_now(
        self, clock: Callable[[], float], snapshot: Snapshot, gateway_accounts: frozenset[str]
    ) -> tuple[float, object]:
        """Open a window at ``clock()``, read under the lock that counts the events, so that an
        event is counted for the marker it was stamped after, never lost in between. The
        gateway's counters in ``snapshot`` (taken just before) are the baseline. Returns the
        marker and a token for :meth:`roll_back`."""
        with self._lock:
            previous = self._since
            since = _Since(clock(), gateway_accounts=gateway_accounts)
            self._baseline(since, snapshot)
            self._since = since
            self._copies.clear()
            return since.marked_at, previous

    def roll_back(self, token: object) -> None:
        """Reopen the window :meth:`open_now` replaced (its marker could not be recorded)."""
        assert token is None or isinstance(token, _Since)
        with self._lock:
            self._since = token
            self._copies.clear()

    def reopen(
        self, marked_at: float, snapshot: Snapshot, counts: Counts, gateway_accounts: frozenset[str]
    ) -> None:
        """After a restart: count from ``marked_at`` on top of ``counts`` read back from the
        database (the gateway of this process started after the marker: all its counts count)."""
        nonces, matches = counts
        since = _Since(marked_at, nonces, matches, gateway_accounts=gateway_accounts)
        with self._lock:
            self._baseline(since, snapshot)
            self._since = since
            self._copies.clear()

    @staticmethod
    def _baseline(since: _Since, snapshot: Snapshot) -> None:
        traffic = snapshot.gateway
        if traffic is not None and traffic.started_at < since.marked_at:
            since.errors_at_mark = {a: dict(c) for a, c in traffic.kraken_errors.items()}
            since.totals_at_mark = dict(traffic.totals)
            since.gateway_started_at = traffic.started_at

    def on_event(self, event: Event) -> None:
        """A monitor listener: counts the invalid nonces and bot-log matches since the marker."""
        if event.kind not in (ev.INVALID_NONCE, ev.LOG_MATCH):
            return
        with self._lock:
            since = self._since
            if since is None or event.ts < since.marked_at:
                return
            if event.kind == ev.INVALID_NONCE and event.account is not None:
                since.nonces[event.account] += 1
            elif event.kind == ev.LOG_MATCH:
                since.matches[str(event.data.get("pattern"))] += 1

    def rebase(self, snapshot: Snapshot) -> Snapshot:
        """``snapshot`` counted from the marker (itself while no deploy was marked)."""
        with self._lock:
            since = self._since
            if since is None:
                return snapshot
            accounts = [self._account(a, since) for a in snapshot.accounts]
            gateway = snapshot.gateway
            if gateway is not None and gateway.started_at == since.gateway_started_at:
                gateway = dataclasses.replace(
                    gateway,
                    kraken_errors={
                        account: {
                            code: n - since.errors_at_mark.get(account, {}).get(code, 0)
                            for code, n in codes.items()
                        }
                        for account, codes in gateway.kraken_errors.items()
                    },
                    totals={
                        key: n - since.totals_at_mark.get(key, 0)
                        for key, n in gateway.totals.items()
                        if n > since.totals_at_mark.get(key, 0)
                    },
                )
            return dataclasses.replace(
                snapshot,
                accounts=accounts,
                log_matches=dict(since.matches),
                gateway=gateway,
                counting_since=since.marked_at,
                gateway_bot_accounts=since.gateway_accounts,
            )

    def _account(self, a: AccountStatus, since: _Since) -> AccountStatus:
        """``a`` counted from the marker: one copy per status copy and count, so that readers
        that cache by copy (the gauges) still see an unchanged account as the same object."""
        nonces = since.nonces.get(a.label, 0)
        made = self._copies.get(a.label)
        if made is not None and made[0] is a and made[1].invalid_nonce_count == nonces:
            return made[1]
        rebased = dataclasses.replace(a, invalid_nonce_count=nonces, counting_since=since.marked_at)
        self._copies[a.label] = (a, rebased)
        return rebased
