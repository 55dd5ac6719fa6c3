"""Gateway client credentials end to end, with real processes: `krakenwatch gateway add-client`
issues a credential, an unmodified krakenex bot uses it against a real `krakenwatch gateway`, and
Kraken (the simulator) only ever sees the account's real key. Method lists hold, fund-moving
methods need naming, revocation needs no restart, and a client file that is open to others or
malformed stops the gateway at start with one line naming it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import krakenex
import pytest

from testkit.bots import krakenex_api
from testkit.gateway import add_client, gateway_process
from testkit.net import eventually, http_get
from testkit.procs import assert_one_line_error, run_krakenwatch
from testkit.sim import make_key

GATEWAY_HEADER = "X-Krakenwatch-Gateway"
WITHDRAW = {"asset": "XBT", "key": "cold wallet", "amount": "1"}


def errors(api: krakenex.API, method: str = "Balance", data: dict[str, str] | None = None) -> list:
    return list(api.query_private(method, data, timeout=30)["error"])


@pytest.mark.slow
def test_a_client_credential_signs_as_the_account_within_its_method_list(
    sim_key, sim_env, tmp_path: Path
) -> None:
    sim, key, _ = sim_key
    bot_key, bot_secret = add_client(sim_env, tmp_path, "bot-a")
    reader_key, reader_secret = add_client(
        sim_env, tmp_path, "reader", "MASTER", "--allow", "Balance"
    )
    with gateway_process(sim_env, tmp_path, ["--no-rate-model"]) as gw:
        assert f"clients: 2 in {tmp_path / 'data' / 'gateway.toml'}" in gw.output()
        trader = krakenex_api(bot_key, bot_secret, gw.url)
        assert errors(trader) == []
        assert sim.stats(key).accepted == 1  # signed with the account's real key
        assert sim.total_stats().invalid_key == 0  # the client's key never reached Kraken
        sent = sim.total_stats().requests
        assert errors(trader, "Withdraw", WITHDRAW) == ["EGeneral:Permission denied"]
        assert trader.response.headers[GATEWAY_HEADER] == "answered"
        reader = krakenex_api(reader_key, reader_secret, gw.url)
        assert errors(reader) == []
        assert errors(reader, "OpenOrders") == ["EGeneral:Permission denied"]
        assert errors(krakenex_api(bot_key, make_key("wrong")[1], gw.url)) == [
            "EAPI:Invalid signature"
        ]
        assert sim.total_stats().requests == sent + 1  # only the reader's Balance went upstream

        removed = run_krakenwatch("gateway", "remove-client", "bot-a", env=sim_env, cwd=tmp_path)
        assert removed.returncode == 0, removed.stderr
        eventually(lambda: errors(trader) == ["EAPI:Invalid key"], 30, 0.2, what="bot-a revoked")
        assert errors(reader) == []  # the others keep working
        new_key, new_secret = add_client(sim_env, tmp_path, "bot-b")  # no restart either
        eventually(lambda: errors(krakenex_api(new_key, new_secret, gw.url)) == [], 30, 0.2)
        os.kill(gw.proc.pid, signal.SIGHUP)  # a reload on request; the gateway keeps serving
        eventually(lambda: gw.output().count("client credentials reloaded") >= 3, 30)
        assert errors(reader) == [] and gw.proc.poll() is None
        metrics = http_get(gw.url + "/metrics")[2]
    for line in (
        'krakenwatch_gateway_requests_total{account="MASTER",client="bot-a",method="Balance",outcome="ok"} ',
        'krakenwatch_gateway_requests_total{account="MASTER",client="bot-a",method="Withdraw",outcome="rejected"} 1.0',
        'krakenwatch_gateway_requests_total{account="MASTER",client="reader",method="OpenOrders",outcome="rejected"} 1.0',
        'krakenwatch_gateway_auth_failures_total{client="bot-a"} 1.0',
        "krakenwatch_gateway_clients 2.0",
    ):
        assert line in metrics, line


def test_list_clients_shows_no_secret(sim_env, tmp_path: Path) -> None:
    _, secret = add_client(sim_env, tmp_path, "bot-a")
    add_client(sim_env, tmp_path, "reader", "MASTER", "--allow", "Balance,OpenOrders")
    listed = run_krakenwatch("gateway", "list-clients", env=sim_env, cwd=tmp_path)
    assert listed.returncode == 0 and listed.stderr == ""
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert rows[0] == ["name", "account", "allowed", "methods", "key"]
    assert rows[1][:2] == ["bot-a", "MASTER"] and "every method but" in listed.stdout
    assert rows[2][:4] == ["reader", "MASTER", "Balance,", "OpenOrders"]
    assert secret not in listed.stdout and secret[:12] not in listed.stdout


def test_add_client_refuses_an_unknown_account_naming_it(sim_env, tmp_path: Path) -> None:
    result = run_krakenwatch(
        "gateway", "add-client", "bot", "--account", "USER:ghost", env=sim_env, cwd=tmp_path
    )
    assert_one_line_error(result, "--account", "USER:ghost", "configured: MASTER")
    assert not (tmp_path / "data" / "gateway.toml").exists()


def test_a_client_file_open_to_others_stops_the_gateway_naming_it(sim_env, tmp_path: Path) -> None:
    path = tmp_path / "clients.toml"
    add_client(sim_env, tmp_path, "bot", "MASTER", "--config", str(path))
    path.chmod(0o644)
    result = run_krakenwatch("gateway", "--config", str(path), env=sim_env, cwd=tmp_path)
    assert_one_line_error(result, str(path), "mode 0644", "chmod 600")


@pytest.mark.parametrize(
    ("broken", "culprit"),
    [("[[clients]\n", "not valid TOML"), ('[[clients]]\nname = "x"\n', "clients[1].account")],
)
def test_a_malformed_client_file_stops_the_gateway_naming_it(
    sim_env, tmp_path: Path, broken: str, culprit: str
) -> None:
    add_client(sim_env, tmp_path, "bot")
    path = tmp_path / "data" / "gateway.toml"
    path.write_text(path.read_text() + broken)
    result = run_krakenwatch("gateway", env=sim_env, cwd=tmp_path)
    assert_one_line_error(result, str(path), culprit)


@pytest.mark.slow
def test_a_client_of_an_unknown_account_is_reported_and_skipped(sim_env, tmp_path: Path) -> None:
    ghost_key, ghost_secret = add_client(sim_env, tmp_path, "ghost")
    key, secret = add_client(sim_env, tmp_path, "bot")
    path = tmp_path / "data" / "gateway.toml"
    text = path.read_text()
    path.write_text(text.replace('account = "MASTER"', 'account = "USER:ghost"', 1))
    with gateway_process(sim_env, tmp_path, ["--no-rate-model"]) as gw:
        assert errors(krakenex_api(key, secret, gw.url)) == []
        assert errors(krakenex_api(ghost_key, ghost_secret, gw.url)) == ["EAPI:Invalid key"]
        output = gw.output()
    assert "client 'ghost': unknown account 'USER:ghost' (configured: MASTER); skipped" in output
    assert "clients: 1 in" in output
