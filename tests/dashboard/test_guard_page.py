"""The Gateway page's trading guard, run with AppTest against a live service with its embedded
gateway (``up --gateway`` in this process) in front of the simulator: halting from the form (a
confirmation and a reason first, the gateway's refusal shown in one line), resuming behind a
confirmation, a bot's orders refused in between; the checklist's ``halted`` item; the halts and
resumes on the timeline, a halt from the command line included; the dead man's switch and
another writer on the key shown."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.checks.guard_items import FOREIGN_WRITER_REMEDY
from dashboard.config import load_settings
from dashboard.monitor import events as ev
from dashboard.ui.guard import ACCOUNT_KEY, CONFIRM_KEY, REASON_KEY, client_key
from dashboard.web.embedded_gateway import GatewayOptions
from dashboard.web.service import Service
from dashboard.web.streamlit_app import set_service
from gateway import Gateway
from gateway.clientfile import add_client, default_config_path, read_clients
from simulator import OtherWriter, Simulator
from testkit.bots import krakenex_api
from testkit.net import eventually, http_json
from testkit.procs import run_krakenwatch
from testkit.sim import master_environment, one_key_simulator

SCREENS = Path(__file__).resolve().parents[2] / "dashboard" / "ui" / "screens"
ORDER = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": "0.001", "price": "100"}
HALTED = "EGeneral:Permission denied:halted"


class Running:
    """The service with its gateway, the simulator, MASTER's key and the bot's credential."""

    def __init__(
        self, service: Service, sim: Simulator, key: str, secret: str, env: dict[str, str]
    ):
        self.service, self.sim, self.key, self.secret, self.env = service, sim, key, secret, env
        assert service.gateway is not None
        self.gateway: Gateway = service.gateway.gateway
        self.url = service.gateway.url
        (self.client,) = read_clients(default_config_path(service.settings.data_dir))

    def bot(self, own_key: bool = False) -> Any:
        """A krakenex bot through the gateway: with the client credential ``bot-a``, or with the
        account's own key."""
        if own_key:
            return krakenex_api(self.key, self.secret, self.url)
        return krakenex_api(self.client.key, self.client.secret, self.url)

    def events(self, kind: str) -> list[ev.Event]:
        return self.service.store.query(since=0, kinds=[kind])


@pytest.fixture
def running(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Running]:
    extra: dict[str, str] = getattr(request, "param", {})
    with one_key_simulator("guard-page", latency_ms=(0, 5)) as (sim, key, secret):
        data = tmp_path / "data"
        add_client(default_config_path(data), "bot-a", "MASTER", ["Balance", "AddOrder"])
        settings = {"KRAKENWATCH_TIER": "pro", "KRAKENWATCH_POLL_INTERVAL": "1", **extra}
        env = master_environment(sim.url, key, secret, KRAKENWATCH_DATA_DIR=str(data), **settings)
        service = Service.create(
            load_settings(env, use_dotenv=False), gateway=GatewayOptions(port=0)
        )
        service.start()
        set_service(service)
        try:
            yield Running(service, sim, key, secret, env)
        finally:
            set_service(None)
            service.stop()


def run(page: str = "gateway.py") -> AppTest:
    at = AppTest.from_file(str(SCREENS / page), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [w.value for w in at.warning] + [e.value for e in at.error]
    return "\n".join(str(p) for p in [*parts, *(s.value for s in at.success)])


def frame_with(at: AppTest, column: str) -> Any:
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_the_halt_form_needs_a_confirmation_and_a_reason_and_says_the_gateways_refusal(
    running: Running,
) -> None:
    at = run()
    assert [s.value for s in at.subheader][:1] == ["Trading guard"]
    assert "No halt in force" in texts(at)
    assert at.selectbox(key=ACCOUNT_KEY).options == ["MASTER"]
    assert at.selectbox(key=client_key("MASTER")).options == ["every caller", "bot-a"]

    at.text_input(key=REASON_KEY).input("exchange incident")
    click(at, "kw-halt")  # not confirmed
    assert [w.value for w in at.warning] == [
        "Tick the confirmation first: a halt refuses the account's new orders at once."
    ]
    at.checkbox(key=CONFIRM_KEY).check()
    at.text_input(key=REASON_KEY).input("   ")
    click(at, "kw-halt")  # no reason
    assert any("a reason is required" in w.value for w in at.warning)
    assert running.gateway.guard_snapshot().halts == ()

    at.text_input(key=REASON_KEY).input("x" * 501)
    click(at, "kw-halt")  # the gateway refuses it: its message, in one line
    assert [e.value for e in at.error] == ["--reason: longer than 500 characters"]
    assert "Traceback" not in texts(at)
    assert running.gateway.guard_snapshot().halts == ()
    assert running.bot().query_private("AddOrder", ORDER)["error"] == []  # still trading


def test_halting_a_client_from_the_page_then_resuming_it_behind_a_confirmation(
    running: Running,
) -> None:
    at = run()
    at.selectbox(key=client_key("MASTER")).select("bot-a")
    at.text_input(key=REASON_KEY).input("bot-a misbehaves")
    at.checkbox(key=CONFIRM_KEY).check()
    click(at, "kw-halt")
    (halt,) = running.gateway.guard_snapshot().halts
    assert (halt.account, halt.client, halt.reason, halt.origin) == (
        "MASTER",
        "bot-a",
        "bot-a misbehaves",
        "dashboard",
    )
    (said,) = at.success
    assert said.value.startswith("Halted MASTER/bot-a (client bot-a): the gateway refuses")
    assert at.checkbox(key=CONFIRM_KEY).value is False  # a second halt needs a new confirmation
    assert at.text_input(key=REASON_KEY).value == ""
    shown = texts(at)
    assert "**MASTER/bot-a** halted at " in shown and "by dashboard" in shown
    assert "Reason: bot-a misbehaves" in shown
    # the halt binds bot-a's orders, not the account's other callers
    assert running.bot().query_private("AddOrder", ORDER)["error"][0] == HALTED
    assert running.bot().query_private("Balance")["error"] == []
    assert running.bot(own_key=True).query_private("AddOrder", ORDER)["error"] == []
    # the checklist says so, with how to resume
    halted = next(c for c in running.service.verify()["checks"] if c["name"] == "halted")
    assert halted["status"] == "fail" and halted["account"] == "MASTER"
    assert "MASTER/bot-a halted" in halted["detail"] and "by dashboard" in halted["detail"]
    assert "`krakenwatch gateway resume MASTER --client bot-a`" in halted["remedy"]

    row = "MASTER/bot-a"
    click(at, f"kw-resume:{row}")  # asks first
    assert any(w.value.startswith("Resume MASTER/bot-a?") for w in at.warning)
    click(at, f"kw-resume-no:{row}")  # cancelled: still halted
    assert len(running.gateway.guard_snapshot().halts) == 1
    assert not at.button(key=f"kw-resume:{row}").disabled
    click(at, f"kw-resume:{row}")
    click(at, f"kw-resume-yes:{row}")
    assert running.gateway.guard_snapshot().halts == ()
    assert "Resumed MASTER/bot-a: the gateway passes its orders again." in [
        s.value for s in at.success
    ]
    assert "No halt in force" in texts(at)
    assert running.bot().query_private("AddOrder", ORDER)["error"] == []
    eventually(
        lambda: (
            next(c for c in running.service.verify()["checks"] if c["name"] == "halted")["status"]
            == "pass"
        ),
        what="the halted item passing again",
    )


def test_halts_and_resumes_are_on_the_timeline_with_their_reason_and_who_asked(
    running: Running,
) -> None:
    at = run()
    at.text_input(key=REASON_KEY).input("exchange incident")
    at.checkbox(key=CONFIRM_KEY).check()
    click(at, "kw-halt")  # the whole account
    assert running.bot().query_private("AddOrder", ORDER)["error"][0] == HALTED
    assert running.gateway.resume("MASTER", origin="test") is True
    eventually(lambda: running.events(ev.RESUME), what="the resume stored")

    timeline = run("timeline.py")
    events = timeline.dataframe[0].value
    guard = events[events["kind"].isin([ev.HALT, ev.RESUME])]
    assert guard[["account", "kind", "detail"]].values.tolist() == [
        ["MASTER", "resume", "resumed MASTER (by test)"],
        ["MASTER", "halt", "halted MASTER: exchange incident (by dashboard)"],
    ]
    (halt,) = running.events(ev.HALT)
    assert halt.data == {"client": None, "reason": "exchange incident", "origin": "dashboard"}
    assert ev.HALT in timeline.multiselect[1].options  # a kind to filter on
    timeline.multiselect[1].set_value([ev.HALT]).run()
    assert list(timeline.dataframe[0].value["kind"]) == [ev.HALT]


def test_a_halt_from_the_command_line_reaches_the_page_and_the_timeline(
    running: Running, tmp_path: Path
) -> None:
    result = run_krakenwatch(
        "gateway", "halt", "MASTER", "--reason", "from a shell", env=running.env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (halt,) = eventually(
        lambda: running.gateway.guard_snapshot().halts, what="the CLI's halt in this gateway"
    )
    assert halt.origin.startswith("cli ")
    (event,) = eventually(lambda: running.events(ev.HALT), what="the CLI's halt on the timeline")
    assert event.detail == f"halted MASTER: from a shell (by {halt.origin})"
    shown = texts(run())
    assert "**MASTER (every caller)** halted at " in shown and "Reason: from a shell" in shown


def test_the_guard_s_events_never_wait_for_the_dashboard_s_listeners(running: Running) -> None:
    """The guard calls its listeners on the gateway's threads: a slow listener of the monitor
    (a busy database) must not hold up a halt."""
    release, seen = threading.Event(), threading.Event()

    def slow(event: ev.Event) -> None:
        if event.kind == ev.HALT:
            seen.set()
            release.wait(30)

    running.service.monitor.add_listener(slow)
    done = threading.Event()
    halting = threading.Thread(
        target=lambda: (running.gateway.halt("MASTER", "slow db", origin="test"), done.set())
    )
    halting.start()
    try:
        assert seen.wait(10), "the halt never reached the monitor's listeners"
        assert done.wait(10), "the halt waited for the monitor's listener"
    finally:
        release.set()
        halting.join(10)
    eventually(lambda: running.events(ev.HALT), what="the halt stored once the listener is done")


@pytest.mark.parametrize("running", [{"KRAKEN_MASTER_CANCEL_AFTER": "60"}], indirect=True)
def test_the_dead_man_s_switch_shows_its_countdown(running: Running) -> None:
    at = run()
    assert frame_with(at, "Kraken cancels in (s)")["account"].tolist() == ["MASTER"]
    assert running.bot(own_key=True).query_private("Balance")["error"] == []  # a bot's call
    state = eventually(
        lambda: (d := running.gateway.guard_snapshot().dead_man["MASTER"]).armed_at and d,
        what="the switch armed after a bot's call",
    )
    assert state.trigger_at is not None
    at.run()
    row = frame_with(at, "Kraken cancels in (s)").iloc[0]
    assert 40 < row["Kraken cancels in (s)"] <= 60
    assert row["timeout (s)"] == 60
    assert row["last re-arm"].endswith(" UTC") and row["last bot call"].endswith(" UTC")
    assert row["failed re-arms"] == 0


def test_another_writer_on_the_key_shows_on_the_page_the_checklist_and_the_timeline(
    running: Running,
) -> None:
    running.sim.update_key(running.key, other_writer=OtherWriter(interval_ms=50, lead_ms=5000))
    answers = {running.bot().query_private("Balance")["error"][0] for _ in range(3)}
    assert "EAPI:Invalid nonce" in answers, answers
    eventually(
        lambda: running.gateway.guard_snapshot().foreign_writers.get("MASTER", 0) > 0,
        what="the guard counting another writer",
    )
    dedicated = next(
        c
        for c in running.service.verify()["checks"]
        if c["name"] == "dedicated_key" and c["account"] == "MASTER"
    )
    assert dedicated["status"] == "fail" and dedicated["remedy"] == FOREIGN_WRITER_REMEDY
    assert "of the gateway's own nonces" in dedicated["detail"]
    at = run()
    assert any("Another program signs with these keys" in e.value for e in at.error)
    writers = frame_with(at, "nonces refused")
    assert writers["account"].tolist() == ["MASTER"] and writers["nonces refused"][0] >= 1
    eventually(lambda: running.events(ev.FOREIGN_WRITER), what="the other writer's event")


@pytest.mark.parametrize("running", [{"KRAKENWATCH_TIER": "starter"}], indirect=True)
def test_the_streams_trading_counter_reaches_the_gateway_s_model(running: Running) -> None:
    """Orders placed outside the gateway (straight at Kraken): only the account's stream tells
    the gateway's model of the pair's counter about them."""
    eventually(
        lambda: running.service.monitor.snapshot().account("MASTER").stream.up,
        what="MASTER's stream up",
    )
    for _ in range(20):
        running.sim.place_order(running.key, "XBTUSD", "buy", "0.001", price="100")

    def modelled() -> float:
        pairs = running.gateway.guard_snapshot().trading.get("MASTER", {})
        return max((c.level for c in pairs.values()), default=0.0)

    # Kraken's counter is about 20 now; the gateway's decays 1/s (Starter) from what it was told,
    # so it is above 10 only if the stream told it within seconds
    eventually(lambda: modelled() >= 10, 10, what="the stream's counter in the gateway's model")
    at = run()
    counters = frame_with(at, "threshold")
    assert counters["account"].tolist() == ["MASTER"] and counters["threshold"][0] == 60


TOKEN = "an admin token long enough"


@pytest.mark.parametrize("running", [{"KRAKENWATCH_ADMIN_TOKEN": TOKEN}], indirect=True)
def test_the_embedded_gateway_s_admin_routes_take_the_dashboard_s_admin_token(
    running: Running,
) -> None:
    """The remedy of ``halted`` names ``POST /admin/resume``: under ``up --gateway`` it works with
    the dashboard's own ``KRAKENWATCH_ADMIN_TOKEN``."""
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    halt = {"account": "MASTER", "reason": "from a runbook"}
    assert http_json(running.url + "/admin/halt", "POST", halt)[0] == 401  # no token, no halt
    status, doc = http_json(running.url + "/admin/halt", "POST", halt, headers=bearer)
    assert status == 200, doc
    assert doc["halted"]["origin"].startswith("admin ")
    (check,) = [c for c in running.service.verify()["checks"] if c["name"] == "halted"]
    assert check["status"] == "fail" and "from a runbook" in check["detail"]
    status, doc = http_json(running.url + "/admin/resume", "POST", {"account": "MASTER"}, bearer)
    assert (status, doc) == (200, {"resumed": True})
    assert running.gateway.guard_snapshot().halts == ()


def test_without_an_admin_token_the_embedded_gateway_has_no_admin_routes(running: Running) -> None:
    assert http_json(running.url + "/admin/halts")[0] == 404
