"""Nonce & clock: per-key nonce figures, refresh/rejection history, skew history, diagnoses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import altair as alt
import pandas as pd

from broker import NONCE_DIAGNOSES, InvalidNonceError, NonceUnitDowngradeError
from dashboard.monitor import events as ev
from dashboard.monitor.events import Event
from dashboard.monitor.status import AccountStatus, Snapshot

__all__ = [
    "STRANDED_AFTER_S",
    "Diagnosis",
    "diagnose",
    "nonce_activity",
    "nonce_activity_chart",
    "nonce_table",
    "skew_chart",
    "skew_history",
]

#: a high-water mark this far ahead of the wall clock makes the key "stranded"
STRANDED_AFTER_S = 60.0


@dataclass(frozen=True)
class Diagnosis:
    account: str | None
    cause: str  # one of NONCE_DIAGNOSES' keys
    detail: str
    remedy: str


def nonce_stores(snapshot: Snapshot) -> list[tuple[str, bool]]:
    """Each store the accounts' keys are coordinated through, and whether it lost its data."""
    found = dict.fromkeys(a.nonce_status.store for a in snapshot.accounts if a.nonce_status)
    return [(store, "lost its data" in store) for store in found if store]


def nonce_table(snapshot: Snapshot) -> pd.DataFrame:
    rows = []
    for a in snapshot.accounts:
        nonce = a.nonce_status
        rows.append(
            (
                a.label,
                a.masked_key,
                a.key_id,
                nonce.unit if nonce else a.nonce_unit,
                str(nonce.high_water) if nonce else "",
                round(nonce.lead_seconds, 3) if nonce else None,
                a.refresh_count,
                a.invalid_nonce_count,
                nonce.store if nonce else "",
            )
        )
    return pd.DataFrame(
        rows,
        columns=[
            "account",
            "key",
            "key id",
            "unit",
            "last nonce",
            "lead over clock (s)",
            "refreshes",
            "invalid nonces",
            "nonce store",
        ],
    )


def nonce_activity(events: Sequence[Event], bucket: str = "1min") -> pd.DataFrame:
    """Refreshes and rejections per account and time bucket: ``time, account, kind, count``."""
    rows = [
        (
            pd.Timestamp(e.ts, unit="s", tz="UTC").floor(bucket),
            e.account,
            "refresh" if e.kind == ev.NONCE_REFRESH else "invalid nonce",
        )
        for e in events
        if e.kind in (ev.NONCE_REFRESH, ev.INVALID_NONCE)
    ]
    frame = pd.DataFrame(rows, columns=["time", "account", "kind"])
    return frame.groupby(["time", "account", "kind"]).size().reset_index(name="count")


def nonce_activity_chart(activity: pd.DataFrame) -> alt.Chart:
    """One row per account: a mark per minute with refreshes or rejections, sized by count."""
    chart = (
        alt.Chart(activity)
        .mark_circle(opacity=0.8)
        .encode(
            x=alt.X("time:T", title="time (UTC)", axis=alt.Axis(format="%H:%M")),
            y=alt.Y("account:N", title=None),
            size=alt.Size("count:Q", title="per minute"),
            color=alt.Color(
                "kind:N",
                scale=alt.Scale(domain=["refresh", "invalid nonce"], range=["#1565c0", "#c62828"]),
            ),
            tooltip=["account:N", "kind:N", "time:T", "count:Q"],
        )
    )
    return cast(alt.Chart, chart)


def skew_history(events: Sequence[Event]) -> pd.DataFrame:
    rows = []
    for e in events:
        if e.kind != ev.SKEW:
            continue
        offset, unc = float(e.data.get("offset_s", 0.0)), float(e.data.get("uncertainty_s", 0.0))
        rows.append((pd.Timestamp(e.ts, unit="s", tz="UTC"), offset, offset - unc, offset + unc))
    return pd.DataFrame(rows, columns=["time", "offset_s", "low_s", "high_s"])


def skew_chart(skew: pd.DataFrame) -> alt.LayerChart:
    """The skew samples as a line, with the band the true skew lies in."""
    band = (
        alt.Chart(skew)
        .mark_area(opacity=0.3)
        .encode(
            x=alt.X("time:T", title="time (UTC)"),
            y=alt.Y("low_s:Q", title="seconds"),
            y2="high_s:Q",
        )
    )
    line = (
        alt.Chart(skew)
        .mark_line(point=True)
        .encode(
            x="time:T",
            y="offset_s:Q",
            tooltip=["time:T", "offset_s:Q", "low_s:Q", "high_s:Q"],
        )
    )
    return cast(alt.LayerChart, band + line)


STRANDED_REMEDY = (
    "Nonces keep counting up from the high-water mark, so nothing fails; but any other program on "
    "this key must use higher nonces. Create a new key if the lead keeps growing."
)
CLOCK_BEHIND_REMEDY = (
    "Synchronise the clock with NTP (chrony or systemd-timesyncd); nonces started after a clock "
    "step back can fall below the high-water mark."
)


def diagnose(snapshot: Snapshot, max_skew_s: float) -> list[Diagnosis]:
    """What is wrong with nonces and clocks right now, and what to do about it."""
    found = [d for a in snapshot.accounts for d in _account_diagnoses(a)]
    skew = snapshot.skew
    if skew is not None and skew.offset_s < -max_skew_s:
        said = f"this host is {-skew.offset_s:.3f} s behind Kraken"
        found.append(Diagnosis(None, "clock_behind", said, CLOCK_BEHIND_REMEDY))
    return found


def _account_diagnoses(a: AccountStatus) -> list[Diagnosis]:
    found: list[Diagnosis] = []
    error = a.last_error
    if error and error.kind == InvalidNonceError.kind and error.diagnosis in NONCE_DIAGNOSES:
        said = NONCE_DIAGNOSES[error.diagnosis]
        found.append(Diagnosis(a.label, error.diagnosis, said, InvalidNonceError.remedy))
    elif a.invalid_nonce_count:
        said = f"{a.invalid_nonce_count} invalid nonce(s) since start"
        found.append(Diagnosis(a.label, "second_writer", said, InvalidNonceError.remedy))
    if error is not None and error.kind == NonceUnitDowngradeError.kind:
        remedy = NonceUnitDowngradeError.remedy
        found.append(Diagnosis(a.label, "unit_downgrade", error.message, remedy))
    lead = a.nonce_status.lead_seconds if a.nonce_status else 0.0
    if lead > STRANDED_AFTER_S:
        said = f"the high-water mark is {lead:.0f} s ahead of the wall clock"
        found.append(Diagnosis(a.label, "stranded_key", said, STRANDED_REMEDY))
    if a.shared_with:
        said = f"the same key is configured for {', '.join(a.shared_with)}"
        found.append(Diagnosis(a.label, "second_writer", said, InvalidNonceError.remedy))
    return found
