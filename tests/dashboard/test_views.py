"""The pages' data shaping, unit by unit (no Streamlit)."""

from __future__ import annotations

from decimal import Decimal

from broker import NonceStatus, SkewEstimate
from dashboard import events as ev
from dashboard.checklist import Check
from dashboard.status import AccountStatus, ErrorInfo, Snapshot
from dashboard.views.balances import balance_history, balance_rows, display_balance, usd_total
from dashboard.views.nonce import diagnose, nonce_activity
from dashboard.views.overview import checks_frame, verdict
from dashboard.views.timeline import events_frame, markers, segments


def account(label: str = "MASTER", **fields: object) -> AccountStatus:
    return AccountStatus(
        label=label,
        masked_key="AbCd…wXyZ",
        key_id="k",
        nonce_unit="us",
        state="connected",
        since=0.0,
        **fields,
    )  # type: ignore[arg-type]


def test_segments_clip_to_the_window_and_carry_the_state_in() -> None:
    events = [
        ev.Event(ev.STATE, "MASTER", "", {"state": "connected"}, ts=50.0),  # before the window
        ev.Event(ev.STATE, "MASTER", "", {"state": "degraded", "reason": "503"}, ts=120.0),
        ev.Event(ev.STATE, "MASTER", "", {"state": "connected", "reason": "ok"}, ts=150.0),
        ev.Event(ev.STATE, "USER:x", "", {"state": "connecting"}, ts=180.0),
        ev.Event(ev.STATE, "MASTER", "", {"state": "disconnected"}, ts=500.0),  # after the window
    ]
    frame = segments(events, 100.0, 200.0, {"MASTER": "connected"})
    rows = [
        (r.account, r.state, r.start.timestamp(), r.end.timestamp()) for r in frame.itertuples()
    ]
    assert rows == [
        ("MASTER", "connected", 100.0, 120.0),
        ("MASTER", "degraded", 120.0, 150.0),
        ("MASTER", "connected", 150.0, 200.0),
        ("USER:x", "connecting", 180.0, 200.0),
    ]


def test_markers_and_event_list() -> None:
    events = [
        ev.Event(ev.NONCE_REFRESH, "MASTER", "refresh", ts=10.0),
        ev.Event(ev.BALANCE, "MASTER", "2 assets", ts=11.0),
        ev.Event(ev.INVALID_NONCE, "MASTER", "EAPI:Invalid nonce", ts=12.0),
    ]
    assert list(markers(events)["marker"]) == ["nonce refresh", "invalid nonce"]
    assert list(events_frame(events)["kind"]) == ["invalid_nonce", "balance", "nonce_refresh"]


def test_balances_are_exact_and_never_invented() -> None:
    assert usd_total({"ZUSD": "0.1000", "USDT": "0.20000000", "XXBT": "5"}) == Decimal("0.3")
    assert usd_total(None) is None
    assert (
        display_balance(account(balances={"ZUSD": "1234.5600", "USDT": "500"}))
        == "$1,734.56 (USD + USDT)"
    )
    failed = account(balances={"ZUSD": "9.0000"}, balance_error="http_status: HTTP 503")
    assert display_balance(failed) == "unknown (http_status: HTTP 503)"
    rows = balance_rows([failed, account("USER:y", balances={"ZUSD": "1.0000"})])
    assert list(rows["balance"]) == ["unknown (http_status: HTTP 503)", "1.0000", "1.0000"]
    history = balance_history(
        [ev.Event(ev.BALANCE, "MASTER", "", {"balances": {"ZUSD": "2.5000", "BAD": "x"}}, ts=1.0)]
    )
    assert list(history["amount"]) == [2.5]


def test_verdict_orders_failures_first() -> None:
    checks = [
        Check("connected", "MASTER", "pass", "ok"),
        Check("clock_skew", None, "pending", "no sample"),
        Check("kraken_status", None, "fail", "maintenance", required=False),
    ]
    assert not verdict(checks).ok and "waiting for 1" in verdict(checks).headline
    checks.append(Check("no_invalid_nonce", "MASTER", "fail", "2 errors", "fix it"))
    result = verdict(checks)
    assert (
        result.headline == "Not verified: 1 check(s) failing"
        and result.failing[0].name == "no_invalid_nonce"
    )
    assert list(checks_frame(checks)["check"])[:2] == ["kraken_status", "no_invalid_nonce"]
    assert verdict([Check("connected", "MASTER", "pass", "ok")]).ok


def test_diagnoses() -> None:
    restarted = account(
        invalid_nonce_count=2,
        last_error=ErrorInfo(
            "invalid_nonce", "EAPI:Invalid nonce", "", "", "", 0.0, "restart_below_high_water"
        ),
    )
    stranded = account(
        "USER:s", nonce_status=NonceStatus(key_id="k", unit="us", high_water=1, lead_seconds=3600.0)
    )
    shared = account("USER:t", shared_with=["MASTER"])
    snap = Snapshot(
        0.0,
        0.0,
        [restarted, stranded, shared],
        SkewEstimate(-2.0, 0.01, 7, 0.001, 0.0),
        "online",
        {},
    )
    causes = {(d.account, d.cause) for d in diagnose(snap, max_skew_s=1.0)}
    assert causes == {
        ("MASTER", "restart_below_high_water"),
        ("USER:s", "stranded_key"),
        ("USER:t", "second_writer"),
        (None, "clock_behind"),
    }


def test_nonce_activity_counts_per_minute() -> None:
    events = [ev.Event(ev.NONCE_REFRESH, "MASTER", "", ts=60.0 + i) for i in range(3)]
    events.append(ev.Event(ev.INVALID_NONCE, "MASTER", "", ts=200.0))
    frame = nonce_activity(events)
    assert sorted(zip(frame["kind"], frame["count"], strict=True)) == [
        ("invalid nonce", 1),
        ("refresh", 3),
    ]
