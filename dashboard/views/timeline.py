"""The connection timeline: state segments per account, event markers (nonce refreshes, invalid
nonces, orders and fills, the gateway's halts and resumes, other writers, dead man's switches that
failed), and the Gantt chart."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import cast

import altair as alt
import pandas as pd

from dashboard.history.deploy_book import Deploy, DeployState
from dashboard.monitor import events as ev
from dashboard.monitor.events import Event
from dashboard.monitor.guard_link import guard_detail
from dashboard.monitor.status import AccountState
from dashboard.views.trading import order_detail

__all__ = [
    "DEPLOY_DASHES",
    "MARKER_STYLES",
    "STATE_COLORS",
    "chart_height",
    "deploy_marks",
    "event_detail",
    "events_frame",
    "markers",
    "segments",
    "timeline_chart",
]

STATE_COLORS = {
    AccountState.CONNECTED: "#2e7d32",
    AccountState.DEGRADED: "#f9a825",
    AccountState.DISCONNECTED: "#c62828",
    AccountState.CONNECTING: "#90a4ae",
    AccountState.INVALID_CONFIG: "#6a1b9a",
}
MARKER_KINDS = {
    ev.NONCE_REFRESH: "nonce refresh",
    ev.INVALID_NONCE: "invalid nonce",
    ev.HALT: "halt",
    ev.RESUME: "resume",
    ev.FOREIGN_WRITER: "other writer",
    ev.CANCEL_AFTER_FAILED: "dead man's switch failed",
}
#: every marker's shape and fill: nonce markers in black, order events (an ``order`` event's
#: ``event``) and the gateway's trading guard in colours no state uses, each outlined so it
#: shows on any bar
MARKER_STYLES = {
    "nonce refresh": ("triangle-up", "#000000"),
    "invalid nonce": ("cross", "#000000"),
    "placed": ("circle", "#1e88e5"),
    "fill": ("diamond", "#00bcd4"),
    "filled": ("square", "#ffffff"),
    "cancelled": ("triangle-down", "#d81b60"),
    "expired": ("triangle-left", "#8d6e63"),
    "halt": ("triangle-right", "#ff1744"),
    "resume": ("triangle-right", "#00e676"),
    "other writer": ("wedge", "#ff9100"),
    "dead man's switch failed": ("square", "#ffd600"),
}
#: the height of the markers' legend, above the chart
MARKER_LEGEND_PX = 80
#: a deploy's line: one colour no state uses, dashed by its verdict
DEPLOY_COLOR = "#1565c0"
DEPLOY_DASHES = {
    DeployState.VERIFIED: [1, 0],
    DeployState.PENDING: [6, 4],
    DeployState.FAILED: [2, 2],
}


def _ts(value: float) -> pd.Timestamp:
    return pd.Timestamp(value, unit="s", tz="UTC")


def segments(
    events: Sequence[Event], start: float, end: float, initial: dict[str, str] | None = None
) -> pd.DataFrame:
    """State segments ``account, state, start, end, reason`` clipped to ``[start, end]``.

    ``events`` are state events in time order; ``initial`` gives each account's state at
    ``start`` (from before the window), so a window with no change still shows a bar.
    """
    current: dict[str, tuple[str, float, str]] = {
        account: (state, start, "state before the window")
        for account, state in (initial or {}).items()
    }
    rows: list[tuple[str, str, float, float, str]] = []
    for event in events:
        if event.kind != ev.STATE or event.account is None or event.ts > end:
            continue
        state = str(event.data.get("state", ""))
        reason = str(event.data.get("reason", ""))
        at = max(event.ts, start)
        if event.account in current:
            prev_state, since, prev_reason = current[event.account]
            if at > since:
                rows.append((event.account, prev_state, since, at, prev_reason))
        current[event.account] = (state, at, reason)
    for account, (state, since, reason) in current.items():
        if end > since:
            rows.append((account, state, since, end, reason))
    frame = pd.DataFrame(rows, columns=["account", "state", "start", "end", "reason"])
    frame["start"] = pd.to_datetime(frame["start"], unit="s", utc=True)
    frame["end"] = pd.to_datetime(frame["end"], unit="s", utc=True)
    return frame.sort_values(["account", "start"], ignore_index=True)


def _marker(e: Event) -> str | None:
    if e.kind == ev.ORDER:
        event = str(e.data.get("event", ""))
        return event if event in MARKER_STYLES else None
    return MARKER_KINDS.get(e.kind)


def markers(events: Sequence[Event]) -> pd.DataFrame:
    """Nonce refreshes, invalid-nonce errors, order events (placed, fill, filled, cancelled,
    expired) and the trading guard's events as points ``account, time, marker, detail``."""
    rows = [
        (e.account, _ts(e.ts), marker, event_detail(e))
        for e in events
        if (marker := _marker(e)) is not None and e.account is not None
    ]
    frame = pd.DataFrame(rows, columns=["account", "time", "marker", "detail"])
    frame["time"] = pd.to_datetime(frame["time"], utc=True)  # a datetime column even when empty
    return frame


def _mismatch_detail(data: dict[str, object]) -> str | None:
    assets = data.get("assets")
    if not isinstance(assets, dict) or not assets:
        return None
    parts = []
    for asset, sides in assets.items():
        sides = sides if isinstance(sides, dict) else {}
        parts.append(
            f"{asset} stream {sides.get('stream') or 'none'}, REST {sides.get('rest') or 'none'}"
        )
    return "REST Balance differs from the stream's: " + "; ".join(parts)


def event_detail(e: Event) -> str:
    """An event's line in the list: its detail, written out from its data for the stream's
    events (an order's event, side, volume, pair, price; a stream's change and why; a balance
    mismatch's amounts on both sides) and the trading guard's (a halt's scope, reason and who
    asked)."""
    if e.kind == ev.ORDER and e.data.get("event"):
        return order_detail(e.data)
    if e.kind == ev.STREAM and e.data.get("state"):
        previous = e.data.get("previous") or "?"
        reason = f": {e.data['reason']}" if e.data.get("reason") else ""
        return f"stream {previous} -> {e.data['state']}{reason}"
    if e.kind == ev.BALANCE_MISMATCH:
        return _mismatch_detail(e.data) or e.detail
    if e.kind in ev.GUARD_KINDS:
        return guard_detail(e.kind, e.account, e.data, e.detail)
    return e.detail


def events_frame(events: Sequence[Event]) -> pd.DataFrame:
    """The event list under the chart (newest first), ready for a table or a CSV download."""
    rows = [(_ts(e.ts), e.account or "-", e.kind, event_detail(e)) for e in events]
    frame = pd.DataFrame(rows, columns=["time", "account", "kind", "detail"])
    return frame.iloc[::-1].reset_index(drop=True)


def deploy_marks(deploys: Sequence[Deploy]) -> pd.DataFrame:
    """Deploys as vertical lines ``time, version, state, marked, accounts`` (``marked``: the
    marker's time in words, UTC)."""
    rows = [
        (
            _ts(d.marked_at),
            d.title,
            str(d.state),
            time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(d.marked_at)),
            ", ".join(d.accounts),
        )
        for d in deploys
    ]
    frame = pd.DataFrame(rows, columns=["time", "version", "state", "marked", "accounts"])
    frame["time"] = pd.to_datetime(frame["time"], utc=True)  # a datetime column even when empty
    return frame


def _time_domain(segs: pd.DataFrame, deploys: pd.DataFrame) -> list[str] | None:
    """From the first segment (or deploy) to the last one."""
    if segs.empty:
        return None
    first, last = segs["start"].min(), segs["end"].max()
    if not deploys.empty:
        first, last = min(first, deploys["time"].min()), max(last, deploys["time"].max())
    return [first.isoformat(), last.isoformat()]


def _deploy_layers(deploys: pd.DataFrame) -> list[alt.Chart]:
    """A vertical line across every account per deploy, dashed by its verdict, and its version
    written at the top."""
    rules = (
        alt.Chart(deploys)
        .mark_rule(color=DEPLOY_COLOR, strokeWidth=2)
        .encode(
            x="time:T",
            strokeDash=alt.StrokeDash(
                "state:N",
                scale=alt.Scale(
                    domain=[str(s) for s in DEPLOY_DASHES], range=list(DEPLOY_DASHES.values())
                ),
                legend=alt.Legend(orient="bottom", title="deploy"),
            ),
            tooltip=[
                alt.Tooltip("version:N", title="deploy"),
                "state:N",
                "marked:N",
                "accounts:N",
            ],
        )
    )
    labels = (
        alt.Chart(deploys)
        .mark_text(align="left", baseline="top", dx=4, dy=2, color=DEPLOY_COLOR, fontWeight="bold")
        .encode(x="time:T", y=alt.value(0), text="version:N")
    )
    return [rules, labels]


def timeline_chart(
    segs: pd.DataFrame, marks: pd.DataFrame, deploys: pd.DataFrame | None = None
) -> alt.LayerChart:
    """Gantt bars of states per account, with markers on top (nonce refreshes and invalid nonces
    in black, orders and fills in colour: :data:`MARKER_STYLES`), and a vertical line per deploy
    (``deploys``: :func:`deploy_marks`).

    The time axis spans from the first segment to the last one, so a short history is readable.
    """
    states = [str(s) for s in STATE_COLORS]
    colors = list(STATE_COLORS.values())
    deploys = deploy_marks([]) if deploys is None else deploys
    domain = _time_domain(segs, deploys)
    x_scale = alt.Scale(domain=domain) if domain else alt.Undefined
    bars = (
        alt.Chart(segs)
        .mark_bar(height={"band": 0.7})
        .encode(
            x=alt.X("start:T", title="time (UTC)", scale=x_scale, axis=alt.Axis(format="%H:%M:%S")),
            x2="end:T",
            y=alt.Y("account:N", title=None, sort="ascending"),
            color=alt.Color(
                "state:N",
                scale=alt.Scale(domain=states, range=colors),
                legend=alt.Legend(orient="bottom", title="state"),
            ),
            tooltip=["account:N", "state:N", "start:T", "end:T", "reason:N"],
        )
    )
    layers = [bars, _marker_layer(marks)] if not marks.empty else [bars]
    if not deploys.empty:
        layers += _deploy_layers(deploys)
    layered = alt.layer(*layers).properties(height=chart_height(segs, marks) - 80)
    # the markers' colours and shapes are their own scales (one legend, above the chart), not
    # the states'
    resolved = layered.resolve_scale(color="independent", shape="independent")
    return cast(alt.LayerChart, resolved)


def _marker_layer(marks: pd.DataFrame) -> alt.Chart:
    """The markers present in ``marks``, each in its shape and fill (one legend for both)."""
    shown = [m for m in MARKER_STYLES if m in set(marks["marker"])]
    legend = alt.Legend(orient="top", title="marker")
    points = (
        alt.Chart(marks)
        .mark_point(filled=True, size=80, stroke="#000000", strokeWidth=0.8)
        .encode(
            x="time:T",
            y=alt.Y("account:N", sort="ascending"),
            shape=alt.Shape(
                "marker:N",
                scale=alt.Scale(domain=shown, range=[MARKER_STYLES[m][0] for m in shown]),
                legend=legend,
            ),
            color=alt.Color(
                "marker:N",
                scale=alt.Scale(domain=shown, range=[MARKER_STYLES[m][1] for m in shown]),
                legend=legend,
            ),
            tooltip=["account:N", "marker:N", "time:T", "detail:N"],
        )
    )
    return cast(alt.Chart, points)


def chart_height(segs: pd.DataFrame, marks: pd.DataFrame | None = None) -> int:
    """Pixels for the chart: a readable row per account (plus axis and legends; and the
    markers' legend above it when ``marks`` has any)."""
    rows = max(1, segs["account"].nunique()) if not segs.empty else 1
    above = MARKER_LEGEND_PX if marks is not None and not marks.empty else 0
    return min(1400, 120 + 32 * rows) + above
