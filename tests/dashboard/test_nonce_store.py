"""The dashboard on a shared Redis nonce store: which store is used, and an outage shown, failed
closed and recovered from without a restart."""

from __future__ import annotations

from pathlib import Path

from dashboard.checks.checklist import CheckStatus, build_checklist
from dashboard.config import load_settings
from dashboard.monitor.status import AccountState, AccountStatus
from dashboard.web.service import Service
from testkit.net import eventually
from testkit.redis import redis_server
from testkit.sim import scenario_simulator


def test_a_redis_outage_is_shown_and_the_monitor_recovers_by_itself(tmp_path: Path) -> None:
    with (
        redis_server(tmp_path / "redis", appendonly=True) as server,
        scenario_simulator("healthy", tier="unlimited") as (sim, env),
    ):
        settings = load_settings(
            {
                **env,
                "KRAKENWATCH_DATA_DIR": str(tmp_path / "data"),
                "KRAKENWATCH_POLL_INTERVAL": "1",
                "KRAKENWATCH_TIER": "pro",
                "KRAKENWATCH_NONCE_STORE": server.url,
                # REST polling: the monitor's own calls meet the outage (no stream)
                "KRAKENWATCH_STREAMS": "0",
            },
            use_dotenv=False,
        )
        service = Service.create(settings)
        service.start()
        monitor = service.monitor

        def states() -> set[str]:
            return {a.state for a in monitor.snapshot().accounts}

        try:
            eventually(lambda: states() == {AccountState.CONNECTED})
            doc = service.verify()
            assert all(
                a["nonce_store"].startswith(f"redis store at {server.url}") for a in doc["accounts"]
            )

            server.stop()

            def master() -> AccountStatus:
                return monitor.snapshot().account("MASTER")

            eventually(
                lambda: (
                    master().last_error is not None
                    and master().last_error.kind == "nonce_store_unavailable"
                    and master().state != AccountState.CONNECTED
                ),
                timeout=30,
            )
            sent = sim.total_stats().requests
            connected = {
                c.account: c
                for c in build_checklist(monitor.snapshot(), settings)
                if c.name == "connected"
            }["MASTER"]
            assert connected.status == CheckStatus.FAIL
            assert f"127.0.0.1:{server.port}" in connected.detail
            assert connected.remedy and "KRAKENWATCH_NONCE_STORE" in connected.remedy
            text = service.metrics.exposition().decode()
            assert (
                'krakenwatch_nonce_store_errors_total{account="MASTER",kind="nonce_store_unavailable"}'
                in text
            )
            assert "krakenwatch_nonce_lock_wait_seconds_count" in text

            def refused() -> float:
                value = service.metrics.registry.get_sample_value(
                    "krakenwatch_nonce_store_errors_total",
                    {"account": "MASTER", "kind": "nonce_store_unavailable"},
                )
                return value or 0.0

            first = refused()
            eventually(lambda: refused() >= first + 2, timeout=30)  # the monitor kept trying...
            assert sim.total_stats().requests == sent, "a call reached Kraken without the store"

            server.start()  # the same port and data
            eventually(lambda: states() == {AccountState.CONNECTED}, timeout=30)
            assert sim.total_stats().invalid_nonce == 0
        finally:
            service.stop()
