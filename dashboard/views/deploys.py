"""The deploys on the pages: the latest one as a banner, the history table, which deploys fall in
a time range, and how to mark one (no Streamlit calls).

A deploy is said the same way everywhere: its version, when it was marked (UTC, and how long ago),
on which accounts, and its verdict: verified in how long, still waiting (and for what), or failed
(why, and what to do about each check that failed).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from dashboard.checks.item import Check, CheckStatus, check_title, duration
from dashboard.deploys.verdict import deploy_ok, in_scope
from dashboard.history.deploy_book import Deploy, DeployState
from dashboard.views.markdown import escape, table
from dashboard.views.overview import STATUS_ICONS, Verdict, verdict

__all__ = [
    "HOW_TO_MARK",
    "DeployBanner",
    "clock_time",
    "deploy_banner",
    "deploys_between",
    "deploys_table",
    "duration",
    "history_frame",
    "live_verdict",
    "mark_access",
    "mark_commands",
    "marked_line",
    "open_check_lines",
    "scope_note",
    "time_ago",
]

#: what the Overview says before any deploy was marked (markdown)
HOW_TO_MARK = (
    "No deploy marked yet. When the bot's new version starts, mark it with "
    "`krakenwatch deploy mark --version V` (or `POST /api/deploys`): this page then judges that "
    "deploy, counting every check from the marker. See the *Deploys* page."
)
#: how many accounts a line names before it only counts them
_NAMED_ACCOUNTS = 4
#: the checks named in a pending deploy's headline before "and N more"
_NAMED_CHECKS = 3

Tone = Literal["success", "info", "warning", "error"]
_ICONS: dict[Tone, str] = {
    "success": STATUS_ICONS[CheckStatus.PASS].icon,
    "info": STATUS_ICONS[CheckStatus.PENDING].icon,
    "warning": ":material/warning:",
    "error": STATUS_ICONS[CheckStatus.FAIL].icon,
}


# -- words for times --------------------------------------------------------------------------


def time_ago(ts: float, now: float) -> str:
    """``"12 s ago"``, ``"4 min ago"``, ``"3 h ago"``, ``"2 d ago"``: the largest unit only."""
    s = max(0, round(now - ts))
    if s < 120:
        return f"{s} s ago"
    if s < 7200:
        return f"{s // 60} min ago"
    if s < 2 * 86400:
        return f"{s // 3600} h ago"
    return f"{s // 86400} d ago"


def clock_time(ts: float, now: float) -> str:
    """``"17:30:57 UTC"`` on the day of ``now`` (UTC), else with its date."""
    same_day = time.gmtime(ts)[:3] == time.gmtime(now)[:3]
    return time.strftime("%H:%M:%S UTC" if same_day else "%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


# -- one deploy -------------------------------------------------------------------------------


def _accounts(accounts: Sequence[str]) -> str:
    if not accounts:
        return "no account"
    if len(accounts) > _NAMED_ACCOUNTS:
        return f"{len(accounts)} accounts"
    return ", ".join(accounts)


def marked_line(deploy: Deploy, now: float) -> str:
    """``**v1.4.2**, marked 17:30:57 UTC (4 min ago) on MASTER, USER:daivon`` (markdown)."""
    return (
        f"**{escape(deploy.title)}**, marked {clock_time(deploy.marked_at, now)} "
        f"({time_ago(deploy.marked_at, now)}) on {escape(_accounts(deploy.accounts))}"
    )


def _status(check: Mapping[str, Any]) -> CheckStatus | None:
    try:
        return CheckStatus(str(check.get("status")))
    except ValueError:
        return None


def _check_name(check: Mapping[str, Any]) -> str:
    title = check_title(str(check.get("name", "?")))
    account = check.get("account")
    return f"{title} ({account})" if account else title


def open_check_lines(checks: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each open check of a deploy (the ``failing`` documents) as markdown: its status, title,
    account and detail, and for a failing one what to do, in full."""
    lines = []
    for check in checks:
        status = _status(check)
        found = STATUS_ICONS.get(status) if status is not None else None
        icon = found.markdown if found else ""
        account = check.get("account")
        where = f" · {escape(str(account))}" if account else ""
        line = (
            f"{icon} {check.get('status')} · **{escape(check_title(str(check.get('name'))))}**"
            f"{where}: {escape(str(check.get('detail') or ''))}"
        )
        if status == CheckStatus.FAIL:
            remedy = check.get("remedy") or "See the timeline for the account's recent errors."
            line += f"\n\n**What to do:** {escape(str(remedy))}"  # a paragraph of its own
        lines.append(line)
    return lines


@dataclass(frozen=True)
class DeployBanner:
    """The latest deploy, as the Overview leads with it: ``tone`` says which Streamlit alert."""

    tone: Tone
    headline: str
    #: the verdict's reason, for a failed deploy (markdown; empty otherwise)
    reason: str = ""
    #: the checks it waits for or that failed, one markdown paragraph each
    checks: list[str] = field(default_factory=list)

    @property
    def icon(self) -> str:
        return _ICONS[self.tone]

    @property
    def body(self) -> str:
        """Everything as one markdown text, for one alert box."""
        return "\n\n".join(p for p in (self.headline, self.reason, *self.checks) if p)


def _waiting_for(checks: Sequence[Mapping[str, Any]]) -> str:
    names = [_check_name(c) for c in checks]
    more = len(names) - _NAMED_CHECKS
    shown = ", ".join(names[:_NAMED_CHECKS]) + (f" and {more} more" if more > 0 else "")
    return escape(shown)


def deploy_banner(deploy: Deploy, now: float) -> DeployBanner:
    """``deploy`` as a banner: verified (success), pending (info, or warning while a check fails
    within the grace period), failed (error, with the reason and each failing check's remedy)."""
    marked = marked_line(deploy, now)
    seconds = deploy.seconds_to_verdict
    if deploy.state == DeployState.VERIFIED:
        return DeployBanner("success", f"{marked} — verified in {duration(seconds or 0)}")
    lines = open_check_lines(deploy.failing)
    if deploy.state == DeployState.FAILED:
        after = f" after {duration(seconds)}" if seconds is not None else ""
        return DeployBanner("error", f"{marked} — **failed**{after}", escape(deploy.reason), lines)
    waited = duration(now - deploy.marked_at)
    if not deploy.failing:
        return DeployBanner("info", f"{marked} — not verified yet, waiting {waited}")
    failing = any(_status(c) == CheckStatus.FAIL for c in deploy.failing)
    headline = f"{marked} — not verified yet, waiting {waited} for {_waiting_for(deploy.failing)}"
    # a check failing within the grace period: the reason says when the grace period ends
    reason = escape(deploy.reason) if failing else ""
    return DeployBanner("warning" if failing else "info", headline, reason, lines)


def live_verdict(checks: Sequence[Check], deploy: Deploy | None) -> Verdict:
    """The Overview's live verdict, the same as ``/api/verify``'s ``ok``: once a deploy is
    marked, on its accounts only, and never "verified" while that deploy is failed."""
    if deploy is None:
        return verdict(checks)
    result = verdict([c for c in checks if in_scope(c, deploy.accounts)])
    if result.ok and not deploy_ok(checks, deploy):
        headline = f"Not verified: {deploy.title} is {deploy.state}"
        return dataclasses.replace(result, ok=False, headline=headline)
    return result


def scope_note(deploy: Deploy, labels: Sequence[str]) -> str | None:
    """When ``deploy`` is judged on some of the accounts (``labels``: all of them): which ones
    the checklist shows that do not count for it (markdown); ``None`` when it judges them all."""
    outside = [label for label in labels if label not in deploy.accounts]
    if not outside:
        return None
    return (
        f"**{escape(deploy.title)}** is judged on {escape(_accounts(deploy.accounts))} only: the "
        f"checks of {escape(_accounts(outside))} below do not count for it."
    )


# -- many deploys -----------------------------------------------------------------------------


def deploys_between(deploys: Sequence[Deploy], start: float, end: float) -> list[Deploy]:
    """The deploys marked within ``[start, end]``, oldest first."""
    return sorted((d for d in deploys if start <= d.marked_at <= end), key=lambda d: d.marked_at)


def _verdict(deploy: Deploy) -> str:
    seconds = deploy.seconds_to_verdict
    return "–" if seconds is None else duration(seconds)


HISTORY_COLUMNS = [
    "id",
    "version",
    "accounts",
    "marked at",
    "state",
    "time to verdict",
    "reason",
    "note",
]


def history_frame(deploys: Sequence[Deploy]) -> pd.DataFrame:
    """The deploy history table, newest first (the order of :meth:`DeployJudge.recent`)."""
    rows = [
        (
            d.id,
            d.version or "–",
            ", ".join(d.accounts),
            pd.Timestamp(d.marked_at, unit="s", tz="UTC"),
            str(d.state),
            _verdict(d),
            d.reason,
            d.note,
        )
        for d in sorted(deploys, key=lambda d: (d.marked_at, d.id), reverse=True)
    ]
    frame = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    frame["marked at"] = pd.to_datetime(frame["marked at"], utc=True)  # datetime even when empty
    return frame


def deploys_table(deploys: Sequence[Deploy], now: float) -> str:
    """The deploys under the timeline's chart, as a markdown table (oldest first)."""
    return table(
        ["marked", "version", "accounts", "state", "time to verdict"],
        (
            [
                clock_time(d.marked_at, now),
                f"**{escape(d.title)}**",
                escape(_accounts(d.accounts)),
                f"{STATUS_ICONS[_STATE_STATUS[d.state]].markdown} {d.state}",
                _verdict(d),
            ]
            for d in deploys
        ),
    )


_STATE_STATUS = {
    DeployState.VERIFIED: CheckStatus.PASS,
    DeployState.PENDING: CheckStatus.PENDING,
    DeployState.FAILED: CheckStatus.FAIL,
}


# -- how to mark one --------------------------------------------------------------------------


def mark_commands(account: str | None) -> str:
    """The commands that mark a deploy and wait for its verdict (a bash block's text)."""
    one = f" --account {account}" if account else ""
    return "\n".join(
        [
            "# when the bot's new version has started (every account, or some):",
            'krakenwatch deploy mark --version VERSION --note "what changed"',
            *([f"krakenwatch deploy mark --version VERSION{one}"] if account else []),
            "# the deploy gate: exit 0 once verified, 1 when it failed or timed out",
            "krakenwatch deploy wait --timeout 600",
            "# or over HTTP",
            "curl -X POST http://127.0.0.1:8501/api/deploys \\",
            '  -H "Authorization: Bearer $KRAKENWATCH_ADMIN_TOKEN" \\',
            "  -H 'Content-Type: application/json' \\",
            '  -d \'{"version": "VERSION", "note": "what changed"}\'',
        ]
    )


def mark_access(has_token: bool, has_password: bool) -> str:
    """Who may mark a deploy on this server (markdown)."""
    if has_token and has_password:
        how = "with `KRAKENWATCH_ADMIN_TOKEN` or the dashboard password as the bearer token"
    elif has_token:
        how = "with `KRAKENWATCH_ADMIN_TOKEN` as the bearer token"
    elif has_password:
        how = "with the dashboard password as the bearer token (or HTTP Basic)"
    else:
        how = (
            "from this machine only (no `KRAKENWATCH_ADMIN_TOKEN` or password is set; set one to "
            "mark from a pipeline elsewhere)"
        )
    return (
        f"Marking a deploy is an authenticated API action, not a button: it is accepted {how}. "
        "The commands talk to `http://127.0.0.1:8501` unless given `--url`; accounts default to "
        "all of them."
    )
