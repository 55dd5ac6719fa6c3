"""The accounts' current status, held under one lock.

The pollers, the broker-to-event bridge and the snapshot all go through :class:`AccountBoard`: no
other part holds the lock or the statuses. A change of state or permission is published as an
event; counters and readings change quietly (the events that explain them come from elsewhere).

Readers get one read-only copy per change of an account: :meth:`AccountBoard.statuses` copies an
account only when it changed since the last read, so a scrape of 200 unchanged accounts copies
nothing, and a reader can tell that an account changed by the copy being a new object.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from broker import KrakenError, NonceStatus
from dashboard.config import Settings
from dashboard.monitor import events as ev
from dashboard.monitor.events import Publisher
from dashboard.monitor.status import AccountState, AccountStatus, ErrorInfo
from dashboard.monitor.streamstatus import StreamStatus

__all__ = ["PERMISSION_NAMES", "AccountBoard", "detached", "initial_statuses"]

_T = TypeVar("_T")

#: the key permissions as Kraken's API key page names them
PERMISSION_NAMES = {
    "funds": "Query Funds",
    "orders": "Query Open Orders & Trades",
    "trade": "Create & Modify Orders",
}


def initial_statuses(settings: Settings, now: float) -> list[AccountStatus]:
    """One status per configured account (``connecting``), then one per account whose variables
    are invalid (``invalid_config``, with the problem as its reason)."""
    shared = settings.discovery.shared_keys
    statuses = [
        AccountStatus(
            label=a.label,
            masked_key=a.masked_key,
            key_id=a.key_id,
            nonce_unit=a.nonce_unit,
            state=AccountState.CONNECTING,
            since=now,
            shared_with=[x for x in shared.get(a.key_id, []) if x != a.label],
        )
        for a in settings.accounts
    ]
    labels = {s.label for s in statuses}
    for problem in settings.discovery.errors:
        if problem.account and problem.account not in labels:
            labels.add(problem.account)
            statuses.append(
                AccountStatus(
                    label=problem.account,
                    masked_key="",
                    key_id="",
                    nonce_unit="-",
                    state=AccountState.INVALID_CONFIG,
                    since=now,
                    reason=str(problem),
                    configured=False,
                )
            )
    return statuses


def detached(status: _T) -> _T:
    """A copy of a status (a dataclass) that shares nothing mutable with it: its dicts, lists and
    non-frozen dataclasses (the stream's status) copied, the rest shared (strings, numbers, enums,
    frozen dataclasses, and the immutable values the containers hold). Much cheaper than
    ``copy.deepcopy``, which copies the immutable values too."""
    found = object.__new__(type(status))
    fields = found.__dict__
    fields.update(status.__dict__)
    for name, value in fields.items():
        kind = type(value)
        if kind in _PLAIN:
            continue
        if kind is dict:
            fields[name] = dict(value)
        elif kind is list:
            fields[name] = list(value)
        elif dataclasses.is_dataclass(value) and not _frozen(kind):
            fields[name] = detached(value)
    return found


#: values a status shares with its copy as they are
_PLAIN = frozenset({str, int, float, bool, type(None)})


def _frozen(cls: type[Any]) -> bool:
    params = getattr(cls, "__dataclass_params__", None)
    return bool(params is not None and params.frozen)


class AccountBoard:
    """Every account's :class:`AccountStatus`; reads return shared read-only copies."""

    def __init__(self, statuses: Iterable[AccountStatus], publish: Publisher):
        self._lock = threading.Lock()
        self._accounts = {s.label: s for s in statuses}
        #: the copy handed out for each account since its last change (dropped by a change)
        self._copies: dict[str, AccountStatus] = {}
        self._publish = publish

    # -- reading ------------------------------------------------------------------------------

    def statuses(self) -> list[AccountStatus]:
        """Every status, in configuration order: a copy made after the account's last change,
        shared by every reader until the next one (read-only: never change it)."""
        with self._lock:
            return [self._copy(label, status) for label, status in self._accounts.items()]

    def unconfigured(self) -> list[tuple[str, str]]:
        """``(label, reason)`` of every account whose variables are invalid (no copy made)."""
        with self._lock:
            return [(s.label, s.reason) for s in self._accounts.values() if not s.configured]

    def state(self, label: str) -> AccountState:
        with self._lock:
            return self._accounts[label].state

    def _holds(self, label: str, test: Callable[[AccountStatus], bool]) -> bool:
        """Whether ``test`` holds for ``label``'s status now (a change it makes needless is
        skipped, and the account's shared copy stays)."""
        with self._lock:
            return test(self._accounts[label])

    def _copy(self, label: str, status: AccountStatus) -> AccountStatus:
        found = self._copies.get(label)
        if found is None:
            found = self._copies[label] = detached(status)
        return found

    # -- transitions (published) --------------------------------------------------------------

    def set_state(self, label: str, state: AccountState, reason: str) -> None:
        """Move ``label`` to ``state``; a new state is published, a new reason only recorded."""
        if self._holds(label, lambda s: s.state == state and s.reason == reason):
            return
        with self._status(label) as status:
            previous = status.state
            if previous == state and status.reason == reason:
                return
            status.reason = reason
            if previous == state:
                return
            status.state, status.since = state, self._publish.clock()
        self._publish(
            ev.STATE,
            label,
            f"{previous} -> {state}: {reason}",
            {"state": state, "previous": previous, "reason": reason},
        )

    def set_permission(
        self, label: str, permission: str, granted: bool | None, code: str | None
    ) -> None:
        """Record what a call told about ``permission`` (None: nothing proven); changes published."""
        if self._holds(
            label, lambda s: permission in s.permissions and s.permissions[permission] == granted
        ):
            return
        with self._status(label) as status:
            changed = status.permissions.get(permission) != granted
            status.permissions[permission] = granted
        if changed:
            said = "unknown" if granted is None else "granted" if granted else "missing"
            if granted is False and code:
                said += f" ({code})"
            self._publish(
                ev.PERMISSION,
                label,
                f"{PERMISSION_NAMES.get(permission, permission)}: {said}",
                {"permission": permission, "granted": granted, "code": code},
            )

    # -- readings -----------------------------------------------------------------------------

    def record_success(
        self, label: str, balances: dict[str, str] | None, nonce: NonceStatus
    ) -> None:
        """A Balance call succeeded: fresh balances (``None``: the stream's newer ones stay) and
        nonce reading; failures are forgotten."""
        now = self._publish.clock()
        with self._status(label) as status:
            status.last_success_at = now
            if balances is not None:
                status.balances, status.balances_at = balances, now
            status.balance_error = None
            status.nonce_status = nonce
            status.auth_failures, status.stopped = 0, False

    def record_stream_balances(self, label: str, balances: dict[str, str]) -> None:
        """The stream told the balances (a snapshot, or one asset changed): current as of now."""
        now = self._publish.clock()
        with self._status(label) as status:
            status.balances, status.balances_at, status.balance_error = balances, now, None

    def balances(self, label: str) -> dict[str, str] | None:
        with self._lock:
            found = self._accounts[label].balances
            return None if found is None else dict(found)

    def change_stream(self, label: str, change: Callable[[StreamStatus], object]) -> None:
        """Apply ``change`` to ``label``'s stream status under the lock (it must be quick)."""
        with self._status(label) as status:
            change(status.stream)

    def stream(self, label: str) -> StreamStatus:
        """A copy of ``label``'s stream status."""
        with self._lock:
            return copy.copy(self._accounts[label].stream)

    def record_failure(self, label: str, exc: KrakenError) -> None:
        """A call failed: the error is kept; a failed Balance makes the balance unknown."""
        info = ErrorInfo.from_error(exc, self._publish.clock())
        with self._status(label) as status:
            status.last_error = info
            if exc.method == "Balance" or exc.method is None:
                status.balance_error = f"{info.kind}: {info.code or info.message}"

    def record_auth_failures(self, label: str, failures: int, *, stopped: bool) -> None:
        with self._status(label) as status:
            status.auth_failures, status.stopped = failures, stopped

    # -- counters (for the broker-to-event bridge) --------------------------------------------

    def count_refresh(self, label: str) -> None:
        with self._status(label) as status:
            status.refresh_count += 1

    def count_invalid_nonce(self, label: str) -> None:
        with self._status(label) as status:
            status.invalid_nonce_count += 1

    def note_call(self, label: str, at: float) -> None:
        with self._status(label) as status:
            status.last_call_at = at

    @contextmanager
    def _status(self, label: str) -> Iterator[AccountStatus]:
        """``label``'s status, to change under the lock (its shared copy is made anew)."""
        with self._lock:
            self._copies.pop(label, None)
            yield self._accounts[label]
