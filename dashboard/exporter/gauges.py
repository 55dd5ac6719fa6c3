"""The gauges of ``/metrics`` that describe "now", written from the monitor's snapshot at scrape time.

Freshness is judged when Prometheus asks, but most of what these gauges say changes only when an
account does: at 200 accounts they are thousands of lines, and writing them anew on every scrape
(copying every account, building the checklist, rendering each line) was most of a scrape.
:class:`SnapshotGauges` keeps, per account, the lines written for its last status copy (the board
hands out a new copy per change: :mod:`dashboard.monitor.board`), whether it was up at that time and,
with a gateway in the process, the state of its trading guard for the account (halts, other
writers: the ``halted`` and ``dedicated_key`` items); an account's lines are written again only
when one of them changed. Everything an account's lines say depends on time only through
``is_up`` (its freshness), so the cached lines are exactly what a rebuild would write. The handful of global lines is written on every scrape.

The text follows the Prometheus exposition format as ``prometheus_client`` writes it (HELP and
TYPE, then the samples of one family together). To add a per-account gauge: a :class:`Family` in
:data:`ACCOUNT_FAMILIES` and its samples in :func:`account_samples`, as a function of the account's
status and ``up`` alone (that is what the cache is keyed on). A gauge that also depends on
something else that changes (a price table, say) belongs with the global lines, written on every
scrape, or needs that input in the cache key of :meth:`SnapshotGauges._account`.
"""

from __future__ import annotations

import platform
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client.utils import floatToGoString

import dashboard
from dashboard.checks.checklist import Check, CheckStatus, account_checks, global_checks
from dashboard.checks.guard_items import guard_state
from dashboard.config import Settings
from dashboard.monitor.status import AccountStatus, Snapshot

__all__ = ["ACCOUNT_FAMILIES", "Family", "SnapshotGauges", "account_samples"]

Labels = tuple[tuple[str, str], ...]
#: prometheus_client's number format (untyped upstream)
_number: Callable[[float], str] = floatToGoString


@dataclass(frozen=True)
class Family:
    """One metric family: its name, help text and type."""

    name: str
    help: str
    type: str = "gauge"

    def header(self) -> str:
        text = self.help.replace("\\", r"\\").replace("\n", r"\n")
        return f"# HELP {self.name} {text}\n# TYPE {self.name} {self.type}\n"

    def sample(self, value: float, labels: Labels = ()) -> str:
        """One sample line (label values escaped as the text format wants)."""
        if not labels:
            return f"{self.name} {_number(value)}\n"
        inner = ",".join(f'{name}="{_escape(text)}"' for name, text in labels)
        return f"{self.name}{{{inner}}} {_number(value)}\n"


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


BUILD = Family("krakenwatch_build_info", "krakenwatch build information.")
UP = Family(
    "krakenwatch_account_up", "1 if the account's last private call succeeded and is fresh."
)
STATE = Family(
    "krakenwatch_account_state",
    "1 for the account's current connection state (the other states are absent).",
)
LAST_SUCCESS = Family(
    "krakenwatch_last_success_timestamp_seconds",
    "Unix time of the account's last successful private call.",
)
NONCE_LEAD = Family(
    "krakenwatch_nonce_lead_seconds",
    "How far the key's nonce high-water mark runs ahead of the wall clock.",
)
BALANCE = Family("krakenwatch_balance", "Balance per asset as last read from Kraken.")
CHECKS = Family(
    "krakenwatch_check_success",
    "1 if the checklist item passes, 0 if it fails or is pending (skipped items are absent).",
)
#: the per-account families, in the order they are written
ACCOUNT_FAMILIES = (UP, STATE, LAST_SUCCESS, NONCE_LEAD, BALANCE, CHECKS)

# global families, one sample each
CONFIGURED = Family("krakenwatch_accounts_configured", "Accounts configured and valid.")
CONFIG_ERRORS = Family(
    "krakenwatch_config_errors", "Configuration problems that stop an account or setting."
)
SKEW_MAX = Family(
    "krakenwatch_clock_skew_max_seconds",
    "The configured bound for the clock_skew check (KRAKENWATCH_MAX_SKEW).",
)
SKEW = Family(
    "krakenwatch_clock_skew_seconds", "Local clock minus Kraken's clock (positive: local ahead)."
)
SKEW_UNCERTAINTY = Family(
    "krakenwatch_clock_skew_uncertainty_seconds",
    "Half-width of the interval the true clock skew lies in.",
)
SKEW_SAMPLED = Family(
    "krakenwatch_clock_skew_sample_timestamp_seconds", "Unix time of the last clock skew sample."
)
STARTED = Family("krakenwatch_start_time_seconds", "Unix time the monitor started.")


def account_samples(
    a: AccountStatus, up: bool, checks: Iterable[Check], settings: Settings
) -> Iterator[tuple[Family, float, Labels]]:
    """Every per-account sample of ``a`` (``up``: whether it is up now; ``checks``: its
    checklist items now)."""
    account = ("account", a.label)
    yield UP, 1.0 if up else 0.0, (account,)
    yield STATE, 1.0, (account, ("state", str(a.state)))
    if a.last_success_at is not None:
        yield LAST_SUCCESS, a.last_success_at, (account,)
    if a.nonce_status is not None:
        yield NONCE_LEAD, a.nonce_status.lead_seconds, (account,)
    if settings.balance_metrics and a.balances and not a.balance_error:
        for asset, value in sorted(a.balances.items()):
            try:
                yield BALANCE, float(value), (account, ("asset", asset))
            except ValueError:
                continue
    yield from _check_samples(checks)


def _check_samples(checks: Iterable[Check]) -> Iterator[tuple[Family, float, Labels]]:
    for check in checks:
        if check.status != CheckStatus.SKIPPED:
            passed = 1.0 if check.status == CheckStatus.PASS else 0.0
            yield CHECKS, passed, (("account", check.account or ""), ("check", check.name))


@dataclass(frozen=True)
class _Written:
    """An account's lines per family, for one status copy, one ``up`` and one state of the
    gateway's trading guard (its halts and other writers: :func:`guard_state`)."""

    status: AccountStatus
    up: bool
    guard: tuple[object, ...]
    lines: dict[Family, str]


class SnapshotGauges:
    """Writes the snapshot gauges; see the module docstring."""

    def __init__(self, settings: Settings, snapshot: Callable[[], Snapshot]):
        self.settings = settings
        self.snapshot = snapshot
        #: how many times an account's lines (and checklist items) were written: for tests
        self.account_builds = 0
        self._written: dict[str, _Written] = {}
        self._lock = threading.Lock()

    def exposition(self) -> str:
        snap = self.snapshot()
        with self._lock:
            written = [self._account(a, snap) for a in snap.accounts]
        parts = [BUILD.header(), BUILD.sample(1.0, _build_labels())]
        for family in ACCOUNT_FAMILIES:
            if family is BALANCE and not self.settings.balance_metrics:
                continue
            parts.append(family.header())
            if family is CHECKS:
                checks = global_checks(snap, self.settings)
                parts.extend(family.sample(v, labels) for _, v, labels in _check_samples(checks))
            parts.extend(w.lines.get(family, "") for w in written)
        parts.extend(self._global_lines(snap))
        return "".join(parts)

    def _account(self, a: AccountStatus, snap: Snapshot) -> _Written:
        now = snap.taken_at
        up = a.is_up(now, self.settings.freshness_s)
        guard = guard_state(snap.gateway_guard, a.label)
        found = self._written.get(a.label)
        if found is not None and found.status is a and found.up == up and found.guard == guard:
            return found
        self.account_builds += 1
        lines: dict[Family, list[str]] = {}
        checks = account_checks(a, now, self.settings, snap.gateway_guard)
        for family, value, labels in account_samples(a, up, checks, self.settings):
            lines.setdefault(family, []).append(family.sample(value, labels))
        written = {family: "".join(text) for family, text in lines.items()}
        found = _Written(a, up, guard, written)
        self._written[a.label] = found
        return found

    def _global_lines(self, snap: Snapshot) -> Iterator[str]:
        settings = self.settings
        values: list[tuple[Family, float | None]] = [
            (CONFIGURED, len(settings.accounts)),
            (CONFIG_ERRORS, len(settings.config_errors)),
            (SKEW_MAX, settings.max_skew_s),
        ]
        if snap.skew is not None:
            values += [
                (SKEW, snap.skew.offset_s),
                (SKEW_UNCERTAINTY, snap.skew.uncertainty_s),
                (SKEW_SAMPLED, snap.skew.sampled_at),
            ]
        values.append((STARTED, snap.started_at))
        for family, value in values:
            if value is not None:
                yield family.header() + family.sample(value)


def _build_labels() -> Labels:
    return (("version", dashboard.__version__), ("python", platform.python_version()))
