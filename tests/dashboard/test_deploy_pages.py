"""The deploys on the pages: the Overview leads with the latest deploy, the Timeline draws a line
per deploy, the Deploys page lists them; run for real with AppTest against a live service, and the
pure view helpers on their own."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from broker import PermissionDeniedError
from dashboard.config import load_settings
from dashboard.deploys.request import MarkRequest
from dashboard.history.deploy_book import Deploy, DeployState
from dashboard.monitor import events as ev
from dashboard.views.deploys import (
    HOW_TO_MARK,
    clock_time,
    deploy_banner,
    deploys_between,
    deploys_table,
    duration,
    history_frame,
    mark_access,
    mark_commands,
    marked_line,
    open_check_lines,
    scope_note,
    time_ago,
)
from dashboard.views.markdown import escape
from dashboard.views.timeline import deploy_marks, markers, segments, timeline_chart
from dashboard.web.service import Service
from dashboard.web.streamlit_app import set_service
from testkit.net import eventually
from testkit.sim import scenario_simulator

SCREENS = Path(__file__).resolve().parents[2] / "dashboard" / "ui" / "screens"
LABELS = ("MASTER", "USER:daivon", "USER:tania_gilbert")
#: 2026-03-14 17:30:57 UTC
T0 = 1773509457.0


# -- helpers ----------------------------------------------------------------------------------


def run_page(name: str) -> AppTest:
    at = AppTest.from_file(str(SCREENS / name), default_timeout=30)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def alerts(at: AppTest) -> dict[str, list[str]]:
    return {
        kind: [str(e.value) for e in getattr(at, kind)]
        for kind in ("success", "info", "warning", "error")
    }


def chart_spec(at: AppTest) -> dict[str, Any]:
    (chart,) = at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")
    spec: dict[str, Any] = json.loads(chart.proto.spec)
    return spec


@contextmanager
def live_service(tmp_path: Path, scenario: str, **extra: str) -> Iterator[Service]:
    """A running service against a simulated ``scenario``, installed for the pages, once every
    account has been probed (permissions known) and the clock sampled."""
    with scenario_simulator(scenario) as (_, env):
        settings = load_settings(
            {
                **env,
                "KRAKENWATCH_DATA_DIR": str(tmp_path / "data"),
                "KRAKENWATCH_POLL_INTERVAL": "1",
                **extra,
            },
            use_dotenv=False,
        )
        service = Service.create(settings)
        try:
            service.start()
            set_service(service)
            eventually(
                lambda: (
                    all(
                        a.permissions["orders"] is not None
                        for a in service.monitor.snapshot().accounts
                    )
                    and service.monitor.snapshot().skew is not None
                ),
                what="the first probes of every account",
            )
            yield service
        finally:
            set_service(None)
            service.stop()


def judged(service: Service, state: DeployState) -> Deploy:
    """The latest deploy, once it has reached ``state``."""
    return eventually(
        lambda: (d := service.deploys.judge()) is not None and d.state == state and d,
        what=f"the latest deploy to be {state}",
    )


# -- against a live service -------------------------------------------------------------------


def test_overview_timeline_and_deploys_page_show_a_verified_deploy(tmp_path: Path) -> None:
    with live_service(tmp_path, "healthy") as service:
        # no deploy yet: how to mark one, and no deploy banner
        at = run_page("overview.py")
        assert HOW_TO_MARK in [c.value for c in at.caption]
        assert "deploy mark --version" in HOW_TO_MARK and "POST /api/deploys" in HOW_TO_MARK
        assert not any("v9.9.9" in text for texts in alerts(at).values() for text in texts)
        at = AppTest.from_file(str(SCREENS.parent / "main.py"), default_timeout=30)
        at.run()
        at.switch_page("screens/deploys.py").run()  # the router serves the page
        assert not at.exception
        assert [t.value for t in at.title] == ["Deploys"]
        at = run_page("deploys.py")
        assert at.info[0].value == HOW_TO_MARK
        assert not at.dataframe
        assert "krakenwatch deploy mark --version VERSION" in at.code[0].value

        service.deploys.mark(MarkRequest("v9.9.9", ("MASTER", "USER:daivon"), "canary"))
        deploy = judged(service, DeployState.VERIFIED)

        at = run_page("overview.py")
        lead, verdict = at.success[0].value, at.success[1].value
        assert lead.startswith("**v9.9.9**, marked ")
        assert "on MASTER, USER:daivon — verified in " in lead
        assert "every required check passes" in verdict  # the live verdict stays, below
        assert at.success[0].proto.icon == ":material/check_circle:"
        assert HOW_TO_MARK not in [c.value for c in at.caption]
        # tania's checks are on the page but do not judge this deploy
        assert any(
            "the checks of USER:tania_gilbert below do not count" in c.value for c in at.caption
        )

        at = run_page("timeline.py")
        layers = chart_spec(at)["layer"]
        (rule,) = [layer for layer in layers if layer["mark"]["type"] == "rule"]
        tooltip = [t["field"] for t in rule["encoding"]["tooltip"]]
        assert {"version", "state", "marked"} <= set(tooltip)
        assert rule["encoding"]["x"]["field"] == "time"
        listed = [m.value for m in at.markdown if m.value.startswith("| marked | version |")]
        assert len(listed) == 1 and "**v9.9.9**" in listed[0] and "verified" in listed[0]
        assert time.strftime("%H:%M:%S", time.gmtime(deploy.marked_at)) in listed[0]

        at = run_page("deploys.py")
        rows = at.dataframe[0].value
        assert list(rows["version"]) == ["v9.9.9"]
        assert list(rows["state"]) == ["verified"]
        assert list(rows["note"]) == ["canary"]
        assert rows["accounts"][0] == "MASTER, USER:daivon"
        assert "verified in" in at.success[0].value


def test_a_failing_deploy_shows_its_remedy_and_the_history_lists_both(tmp_path: Path) -> None:
    # the demo: USER:tania_gilbert's key lacks Query Open Orders & Trades; no grace period
    with live_service(tmp_path, "demo", KRAKENWATCH_DEPLOY_GRACE="0") as service:
        service.deploys.mark(MarkRequest("v9.9.9", ("MASTER", "USER:daivon"), "fine"))
        judged(service, DeployState.VERIFIED)
        service.deploys.mark(MarkRequest("v10.0.0", LABELS, "everyone"))
        failed = judged(service, DeployState.FAILED)
        assert [c["name"] for c in failed.failing if c["status"] == "fail"] == [
            "permission_query_orders"
        ]

        at = run_page("overview.py")
        lead = at.error[0].value
        assert lead.startswith("**v10.0.0**, marked ")
        assert "— **failed** after" in lead
        assert "Query Open Orders & Trades permission" in lead
        assert "USER:tania_gilbert" in lead
        assert f"**What to do:** {escape(PermissionDeniedError.remedy)}" in lead
        assert "still failing" in lead  # the verdict's reason
        assert at.error[0].proto.icon == ":material/cancel:"
        assert "Not verified: 1 check failing" in at.error[1].value  # the live verdict, below

        at = run_page("deploys.py")
        rows = at.dataframe[0].value
        assert list(rows["version"]) == ["v10.0.0", "v9.9.9"]  # newest first
        assert list(rows["state"]) == ["failed", "verified"]
        assert rows["time to verdict"].map(lambda s: s.endswith(" s")).all()
        assert "still failing" in rows["reason"][0]
        # the newest is shown in full; the older one on request
        assert escape(PermissionDeniedError.remedy) in at.error[0].value
        at.selectbox[0].select(rows["id"][1]).run()
        assert not at.exception
        assert not at.error
        assert at.success[0].value.startswith("**v9.9.9**")

        at = run_page("timeline.py")
        (rule,) = [layer for layer in chart_spec(at)["layer"] if layer["mark"]["type"] == "rule"]
        assert rule["encoding"]["strokeDash"]["field"] == "state"


def test_a_pending_deploy_says_what_it_waits_for_until_the_bot_log_has_it(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    log.write_text("")
    with live_service(tmp_path, "healthy", KRAKENWATCH_BOT_LOG=str(log)) as service:
        service.deploys.mark(MarkRequest("v2.0.0", LABELS, ""))
        # the accounts answer after the marker; the bot has logged nothing since
        eventually(
            lambda: (
                (d := service.deploys.judge()) is not None
                and d.state == DeployState.PENDING
                and {c["name"] for c in d.failing}
                == {"bot_kraken_connected", "bot_other_brokers", "bot_trading_cycles"}
            ),
            what="only the bot-log checks to wait",
        )
        at = run_page("overview.py")
        lead = at.info[0].value
        assert lead.startswith("**v2.0.0**, marked ")
        assert "— not verified yet, waiting " in lead
        assert "Bot: Kraken connected" in lead and "Bot: trading cycles running" in lead
        assert not at.error or "v2.0.0" not in at.error[0].value

        with log.open("a") as bot:
            bot.write("KRAKEN PRO CONNECTED (MASTER)\nCoinbase connected\ntrading cycle started\n")
        judged(service, DeployState.VERIFIED)
        at = run_page("overview.py")
        assert at.success[0].value.startswith("**v2.0.0**")
        assert "verified in" in at.success[0].value


# -- the pure helpers -------------------------------------------------------------------------


def deploy(**fields: Any) -> Deploy:
    base: dict[str, Any] = {
        "id": 7,
        "version": "v1.4.2",
        "accounts": ("MASTER", "USER:daivon"),
        "note": "",
        "marked_at": T0,
    }
    return Deploy(**{**base, **fields})


FAIL_FUNDS = {
    "name": "permission_query_funds",
    "account": "MASTER",
    "status": "fail",
    "detail": "Balance: EGeneral:Permission denied",
    "remedy": "Enable Query Funds on the key",
    "required": True,
}
WAIT_CONNECTED = {
    "name": "connected",
    "account": "USER:daivon",
    "status": "pending",
    "detail": "no successful call since the deploy yet",
    "remedy": None,
    "required": True,
}


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (-3, "0 s"),
        (3.0, "3 s"),
        (1.74, "1.7 s"),
        (34.4, "34 s"),
        (60, "1 min"),
        (250, "4 min 10 s"),
        (7500, "2 h 5 min"),
        (7200, "2 h"),
        (3 * 86400 + 4 * 3600, "3 d 4 h"),
    ],
)
def test_duration(seconds: float, said: str) -> None:
    assert duration(seconds) == said


def test_times_in_words() -> None:
    assert time_ago(T0, T0 + 12) == "12 s ago"
    assert time_ago(T0, T0 + 240) == "4 min ago"
    assert time_ago(T0, T0 + 3 * 3600) == "3 h ago"
    assert time_ago(T0, T0 + 3 * 86400) == "3 d ago"
    assert time_ago(T0 + 5, T0) == "0 s ago"
    assert clock_time(T0, T0 + 60) == "17:30:57 UTC"
    assert clock_time(T0, T0 + 86400) == "2026-03-14 17:30:57 UTC"


def test_marked_line_names_version_time_and_accounts() -> None:
    assert marked_line(deploy(), T0 + 240) == (
        "**v1.4.2**, marked 17:30:57 UTC (4 min ago) on MASTER, USER:daivon"
    )
    many = deploy(version="", accounts=tuple(f"USER:u{i}" for i in range(6)))
    assert marked_line(many, T0 + 1) == "**deploy #7**, marked 17:30:57 UTC (1 s ago) on 6 accounts"


def test_banner_of_a_verified_deploy() -> None:
    banner = deploy_banner(
        deploy(state=DeployState.VERIFIED, decided_at=T0 + 34, reason="all passed"), T0 + 240
    )
    assert banner.tone == "success"
    assert banner.icon == ":material/check_circle:"
    assert banner.body == (
        "**v1.4.2**, marked 17:30:57 UTC (4 min ago) on MASTER, USER:daivon — verified in 34 s"
    )


def test_banner_of_a_pending_deploy_waiting_for_data() -> None:
    banner = deploy_banner(deploy(failing=(WAIT_CONNECTED,)), T0 + 12)
    assert banner.tone == "info"
    assert banner.headline.endswith(
        "— not verified yet, waiting 12 s for Connected to Kraken (USER:daivon)"
    )
    assert banner.checks == [
        ":orange[:material/hourglass_top:] pending · **Connected to Kraken** · USER:daivon: "
        "no successful call since the deploy yet"
    ]
    assert "What to do" not in banner.body
    assert deploy_banner(deploy(), T0 + 3).headline.endswith("not verified yet, waiting 3 s")


def test_banner_of_a_pending_deploy_with_a_failing_check_in_its_grace_period() -> None:
    banner = deploy_banner(deploy(failing=(FAIL_FUNDS, WAIT_CONNECTED)), T0 + 5)
    assert banner.tone == "warning"
    assert "Query Funds permission (MASTER), Connected to Kraken (USER:daivon)" in banner.headline
    assert banner.checks[0] == (
        ":red[:material/cancel:] fail · **Query Funds permission** · MASTER: "
        "Balance: EGeneral:Permission denied\n\n**What to do:** Enable Query Funds on the key"
    )
    more = deploy(failing=(WAIT_CONNECTED,) * 5)
    assert deploy_banner(more, T0 + 5).headline.endswith("and 2 more")


def test_banner_of_a_failed_deploy_gives_the_reason_and_every_remedy() -> None:
    no_remedy = {**FAIL_FUNDS, "name": "dedicated_key", "remedy": None}
    failed = deploy(
        state=DeployState.FAILED,
        decided_at=T0 + 125,
        reason="1 required check still failing 120 s after the marker: $x | y",
        failing=(FAIL_FUNDS, no_remedy),
    )
    banner = deploy_banner(failed, T0 + 240)
    assert banner.tone == "error"
    assert banner.icon == ":material/cancel:"
    assert banner.headline.endswith("— **failed** after 2 min 5 s")
    assert banner.reason == r"1 required check still failing 120 s after the marker: \$x \| y"
    assert "**What to do:** Enable Query Funds on the key" in banner.body
    assert "**What to do:** See the timeline" in banner.checks[1]
    assert banner.body.split("\n\n")[:2] == [banner.headline, banner.reason]


def test_open_check_lines_escape_and_survive_odd_documents() -> None:
    odd = {"name": "mystery", "status": "weird", "detail": "a <b> | c"}
    assert open_check_lines([odd]) == [r" weird · **mystery**: a \<b\> \| c"]


def test_scope_note_names_the_accounts_outside_the_deploy() -> None:
    assert scope_note(deploy(accounts=LABELS), LABELS) is None
    note = scope_note(deploy(), LABELS)
    assert note == (
        "**v1.4.2** is judged on MASTER, USER:daivon only: the checks of USER:tania_gilbert "
        "below do not count for it."
    )


def test_deploys_between_keeps_the_range_oldest_first() -> None:
    found = [deploy(id=3, marked_at=T0 + 30), deploy(id=2, marked_at=T0 + 10), deploy(id=1)]
    assert [d.id for d in deploys_between(found, T0 + 5, T0 + 30)] == [2, 3]
    assert deploys_between(found, T0 + 31, T0 + 60) == []


def test_history_frame_newest_first_with_the_verdict_time() -> None:
    older = deploy(id=1, state=DeployState.VERIFIED, decided_at=T0 + 34, note="canary")
    newer = deploy(id=2, version="", marked_at=T0 + 600)
    frame = history_frame([older, newer])
    assert list(frame.columns) == [
        "id",
        "version",
        "accounts",
        "marked at",
        "state",
        "time to verdict",
        "reason",
        "note",
    ]
    assert list(frame["id"]) == [2, 1]
    assert list(frame["version"]) == ["–", "v1.4.2"]
    assert list(frame["time to verdict"]) == ["–", "34 s"]
    assert list(frame["state"]) == ["pending", "verified"]
    assert frame["marked at"][1] == pd.Timestamp(T0, unit="s", tz="UTC")
    empty = history_frame([])
    assert empty.empty and str(empty["marked at"].dtype).startswith("datetime64")


def test_deploys_table_under_the_timeline() -> None:
    text = deploys_table([deploy(state=DeployState.FAILED, decided_at=T0 + 2)], T0 + 60)
    assert text.splitlines()[2] == (
        "| 17:30:57 UTC | **v1.4.2** | MASTER, USER:daivon | :red[:material/cancel:] failed | 2 s |"
    )


def test_timeline_chart_draws_a_rule_per_deploy_within_its_time_axis() -> None:
    states = [
        ev.Event(ev.STATE, "MASTER", "up", {"state": "connected", "reason": "ok"}, ts=T0 + 100)
    ]
    segs = segments(states, T0 + 100, T0 + 200)
    marks = markers([])
    plain = timeline_chart(segs, marks).to_dict()
    assert [layer["mark"]["type"] for layer in plain["layer"]] == ["bar"]

    early = deploy(marked_at=T0 + 50, state=DeployState.VERIFIED, decided_at=T0 + 60)
    frame = deploy_marks([early, deploy(id=8, version="v1.4.3", marked_at=T0 + 150)])
    assert list(frame["marked"]) == ["2026-03-14 17:31:47 UTC", "2026-03-14 17:33:27 UTC"]
    spec = timeline_chart(segs, marks, frame).to_dict()
    kinds = [layer["mark"]["type"] for layer in spec["layer"]]
    assert kinds == ["bar", "rule", "text"]
    rule = spec["layer"][1]
    assert rule["encoding"]["strokeDash"]["scale"]["domain"] == ["verified", "pending", "failed"]
    # the time axis reaches back to the deploy marked before the first state change
    start, end = spec["layer"][0]["encoding"]["x"]["scale"]["domain"]
    assert pd.Timestamp(start) == pd.Timestamp(T0 + 50, unit="s", tz="UTC")
    assert pd.Timestamp(end) == pd.Timestamp(T0 + 200, unit="s", tz="UTC")
    assert deploy_marks([]).empty


def test_how_to_mark_a_deploy() -> None:
    commands = mark_commands("MASTER")
    assert "krakenwatch deploy mark --version VERSION --account MASTER" in commands
    assert "krakenwatch deploy wait" in commands
    assert "POST http://127.0.0.1:8501/api/deploys" in commands
    assert "--account" not in mark_commands(None)
    assert "KRAKENWATCH_ADMIN_TOKEN` as the bearer" in mark_access(True, False)
    assert "password" in mark_access(False, True)
    assert "from this machine only" in mark_access(False, False)
    assert "not a button" in mark_access(True, True)
