"""Every Streamlit page, run for real with AppTest against a live service and a known store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from broker import PermissionDeniedError
from dashboard.checks.checklist import CheckStatus, build_checklist
from dashboard.config import load_settings
from dashboard.monitor import events as ev
from dashboard.monitor.retry import RetryPolicy
from dashboard.monitor.status import AccountState
from dashboard.ui.common import STATE_BADGES
from dashboard.views.markdown import escape
from dashboard.views.timeline import segments
from dashboard.web.service import Service
from dashboard.web.streamlit_app import set_service
from simulator import builtin_scenario
from testkit.net import eventually
from testkit.sim import (
    make_key,
    master_environment,
    one_key_simulator,
    scenario_simulator,
    scenario_values,
)

PAGES = Path(__file__).resolve().parents[2] / "dashboard" / "ui"
PAGE_FILES = ["overview.py", "timeline.py", "trading.py", "balances.py", "nonce.py", "settings.py"]


def run_page(name: str) -> AppTest:
    at = AppTest.from_file(str(PAGES / "screens" / name), default_timeout=30)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def everything_text(at: AppTest) -> str:
    parts = (
        [m.value for m in at.markdown] + [e.value for e in at.error] + [s.value for s in at.success]
    )
    parts += (
        [i.value for i in at.info]
        + [c.value for c in at.caption]
        + [str(m.value) for m in at.metric]
    )
    return "\n".join(str(p) for p in parts)


@pytest.fixture(scope="module")
def live_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The demo scenario, monitored until every account has been probed."""
    data = tmp_path_factory.mktemp("pages")
    with scenario_simulator("demo") as (_, env):
        settings = load_settings(
            {**env, "KRAKENWATCH_DATA_DIR": str(data), "KRAKENWATCH_POLL_INTERVAL": "1"},
            use_dotenv=False,
        )
        service = Service.create(settings)
        service.start()
        set_service(service)
        deadline = time.monotonic() + 20
        while (
            not all(
                a.permissions["orders"] is not None for a in service.monitor.snapshot().accounts
            )
            or service.monitor.snapshot().skew is None
        ):
            assert time.monotonic() < deadline, "the demo never finished its first probes"
            time.sleep(0.05)
        try:
            yield service
        finally:
            set_service(None)
            service.stop()


@pytest.fixture
def demo(live_demo: Service) -> Service:
    """The live demo service, installed for this test (other tests install their own)."""
    set_service(live_demo)
    return live_demo


@pytest.mark.parametrize("page", PAGE_FILES)
def test_every_page_runs_without_exception(demo: Service, page: str) -> None:
    at = run_page(page)
    assert at.title, f"{page} shows no title"


def test_the_router_runs(demo: Service) -> None:
    at = AppTest.from_file(str(PAGES / "main.py"), default_timeout=30)
    at.run()
    assert not at.exception
    assert at.title[0].value == "Post-deploy verification"


def test_overview_shows_verdict_failure_remedy_and_cards(demo: Service) -> None:
    at = run_page("overview.py")
    assert "Not verified: 1 check failing" in at.error[0].value
    assert at.error[0].proto.icon == ":material/cancel:"
    text = everything_text(at)
    # the failing item first, by its title, with its remedy in full
    failing = (
        ":red[:material/cancel:] fail · **Query Open Orders & Trades permission** · "
        "USER:tania_gilbert"
    )
    assert at.markdown[0].value.startswith(failing)
    assert at.markdown[1].value == f"**What to do:** {escape(PermissionDeniedError.remedy)}"
    # the checklist: the failing item first, then the passing ones; titles, not ids
    checklist = next(m.value for m in at.markdown if m.value.startswith("| status | check |"))
    rows = checklist.splitlines()[2:]
    assert rows[0].startswith("| :red[:material/cancel:] fail | Query Open Orders & Trades")
    assert all("pending" not in row for row in rows)  # the demo has finished its probes
    assert [r.split(" | ")[0] for r in rows[1:]] == sorted(
        (r.split(" | ")[0] for r in rows[1:]), key=lambda s: "pass" not in s
    )
    assert "permission_query_orders" not in text
    values = scenario_values(builtin_scenario("demo"))
    for label in ("MASTER", "USER:daivon", "USER:tania_gilbert"):
        assert f"**{label}**" in text
    # every asset valued at the simulator's prices; KFEE has none and is said, not counted
    assert f"**Balance:** {escape(values['MASTER'].usd)}" in text
    assert f"**Balance:** {escape(values['USER:daivon'].usd)} + 1250.00 KFEE (no price)" in text
    assert not at.dataframe
    secrets = [v for k, v in demo.settings.accounts[0].__dict__.items() if k in ("key", "secret")]
    for secret in secrets:
        assert secret not in text


def test_balances_page_values_every_asset_and_names_the_unpriced(demo: Service) -> None:
    at = run_page("balances.py")
    values = scenario_values(builtin_scenario("demo"))
    totals = at.markdown[0].value
    assert f"| MASTER | {escape(values['MASTER'].usd)} | – |" in totals
    daivon = escape(values["USER:daivon"].usd)
    assert (
        f"| USER:daivon | {daivon} + 1250.00 KFEE (no price) | KFEE (no USD pair on Kraken) |"
        in (totals)
    )
    fleet = sum((v.priced for v in values.values()), Decimal(0))
    assert f"**\\${fleet.quantize(Decimal('0.01')):,.2f} + 1250.00 KFEE (no price)**" in totals
    rows = at.dataframe[0].value
    master = rows[rows["account"] == "MASTER"].set_index("asset")
    assert master.loc["ETH2.S", "USD price"] == "3000.00"  # staked ETH, valued as XETH
    assert master.loc["XXBT", "balance"] == "0.1234567890"  # exactly as Kraken sent it
    kfee = rows[rows["asset"] == "KFEE"].iloc[0]
    assert (kfee["USD price"], kfee["USD value"]) == ("", "no price")
    assert "Prices read from Kraken at" in everything_text(at)


def test_settings_page_lists_the_variables_without_secrets(demo: Service) -> None:
    at = run_page("settings.py")
    accounts, variables = (d.value for d in at.dataframe)
    assert list(accounts["account"]) == ["MASTER", "USER:daivon", "USER:tania_gilbert"]
    shown = dict(zip(variables["variable"], variables["value"], strict=True))
    assert shown["KRAKENWATCH_POLL_INTERVAL"] == "1 s"
    assert shown["KRAKEN_USER_DAIVON_API_SECRET"] == "set (hidden)"
    assert shown["KRAKEN_MASTER_API_KEY"] == demo.settings.accounts[0].masked_key
    cells = " ".join(str(v) for d in at.dataframe for v in d.value.to_numpy().ravel())
    for account in demo.settings.accounts:
        assert account.key not in cells and account.secret not in cells


def test_no_accounts_page_says_how_to_configure(tmp_path: Path) -> None:
    service = Service.create(
        load_settings({"KRAKENWATCH_DATA_DIR": str(tmp_path)}, use_dotenv=False)
    )
    set_service(service)
    try:
        at = run_page("overview.py")
        assert "No Kraken account is configured" in everything_text(at)
        assert (
            "no Kraken account is configured" in at.error[0].value.lower()
            or "failing" in at.error[0].value
        )
        for page in PAGE_FILES[1:]:
            run_page(page)
    finally:
        set_service(None)
        service.stop()


def test_timeline_for_a_known_store(tmp_path: Path) -> None:
    env = {
        "KRAKEN_MASTER_API_KEY": "SIM" + "k" * 53,
        "KRAKEN_MASTER_API_SECRET": "c2VjcmV0c2VjcmV0",
        "KRAKENWATCH_DATA_DIR": str(tmp_path),
    }
    service = Service.create(load_settings(env, use_dotenv=False))
    assert service.store is not None
    now = time.time()
    service.store.append_many(
        [
            ev.Event(
                ev.STATE,
                "MASTER",
                "start",
                {"state": "connecting", "reason": "start"},
                ts=now - 600,
            ),
            ev.Event(
                ev.NONCE_REFRESH,
                "MASTER",
                "nonce baseline 1 (connect)",
                {"baseline": 1},
                ts=now - 599,
            ),
            ev.Event(
                ev.STATE,
                "MASTER",
                "up",
                {"state": "connected", "reason": "Balance ok"},
                ts=now - 598,
            ),
            ev.Event(
                ev.INVALID_NONCE,
                "MASTER",
                "EAPI:Invalid nonce on Balance",
                {"code": "EAPI:Invalid nonce"},
                ts=now - 300,
            ),
            ev.Event(
                ev.STATE,
                "MASTER",
                "down",
                {"state": "disconnected", "reason": "invalid_nonce"},
                ts=now - 299,
            ),
        ]
    )
    set_service(service)
    try:
        at = run_page("timeline.py")
        events = at.dataframe[0].value
        assert list(events["kind"])[:3] == ["state", "invalid_nonce", "state"]
        assert len(events) == 5
        assert at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart"), (
            "the timeline chart is missing"
        )
        segs = segments(service.store.query(kinds=[ev.STATE]), now - 900, now)
        assert list(segs["state"]) == ["connecting", "connected", "disconnected"]
        at.multiselect[1].set_value(["invalid_nonce"]).run()
        assert list(at.dataframe[0].value["kind"]) == ["invalid_nonce"]
    finally:
        set_service(None)
        service.stop()


def test_password_form_guards_every_page(tmp_path: Path) -> None:
    env = {"KRAKENWATCH_DATA_DIR": str(tmp_path), "KRAKENWATCH_PASSWORD": "a long enough password"}
    service = Service.create(load_settings(env, use_dotenv=False))
    set_service(service)
    try:
        for page in PAGE_FILES:
            at = run_page(page)
            assert [t.value for t in at.title] == ["krakenwatch"], page
            assert not at.dataframe
        at = run_page("overview.py")
        at.text_input[0].set_value("wrong")
        at.button[0].click().run()
        assert at.error and "Wrong password" in at.error[0].value
        at.text_input[0].set_value("a long enough password")
        at.button[0].click().run()
        assert not at.exception
        assert at.title[0].value == "Post-deploy verification"
    finally:
        set_service(None)
        service.stop()


def test_oidc_login_is_required_when_auth_is_configured(demo: Service) -> None:
    at = AppTest.from_file(str(PAGES / "screens" / "overview.py"), default_timeout=30)
    at.secrets["auth"] = {
        "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
        "cookie_secret": "x" * 32,
    }
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["krakenwatch"]
    assert [b.label for b in at.button] == ["Log in"]
    assert not at.dataframe, "nothing is shown before the login"


def test_pages_with_50_accounts_and_10000_events(tmp_path: Path) -> None:
    from simulator import fake_key, fake_secret

    env = {"KRAKENWATCH_DATA_DIR": str(tmp_path)}
    for i in range(50):
        env[f"KRAKEN_USER_U{i:03d}_API_KEY"] = fake_key(f"big-{i}")
        env[f"KRAKEN_USER_U{i:03d}_API_SECRET"] = fake_secret(f"big-{i}")
    service = Service.create(load_settings(env, use_dotenv=False))
    assert service.store is not None
    now = time.time()
    states = ["connecting", "connected", "degraded", "connected", "disconnected"]
    service.store.append_many(
        ev.Event(
            ev.STATE,
            f"USER:u{i % 50:03d}",
            "change",
            {"state": states[i % 5], "reason": "synthetic"},
            ts=now - 3000 + i * 0.3,
        )
        for i in range(10_000)
    )
    set_service(service)
    try:
        for page in PAGE_FILES:
            run_page(page)
        at = run_page("timeline.py")
        assert len(at.dataframe[0].value) == 5000  # the event list is capped, newest first
        at = run_page("overview.py")
        assert "USER:u049" in everything_text(at)
    finally:
        set_service(None)
        service.stop()


def test_an_invalid_account_gets_a_card_with_the_variable(tmp_path: Path) -> None:
    env = {
        "KRAKENWATCH_DATA_DIR": str(tmp_path),
        "KRAKEN_USER_BOB_API_KEY": "SIM" + "b" * 53,
        "KRAKEN_USER_BOB_API_SECRET": "%%%",
    }
    service = Service.create(load_settings(env, use_dotenv=False))
    set_service(service)
    try:
        text = everything_text(run_page("overview.py"))
        assert f"**USER:bob** {STATE_BADGES[AccountState.INVALID_CONFIG]}" in text
        assert "KRAKEN_USER_BOB_API_SECRET" in text
    finally:
        set_service(None)
        service.stop()


def test_retry_now_resumes_an_account_stopped_by_authentication_failures(tmp_path: Path) -> None:
    with one_key_simulator("retry", permissions=["orders"]) as (sim, key, secret):
        env = master_environment(
            sim.url,
            key,
            secret,
            KRAKENWATCH_DATA_DIR=str(tmp_path),
            KRAKENWATCH_POLL_INTERVAL="1",
        )
        service = Service.create(
            load_settings(env, use_dotenv=False), retry_policy=RetryPolicy(auth_delays_s=(0.1,))
        )
        service.start()
        set_service(service)
        try:
            eventually(lambda: service.monitor.snapshot().account("MASTER").stopped)
            at = run_page("overview.py")
            text = everything_text(at)
            assert "stopped after 2 authentication failures: EGeneral:Permission denied" in text
            assert PermissionDeniedError.remedy in text
            calls = sim.stats(key).requests
            sim.update_key(key, permissions=["funds", "orders"])  # the operator grants Query Funds
            at.button(key="retry-MASTER").click().run()
            assert not at.exception
            sim.wait_for(key, lambda s: s.requests > calls and s.accepted > 0)
            eventually(
                lambda: service.monitor.snapshot().account("MASTER").state == AccountState.CONNECTED
            )
            at = run_page("overview.py")
            assert not [b for b in at.button if b.key and b.key.startswith("retry-")]
        finally:
            set_service(None)
            service.stop()


def test_settings_page_and_the_configuration_check_show_a_misspelt_variable(
    tmp_path: Path,
) -> None:
    key, secret = make_key("typo-page")
    env = master_environment(
        "http://127.0.0.1:9",
        key,
        secret,
        KRAKENWATCH_DATA_DIR=str(tmp_path),
        KRAKENWATCH_POLL_INTERVL="5",
    )
    settings = load_settings(env, use_dotenv=False)
    service = Service.create(settings)
    set_service(service)
    try:
        at = run_page("settings.py")
    finally:
        set_service(None)
        service.stop()
    shown = [w.value for w in at.warning]
    assert any(
        "KRAKENWATCH_POLL_INTERVL" in w and "did you mean KRAKENWATCH_POLL_INTERVAL?" in w
        for w in shown
    ), shown
    snapshot = service.monitor.snapshot()
    (configuration,) = [c for c in build_checklist(snapshot, settings) if c.name == "configuration"]
    assert configuration.status == CheckStatus.PASS  # a warning, not a failure
    assert "did you mean KRAKENWATCH_POLL_INTERVAL?" in configuration.detail
