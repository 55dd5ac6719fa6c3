"""The checklist's ``trading_active`` item per account: the account placed or filled an order
since the monitor started (or since the deploy marker), as Kraken's own stream tells it.

The seed's "trading cycles begin normally", first-hand instead of from the bot's log. Required
only for the accounts in ``KRAKENWATCH_EXPECT_TRADING``; informational for the others (it passes
when they trade, else it is skipped: nothing waits for it). Without a stream nothing can be seen:
pending with the reason, never a pass or a fail on no data.
"""

from __future__ import annotations

from dashboard.checks.item import Check, CheckStatus, ago
from dashboard.config import Settings
from dashboard.monitor.status import AccountStatus
from dashboard.monitor.streamstatus import NOT_YET, ONE_SHOT, StreamState

__all__ = ["TRADING_REMEDY", "trading_check"]

NAME = "trading_active"
TRADING_REMEDY = (
    "Look at the bot: is it running and reaching its trading cycles (its log, the Timeline's "
    "EOrder errors)? Does its key have Create & Modify Orders? Is the trading counter of its "
    "pair at the threshold (Trading page)?"
)
NO_STREAM_REMEDY = (
    "Orders are seen only on the account's WebSocket stream: grant the key 'Access WebSocket "
    "API' in Kraken's API key settings, and check KRAKEN_WS_AUTH_URL and KRAKENWATCH_STREAMS."
)


def trading_check(a: AccountStatus, now: float, settings: Settings) -> Check:
    """``a``'s ``trading_active`` item at ``now``."""
    required = a.label in settings.expect_trading
    s = a.stream
    last = s.last_trade_activity_at
    if last is not None and (a.counting_since is None or last >= a.counting_since):
        placed = sum(n for (_, event), n in s.orders.items() if event == "placed")
        fills = sum(n for (_, event), n in s.orders.items() if event == "fill")
        detail = (
            f"last order placed or filled {ago(now - last)} "
            f"({placed} placed, {fills} fills since start)"
        )
        return Check(NAME, a.label, CheckStatus.PASS, detail, required=required)
    if s.reason == ONE_SHOT:
        return Check(NAME, a.label, CheckStatus.SKIPPED, s.reason, required=False)
    if s.up:
        up = ago(now - (s.connected_since or now)).removesuffix(" ago")
        said = f"no order placed or filled {a.counted} (stream up for {up})"
    elif s.state in (StreamState.OFF, StreamState.REFUSED) and s.reason != NOT_YET:
        said = f"no stream: {s.reason or s.state}"
    else:
        said = f"stream {s.state}" + (f": {s.reason}" if s.reason else "") + "; waiting for it"
    if not required:  # informational: it passes when the account trades, and waits for nothing
        detail = f"{said}; not required (KRAKENWATCH_EXPECT_TRADING does not name {a.label})"
        return Check(NAME, a.label, CheckStatus.SKIPPED, detail, required=False)
    waiting = s.state in (StreamState.CONNECTING, StreamState.DOWN) or s.reason == NOT_YET
    remedy = TRADING_REMEDY if s.up else None if waiting else NO_STREAM_REMEDY
    return Check(NAME, a.label, CheckStatus.PENDING, said, remedy)
