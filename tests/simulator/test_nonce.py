"""Nonce judging: arrival order, windows, malformed nonces, check order, persistence, other writer."""

from __future__ import annotations

import json
import time

import pytest

from simulator import OtherWriter, Scenario, Simulator, builtin_scenario
from testkit.rawclient import form, signed_post
from testkit.sim import call


def test_lower_nonce_arriving_after_a_higher_one_is_rejected(start_simulator, make_keyspec):
    spec = make_keyspec()
    sim = start_simulator(Scenario(keys=[spec]))
    assert call(sim, spec, 200).error == []
    assert call(sim, spec, 100).error == ["EAPI:Invalid nonce"]
    assert call(sim, spec, 200).error == ["EAPI:Invalid nonce"]  # equal is not greater
    assert call(sim, spec, 201).error == []
    assert sim.stats(spec.name).last_nonce == 201


def test_window_accepts_lower_nonces_once(start_simulator, make_keyspec):
    spec = make_keyspec(nonce_window=50)
    sim = start_simulator(Scenario(keys=[spec]))
    assert call(sim, spec, 200).error == []
    assert call(sim, spec, 180).error == []  # 180 > 200 - 50, never seen
    assert call(sim, spec, 180).error == ["EAPI:Invalid nonce"]  # a repeat inside the window
    assert call(sim, spec, 200).error == ["EAPI:Invalid nonce"]
    assert call(sim, spec, 150).error == ["EAPI:Invalid nonce"]  # not > last - W
    assert call(sim, spec, 151).error == []
    assert call(sim, spec, 260).error == []  # last = 260: the floor moves to 210
    assert call(sim, spec, 211).error == []
    assert call(sim, spec, 210).error == ["EAPI:Invalid nonce"]
    assert sim.stats(spec.name).last_nonce == 260


@pytest.mark.parametrize(
    "nonce",
    ["abc", "12.5", "-5", "+5", " 5", "0", "1e9", "١٢٣", str(2**64), "99999999999999999999999"],
)
def test_malformed_or_out_of_range_nonce(start_simulator, make_keyspec, nonce):
    spec = make_keyspec()
    sim = start_simulator(Scenario(keys=[spec]))
    assert call(sim, spec, nonce).error == ["EAPI:Invalid nonce"]
    assert sim.stats(spec.name).invalid_nonce == 1


def test_largest_nonce_is_accepted_and_then_the_key_is_stranded(start_simulator, make_keyspec):
    spec = make_keyspec()
    sim = start_simulator(Scenario(keys=[spec]))
    assert call(sim, spec, 2**64 - 1).error == []
    assert call(sim, spec, int(time.time() * 1e6)).error == ["EAPI:Invalid nonce"]


def test_missing_or_repeated_nonce_field(start_simulator, make_keyspec):
    spec = make_keyspec()
    sim = start_simulator(Scenario(keys=[spec]))
    assert call(sim, spec, None, body="").error == ["EAPI:Invalid nonce"]
    assert call(sim, spec, None, body="asset=ZUSD").error == ["EAPI:Invalid nonce"]
    assert call(sim, spec, "5", body="nonce=5&nonce=6").error == ["EAPI:Invalid nonce"]
    assert sim.stats(spec.name).invalid_nonce == 3


def test_order_of_checks(start_simulator, make_keyspec):
    spec = make_keyspec(permissions={"orders"})
    sim = start_simulator(Scenario(keys=[spec]))
    bad_sig = "A" * 88

    def send(key, nonce, api_sign=None):
        return signed_post(
            sim.url,
            "Balance",
            key=key,
            secret=spec.secret,
            body=form(nonce),
            nonce=nonce,
            api_sign=api_sign,
        ).error

    # unknown key + bad signature + bad nonce + no permission -> invalid key
    assert send("SIMunknown", "x", bad_sig) == ["EAPI:Invalid key"]
    assert signed_post(
        sim.url, "Balance", key="", secret=spec.secret, body=form(1), nonce=1
    ).error == ["EAPI:Invalid key"]
    # bad signature + bad nonce + no permission -> invalid signature
    assert send(spec.key, "x", bad_sig) == ["EAPI:Invalid signature"]
    # bad nonce + no permission -> invalid nonce
    assert send(spec.key, "x") == ["EAPI:Invalid nonce"]
    # no permission -> permission denied (the nonce has been consumed)
    assert send(spec.key, 10) == ["EGeneral:Permission denied"]
    assert send(spec.key, 10) == ["EAPI:Invalid nonce"]
    stats = sim.stats(spec.name)
    assert (stats.invalid_signature, stats.invalid_nonce, stats.permission_denied) == (1, 2, 1)
    assert sim.total_stats().invalid_key == 2


def test_nonces_survive_a_restart_with_a_state_file(tmp_path, make_keyspec):
    state_file = tmp_path / "state" / "nonces.json"
    spec = make_keyspec()
    with Simulator(Scenario(keys=[spec]), state_file=state_file) as sim:
        assert call(sim, spec, 500).error == []
    document = json.loads(state_file.read_text())
    assert spec.key not in state_file.read_text() and spec.secret not in state_file.read_text()
    assert [entry["last_nonce"] for entry in document["keys"].values()] == [500]

    with Simulator(Scenario(keys=[spec]), state_file=state_file) as sim:  # scenario says 0
        assert sim.stats(spec.name).last_nonce == 500
        assert call(sim, spec, 400).error == ["EAPI:Invalid nonce"]
        assert call(sim, spec, 500).error == ["EAPI:Invalid nonce"]
        assert call(sim, spec, 501).error == []

    spec.last_nonce = 9_000  # a scenario value above the file wins: never lowered
    with Simulator(Scenario(keys=[spec]), state_file=state_file) as sim:
        assert call(sim, spec, 8_000).error == ["EAPI:Invalid nonce"]
    assert [e["last_nonce"] for e in json.loads(state_file.read_text())["keys"].values()] == [9_000]


def test_window_memory_survives_a_restart(tmp_path, make_keyspec):
    state_file = tmp_path / "nonces.json"
    spec = make_keyspec(nonce_window=100)
    with Simulator(Scenario(keys=[spec]), state_file=state_file) as sim:
        assert call(sim, spec, 1000).error == []
        assert call(sim, spec, 950).error == []
    with Simulator(Scenario(keys=[spec]), state_file=state_file) as sim:
        assert call(sim, spec, 950).error == ["EAPI:Invalid nonce"]
        assert call(sim, spec, 960).error == []


def test_a_damaged_state_file_is_an_error_not_a_reset(tmp_path, make_keyspec):
    state_file = tmp_path / "nonces.json"
    state_file.write_text("{not json")
    with pytest.raises(ValueError, match="not a simulator state file"):
        Simulator(Scenario(keys=[make_keyspec()]), state_file=state_file)


def test_other_writer_runs_ahead_and_advances(start_simulator, make_keyspec):
    spec = make_keyspec(other_writer=OtherWriter(interval_ms=20, lead_ms=2000))
    before_us = int(time.time() * 1e6)
    sim = start_simulator(Scenario(keys=[spec]))
    first = sim.wait_for(spec.name, lambda s: s.other_writer_nonces >= 1)
    assert first.last_nonce >= before_us + 2_000_000
    # a microsecond client using "now" is behind the other writer
    assert call(sim, spec, int(time.time() * 1e6)).error == ["EAPI:Invalid nonce"]
    later = sim.wait_for(spec.name, lambda s: s.last_nonce > first.last_nonce)
    assert later.other_writer_nonces >= 2
    sim.update_key(spec.name, other_writer=None)
    stopped = sim.stats(spec.name).other_writer_nonces
    # with the writer gone, a nonce above its last one is accepted again
    assert call(sim, spec, sim.stats(spec.name).last_nonce + 1).error == []
    assert sim.stats(spec.name).other_writer_nonces == stopped


@pytest.mark.parametrize("name", ["previous-session-nonce", "finer-unit", "shared-key"])
def test_builtin_nonce_scenarios_reject_a_fresh_microsecond_client(start_simulator, name):
    scenario = builtin_scenario(name)
    sim = start_simulator(scenario)
    spec = scenario.keys[0]
    assert call(sim, spec, int(time.time() * 1e6)).error == ["EAPI:Invalid nonce"]


def test_previous_session_passes_with_time_but_a_finer_unit_never_does(start_simulator):
    previous, finer = builtin_scenario("previous-session-nonce"), builtin_scenario("finer-unit")
    sim_previous, sim_finer = start_simulator(previous), start_simulator(finer)
    a_minute_ahead_us = int((time.time() + 60) * 1e6)
    assert call(sim_previous, previous.keys[0], a_minute_ahead_us).error == []
    a_year_ahead_us = int((time.time() + 365 * 86400) * 1e6)
    assert call(sim_finer, finer.keys[0], a_year_ahead_us).error == ["EAPI:Invalid nonce"]
