"""Reloading the client file while the gateway serves (over real HTTP, in a thread of this process):
the table is swapped whole, a call in flight finishes with the credential it started with, a file
that turns malformed or too open keeps the previous table and says so (the metrics too), and a
client's wrong signatures are counted under its name."""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass
from pathlib import Path

import krakenex
import pytest

from gateway.clientfile import ClientEntry, add_client, remove_client
from gateway.server import GatewayThread
from testkit.bots import krakenex_api
from testkit.net import eventually
from testkit.sim import make_key


def balance(api: krakenex.API) -> list[str]:
    return list(api.query_private("Balance", timeout=30)["error"])


@dataclass
class Served:
    """A gateway re-reading ``path`` every 50 ms, which holds client ``a`` of MASTER."""

    path: Path
    a: ClientEntry
    server: GatewayThread

    def a_calls(self) -> list[str]:
        return balance(krakenex_api(self.a.key, self.a.secret, self.server.url))


@pytest.fixture
def served(sim_key, start_gateway, tmp_path: Path) -> Served:
    path = tmp_path / "gateway.toml"
    a = add_client(path, "a", "MASTER")
    return Served(path, a, start_gateway(sim_key[0].url, config_path=path, reload_interval_s=0.05))


def client_names(server: GatewayThread) -> list[str]:
    credentials = server.gateway.credentials
    assert credentials is not None
    return [c.name for c in credentials.table.clients]


def test_a_reload_swaps_the_table_and_a_call_in_flight_finishes(sim_key, served: Served) -> None:
    sim, key, _ = sim_key
    path, server = served.path, served.server
    assert served.a_calls() == []
    sim.set_faults(latency_ms=[3000, 3000], count=1)  # the next call stays with Kraken a while
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(served.a_calls)
        sim.wait_for(key, lambda stats: stats.in_flight >= 1)
        remove_client(path, "a")
        b = add_client(path, "b", "MASTER")
        eventually(lambda: client_names(server) == ["b"], 10, what="the reload")
        assert served.a_calls() == ["EAPI:Invalid key"]
        assert in_flight.result(30) == []  # started with the old table, finished with it
    assert balance(krakenex_api(b.key, b.secret, server.url)) == []


def test_a_broken_or_open_file_at_reload_keeps_the_previous_table(served: Served) -> None:
    path, server = served.path, served.server
    good = path.read_text()
    credentials = server.gateway.credentials
    assert credentials is not None
    registry = server.gateway.metrics.registry

    def problem() -> str | None:
        return credentials.problem

    path.write_text(good + "[[clients\n")
    assert "not valid TOML" in eventually(problem, 10, what="the broken file to be seen")
    assert served.a_calls() == []  # the previous table serves
    assert registry.get_sample_value("krakenwatch_gateway_config_problem") == 1
    path.write_text(good)
    path.chmod(0o644)
    assert "chmod 600" in eventually(lambda: "chmod" in (problem() or "") and problem(), 10)

    assert served.a_calls() == []
    path.chmod(0o600)
    eventually(lambda: problem() is None, 10, what="the good file again")
    assert registry.get_sample_value("krakenwatch_gateway_config_problem") == 0
    assert registry.get_sample_value("krakenwatch_gateway_clients") == 1
    errors = {"outcome": "error"}  # the broken text and the open mode (a half-written file more)
    assert registry.get_sample_value("krakenwatch_gateway_config_reloads_total", errors) >= 2
    assert served.a_calls() == []


def test_wrong_signatures_of_a_client_are_counted_under_its_name(served: Served) -> None:
    a, server = served.a, served.server
    wrong = krakenex_api(a.key, make_key("not-a")[1], server.url)
    for _ in range(3):
        assert balance(wrong) == ["EAPI:Invalid signature"]
    auth = server.gateway.metrics.traffic.snapshot().auth["a"]
    assert (auth.failures_in_row, auth.failures) == (3, 3)
    assert served.a_calls() == []
    auth = server.gateway.metrics.traffic.snapshot().auth["a"]
    assert (auth.failures_in_row, auth.failures) == (0, 3)
    registry = server.gateway.metrics.registry
    labels = {"client": "a"}
    assert registry.get_sample_value("krakenwatch_gateway_auth_failures_total", labels) == 3
    ok = {"client": "a", "account": "MASTER", "method": "Balance", "outcome": "ok"}
    assert registry.get_sample_value("krakenwatch_gateway_requests_total", ok) == 1
