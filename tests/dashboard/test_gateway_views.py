"""The Gateway page's data shaping and the ``gateway_kraken_errors`` checks, from a real
:class:`gateway.traffic.Traffic` fed known calls (no Streamlit, no server)."""

from __future__ import annotations

from dashboard.checks.checklist import CheckStatus, build_checklist
from dashboard.config import load_settings
from dashboard.monitor.status import Snapshot
from dashboard.views.gateway import (
    calls_frame,
    errors_frame,
    outcomes_chart,
    outcomes_frame,
    queue_frame,
    totals,
)
from gateway.metrics import WATCHED_CODES
from gateway.traffic import ErrorRecord, Traffic, TrafficSnapshot
from testkit.sim import make_key, master_environment


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def traffic() -> TrafficSnapshot:
    clock = Clock()
    t = Traffic(["MASTER", "USER:a"], WATCHED_CODES, clock=clock)
    for wait in (0.001, 0.002, 0.003, 0.1):
        t.record("account-key", "MASTER", "ok", queue_wait_s=wait)
    t.record("monitor", "MASTER", "ok", queue_wait_s=0.0)
    clock.now += 10  # the next bucket
    t.record(
        "account-key",
        "MASTER",
        "invalid_nonce",
        kraken_codes=["EAPI:Invalid nonce"],
        queue_wait_s=0.004,
        error=ErrorRecord(
            clock.now,
            "account-key",
            "MASTER",
            "Balance",
            "invalid_nonce",
            200,
            "EAPI:Invalid nonce",
            False,
        ),
    )
    t.record(
        "unknown",
        "unknown",
        "rejected",
        error=ErrorRecord(
            clock.now + 1,
            "unknown",
            "unknown",
            "Balance",
            "rejected",
            200,
            "EAPI:Invalid key",
            True,
        ),
    )
    return t.snapshot()


def test_calls_per_account_and_client_by_outcome() -> None:
    frame = calls_frame(traffic())
    rows = {
        (r.account, r.client): (r.calls, r.ok, r.invalid_nonce, r.rejected)
        for r in frame.itertuples()
    }
    assert rows == {
        ("MASTER", "account-key"): (5, 4, 1, 0),
        ("MASTER", "monitor"): (1, 1, 0, 0),
        ("unknown", "unknown"): (1, 0, 0, 1),
    }
    summary = totals(traffic())
    assert (summary.calls, summary.ok, summary.prevented_failed) == (7, 5, 1)
    assert summary.ok_share == "71.4 %"


def test_outcomes_over_time_per_bucket() -> None:
    frame = outcomes_frame(traffic())
    rows = [(r.time.timestamp(), r.outcome, r.calls) for r in frame.itertuples()]
    assert rows == [
        (1_000_000.0, "ok", 5),
        (1_000_010.0, "invalid_nonce", 1),
        (1_000_010.0, "rejected", 1),
    ]
    assert outcomes_chart(frame).to_dict()["mark"]["type"] == "bar"
    empty = outcomes_frame(Traffic([], WATCHED_CODES).snapshot())
    assert empty.empty and str(empty["time"].dtype).startswith("datetime64")


def test_queue_waits_and_what_waits_now() -> None:
    live = [{"account": "MASTER", "queue_depth": 2, "rate_level": 3.5}]
    frame = queue_frame(traffic(), live)
    master = frame.set_index("account").loc["MASTER"]
    assert master["recent calls"] == 6
    assert master["median wait (ms)"] == 2.5 and master["max wait (ms)"] == 100.0
    assert master["queued now"] == 2 and master["modelled counter"] == 3.5
    assert frame.set_index("account").loc["USER:a"]["recent calls"] == 0


def test_last_errors_newest_first_with_who_answered() -> None:
    frame = errors_frame(traffic())
    assert list(frame["code"]) == ["EAPI:Invalid key", "EAPI:Invalid nonce"]
    assert list(frame["answered by"]) == ["gateway", "Kraken"]
    assert list(frame["time"]) == ["13:46:51 UTC", "13:46:50 UTC"]


def error(at: float, client: str, code: str) -> ErrorRecord:
    return ErrorRecord(at, client, "MASTER", "OpenOrders", "kraken_error", 200, code, False)


def test_last_errors_show_their_time_and_the_bots_before_the_monitors_probes() -> None:
    t = Traffic(["MASTER"], WATCHED_CODES, clock=Clock())
    t.record("bot", "MASTER", "kraken_error", error=error(1_000_000.0, "bot", "EOrder:Bad"))
    for i in range(150):  # the monitor's permission probe fails every poll
        at = 1_000_001.0 + i
        t.record(
            "monitor",
            "MASTER",
            "kraken_error",
            error=error(at, "monitor", "EGeneral:Permission denied"),
        )
    frame = errors_frame(t.snapshot())
    assert len(frame) == 20
    assert frame.iloc[0][["time", "client", "code"]].tolist() == [
        "13:46:40 UTC",
        "bot",
        "EOrder:Bad",
    ]
    assert frame.iloc[1][["time", "client"]].tolist() == ["13:49:10 UTC", "monitor"]  # newest
    assert all(frame["time"].str.fullmatch(r"\d\d:\d\d:\d\d UTC"))


def gateway_checks(snapshot_traffic: TrafficSnapshot | None) -> dict[str, tuple[str, str]]:
    key, secret = make_key("checks")
    settings = load_settings(
        master_environment("http://127.0.0.1:9", key, secret), use_dotenv=False
    )
    snapshot = Snapshot(None, 0.0, [], None, None, {}, gateway=snapshot_traffic)
    return {
        c.account or "": (c.status, c.detail)
        for c in build_checklist(snapshot, settings)
        if c.name == "gateway_kraken_errors"
    }


def test_the_checklist_flags_kraken_invalid_nonces_and_rate_limits_per_account() -> None:
    clock = Clock()
    t = Traffic(["MASTER", "USER:a", "USER:b"], WATCHED_CODES, clock=clock)
    t.record("account-key", "MASTER", "ok")
    t.record("bot", "USER:a", "kraken_error", kraken_codes=["EAPI:Rate limit exceeded"])
    t.record("bot", "USER:a", "kraken_error", kraken_codes=["EOrder:Rate limit exceeded"])
    checks = gateway_checks(t.snapshot())
    assert checks["MASTER"][0] == CheckStatus.PASS and "1 call(s)" in checks["MASTER"][1]
    assert checks["USER:a"] == (
        CheckStatus.FAIL,
        "Kraken answered 1 EAPI:Rate limit exceeded to calls through the gateway since it started",
    )
    assert checks["USER:b"][0] == CheckStatus.PENDING  # no call yet: never a silent pass
    assert gateway_checks(None) == {}  # no gateway in this process: no such item


def test_the_checklist_flags_a_client_that_keeps_failing_authentication() -> None:
    t = Traffic(["MASTER"], WATCHED_CODES, clock=Clock())
    for _ in range(3):
        t.authenticated("broken-bot", False)
    t.authenticated("flaky-bot", False)
    t.authenticated("flaky-bot", False)
    t.authenticated("good-bot", False)
    t.authenticated("good-bot", True)
    key, secret = make_key("auth-checks")
    settings = load_settings(
        master_environment("http://127.0.0.1:9", key, secret), use_dotenv=False
    )
    snapshot = Snapshot(None, 1_000_060.0, [], None, None, {}, gateway=t.snapshot())
    checks = {
        c.account: (c.status, c.detail, c.required)
        for c in build_checklist(snapshot, settings)
        if c.name == "gateway_client_auth"
    }
    assert checks["client:broken-bot"] == (
        CheckStatus.FAIL,
        "3 wrong signatures in a row, last 60 s ago",
        True,
    )
    assert checks["client:flaky-bot"][0] == CheckStatus.PASS  # below the flag
    assert "2 wrong signature(s) in a row" in checks["client:flaky-bot"][1]
    assert checks["client:good-bot"][:2] == (
        CheckStatus.PASS,
        "signs right (1 wrong signature(s) since start)",
    )
