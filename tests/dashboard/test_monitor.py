"""The monitor end to end: states, the event store across restarts, the bot-log watcher, recovery."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dashboard.config import load_settings
from dashboard.history.store import EventStore
from dashboard.monitor import events as ev
from dashboard.monitor.status import AccountState
from dashboard.web.service import DATABASE_NAME, Service
from testkit.net import eventually
from testkit.sim import scenario_simulator

BOT_LOG_LINES = """\
2026-01-11 17:30:57 | INFO | 📊 Attempting to connect User #1 (Daivon Frazier) - Kraken...
2026-01-11 17:30:57 | DEBUG | 🔄 Refreshed nonce baseline to 1768152936550371 for USER:daivon_frazier
2026-01-11 17:30:58 | INFO | ✅ KRAKEN PRO CONNECTED (USER:daivon_frazier)
2026-01-11 17:30:58 | INFO | ✅ Coinbase connected
2026-01-11 17:31:00 | INFO | Trading cycle 1 started
"""


@contextmanager
def service_for(env: dict[str, str], data_dir: Path, **extra: str) -> Iterator[Service]:
    settings = load_settings(
        {**env, "KRAKENWATCH_DATA_DIR": str(data_dir), "KRAKENWATCH_POLL_INTERVAL": "1", **extra}
    )
    service = Service.create(settings)
    service.start()
    try:
        yield service
    finally:
        service.stop()


def states(service: Service) -> dict[str, str]:
    return {a.label: a.state for a in service.monitor.snapshot().accounts}


def test_events_survive_a_restart_without_invalid_nonce(tmp_path: Path) -> None:
    with scenario_simulator("healthy") as (sim, env):
        with service_for(env, tmp_path) as service:
            eventually(lambda: set(states(service).values()) == {AccountState.CONNECTED})
            eventually(lambda: service.monitor.snapshot().skew is not None)
        with EventStore.open_readonly(tmp_path / DATABASE_NAME) as store:
            first_run = store.query()
            assert store.integrity_check() == "ok"
        kinds = {(e.kind, e.account) for e in first_run}
        for account in ("MASTER", "USER:daivon", "USER:tania_gilbert"):
            assert (ev.NONCE_REFRESH, account) in kinds and (ev.BALANCE, account) in kinds
            transitions = [
                e.data["state"] for e in first_run if e.kind == ev.STATE and e.account == account
            ]
            assert (
                transitions[:1] == [AccountState.CONNECTING]
                and AccountState.CONNECTED in transitions
            )
        assert (ev.SKEW, None) in kinds and (ev.SYSTEM_STATUS, None) in kinds
        balance = next(e for e in first_run if e.kind == ev.BALANCE and e.account == "MASTER")
        assert balance.data["balances"]["XXBT"] == "0.1234567890"

        with service_for(env, tmp_path) as service:
            eventually(lambda: set(states(service).values()) == {AccountState.CONNECTED})
        assert sim.total_stats().invalid_nonce == 0
        with EventStore.open_readonly(tmp_path / DATABASE_NAME) as store:
            everything = store.query()
        assert [e.id for e in everything[: len(first_run)]] == [e.id for e in first_run]
        assert len(everything) > len(first_run)
        stored = " ".join(f"{e.detail} {e.data}" for e in everything)
        for name, secret in env.items():
            if name.endswith(("_API_KEY", "_API_SECRET")):
                assert secret not in stored


def test_bot_log_feeds_the_checklist(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    log.write_text("old line before the deploy: EAPI:Invalid nonce\n")
    with (
        scenario_simulator("healthy") as (_sim, env),
        service_for(env, tmp_path / "data", KRAKENWATCH_BOT_LOG=str(log)) as service,
    ):

        def check(name: str) -> str:
            return next(c["status"] for c in service.verify()["checks"] if c["name"] == name)

        assert check("bot_kraken_connected") == "pending"
        assert check("bot_no_invalid_nonce") == "pass", (
            "lines from before the start are not counted"
        )
        with log.open("a") as fh:
            fh.write(BOT_LOG_LINES)
        eventually(lambda: check("bot_trading_cycles") == "pass")
        assert check("bot_kraken_connected") == "pass" and check("bot_other_brokers") == "pass"
        with log.open("a") as fh:
            fh.write(
                "2026-01-11 17:31:05 | ERROR | ❌ Kraken connection test failed (USER:daivon_frazier): EAPI:Invalid nonce\n"
            )
        eventually(lambda: check("bot_no_invalid_nonce") == "fail")
        assert service.verify()["ok"] is False


def test_recovers_within_two_poll_intervals_after_a_fault(tmp_path: Path) -> None:
    # REST polling: what is tested is how the monitor's own calls fail and recover (no stream)
    with (
        scenario_simulator("healthy") as (sim, env),
        service_for(env, tmp_path, KRAKENWATCH_STREAMS="0") as service,
    ):
        eventually(lambda: states(service)["MASTER"] == AccountState.CONNECTED)
        sim.set_faults(http_status=503, scope="private")
        eventually(
            lambda: states(service)["MASTER"] in (AccountState.DEGRADED, AccountState.DISCONNECTED)
        )
        master = service.monitor.snapshot().account("MASTER")
        assert master.last_error is not None and master.last_error.kind == "http_status"
        assert master.balances is not None, "the last known balance stays, marked by the error"
        eventually(lambda: states(service)["MASTER"] == AccountState.DISCONNECTED)
        sim.clear_faults()
        cleared = time.monotonic()
        eventually(lambda: set(states(service).values()) == {AccountState.CONNECTED})
        assert time.monotonic() - cleared <= 2 * 1.0 + 0.5
