"""The Gateway page's trading guard: the halts in force, the halt form's choices and answers, the
dead man's switches, the modelled trading counters and the other writers seen, shaped from the
guard's snapshot (:class:`gateway.guardview.GuardSnapshot`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from dashboard.checks.guard_items import halt_scope, resume_command
from dashboard.checks.item import duration

if TYPE_CHECKING:
    from gateway.credentials import ClientView
    from gateway.guardview import DeadManState, GuardSnapshot, HaltRecord

__all__ = [
    "EVERY_CALLER",
    "HaltRow",
    "client_choices",
    "client_of",
    "counters_frame",
    "dead_man_frame",
    "dead_man_warnings",
    "duration",
    "foreign_writers_frame",
    "halt_problem",
    "halt_rows",
    "halted_message",
    "resumed_message",
]

#: the halt form's client choice that halts the whole account
EVERY_CALLER = "every caller"
#: below this share of its timeout left, a dead man's switch is about to cancel (the alert's)
DUE_SHARE = 0.25
NO_CONFIRMATION = "Tick the confirmation first: a halt refuses the account's new orders at once."
NO_REASON = (
    "Say why (a reason is required): it is shown with the halt, on the timeline and in alerts."
)


def _clock(at: float | None) -> str:
    return "-" if at is None else time.strftime("%H:%M:%S UTC", time.gmtime(at))


@dataclass(frozen=True)
class HaltRow:
    """One halt in force, as the page lists it (with its Resume button)."""

    #: names its buttons (unique per halt)
    key: str
    account: str
    client: str | None
    scope: str
    reason: str
    origin: str
    since: str
    age: str
    #: the command that lifts it
    command: str


def halt_rows(guard: GuardSnapshot, now: float) -> list[HaltRow]:
    """The halts in force, oldest first."""
    return [
        HaltRow(
            key=f"{h.account}/{h.client or '*'}",
            account=h.account,
            client=h.client,
            scope=halt_scope(h),
            reason=h.reason,
            origin=h.origin,
            since=_clock(h.at),
            age=duration(now - h.at),
            command=resume_command(h),
        )
        for h in guard.halts
    ]


def client_choices(clients: Sequence[ClientView], account: str) -> list[str]:
    """The halt form's client choices for ``account``: every caller, then its credentials."""
    return [EVERY_CALLER, *sorted(c.name for c in clients if c.account == account)]


def client_of(choice: str | None) -> str | None:
    """The client a choice of :func:`client_choices` halts (``None``: every caller)."""
    return None if choice in (None, "", EVERY_CALLER) else choice


def halt_problem(reason: str, confirmed: bool) -> str | None:
    """Why the halt form cannot be sent as filled in, or ``None``."""
    if not confirmed:
        return NO_CONFIRMATION
    if not reason.strip():
        return NO_REASON
    return None


def halted_message(record: HaltRecord) -> str:
    """What the page says once a halt is in force."""
    who = "every caller of the account" if record.client is None else f"client {record.client}"
    return (
        f"Halted {record.scope} ({who}): the gateway refuses its calls that open or change "
        f"orders from now on; cancels and queries pass. Reason: {record.reason}"
    )


def resumed_message(scope: str, resumed: bool) -> str:
    """What the page says after a Resume (``resumed``: a halt was lifted)."""
    if resumed:
        return f"Resumed {scope}: the gateway passes its orders again."
    return f"{scope} was not halted any more (resumed elsewhere meanwhile)."


def _left(d: DeadManState, now: float) -> float | None:
    left = d.seconds_left(now)
    return None if left is None else round(left, 1)


def dead_man_frame(guard: GuardSnapshot, now: float) -> pd.DataFrame:
    """Per account with ``KRAKEN_<ACCOUNT>_CANCEL_AFTER``: seconds until Kraken cancels its open
    orders, the timeout, the last re-arm, the last bot call, the failed re-arms and why."""
    rows = [
        (
            account,
            _left(d, now),
            d.timeout_s,
            _clock(d.armed_at),
            _clock(d.last_bot_call_at),
            d.failures,
            d.last_error or "",
        )
        for account, d in sorted(guard.dead_man.items())
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "account",
            "Kraken cancels in (s)",
            "timeout (s)",
            "last re-arm",
            "last bot call",
            "failed re-arms",
            "last error",
        ],
    )


def dead_man_warnings(guard: GuardSnapshot, now: float) -> list[str]:
    """What needs the operator: a switch about to cancel (its bots went quiet), or one whose
    re-arm failed."""
    said = []
    for account, d in sorted(guard.dead_man.items()):
        left = d.seconds_left(now)
        if left is not None and left < DUE_SHARE * d.timeout_s:
            said.append(
                f"{account}: Kraken cancels the account's open orders in {duration(left)} "
                f"unless a bot calls through the gateway (last bot call: "
                f"{_clock(d.last_bot_call_at)})."
            )
        if d.last_error:
            said.append(
                f"{account}: the dead man's switch could not be re-armed ({d.failures} "
                f"failure(s)): {d.last_error}"
            )
    return said


def counters_frame(guard: GuardSnapshot) -> pd.DataFrame:
    """The modelled trading counter per account and pair, against the threshold."""
    rows = [
        (
            account,
            pair,
            round(c.level, 2),
            c.threshold,
            f"{c.level / c.threshold:.0%}" if c.threshold else "-",
        )
        for account, pairs in sorted(guard.trading.items())
        for pair, c in sorted(pairs.items())
    ]
    return pd.DataFrame(rows, columns=["account", "pair", "counter", "threshold", "used"])


def foreign_writers_frame(guard: GuardSnapshot, now: float) -> pd.DataFrame:
    """The accounts on whose key another program signs: how many of the gateway's own nonces
    Kraken refused since it started, and when the last one was."""
    rows = [
        (
            account,
            count,
            _clock(at := guard.foreign_writer_at.get(account)),
            "-" if at is None else f"{duration(now - at)} ago",
        )
        for account, count in sorted(guard.foreign_writers.items())
        if count > 0
    ]
    return pd.DataFrame(rows, columns=["account", "nonces refused", "last", "ago"])
