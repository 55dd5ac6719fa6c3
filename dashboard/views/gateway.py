"""The Gateway page's data: calls per account and client, outcomes over time, queue waits and the
last errors, shaped from the gateway's traffic (:class:`gateway.traffic.TrafficSnapshot`)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import altair as alt
import pandas as pd

if TYPE_CHECKING:
    from gateway.credentials import ClientView
    from gateway.traffic import TrafficSnapshot

__all__ = [
    "OUTCOMES",
    "Totals",
    "calls_frame",
    "clients_frame",
    "errors_frame",
    "outcomes_chart",
    "outcomes_frame",
    "queue_frame",
    "totals",
]

#: the gateway's outcomes (its metrics contract), in the order the page shows them, with colours
OUTCOMES = {
    "ok": "#2e7d32",
    "kraken_error": "#f9a825",
    "invalid_nonce": "#c62828",
    "rate_limited": "#ef6c00",
    "rejected": "#6a1b9a",
    "upstream_error": "#455a64",
}


@dataclass(frozen=True)
class Totals:
    calls: int
    ok: int
    #: Kraken's invalid-nonce and rate-limit answers (what the gateway exists to prevent)
    prevented_failed: int

    @property
    def ok_share(self) -> str:
        return f"{100 * self.ok / self.calls:.1f} %" if self.calls else "-"


def totals(traffic: TrafficSnapshot) -> Totals:
    calls = sum(traffic.totals.values())
    ok = sum(n for (_, _, outcome), n in traffic.totals.items() if outcome == "ok")
    prevented = sum(
        counts.get(code, 0)
        for counts in traffic.kraken_errors.values()
        for code in ("EAPI:Invalid nonce", "EAPI:Rate limit exceeded")
    )
    return Totals(calls, ok, prevented)


def _ts(value: float) -> pd.Timestamp:
    return pd.Timestamp(value, unit="s", tz="UTC")


def calls_frame(traffic: TrafficSnapshot) -> pd.DataFrame:
    """One row per account and client: calls since the gateway started, and per outcome."""
    rows: dict[tuple[str, str], dict[str, int]] = {}
    for (account, client, outcome), n in traffic.totals.items():
        row = rows.setdefault((account, client), dict.fromkeys(OUTCOMES, 0))
        row[outcome] = row.get(outcome, 0) + n
    table = [
        (account, client, sum(counts.values()), *(counts.get(o, 0) for o in OUTCOMES))
        for (account, client), counts in sorted(rows.items())
    ]
    return pd.DataFrame(table, columns=["account", "client", "calls", *OUTCOMES])


def outcomes_frame(traffic: TrafficSnapshot) -> pd.DataFrame:
    """Calls per time bucket and outcome (every account and client together): ``time, outcome,
    calls``."""
    summed: dict[tuple[float, str], int] = {}
    for start, _account, _client, outcome, n in traffic.buckets:
        summed[(start, outcome)] = summed.get((start, outcome), 0) + n
    rows = [(_ts(start), outcome, n) for (start, outcome), n in sorted(summed.items())]
    frame = pd.DataFrame(rows, columns=["time", "outcome", "calls"])
    frame["time"] = pd.to_datetime(frame["time"], utc=True)  # a datetime column even when empty
    return frame


def outcomes_chart(frame: pd.DataFrame) -> alt.Chart:
    """Stacked bars: calls per bucket, coloured by outcome."""
    chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("time:T", title="time (UTC)", axis=alt.Axis(format="%H:%M:%S")),
            y=alt.Y("sum(calls):Q", title="calls"),
            color=alt.Color(
                "outcome:N",
                scale=alt.Scale(domain=list(OUTCOMES), range=list(OUTCOMES.values())),
                legend=alt.Legend(orient="bottom", title="outcome"),
            ),
            tooltip=["time:T", "outcome:N", "calls:Q"],
        )
    )
    return cast(alt.Chart, chart)


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def queue_frame(
    traffic: TrafficSnapshot, accounts: Iterable[Mapping[str, Any]] = ()
) -> pd.DataFrame:
    """Per account: the recent queue waits (median, 95th percentile, max, in ms) and, from the
    gateway's health document's ``accounts``, what waits now and the modelled call counter."""
    now = {str(a["account"]): a for a in accounts}
    rows = []
    for account in dict.fromkeys([*traffic.queue_waits, *now]):
        waits = traffic.queue_waits.get(account, ())
        live = now.get(account, {})
        rows.append(
            (
                account,
                len(waits),
                round(1000 * statistics.median(waits), 1) if waits else None,
                round(1000 * _percentile(waits, 0.95), 1) if waits else None,
                round(1000 * max(waits), 1) if waits else None,
                live.get("queue_depth"),
                live.get("rate_level"),
            )
        )
    return pd.DataFrame(
        rows,
        columns=[
            "account",
            "recent calls",
            "median wait (ms)",
            "p95 wait (ms)",
            "max wait (ms)",
            "queued now",
            "modelled counter",
        ],
    )


def errors_frame(traffic: TrafficSnapshot, limit: int = 20) -> pd.DataFrame:
    """The last ``limit`` answers that were not ``ok``: the bots' first, then the dashboard's own
    (its permission probes repeat), each newest first; when (UTC), and who answered (Kraken, or
    the gateway itself, which sent nothing)."""
    bots = [e for e in traffic.errors if e.from_bot]
    own = [e for e in traffic.errors if not e.from_bot]
    rows = [
        (
            time.strftime("%H:%M:%S UTC", time.gmtime(e.at)),
            e.client,
            e.account,
            e.method,
            e.outcome,
            e.code or "",
            "gateway" if e.by_gateway else "Kraken",
            e.status,
        )
        for e in [*reversed(bots), *reversed(own)][:limit]
    ]
    return pd.DataFrame(
        rows,
        columns=["time", "client", "account", "method", "outcome", "code", "answered by", "HTTP"],
    )


def clients_frame(clients: Sequence[ClientView], traffic: TrafficSnapshot) -> pd.DataFrame:
    """The gateway's client credentials (masked keys, never a secret), their calls since start,
    and their wrong signatures (in a row, and in all)."""
    calls: dict[str, int] = {}
    for (_, client, _), n in traffic.totals.items():
        calls[client] = calls.get(client, 0) + n
    rows = []
    for c in clients:
        auth = traffic.auth.get(c.name)
        rows.append(
            (
                c.name,
                c.account,
                "all but those that move funds" if c.allow is None else ", ".join(c.allow),
                c.masked_key,
                calls.get(c.name, 0),
                auth.failures_in_row if auth else 0,
                auth.failures if auth else 0,
            )
        )
    return pd.DataFrame(
        rows,
        columns=[
            "client",
            "account",
            "allowed methods",
            "key",
            "calls",
            "wrong signatures in a row",
            "wrong signatures",
        ],
    )
