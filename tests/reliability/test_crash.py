"""kill -9 during polling: the restart loses no committed event and sends no invalid nonce."""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path

from dashboard.history.store import EventStore
from dashboard.monitor import events as ev
from dashboard.web.service import DATABASE_NAME
from simulator import Simulator, builtin_scenario, scenario_environment
from testkit.net import free_port
from testkit.procs import start_up, stop_group


def committed_ids(db: Path) -> list[int]:
    with EventStore.open_readonly(db) as store:
        return [e.id for e in store.query() if e.id is not None]


def test_kill_9_then_restart(tmp_path: Path) -> None:
    scenario = builtin_scenario("healthy")
    scenario.tier = "unlimited"
    with Simulator(scenario).start() as sim:
        env = {
            **scenario_environment(scenario, sim.url),
            "KRAKENWATCH_DATA_DIR": str(tmp_path / "data"),
            "KRAKENWATCH_POLL_INTERVAL": "1",
            "KRAKENWATCH_TIER": "pro",
        }
        db = tmp_path / "data" / DATABASE_NAME
        port = free_port()
        proc = start_up(env, tmp_path, port)
        try:
            deadline = time.monotonic() + 30
            while sim.total_stats().accepted < 12:  # several polls per account
                assert time.monotonic() < deadline
                time.sleep(0.1)
            before = committed_ids(db)
            accepted = sim.total_stats().accepted
        finally:
            stop_group(proc, signal.SIGKILL)
        assert proc.returncode == -signal.SIGKILL
        assert before, "nothing was committed before the kill"

        proc = start_up(env, tmp_path, port)
        try:
            deadline = time.monotonic() + 30
            while sim.total_stats().accepted < accepted + 6:
                assert time.monotonic() < deadline, "the restarted monitor is not polling"
                time.sleep(0.1)
        finally:
            stop_group(proc)
        assert sim.total_stats().invalid_nonce == 0, (
            "the restart went below the nonce high-water mark"
        )
        after = committed_ids(db)
        assert set(before) <= set(after), "events committed before the kill were lost"
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        with EventStore.open_readonly(db) as store:
            starts = [
                e
                for e in store.query(kinds=[ev.STATE], accounts=["MASTER"])
                if e.data.get("reason") == "start"
            ]
        assert len(starts) == 2
