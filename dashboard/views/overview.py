"""Overview: the verdict, the checklist (failures first) and one card per account."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dashboard.checks.checklist import Check, CheckStatus
from dashboard.checks.item import counted
from dashboard.monitor.events import Event
from dashboard.monitor.status import AccountState, AccountStatus
from dashboard.monitor.valuation import UsdPrices, describe_account, value_account
from dashboard.views.markdown import escape, table
from dashboard.views.trading import STREAM_ICONS, has_stream, order_detail, stream_summary

__all__ = [
    "STATUS_ICONS",
    "Card",
    "StatusIcon",
    "Verdict",
    "account_cards",
    "attention_card",
    "checklist_table",
    "ordered_checks",
    "stream_line",
    "verdict",
]


@dataclass(frozen=True)
class StatusIcon:
    """A Material icon (bundled with Streamlit: the same on every machine, unlike emoji)."""

    icon: str
    color: str

    @property
    def markdown(self) -> str:
        return f":{self.color}[{self.icon}]"


STATUS_ICONS = {
    CheckStatus.PASS: StatusIcon(":material/check_circle:", "green"),
    CheckStatus.FAIL: StatusIcon(":material/cancel:", "red"),
    CheckStatus.PENDING: StatusIcon(":material/hourglass_top:", "orange"),
    CheckStatus.SKIPPED: StatusIcon(":material/do_not_disturb_on:", "gray"),
}
#: the checklist lists failures first, then what is pending, then what passes
_ORDER = {CheckStatus.FAIL: 0, CheckStatus.PENDING: 1, CheckStatus.PASS: 2, CheckStatus.SKIPPED: 3}


@dataclass(frozen=True)
class Verdict:
    ok: bool
    headline: str
    failing: list[Check]
    pending: list[Check]


def verdict(checks: Sequence[Check]) -> Verdict:
    failing = [c for c in checks if c.required and c.status == CheckStatus.FAIL]
    pending = [c for c in checks if c.required and c.status == CheckStatus.PENDING]
    if failing:
        return Verdict(
            False, f"Not verified: {counted(len(failing), 'check')} failing", failing, pending
        )
    if pending:
        return Verdict(
            False,
            f"Not verified yet: waiting for {counted(len(pending), 'check')}",
            failing,
            pending,
        )
    return Verdict(True, "Deploy verified: every required check passes", failing, pending)


def ordered_checks(checks: Sequence[Check]) -> list[Check]:
    """Failing, pending, passing, then skipped; required before optional; then account, title."""
    return sorted(
        checks,
        key=lambda c: (_ORDER.get(c.status, 9), not c.required, c.account or "", c.title),
    )


def _status(check: Check) -> str:
    icon = STATUS_ICONS.get(check.status)
    return f"{icon.markdown if icon else ''} {check.status}"


def attention_card(check: Check) -> tuple[str, str]:
    """A failing item as two markdown lines: what fails (and where), and what to do, in full."""
    where = f" · {escape(check.account)}" if check.account else ""
    optional = "" if check.required else " · optional"
    headline = f"{_status(check)} · **{escape(check.title)}**{where}{optional}"
    remedy = escape(check.remedy or "See the timeline for the account's recent errors.")
    return f"{headline}  \n{escape(check.detail)}", f"**What to do:** {remedy}"


def checklist_table(checks: Sequence[Check]) -> str:
    """Every item in ``checks`` as a markdown table (cells wrap: nothing is cut off)."""
    return table(
        ["status", "check", "account", "detail", "required"],
        (
            [
                _status(c),
                escape(c.title),
                escape(c.account or "–"),
                escape(c.detail),
                "yes" if c.required else "no",
            ]
            for c in checks
        ),
    )


@dataclass(frozen=True)
class Card:
    label: str
    state: AccountState
    since: str
    last_success: str
    balance: str
    invalid_nonces: int
    #: since when ``invalid_nonces`` counts: ``"since the deploy"`` or ``"since start"``
    counted: str
    nonce_unit: str
    key: str
    reason: str
    #: the monitor waits on authentication failures (or has stopped): offer "Retry now"
    can_retry: bool = False
    #: what to do about the last error, for an account that is not connected
    remedy: str | None = None
    #: the account's stream, its open orders and last order event, in one markdown line
    stream: str = ""


def _age(now: float, ts: float | None) -> str:
    if ts is None:
        return "never"
    seconds = max(0, int(now - ts))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))


def stream_line(a: AccountStatus, now: float, last_order: Event | None = None) -> str:
    """The card's stream line (markdown): ``up for 42 s · 2 open orders · last order: fill buy
    0.01 XBT/USD @ 50000, 12 s ago``; without a stream, why (no count of open orders: it is
    not known)."""
    s = a.stream
    parts = [f"{STREAM_ICONS.get(s.state, '')} Stream {escape(stream_summary(s, now))}"]
    if has_stream(s):
        n = len(s.open_orders)
        parts.append(f"**{n}** open order{'' if n == 1 else 's'}")
    if last_order is not None:
        data = last_order.data
        detail = order_detail(data, with_id=False) if data.get("event") else last_order.detail
        parts.append(f"last order: {escape(detail)}, {_age(now, last_order.ts)}")
    return " · ".join(parts)


def account_cards(
    accounts: Sequence[AccountStatus],
    now: float,
    prices: UsdPrices,
    last_orders: Mapping[str, Event] | None = None,
) -> list[Card]:
    """One card per account; its balance valued with ``prices``; ``last_orders``: each
    account's latest ``order`` event, when it has one."""
    last_orders = last_orders or {}
    return [
        Card(
            label=a.label,
            state=a.state,
            since=_age(now, a.since),
            last_success=_age(now, a.last_success_at),
            balance=describe_account(value_account(a, prices)),
            invalid_nonces=a.invalid_nonce_count,
            counted=a.counted,
            nonce_unit=a.nonce_unit,
            key=a.masked_key,
            reason=a.reason,
            can_retry=a.auth_failures > 0,
            remedy=a.last_error.remedy
            if a.last_error and a.state != AccountState.CONNECTED
            else None,
            stream=stream_line(a, now, last_orders.get(a.label)),
        )
        for a in accounts
    ]
