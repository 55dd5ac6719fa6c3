"""Each account's WebSocket v2 stream in the running service, against the simulator over real
HTTP and real WebSockets on 127.0.0.1: balances and orders from the stream, REST Balance only as a
reconciliation, polling again while the stream is down, ``trading_active``, the metrics."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dashboard.config import load_settings
from dashboard.deploys.request import MarkRequest
from dashboard.history.deploy_book import DeployState
from dashboard.monitor import events as ev
from dashboard.monitor.status import AccountStatus
from dashboard.web.service import Service
from testkit.headless import serving
from testkit.net import eventually, http_get
from testkit.sim import scenario_simulator
from tests.dashboard.test_metrics import parse, value

FAST = {"KRAKENWATCH_POLL_INTERVAL": "1", "KRAKENWATCH_TIER": "pro"}


@contextmanager
def watching(tmp_path: Path, **extra: str) -> Iterator[tuple[Any, str, Service, str]]:
    """The healthy scenario's simulator, MASTER's key, and the service watching it (its URL)."""
    with (
        scenario_simulator("healthy") as (sim, env),
        serving(env, tmp_path / "data", **extra) as (service, url),
    ):
        yield sim, env["KRAKEN_MASTER_API_KEY"], service, url


def master(service: Service) -> AccountStatus:
    return service.monitor.snapshot().account("MASTER")


def stream_up(service: Service, label: str = "MASTER") -> AccountStatus:
    return eventually(
        lambda: (a := service.monitor.snapshot().account(label)).stream.up and a,
        what=f"{label}'s stream up",
    )


def balance_calls(sim: Any, key: str) -> int:
    """The key's private REST calls but its stream's tokens (Balance, the permission probes)."""
    return int(sim.stats(key).requests) - int(sim.stream_stats(key).tokens_issued)


def item(service: Service, name: str, account: str | None) -> dict[str, Any]:
    return next(
        c for c in service.verify()["checks"] if c["name"] == name and c["account"] == account
    )


def events_of(service: Service, kind: str) -> list[ev.Event]:
    assert service.store is not None
    return service.store.query(since=0, kinds=[kind])


def heartbeats(service: Service) -> int:
    return service.monitor.snapshot().stream_activity["MASTER"].messages.get("heartbeat", 0)


def test_balances_come_from_the_stream_and_rest_balance_only_reconciles(tmp_path: Path) -> None:
    extra = {**FAST, "KRAKENWATCH_RECONCILE_INTERVAL": "3600"}
    with watching(tmp_path, **extra) as (sim, key, service, _url):
        before = stream_up(service).balances
        assert before is not None
        calls = balance_calls(sim, key)
        txid = sim.place_order(key, "XBTUSD", "buy", "0.01", price="100")
        sim.fill_order(key, txid)
        after = eventually(
            lambda: (b := master(service).balances) != before and b, what="the fill's balances"
        )
        assert after["XXBT"] != before["XXBT"] and after["ZUSD"] != before["ZUSD"]
        # several poll intervals go by (heartbeats come once a second): no REST Balance at all
        beats = heartbeats(service)
        eventually(lambda: heartbeats(service) >= beats + 3, what="three more heartbeats")
        assert balance_calls(sim, key) == calls
        assert master(service).state == "connected"
        assert item(service, "connected", "MASTER")["status"] == "pass"
        orders = [e.data for e in events_of(service, ev.ORDER) if e.account == "MASTER"]
        assert [o["event"] for o in orders] == ["placed", "fill", "filled"]
        assert orders[0]["pair"] == "BTC/USD" and orders[0]["side"] == "buy"
        assert orders[1]["volume"] is not None and orders[1]["price"] is not None


def test_a_reconciliation_reads_rest_balance_on_schedule_and_agrees(tmp_path: Path) -> None:
    extra = {**FAST, "KRAKENWATCH_RECONCILE_INTERVAL": "2"}
    with watching(tmp_path, **extra) as (sim, key, service, _url):
        stream_up(service)
        calls = balance_calls(sim, key)
        eventually(lambda: balance_calls(sim, key) >= calls + 2, what="two reconciliations")
        status = master(service).stream
        assert status.last_reconciled_at is not None
        assert status.balance_mismatches == 0
        assert not events_of(service, ev.BALANCE_MISMATCH)


def test_a_balance_the_stream_did_not_tell_is_a_mismatch(tmp_path: Path) -> None:
    extra = {**FAST, "KRAKENWATCH_RECONCILE_INTERVAL": "1"}
    with watching(tmp_path, **extra) as (sim, key, service, _url):
        stream_up(service)
        sim.stall_streams(key)  # the stream stays "up" until its watchdog notices (5 s)
        try:
            sim.update_key(key, balances={"ZUSD": "1.0000", "USDT": "2.00000000"})
            # reported when the next reconciliation (a poll interval later) finds it too
            mismatch = eventually(
                lambda: events_of(service, ev.BALANCE_MISMATCH), what="a balance mismatch event"
            )[0]
            assert mismatch.account == "MASTER"
            assert mismatch.data["assets"]["ZUSD"]["rest"] == "1.0000"
            assert master(service).stream.balance_mismatches >= 1
        finally:
            sim.resume_streams()


def test_a_stalled_stream_goes_down_and_the_account_polls_until_it_is_up_again(
    tmp_path: Path,
) -> None:
    extra = {**FAST, "KRAKENWATCH_RECONCILE_INTERVAL": "3600"}
    with watching(tmp_path, **extra) as (sim, key, service, _url):
        stream_up(service)
        freshness = service.settings.freshness_s
        # the last REST call is older than KRAKENWATCH_FRESHNESS: only the stream keeps it fresh
        eventually(
            lambda: (
                (at := master(service).last_success_at) and service.monitor.clock() - at > freshness
            ),
            timeout=freshness + 30,
            what="the last REST call older than the freshness",
        )
        assert item(service, "connected", "MASTER")["status"] == "pass"
        calls = balance_calls(sim, key)
        sim.refuse_streams(True)  # no new connection either, until the end
        sim.stall_streams(key)
        try:
            eventually(lambda: not master(service).stream.up, what="the watchdog to take it down")
            # down for longer than a poll interval: REST Balance polls again; meanwhile the
            # account is no less connected than it was (a stream blip is no failure)
            seen: set[str] = set()

            def polling_again() -> bool:
                seen.add(item(service, "connected", "MASTER")["status"])
                return balance_calls(sim, key) >= calls + 2

            eventually(polling_again, what="polling again")
            assert seen == {"pass"}, seen
            assert item(service, "balance_fetched", "MASTER")["status"] == "pass"
        finally:
            sim.refuse_streams(False)
            sim.resume_streams()
        up = stream_up(service)
        assert up.stream.reconnects >= 1 and up.stream.tokens >= 2
        kinds = [e.data["state"] for e in events_of(service, ev.STREAM) if e.account == "MASTER"]
        assert "down" in kinds and kinds[-1] == "up"


def test_a_dropped_stream_reconnects_with_a_fresh_token_and_loses_no_fill(tmp_path: Path) -> None:
    extra = {**FAST, "KRAKENWATCH_RECONCILE_INTERVAL": "1"}
    with watching(tmp_path, **extra) as (sim, key, service, _url):
        up = stream_up(service)
        first, first_balances = up.stream, up.balances or {}
        sim.drop_streams(key)
        txid = sim.place_order(key, "XBTUSD", "buy", "0.01", price="100")
        sim.fill_order(key, txid)  # while the stream is down: the snapshot after it tells
        again = eventually(
            lambda: (s := master(service).stream).up and s.reconnects > first.reconnects and s,
            what="the stream up again",
        )
        assert again.tokens > first.tokens
        assert again.connected_since is not None
        # REST Balance, read after the reconnection, agrees with the stream: nothing was lost
        reconciled = eventually(
            lambda: (
                (a := master(service)).stream.last_reconciled_at is not None
                and a.stream.last_reconciled_at > (again.connected_since or 0) + 1
                and a
            ),
            what="a reconciliation after the reconnection",
        )
        assert reconciled.balances is not None
        assert reconciled.balances["XXBT"] != first_balances["XXBT"]  # the fill moved it
        assert reconciled.stream.balance_mismatches == 0
        assert not events_of(service, ev.BALANCE_MISMATCH)
        # the fill made while it was down is told from the snapshot's trades, once
        fills = [
            e.data
            for e in events_of(service, ev.ORDER)
            if e.data["order_id"] == txid and e.data["event"] == "fill"
        ]
        assert len(fills) == 1 and fills[0]["volume"] is not None


def test_trading_active_is_required_for_the_expected_accounts_only(tmp_path: Path) -> None:
    extra = {**FAST, "KRAKENWATCH_EXPECT_TRADING": "MASTER"}
    with watching(tmp_path, **extra) as (sim, key, service, url):
        stream_up(service)
        stream_up(service, "USER:daivon")
        pending = item(service, "trading_active", "MASTER")
        assert (pending["status"], pending["required"]) == ("pending", True)
        assert "no order placed or filled since start" in pending["detail"]
        assert pending["remedy"]
        other = item(service, "trading_active", "USER:daivon")  # informational: waits for nothing
        assert (other["status"], other["required"]) == ("skipped", False)
        assert "not required" in other["detail"]
        assert service.verify()["ok"] is False
        sim.place_order(key, "XBTUSD", "sell", "0.001", price="1000000")
        passed = eventually(
            lambda: (c := item(service, "trading_active", "MASTER"))["status"] == "pass" and c,
            what="trading_active passing",
        )
        assert "1 placed" in passed["detail"]
        samples = parse(http_get(url + "/metrics")[2])
        assert (
            value(samples, "krakenwatch_check_success", account="MASTER", check="trading_active")
            == 1.0
        )


def test_without_streams_the_account_polls_and_says_why(tmp_path: Path) -> None:
    extra = {**FAST, "KRAKENWATCH_STREAMS": "0", "KRAKENWATCH_EXPECT_TRADING": "MASTER"}
    with watching(tmp_path, **extra) as (sim, key, service, _url):
        calls = balance_calls(sim, key)
        eventually(lambda: balance_calls(sim, key) >= calls + 3, what="polling")
        status = master(service).stream
        assert (status.state, status.reason) == ("off", "KRAKENWATCH_STREAMS=0: polling only")
        assert sim.stream_stats(key).tokens_issued == 0
        expected = item(service, "trading_active", "MASTER")
        assert (expected["status"], expected["required"]) == ("pending", True)
        assert "no stream: KRAKENWATCH_STREAMS=0" in expected["detail"]
        assert "Access WebSocket API" in expected["remedy"]
        other = item(service, "trading_active", "USER:daivon")
        assert other["status"] == "skipped"


def test_a_key_without_the_websocket_permission_is_refused_and_polls(tmp_path: Path) -> None:
    with scenario_simulator("healthy") as (sim, env):
        key = env["KRAKEN_MASTER_API_KEY"]
        sim.update_key(key, permissions=["funds", "orders"])
        with serving(env, tmp_path / "data", **FAST) as (service, url):
            refused = eventually(
                lambda: (s := master(service).stream).state == "refused" and s,
                what="the stream refused",
            )
            assert "Permission denied" in refused.reason, refused.reason
            calls = balance_calls(sim, key)
            eventually(lambda: balance_calls(sim, key) >= calls + 2, what="polling")
            tokens = refused.tokens
            # refused: never retried in a loop
            eventually(lambda: balance_calls(sim, key) >= calls + 4, what="more polls")
            assert master(service).stream.tokens == tokens
            samples = parse(http_get(url + "/metrics")[2])
            assert value(samples, "krakenwatch_stream_connected", account="MASTER") == 0.0
            assert (
                value(samples, "krakenwatch_stream_state", account="MASTER", state="refused") == 1.0
            )


def test_the_stream_metrics_follow_the_orders(tmp_path: Path) -> None:
    with watching(tmp_path, **FAST) as (sim, key, service, url):
        stream_up(service)
        resting = sim.place_order(key, "XBTUSD", "buy", "0.001", price="100")
        filled = sim.place_order(key, "XBTUSD", "buy", "0.001", price="100")
        sim.fill_order(key, filled)

        def scraped() -> dict[Any, float] | None:
            samples = parse(http_get(url + "/metrics")[2])
            fills = value(
                samples,
                "krakenwatch_orders_total",
                account="MASTER",
                pair="BTC/USD",
                event="filled",
            )
            return samples if fills == 1.0 else None

        samples = eventually(scraped, what="the fill on /metrics")
        assert value(samples, "krakenwatch_stream_connected", account="MASTER") == 1.0
        assert value(samples, "krakenwatch_stream_state", account="MASTER", state="up") == 1.0
        placed = value(
            samples, "krakenwatch_orders_total", account="MASTER", pair="BTC/USD", event="placed"
        )
        assert placed == 2.0
        assert value(samples, "krakenwatch_open_orders", account="MASTER") == 1.0
        assert value(samples, "krakenwatch_stream_tokens_total", account="MASTER") == 1.0
        counter = value(samples, "krakenwatch_trading_rate_level", account="MASTER", pair="BTC/USD")
        assert counter is not None and counter > 0
        threshold = value(
            samples, "krakenwatch_trading_rate_threshold", account="MASTER", pair="BTC/USD"
        )
        assert threshold == 60.0  # Kraken's (the simulated account is on the Starter tier)
        eventually(
            lambda: value(
                parse(http_get(url + "/metrics")[2]),
                "krakenwatch_stream_messages_total",
                account="MASTER",
                channel="heartbeat",
            ),
            what="a heartbeat counted on /metrics",
        )
        sim.cancel_order(key, resting)
        eventually(
            lambda: (
                value(
                    parse(http_get(url + "/metrics")[2]),
                    "krakenwatch_open_orders",
                    account="MASTER",
                )
                == 0.0
            ),
            what="the cancel on /metrics",
        )


def test_a_simulator_url_without_a_websocket_url_never_streams_to_kraken(tmp_path: Path) -> None:
    with scenario_simulator("healthy") as (_sim, env):
        env.pop("KRAKEN_WS_AUTH_URL")
        settings = load_settings({**env, "KRAKENWATCH_DATA_DIR": str(tmp_path)}, use_dotenv=False)
    assert settings.ws_url is None
    assert settings.streams_off is not None and "KRAKEN_WS_AUTH_URL" in settings.streams_off
    problems = [p for p in settings.all_problems if p.variable == "KRAKEN_WS_AUTH_URL"]
    assert problems and problems[0].severity == "warning"


def test_bad_stream_settings_are_named(tmp_path: Path) -> None:
    with scenario_simulator("healthy") as (_sim, env):
        bad = {
            **env,
            "KRAKENWATCH_DATA_DIR": str(tmp_path),
            "KRAKEN_WS_AUTH_URL": "https://ws.example",
            "KRAKENWATCH_EXPECT_TRADING": "MASTER,USER:daivn",
            "KRAKENWATCH_RECONCILE_INTERVAL": "0",
        }
        settings = load_settings(bad, use_dotenv=False)
    said = {p.variable: str(p) for p in settings.all_problems}
    assert "is not a ws(s) URL" in said["KRAKEN_WS_AUTH_URL"]
    assert "did you mean USER:daivon?" in said["KRAKENWATCH_EXPECT_TRADING"]
    assert "out of range" in said["KRAKENWATCH_RECONCILE_INTERVAL"]
    assert settings.expect_trading == ("MASTER",)
    assert settings.ws_url is None and settings.reconcile_interval_s == 300.0


def test_a_deploy_with_the_streams_up_still_wants_a_rest_call_after_its_marker(
    tmp_path: Path,
) -> None:
    extra = {**FAST, "KRAKENWATCH_RECONCILE_INTERVAL": "3600", "KRAKENWATCH_DEPLOY_TIMEOUT": "3"}
    with watching(tmp_path, **extra) as (sim, _key, service, _url):
        for label in ("MASTER", "USER:daivon", "USER:tania_gilbert"):
            stream_up(service, label)
        eventually(
            lambda: item(service, "clock_skew", None)["status"] == "pass", what="a clock sample"
        )

        def verdict() -> Any:
            deploy = service.deploys.judge()
            return deploy if deploy is not None and deploy.state != DeployState.PENDING else None

        # REST broken, the streams fine: the deploy is not verified on the streams alone
        sim.set_faults(http_status=503, scope="private")
        service.deploys.mark(MarkRequest("v-streams", ("MASTER",), ""))
        failed = eventually(verdict, what="the first deploy's verdict")
        assert failed.state == DeployState.FAILED
        assert {c["name"] for c in failed.failing} >= {"connected", "no_invalid_nonce"}
        sim.clear_faults()
        second = service.deploys.mark(MarkRequest("v-streams-2", ("MASTER",), ""))
        verified = eventually(
            lambda: (d := verdict()) is not None and d.id == second.id and d,
            what="the second deploy's verdict",
        )
        assert verified.state == DeployState.VERIFIED
