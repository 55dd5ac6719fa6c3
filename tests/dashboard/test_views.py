"""The pages' data shaping, unit by unit (no Streamlit)."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

from broker import NonceStatus, SkewEstimate
from dashboard.checks.checklist import CHECK_TITLES, Check, CheckStatus, build_checklist
from dashboard.config import load_settings
from dashboard.monitor import events as ev
from dashboard.monitor.status import AccountStatus, ErrorInfo, Snapshot
from dashboard.monitor.valuation import (
    UsdPrices,
    base_asset,
    describe_account,
    describe_fleet,
    priced_as,
    value_account,
    value_fleet,
)
from dashboard.views.balances import balance_history, balance_rows, totals_table
from dashboard.views.markdown import escape
from dashboard.views.nonce import diagnose, nonce_activity
from dashboard.views.overview import attention_card, checklist_table, ordered_checks, verdict
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


PRICES = UsdPrices(
    {"ZUSD": Decimal(1), "XXBT": Decimal("50000.0"), "ETH2.S": Decimal("3000.00")},
    {"KFEE": "no USD pair on Kraken"},
)


def test_balances_are_exact_and_never_invented() -> None:
    failed = account(balances={"ZUSD": "9.0000"}, balance_error="http_status: HTTP 503")
    assert value_account(failed, PRICES).total is None
    assert describe_account(value_account(failed, PRICES)) == "unknown (http_status: HTTP 503)"
    unread = value_account(account(), PRICES)
    assert (unread.total, describe_account(unread)) == (None, "unknown (not read yet)")
    fleet = value_fleet([failed, account("USER:y", balances={"ZUSD": "1.0000"})], PRICES)
    rows = balance_rows(fleet)
    assert list(rows["balance"]) == ["unknown (http_status: HTTP 503)", "1.0000"]
    assert list(rows["USD value"]) == ["", "$1.00"]
    assert fleet.total is None and fleet.priced_total == Decimal("1.0000")
    assert describe_fleet(fleet) == "$1.00; balance unknown: MASTER"
    history = balance_history(
        [ev.Event(ev.BALANCE, "MASTER", "", {"balances": {"ZUSD": "2.5000", "BAD": "x"}}, ts=1.0)]
    )
    assert list(history["amount"]) == [2.5]


def test_every_asset_is_valued_and_a_missing_price_is_never_a_number() -> None:
    master = account(balances={"ZUSD": "1234.5600", "XXBT": "0.1234567890", "ETH2.S": "1.0"})
    value = value_account(master, PRICES)
    # exact: 1234.56 + 6172.83945 + 3000.00, rounded half to even only for display
    assert value.total == Decimal("10407.39945")
    assert describe_account(value) == "$10,407.40"
    daivon = account("USER:daivon", balances={"ZUSD": "250.0000", "KFEE": "1250.00"})
    value = value_account(daivon, PRICES)
    assert value.total is None and value.priced_total == Decimal("250.0000")
    assert [a.asset for a in value.unpriced] == ["KFEE"]
    assert describe_account(value) == "$250.00 + 1250.00 KFEE (no price)"
    # a zero balance needs no price
    assert value_account(account(balances={"KFEE": "0.00"}), PRICES).total == Decimal(0)
    fleet = value_fleet([master, daivon], PRICES)
    assert fleet.total is None and fleet.priced_total == Decimal("10657.39945")
    table = totals_table(fleet)
    assert "| MASTER | \\$10,407.40 | – |" in table
    assert "\\$250.00 + 1250.00 KFEE (no price) | KFEE (no USD pair on Kraken) |" in table
    assert "**\\$10,657.40 + 1250.00 KFEE (no price)**" in table
    rows = balance_rows(fleet)
    kfee = rows[rows["asset"] == "KFEE"].iloc[0]
    assert (kfee["USD price"], kfee["USD value"]) == ("", "no price")
    assert list(rows[rows["asset"] == "XXBT"]["USD value"]) == ["$6,172.84"]


def test_balance_codes_map_to_the_assets_kraken_prices() -> None:
    priced = {"ZUSD", "XXBT", "XETH", "USDT", "DOT", "XTZ"}
    assert base_asset("ETH2.S") == "ETH2" and base_asset("XXBT") == "XXBT"
    cases = {
        "ZUSD": "ZUSD",
        "USD.F": "ZUSD",  # earning dollars
        "XXBT": "XXBT",
        "XBT.M": "XXBT",  # bonded bitcoin, new-style code
        "ETH2.S": "XETH",  # staked ETH: no ETH2/USD pair, valued as ETH
        "ETH2": "XETH",
        "ETH.F": "XETH",
        "USDT": "USDT",
        "DOT.S": "DOT",
        "DOT.B": "DOT",
        "DOT.T": "DOT",
        "XTZ": "XTZ",  # three letters starting with X: its own code first
        "KFEE": None,
        "DOT28.S": None,
        "TZ": None,  # never made up into XTZ
    }
    assert {code: priced_as(code, priced) for code in cases} == cases
    assert priced_as("XXBT", {"XBT"}) == "XBT"


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
        result.headline == "Not verified: 1 check failing"
        and result.failing[0].name == "no_invalid_nonce"
    )
    assert verdict([Check("connected", "MASTER", "pass", "ok")]).ok


def test_checklist_order_titles_icons_and_full_remedies() -> None:
    remedy = "Grant the permission | in Kraken's settings for KRAKEN_USER_<NAME>_API_KEY, $0 cost"
    checks = [
        Check("connected", "MASTER", CheckStatus.PASS, "ok"),
        Check("dedicated_key", "MASTER", CheckStatus.SKIPPED, "n/a", required=False),
        Check("clock_skew", None, CheckStatus.PENDING, "no sample"),
        Check("kraken_status", None, CheckStatus.FAIL, "maintenance", required=False),
        Check("permission_query_orders", "USER:t", CheckStatus.FAIL, "denied", remedy),
    ]
    ordered = ordered_checks(checks)
    assert [c.name for c in ordered] == [
        "permission_query_orders",  # failing, required first
        "kraken_status",
        "clock_skew",
        "connected",
        "dedicated_key",
    ]
    what, todo = attention_card(ordered[0])
    assert what.startswith(
        ":red[:material/cancel:] fail · **Query Open Orders & Trades permission**"
    )
    assert "USER:t" in what and "optional" not in what
    assert "optional" in attention_card(ordered[1])[0]
    # the remedy whole, its characters shown as written (no table cell break, LaTeX or HTML)
    assert todo == "**What to do:** " + escape(remedy)
    assert "\\| in Kraken" in todo and "\\<NAME\\>" in todo and "\\$0" in todo
    table = checklist_table(ordered).splitlines()
    assert table[0] == "| status | check | account | detail | required |"
    assert table[2].startswith("| :red[:material/cancel:] fail | Query Open Orders & Trades")
    assert table[4].startswith("| :orange[:material/hourglass_top:] pending | Clock skew")
    assert table[5].startswith("| :green[:material/check_circle:] pass | Connected to Kraken")
    assert not re.search("[\u2600-\u27bf\U0001f000-\U0001ffff]", "\n".join(table))


def test_every_check_id_has_a_title_and_the_readme_table_uses_them(tmp_path: Path) -> None:
    from simulator import fake_key, fake_secret

    env = {
        "KRAKEN_MASTER_API_KEY": fake_key("titles"),
        "KRAKEN_MASTER_API_SECRET": fake_secret("titles"),
        "KRAKENWATCH_DATA_DIR": str(tmp_path),
        "KRAKENWATCH_BOT_LOG": str(tmp_path / "bot.log"),
        "KRAKENWATCH_PROBE_TRADE": "1",
    }
    snapshot = Snapshot(None, 0.0, [account()], None, None, {}, log_watching=True)
    built = {c.name for c in build_checklist(snapshot, load_settings(env, use_dotenv=False))}
    # without a gateway in the process, every check but the gateway's three
    assert set(CHECK_TITLES) - built == {"gateway_kraken_errors", "gateway_client_auth", "halted"}
    assert built <= set(CHECK_TITLES)
    page = (Path(__file__).resolve().parents[2] / "docs" / "checklist.md").read_text()
    section = page.split("## The checklist", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)` \| ([^|]+) \|", section, re.M)
    titles = {name: title.strip() for name, title in rows}
    assert titles == CHECK_TITLES


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
