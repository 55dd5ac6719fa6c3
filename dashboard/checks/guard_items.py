"""The checklist's items from the trading guard of a gateway running in the dashboard's process:
``halted`` per account (fails while the account, or one of its gateway clients, is halted), and
what the guard adds to ``dedicated_key`` (it fails once Kraken refused one of the gateway's own
nonces: another program signs with the key).

A halt is a fact of now, not a count since the deploy: a deploy of a halted account is not
verified until it is resumed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from dashboard.checks.item import Check, CheckStatus, ago, duration
from dashboard.monitor.status import AccountStatus

if TYPE_CHECKING:
    from gateway.guardview import GuardSnapshot, HaltRecord

__all__ = [
    "FOREIGN_WRITER_REMEDY",
    "HALTED",
    "foreign_writer_check",
    "guard_state",
    "halt_scope",
    "halted_check",
    "resume_command",
]

HALTED = "halted"
FOREIGN_WRITER_REMEDY = "another program signs with this key: find it, or give it its own key"
SHARED_KEY_REMEDY = (
    "Give each account and program its own API key; a shared key is the classic cause "
    "of invalid nonces."
)


def halt_scope(halt: HaltRecord) -> str:
    """``MASTER (every caller)`` or ``MASTER/grid-bot``."""
    return halt.scope if halt.client is not None else f"{halt.account} (every caller)"


def resume_command(halt: HaltRecord) -> str:
    """The command that lifts ``halt``."""
    client = f" --client {halt.client}" if halt.client is not None else ""
    return f"krakenwatch gateway resume {halt.account}{client}"


def halted_check(account: str, guard: GuardSnapshot, now: float) -> Check:
    """``account``'s ``halted`` item at ``now``: fails while a halt is in force on it."""
    halts = guard.halted(account)
    if not halts:
        detail = "no halt in force: the gateway passes the account's orders"
        return Check(HALTED, account, CheckStatus.PASS, detail)
    detail = "; ".join(
        f"{halt_scope(h)} halted {duration(now - h.at)} ago by {h.origin}: {h.reason}"
        for h in halts
    )
    return Check(HALTED, account, CheckStatus.FAIL, detail, _resume_remedy(halts))


def _resume_remedy(halts: Sequence[HaltRecord]) -> str:
    commands = " and ".join(f"`{resume_command(h)}`" for h in halts)
    return (
        "While halted, the gateway refuses the calls that open or change orders "
        "(EGeneral:Permission denied:halted); cancels and queries pass. Once it is safe to "
        f"trade again, resume: {commands}, the Resume button on the Gateway page, or "
        "POST /admin/resume on the gateway (bearer KRAKENWATCH_ADMIN_TOKEN)."
    )


def foreign_writer_check(a: AccountStatus, guard: GuardSnapshot | None, now: float) -> Check | None:
    """``a``'s ``dedicated_key`` item when the guard saw another writer on its key, else
    ``None`` (the item is judged as without a gateway)."""
    count = guard.foreign_writers.get(a.label, 0) if guard is not None else 0
    if guard is None or count <= 0:
        return None
    at = guard.foreign_writer_at.get(a.label)
    when = f", the last {ago(now - at)}" if at is not None else ""
    detail = (
        f"Kraken refused {count} of the gateway's own nonces (EAPI:Invalid nonce) since it "
        f"started{when}: another program signs with this key"
    )
    remedy = FOREIGN_WRITER_REMEDY
    if a.shared_with:
        detail += f"; and the same API key as {', '.join(a.shared_with)}"
        remedy += f". {SHARED_KEY_REMEDY}"
    return Check("dedicated_key", a.label, CheckStatus.FAIL, detail, remedy, required=False)


def guard_state(guard: GuardSnapshot | None, account: str) -> tuple[object, ...]:
    """What of ``guard`` the statuses of ``account``'s items depend on (the exporter writes an
    account's lines again when it changes)."""
    if guard is None:
        return ()
    halts = tuple((h.client, h.at) for h in guard.halted(account))
    return (halts, guard.foreign_writers.get(account, 0) > 0)
