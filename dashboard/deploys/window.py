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
from collections.abc import Mapping

from dashboard.checks.gateway_items import bot_calls
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


class DeployWindow:
    """What happened since the latest marker. Closed (nothing re-based) until :meth:`open`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.marked_at: float | None = None
        self._nonces: Counter[str] = Counter()
        self._matches: Counter[str] = Counter()
        #: the gateway's counters at the marker: kraken errors per account and code, calls
        self._errors_at_mark: dict[str, Mapping[str, int]] = {}
        self._totals_at_mark: Mapping[tuple[str, str, str], int] = {}
        self._gateway_started_at: float | None = None
        #: the accounts whose bots called through the gateway before the marker
        self._used_before: frozenset[str] = frozenset()
        #: label -> (the status copy it was made from, its re-based copy)
        self._copies: dict[str, tuple[AccountStatus, AccountStatus]] = {}

    def open(self, marked_at: float, snapshot: Snapshot, counts: Counts | None = None) -> None:
        """Count from ``marked_at``: from ``counts`` (read back after a restart), else from 0;
        the gateway's counters in ``snapshot`` are the baseline when it ran before the marker."""
        traffic = snapshot.gateway
        with self._lock:
            self.marked_at = marked_at
            self._nonces, self._matches = counts if counts is not None else (Counter(), Counter())
            self._errors_at_mark, self._totals_at_mark = {}, {}
            self._gateway_started_at = None
            self._used_before = frozenset[str]()
            if traffic is not None and traffic.started_at < marked_at:
                self._errors_at_mark = {a: dict(c) for a, c in traffic.kraken_errors.items()}
                self._totals_at_mark = dict(traffic.totals)
                self._gateway_started_at = traffic.started_at
                self._used_before = frozenset(
                    a for a in traffic.kraken_errors if bot_calls(traffic, a)
                )
            self._copies.clear()

    def on_event(self, event: Event) -> None:
        """A monitor listener: counts the invalid nonces and bot-log matches since the marker."""
        if event.kind not in (ev.INVALID_NONCE, ev.LOG_MATCH):
            return
        with self._lock:
            if self.marked_at is None or event.ts < self.marked_at:
                return
            if event.kind == ev.INVALID_NONCE and event.account is not None:
                self._nonces[event.account] += 1
            elif event.kind == ev.LOG_MATCH:
                self._matches[str(event.data.get("pattern"))] += 1

    def rebase(self, snapshot: Snapshot) -> Snapshot:
        """``snapshot`` counted from the marker (itself while no deploy was marked)."""
        with self._lock:
            if self.marked_at is None:
                return snapshot
            accounts = [self._account(a) for a in snapshot.accounts]
            matches = dict(self._matches)
            gateway = snapshot.gateway
            if gateway is not None and gateway.started_at == self._gateway_started_at:
                gateway = dataclasses.replace(
                    gateway,
                    kraken_errors={
                        account: {
                            code: n - self._errors_at_mark.get(account, {}).get(code, 0)
                            for code, n in codes.items()
                        }
                        for account, codes in gateway.kraken_errors.items()
                    },
                    totals={
                        key: n - self._totals_at_mark.get(key, 0)
                        for key, n in gateway.totals.items()
                        if n > self._totals_at_mark.get(key, 0)
                    },
                )
            return dataclasses.replace(
                snapshot,
                accounts=accounts,
                log_matches=matches,
                gateway=gateway,
                counting_since=self.marked_at,
                gateway_used_before=self._used_before,
            )

    def _account(self, a: AccountStatus) -> AccountStatus:
        """``a`` counted from the marker: one copy per status copy and count, so that readers
        that cache by copy (the gauges) still see an unchanged account as the same object."""
        nonces = self._nonces.get(a.label, 0)
        made = self._copies.get(a.label)
        if made is not None and made[0] is a and made[1].invalid_nonce_count == nonces:
            return made[1]
        rebased = dataclasses.replace(a, invalid_nonce_count=nonces, counting_since=self.marked_at)
        self._copies[a.label] = (a, rebased)
        return rebased
