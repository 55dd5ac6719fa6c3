"""The monitor against a simulator that cycles through every fault Kraken can throw at it."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from broker.limits import TIERS
from dashboard.config import load_settings
from dashboard.monitor import events as ev
from dashboard.monitor.status import AccountState
from dashboard.web.service import Service
from simulator import Simulator, builtin_scenario, scenario_environment
from testkit.net import eventually

POLL = 1.0
LOCKOUT_WAIT = 3.0


def test_fault_cycle_survived_and_recovered(tmp_path: Path) -> None:
    scenario = builtin_scenario("healthy")
    scenario.tier = "unlimited"
    sim = Simulator(scenario).start()
    port = sim.port
    env = {
        **scenario_environment(scenario, sim.url),
        "KRAKENWATCH_DATA_DIR": str(tmp_path),
        "KRAKENWATCH_POLL_INTERVAL": str(POLL),
        "KRAKENWATCH_REQUEST_TIMEOUT": "1",
        "KRAKENWATCH_LOCKOUT_WAIT": str(LOCKOUT_WAIT),
        "KRAKENWATCH_TIER": "pro",
    }
    service = Service.create(load_settings(env, use_dotenv=False))
    service.start()
    master_key = env["KRAKEN_MASTER_API_KEY"]

    def states() -> dict[str, str]:
        return {a.label: a.state for a in service.monitor.snapshot().accounts}

    def all_connected() -> bool:
        return set(states().values()) == {AccountState.CONNECTED}

    try:
        eventually(all_connected)
        cycle: list[tuple[str, dict[str, Any], str]] = [
            ("hang", {"hang": True}, "timeout"),
            ("502", {"http_status": 502}, "http_status"),
            ("503", {"http_status": 503}, "http_status"),
            ("unavailable", {"api_error": "EService:Unavailable"}, "service_unavailable"),
            ("busy", {"api_error": "EService:Busy"}, "service_unavailable"),
            ("drop", {"drop": True}, "connection_lost"),  # sent, then cut: outcome unknown
            ("maintenance", {"system_status": "maintenance"}, "service_unavailable"),
            ("rate limit", {"api_error": "EAPI:Rate limit exceeded"}, "rate_limited"),
            ("lockout", {"api_error": "EGeneral:Temporary lockout"}, "temporary_lockout"),
        ]
        for name, fault, kind in cycle:
            sim.set_faults(**fault, scope="private")
            started = time.monotonic()
            before = sim.stats(master_key).requests
            eventually(
                lambda kind=kind: (
                    (service.monitor.snapshot().account("MASTER").last_error or None)
                    and service.monitor.snapshot().account("MASTER").last_error.kind == kind
                    and states()["MASTER"] != AccountState.CONNECTED
                )
            )  # type: ignore[union-attr]
            if name == "lockout":
                # no private call until the lockout can have expired
                locked_at = time.monotonic()
                count = sim.stats(master_key).requests
                time.sleep(LOCKOUT_WAIT * 0.8)
                assert sim.stats(master_key).requests == count, (
                    "a private call was made during the lockout"
                )
                assert time.monotonic() - locked_at < LOCKOUT_WAIT
            else:
                time.sleep(2 * POLL)
            # never a tight loop: at most one attempt per half second while failing
            elapsed = time.monotonic() - started
            attempts = sim.stats(master_key).requests - before
            assert attempts <= elapsed / 0.5 + 3, f"{name}: {attempts} calls in {elapsed:.1f} s"
            sim.clear_faults()
            cleared = time.monotonic()
            eventually(all_connected, timeout=LOCKOUT_WAIT + 10)
            recovery = time.monotonic() - cleared
            if name == "rate limit":
                pro = TIERS["pro"]
                assert (
                    recovery <= max(POLL, pro.seconds_to_decay(pro.maximum / 2)) + 2 * POLL + 0.5
                ), recovery
            elif name == "lockout":
                assert recovery <= LOCKOUT_WAIT + 2 * POLL + 0.5, recovery
            else:
                assert recovery <= 2 * POLL + 0.5, f"{name}: recovered after {recovery:.1f} s"

        # the simulator is killed and restarted on the same port
        sim.stop()
        eventually(lambda: states()["MASTER"] != AccountState.CONNECTED)
        assert service.monitor.snapshot().account("MASTER").last_error.kind == "connection"  # type: ignore[union-attr]
        sim = Simulator(scenario, port=port).start()
        restarted = time.monotonic()
        eventually(all_connected)
        assert time.monotonic() - restarted <= 2 * POLL + 0.5
        assert sim.total_stats().invalid_nonce == 0

        threads = [t for t in threading.enumerate() if t.name.startswith("kw-account-")]
        assert len(threads) == 3 and all(t.is_alive() for t in threads), "a monitor thread died"
        assert service.store is not None
        reasons = " ".join(
            str(e.data.get("reason"))
            for e in service.store.query(kinds=[ev.STATE], accounts=["MASTER"])
        )
        for kind in (
            "timeout",
            "http_status",
            "service_unavailable",
            "connection",
            "connection_lost",
            "rate_limited",
            "temporary_lockout",
        ):
            assert kind in reasons, f"the timeline does not say {kind}"
    finally:
        service.stop()
        sim.stop()
