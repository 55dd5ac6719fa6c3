"""The Gateway page, run with AppTest against a live service with its embedded gateway (``up
--gateway`` in this process): an unmodified krakenex bot's calls (with the account's key and with
a gateway client credential) and the monitor's own polls show per account and client, the client
credentials show with masked keys, a refused call shows among the last errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.config import load_settings
from dashboard.web.embedded_gateway import GatewayOptions
from dashboard.web.service import Service
from dashboard.web.streamlit_app import set_service
from gateway.clientfile import add_client, default_config_path, read_clients
from testkit.bots import krakenex_api
from testkit.net import eventually
from testkit.sim import make_key, master_environment, one_key_simulator

PAGE = Path(__file__).resolve().parents[2] / "dashboard" / "ui" / "screens" / "gateway.py"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[Service, str, str]]:
    with one_key_simulator("page", latency_ms=(0, 5)) as (sim, key, secret):
        add_client(default_config_path(tmp_path / "data"), "bot-a", "MASTER", ["Balance"])
        env = master_environment(
            sim.url,
            key,
            secret,
            KRAKENWATCH_DATA_DIR=str(tmp_path / "data"),
            KRAKENWATCH_TIER="pro",
            KRAKENWATCH_POLL_INTERVAL="1",
        )
        running = Service.create(
            load_settings(env, use_dotenv=False), gateway=GatewayOptions(port=0)
        )
        running.start()
        set_service(running)
        try:
            yield running, key, secret
        finally:
            set_service(None)
            running.stop()


def monitor_calls(service: Service) -> int:
    totals = service.monitor.snapshot().gateway
    assert totals is not None
    return sum(n for (_, client, _), n in totals.totals.items() if client == "monitor")


def test_the_page_shows_bot_and_monitor_traffic_and_the_last_errors(
    service: tuple[Service, str, str],
) -> None:
    running, key, secret = service
    assert running.gateway is not None
    bot = krakenex_api(key, secret, running.gateway.url)
    for _ in range(3):
        assert bot.query_private("Balance", timeout=30)["error"] == []
    intruder = krakenex_api(key, make_key("not-the-secret")[1], running.gateway.url)
    assert intruder.query_private("Balance", timeout=30)["error"] == ["EAPI:Invalid signature"]
    (client,) = read_clients(default_config_path(running.settings.data_dir))
    assert (
        krakenex_api(client.key, client.secret, running.gateway.url).query_private("Balance")[
            "error"
        ]
        == []
    )
    eventually(lambda: monitor_calls(running) >= 2, 30, what="two monitor calls")

    at = AppTest.from_file(str(PAGE), default_timeout=30)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Gateway"
    calls = at.table[0].value.set_index(["account", "client"])
    assert calls.loc[("MASTER", "account-key")][["calls", "ok", "rejected"]].tolist() == [4, 3, 1]
    assert calls.loc[("MASTER", "monitor")]["ok"] >= 2
    assert calls.loc[("MASTER", "bot-a")]["ok"] == 1
    clients = at.table[1].value
    assert clients.iloc[0][["client", "account", "allowed methods", "calls"]].tolist() == [
        "bot-a",
        "MASTER",
        "Balance",
        1,
    ]
    assert clients.iloc[0]["key"] == f"{client.key[:4]}…{client.key[-4:]}"
    errors = at.table[2].value
    assert errors.iloc[0][["client", "code", "answered by"]].tolist() == [
        "account-key",
        "EAPI:Invalid signature",
        "gateway",
    ]
    shown = " ".join(str(m.value) for m in at.metric) + " ".join(c.value for c in at.caption)
    assert running.gateway.url in shown
    cells = " ".join(str(v) for t in at.table for v in t.value.to_numpy().ravel())
    for hidden in (key, secret, client.key, client.secret):
        assert hidden not in shown and hidden not in cells
    assert len(at.get("vega_lite_chart")) == 1  # outcomes over time


@pytest.mark.parametrize("command", ["krakenwatch up", "krakenwatch demo"])
def test_without_a_gateway_the_page_says_how_to_run_one(tmp_path: Path, command: str) -> None:
    key, secret = make_key("no-gateway")
    settings = load_settings(
        master_environment("http://127.0.0.1:9", key, secret, KRAKENWATCH_DATA_DIR=str(tmp_path)),
        use_dotenv=False,
    )
    running = Service.create(settings, command=command)
    set_service(running)
    try:
        at = AppTest.from_file(str(PAGE), default_timeout=30)
        at.run()
    finally:
        set_service(None)
        running.stop()
    assert not at.exception
    assert f"`{command} --gateway`" in at.info[0].value  # the command that runs, not another
