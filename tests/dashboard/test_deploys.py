"""Deploy markers end to end, against the simulator over real HTTP: the checklist counts from the
latest marker, and each deploy gets its verdict (verified, or failed after the grace period or at
the timeout), kept in the database across a restart of the service."""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from dashboard.config import load_settings
from dashboard.deploys.request import MarkRequest
from dashboard.history.deploy_book import DeployState
from dashboard.history.store import APPLICATION_ID, MIGRATIONS, EventStore
from dashboard.monitor import events as ev
from dashboard.web.service import DATABASE_NAME, Service
from simulator.scenario import OtherWriter
from testkit.headless import serving
from testkit.net import eventually, http_get, http_json
from testkit.sim import scenario_simulator

BOT_LINES = (
    "2026-01-11 17:30:58 | INFO | ✅ KRAKEN PRO CONNECTED (USER:daivon_frazier)\n"
    "2026-01-11 17:30:58 | INFO | ✅ Coinbase connected\n"
    "2026-01-11 17:31:00 | INFO | Trading cycle 1 started\n"
)
CYCLE = "2026-01-11 17:32:00 | INFO | Trading cycle 2 started\n"
TOKEN = "deploy-token-0123456789abcdef"


def call(
    url: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    return http_json(url, method, body, headers)


def mark(url: str, headers: dict[str, str] | None = None, **body: Any) -> dict[str, Any]:
    status, doc = call(url + "/api/deploys", "POST", body, headers)
    assert status == 201, doc
    return dict(doc)


def verdict(url: str, deploy_id: int, timeout: float = 30.0) -> dict[str, Any]:
    """The deploy document once it is no longer pending."""

    def decided() -> dict[str, Any] | None:
        status, doc = call(f"{url}/api/deploys/{deploy_id}")
        assert status == 200, doc
        return doc if doc["state"] != "pending" else None

    return eventually(decided, timeout, what=f"a verdict for deploy #{deploy_id}")


def all_connected(service: Service) -> bool:
    return all(a.state == "connected" for a in service.monitor.snapshot().accounts)


def failing_names(doc: dict[str, Any]) -> set[tuple[str, str | None]]:
    return {(c["name"], c["account"]) for c in doc["failing"]}


def test_an_invalid_nonce_before_the_marker_does_not_fail_the_deploy_one_after_it_does(
    tmp_path: Path,
) -> None:
    with (
        scenario_simulator("healthy") as (sim, env),
        # REST polling: the monitor's own calls meet the other writer (no stream)
        serving(env, tmp_path / "data", KRAKENWATCH_DEPLOY_GRACE="0", KRAKENWATCH_STREAMS="0") as (
            service,
            url,
        ),
    ):
        master_key = env["KRAKEN_MASTER_API_KEY"]
        eventually(lambda: all_connected(service), what="every account connected")
        # another program writes with MASTER's key: the monitor gets EAPI:Invalid nonce
        sim.update_key(master_key, other_writer=OtherWriter(interval_ms=50, lead_ms=500))
        eventually(lambda: service.monitor.snapshot().account("MASTER").invalid_nonce_count > 0)
        sim.update_key(master_key, other_writer=None)

        def reconnected() -> bool:
            """Connected again; else retried now (the writer's last nonce may still be ahead:
            the monitor backs off for a minute after a rejection)."""
            if service.monitor.snapshot().account("MASTER").state == "connected":
                return True
            service.monitor.retry_now("MASTER")
            return False

        eventually(reconnected, interval=0.5, what="MASTER connected again")

        first = mark(url, version="v1.0.0", accounts=["MASTER"])
        assert first["state"] == "pending" and first["accounts"] == ["MASTER"]
        done = verdict(url, first["id"])
        assert done["state"] == "verified", (done["reason"], done["failing"])
        assert done["seconds_to_verdict"] is not None and done["verified_at"] is not None
        status, verify = call(url + "/api/verify")
        assert status == 200 and verify["ok"] is True
        assert verify["deploy"]["id"] == first["id"]
        nonce = next(
            c
            for c in verify["checks"]
            if c["name"] == "no_invalid_nonce" and c["account"] == "MASTER"
        )
        assert nonce["status"] == "pass" and "since the deploy" in nonce["detail"]
        # the monitor itself still remembers the error from before the marker
        assert service.monitor.snapshot().account("MASTER").invalid_nonce_count > 0

        # the writer again, with its first nonce accepted before the marker: the first call
        # after the marker is rejected, so this deploy cannot be verified before the error
        sim.update_key(master_key, other_writer=OtherWriter(interval_ms=50, lead_ms=5000))
        eventually(lambda: sim.stats(master_key).other_writer_nonces > 0)
        second = mark(url, version="v1.0.1", accounts=["MASTER"])
        done = verdict(url, second["id"])
        assert done["state"] == "failed", done
        assert ("no_invalid_nonce", "MASTER") in failing_names(done)
        assert "grace period" in done["reason"]
        status, verify = call(url + "/api/verify")
        assert status == 503 and verify["ok"] is False and verify["deploy"]["state"] == "failed"
        # the first deploy keeps its verdict
        assert call(f"{url}/api/deploys/{first['id']}")[1]["state"] == "verified"


def test_a_bot_that_never_logs_after_the_marker_leaves_the_deploy_pending_then_failed(
    tmp_path: Path,
) -> None:
    log = tmp_path / "bot.log"
    log.write_text("")
    extra = {"KRAKENWATCH_BOT_LOG": str(log), "KRAKENWATCH_DEPLOY_TIMEOUT": "4"}
    with (
        scenario_simulator("healthy") as (_sim, env),
        serving(env, tmp_path / "data", **extra) as (service, url),
    ):
        with log.open("a") as out:  # the old version, before the marker
            out.write(BOT_LINES)
        eventually(lambda: service.monitor.snapshot().log_matches.get("trading_cycle"))
        eventually(lambda: all_connected(service), what="every account connected")
        deploy = mark(url, version="v2.0.0")
        assert deploy["accounts"] == [a.label for a in service.settings.accounts]
        # the accounts verify within a poll; the bot's lines from before the marker do not count
        pending = eventually(
            lambda: (
                (d := call(url + "/api/deploys/latest")[1])["failing"]
                and {c["account"] for c in d["failing"]} == {None}
                and d
            ),
            what="only the bot-log items left open",
        )
        assert pending["state"] == "pending"
        assert ("bot_trading_cycles", None) in failing_names(pending)
        assert all(c["status"] == "pending" for c in pending["failing"])
        done = verdict(url, deploy["id"])
        assert done["state"] == "failed"
        assert done["reason"].startswith("not verified within 4 s"), done["reason"]
        assert 4.0 <= done["seconds_to_verdict"] < 8.0  # judged every 0.5 s, on a busy machine

        # the next deploy, whose bot does log: verified
        again = mark(url, version="v2.0.1")
        with log.open("a") as out:
            out.write(BOT_LINES)
        done = verdict(url, again["id"])
        assert done["state"] == "verified", (done["reason"], done["failing"])


def test_the_gateway_counts_the_bots_calls_after_the_marker_not_the_monitors(
    tmp_path: Path,
) -> None:
    from dashboard.web.embedded_gateway import GatewayOptions
    from testkit.bots import krakenex_api

    with scenario_simulator("healthy") as (_sim, env):
        settings = load_settings(
            {
                **env,
                "KRAKENWATCH_DATA_DIR": str(tmp_path / "data"),
                "KRAKENWATCH_POLL_INTERVAL": "1",
                "KRAKENWATCH_TIER": "pro",
                "KRAKENWATCH_DEPLOY_TIMEOUT": "4",
            },
            use_dotenv=False,
        )
        service = Service.create(settings, gateway=GatewayOptions(port=0))
        service.start()
        try:
            assert service.gateway is not None
            bot = krakenex_api(
                env["KRAKEN_MASTER_API_KEY"], env["KRAKEN_MASTER_API_SECRET"], service.gateway.url
            )
            assert bot.query_private("Balance", timeout=30)["error"] == []  # before the marker
            eventually(lambda: all_connected(service), what="every account connected")
            eventually(  # the first clock sample is taken apart from the polls: wait for it
                lambda: any(
                    c["name"] == "clock_skew" and c["status"] == "pass"
                    for c in service.verify()["checks"]
                ),
                what="a passing clock sample",
            )
            deploy = service.deploys.mark(MarkRequest("v3", ("MASTER",), ""))

            def gateway_item() -> dict[str, Any]:
                doc = service.verify()
                return next(
                    c
                    for c in doc["checks"]
                    if c["name"] == "gateway_kraken_errors" and c["account"] == "MASTER"
                )

            # the monitor's own calls go through the gateway too; they do not count as the bot
            eventually(
                lambda: (
                    service.deploys.snapshot().account("MASTER").last_success_at
                    and service.deploys.snapshot().account("MASTER").last_success_at
                    >= deploy.marked_at
                )
            )
            assert gateway_item()["status"] == "pending"
            failed = eventually(
                lambda: (d := service.deploys.judge()) and d.state != DeployState.PENDING and d
            )
            assert failed.state == DeployState.FAILED
            assert [c["name"] for c in failed.failing] == ["gateway_kraken_errors"]

            second = service.deploys.mark(MarkRequest("v3.1", ("MASTER",), ""))
            assert bot.query_private("Balance", timeout=30)["error"] == []  # after the marker
            verified = eventually(
                lambda: (d := service.deploys.judge()) and d.state != DeployState.PENDING and d
            )
            assert verified.id == second.id and verified.state == DeployState.VERIFIED
            assert gateway_item()["status"] == "pass"
        finally:
            service.stop()


def test_the_latest_deploy_and_its_counts_survive_a_restart(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    log.write_text("")
    extra = {"KRAKENWATCH_BOT_LOG": str(log)}
    data = tmp_path / "data"
    with scenario_simulator("healthy") as (_sim, env):
        with serving(env, data, **extra) as (service, url):
            verified = mark(url, version="v4.0", accounts=["MASTER"])
            with log.open("a") as out:
                out.write(BOT_LINES)
            assert verdict(url, verified["id"])["state"] == "verified"
            pending = mark(url, version="v4.1", note="canary")
            with log.open("a") as out:
                out.write(CYCLE)
            eventually(lambda: service.deploys.snapshot().log_matches.get("trading_cycle") == 1)
        with serving(env, data, **extra) as (service, url):
            status, latest = call(url + "/api/deploys/latest")
            assert status == 200
            assert (latest["id"], latest["version"], latest["note"]) == (
                pending["id"],
                "v4.1",
                "canary",
            )
            assert latest["marked_at"] == pending["marked_at"]
            # the trading cycle logged after the marker, before the restart, still counts
            assert service.deploys.snapshot().log_matches.get("trading_cycle") == 1
            assert service.deploys.snapshot().log_matches.get("kraken_connected", 0) == 0
            listed = call(url + "/api/deploys")[1]["deploys"]
            assert [d["version"] for d in listed] == ["v4.1", "v4.0"]
            assert listed[1]["state"] == "verified"


def test_a_new_marker_supersedes_a_pending_deploy(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    log.write_text("")
    with (
        scenario_simulator("healthy") as (_sim, env),
        serving(env, tmp_path / "data", KRAKENWATCH_BOT_LOG=str(log)) as (_service, url),
    ):
        first = mark(url, version="v5.0")
        second = mark(url, version="v5.1")
        old = call(f"{url}/api/deploys/{first['id']}")[1]
        assert old["state"] == "failed" and "superseded by v5.1" in old["reason"]
        assert call(url + "/api/deploys/latest")[1]["id"] == second["id"]


def test_deploy_metrics_follow_the_latest_deploy(tmp_path: Path) -> None:
    with (
        scenario_simulator("healthy") as (_sim, env),
        serving(env, tmp_path / "data") as (_service, url),
    ):

        def samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
            text = http_get(url + "/metrics")[2]
            return {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text)
                for s in family.samples
                if s.name.startswith("krakenwatch_deploy_")
            }

        assert samples() == {}, "no deploy series before the first marker"
        deploy = mark(url, version="v6.0", accounts=["MASTER"])
        found = samples()
        assert found[("krakenwatch_deploy_info", (("version", "v6.0"),))] == 1.0
        assert (
            found[("krakenwatch_deploy_marked_timestamp_seconds", ())]
            == deploy["marked_at_seconds"]
        )
        assert found[("krakenwatch_deploy_timeout_seconds", ())] == 600.0
        done = verdict(url, deploy["id"])
        found = samples()
        states = {
            dict(labels)["state"]: v
            for (name, labels), v in found.items()
            if name == "krakenwatch_deploy_state"
        }
        assert states == {"pending": 0.0, "verified": 1.0, "failed": 0.0}
        assert (
            abs(found[("krakenwatch_deploy_seconds_to_verdict", ())] - done["seconds_to_verdict"])
            < 0.001
        )


def test_verify_is_judged_on_the_deploys_accounts(tmp_path: Path) -> None:
    """The demo's USER:tania_gilbert lacks a permission: a deploy of the others is verified, and
    /api/verify says ok for it while still listing her failing item (not in the deploy)."""
    with (
        scenario_simulator("demo") as (_sim, env),
        serving(env, tmp_path / "data") as (service, url),
    ):
        eventually(
            lambda: (
                service.monitor.snapshot().account("USER:tania_gilbert").permissions["orders"]
                is False
            )
        )
        assert call(url + "/api/verify")[0] == 503, "her missing permission fails the checklist"
        deploy = mark(url, version="v7", accounts=["MASTER", "USER:daivon"])
        assert verdict(url, deploy["id"])["state"] == "verified"
        status, doc = call(url + "/api/verify")
        assert status == 200 and doc["ok"] is True
        hers = [c for c in doc["checks"] if c["account"] == "USER:tania_gilbert"]
        assert hers and not any(c["in_deploy"] for c in hers)
        assert any(c["status"] == "fail" for c in hers)
        assert all(c["in_deploy"] for c in doc["checks"] if c["account"] in (None, "MASTER"))


def test_marking_is_refused_with_the_culprit_named(tmp_path: Path) -> None:
    with (
        scenario_simulator("healthy") as (_sim, env),
        serving(env, tmp_path / "data") as (_service, url),
    ):
        cases = [
            (
                {"version": "v1", "acounts": ["MASTER"]},
                "unknown field 'acounts' (did you mean 'accounts'?)",
            ),
            ({"accounts": ["MASTR"]}, "'MASTR' is not a configured account"),
            ({"accounts": []}, "accounts is empty"),
            ({"version": 3}, "version must be a string"),
            ({"version": "x" * 200}, "version is longer than 128"),
            (["v1"], "the body must be a JSON object"),
        ]
        for body, said in cases:
            status, doc = call(url + "/api/deploys", "POST", body)
            assert status == 400 and said in doc["error"], (body, doc)
        status, doc = call(url + "/api/deploys", "POST", b"{not json")
        assert status == 400 and "not JSON" in doc["error"]
        assert call(url + "/api/deploys/latest")[0] == 404, "nothing was recorded"
        assert call(url + "/api/deploys?limit=0")[0] == 400
        assert call(url + "/api/deploys/99")[0] == 404


def test_marking_needs_the_admin_token_or_the_password(tmp_path: Path) -> None:
    password = "dashboard-password-0123"
    with (
        scenario_simulator("healthy") as (_sim, env),
        serving(
            env,
            tmp_path / "data",
            KRAKENWATCH_ADMIN_TOKEN=TOKEN,
            KRAKENWATCH_PASSWORD=password,
        ) as (service, url),
    ):
        basic = "Basic " + base64.b64encode(f"ci:{password}".encode()).decode()
        assert call(url + "/api/deploys", "POST", {"version": "a"})[0] == 401
        wrong = {"Authorization": "Bearer not-the-token-at-all"}
        assert call(url + "/api/deploys", "POST", {"version": "a"}, wrong)[0] == 401
        assert mark(url, {"Authorization": f"Bearer {TOKEN}"}, version="a")["version"] == "a"
        assert mark(url, {"Authorization": basic}, version="b")["version"] == "b"
        # reading takes the password (or the token), like /api/verify
        assert call(url + "/api/deploys/latest")[0] == 401
        assert call(url + "/api/deploys/latest", headers={"Authorization": basic})[0] == 200
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert call(url + "/api/deploys", headers=bearer)[0] == 200
        stored = (service.settings.data_dir / DATABASE_NAME).read_bytes()
        assert TOKEN.encode() not in stored and password.encode() not in stored


def test_without_token_or_password_only_the_machine_itself_may_mark() -> None:
    """No token, no password: a caller from another address is refused with the variable named
    (the ASGI scope carries the address the server saw; tests cannot connect from elsewhere)."""
    from starlette.requests import Request

    from dashboard.web.admission import LOCAL_ONLY, admit_admin, is_loopback

    class _Settings:
        admin_token = None
        password = None

    class _Service:
        settings = _Settings()

    def request_from(host: str) -> Request:
        scope = {"type": "http", "method": "POST", "headers": [], "client": (host, 5000)}
        return Request(scope)

    refused = admit_admin(request_from("10.1.2.3"), lambda: _Service())  # type: ignore[arg-type,return-value]
    assert getattr(refused, "status_code", None) == 403
    assert "KRAKENWATCH_ADMIN_TOKEN" in LOCAL_ONLY
    assert json.loads(bytes(refused.body))["error"] == LOCAL_ONLY  # type: ignore[union-attr]
    for local in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        assert is_loopback(local)
        assert isinstance(admit_admin(request_from(local), lambda: _Service()), _Service)  # type: ignore[arg-type,return-value]
    assert not is_loopback("10.1.2.3") and not is_loopback(None)


def test_a_database_of_the_previous_release_gains_the_deploys_table(tmp_path: Path) -> None:
    db = tmp_path / DATABASE_NAME
    raw = sqlite3.connect(db)
    MIGRATIONS[0](raw)
    raw.execute("PRAGMA user_version = 1")
    raw.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    raw.execute(
        "INSERT INTO events (ts, kind, account, detail, data) VALUES (1.0, ?, 'MASTER', 'x', '{}')",
        (ev.STATE,),
    )
    raw.commit()
    raw.close()
    with EventStore(db) as store:
        assert store.schema_version() == 2
        assert [e.kind for e in store.query()] == [ev.STATE]
        from dashboard.history.deploy_book import DeployBook

        book = DeployBook(store)
        added = book.add("v1", ("MASTER",), "", 5.0)
        assert book.latest() == added


def test_marking_polls_the_accounts_at_once_instead_of_after_the_poll_interval(
    tmp_path: Path,
) -> None:
    """A minute between polls; the pro tier allows one every 5 s: the deploy is verified about
    a second after its marker, not a minute later."""
    with scenario_simulator("healthy") as (_sim, env):
        extra = {"KRAKENWATCH_POLL_INTERVAL": "60", "KRAKENWATCH_TIER": "pro"}
        with serving(env, tmp_path / "data", **extra) as (service, url):
            eventually(lambda: all_connected(service), what="every account connected")
            first_polls = {a.label: a.last_success_at for a in service.monitor.snapshot().accounts}
            # the tier's shortest safe interval since the first poll (5 s), then the marker
            eventually(lambda: time.time() - max(map(float, first_polls.values())) > 5.5, 10)
            deploy = mark(url, version="v8")
            done = verdict(url, deploy["id"], timeout=20)
            assert done["state"] == "verified" and done["seconds_to_verdict"] < 15
            again = {a.label: a.last_success_at for a in service.monitor.snapshot().accounts}
            assert all(again[label] != first_polls[label] for label in first_polls)


def test_the_demo_marks_a_deploy_at_its_start(tmp_path: Path) -> None:
    """Of every account, as a pipeline would: it waits out the grace period on the account whose
    key lacks a permission, saying so."""
    from dashboard.web.demo import DEMO_VERSION
    from testkit.procs import up_process

    with up_process({}, tmp_path, command="demo", args=["--data-dir", str(tmp_path / "d")]) as demo:
        latest = eventually(
            lambda: (r := call(demo.url + "/api/deploys/latest"))[0] == 200 and r[1],
            60,
            what="the demo's deploy",
        )
        assert latest["version"] == DEMO_VERSION and latest["id"] == 1
        assert latest["accounts"] == ["MASTER", "USER:daivon", "USER:tania_gilbert"]
        failing = eventually(
            lambda: (
                ("permission_query_orders", "USER:tania_gilbert")
                in failing_names(doc := call(demo.url + "/api/deploys/latest")[1])
                and doc
            ),
            60,
            what="her missing permission named",
        )
        assert failing["state"] == "pending" and "grace period" in failing["reason"]
        assert "marked deploy #1 demo-1 on every account" in demo.log.read_text()


def test_lines_the_old_bot_logged_just_before_the_marker_do_not_count(tmp_path: Path) -> None:
    """The log watcher reads every half second: the marker reads what is pending first, so the
    old version's last lines are stamped before it (they would verify, or fail, the new one)."""
    log = tmp_path / "bot.log"
    log.write_text("")
    extra = {"KRAKENWATCH_BOT_LOG": str(log)}
    with (
        scenario_simulator("healthy") as (_sim, env),
        serving(env, tmp_path / "data", **extra) as (service, url),
    ):
        eventually(lambda: all_connected(service), what="every account connected")
        for round_ in range(5):
            with log.open("a") as out:
                out.write(BOT_LINES + "EAPI:Invalid nonce in the old version\n")
            deploy = mark(url, version=f"v9.{round_}")
            assert service.deploys.snapshot().log_matches == {}, round_
            assert call(f"{url}/api/deploys/{deploy['id']}")[1]["state"] == "pending"


def test_a_failed_deploy_keeps_verify_not_ok_until_the_next_marker(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    log.write_text("")
    extra = {"KRAKENWATCH_BOT_LOG": str(log), "KRAKENWATCH_DEPLOY_TIMEOUT": "2"}
    with (
        scenario_simulator("healthy") as (_sim, env),
        serving(env, tmp_path / "data", **extra) as (_service, url),
    ):
        failed = mark(url, version="v10")
        assert verdict(url, failed["id"])["state"] == "failed"
        with log.open("a") as out:  # the bot comes alive after the verdict
            out.write(BOT_LINES)

        def all_pass() -> tuple[int, Any] | None:
            """/api/verify once every check of the deploy passes again (clock sample included)."""
            status, doc = call(url + "/api/verify")
            judged = [c for c in doc["checks"] if c["in_deploy"] and c["required"]]
            return (status, doc) if all(c["status"] == "pass" for c in judged) else None

        status, doc = eventually(all_pass, what="every check of the deploy passing again")
        assert (status, doc["ok"], doc["deploy"]["state"]) == (503, False, "failed")
        fixed = mark(url, version="v10.1")
        with log.open("a") as out:
            out.write(BOT_LINES)
        assert verdict(url, fixed["id"])["state"] == "verified"
        assert call(url + "/api/verify")[0] == 200


def test_marking_refuses_what_a_browser_or_a_proxy_could_send(tmp_path: Path) -> None:
    with (
        scenario_simulator("healthy") as (_sim, env),
        serving(env, tmp_path / "data") as (_service, url),
    ):
        form = {"Content-Type": "text/plain"}  # what a cross-site page may post unasked
        status, doc = call(url + "/api/deploys", "POST", b'{"version": "x"}', form)
        assert status == 415 and "Content-Type: application/json" in doc["error"]
        proxied = {"X-Forwarded-For": "203.0.113.9"}
        status, doc = call(url + "/api/deploys", "POST", {"version": "x"}, proxied)
        assert status == 403 and "KRAKENWATCH_ADMIN_TOKEN" in doc["error"]
        status, doc = call(url + "/api/deploys", "POST", b"[" * 60_000)
        assert status == 400 and "not JSON" in doc["error"]
        status, doc = call(url + "/api/deploys", "POST", b" " * (65 * 1024))
        assert status == 413
        assert call(url + "/api/deploys/" + "9" * 30)[0] == 404
        assert call(url + "/api/deploys/latest")[0] == 404, "nothing was recorded"


def test_concurrent_marks_each_get_their_own_deploy(tmp_path: Path) -> None:
    import concurrent.futures

    with (
        scenario_simulator("healthy") as (_sim, env),
        serving(env, tmp_path / "data") as (_service, url),
    ):
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda i: mark(url, version=f"c{i}"), range(16)))
        assert sorted(a["id"] for a in answers) == list(range(1, 17))
        for answer in answers:
            mine = call(f"{url}/api/deploys/{answer['id']}")[1]
            assert mine["version"] == answer["version"]
        states = [d["state"] for d in call(url + "/api/deploys?limit=16")[1]["deploys"]]
        assert states[1:].count("pending") == 0, "only the latest can still be pending"


def test_invalid_nonces_racing_the_marker_are_counted_for_exactly_one_side() -> None:
    """Events stamped at or after the marker count for it, those before do not, even while the
    marker is being recorded (no event lost between the two)."""
    import threading

    from dashboard.deploys.window import DeployWindow
    from dashboard.monitor.events import Event
    from dashboard.monitor.status import Snapshot

    window = DeployWindow()
    empty = Snapshot(None, 0.0, [], None, None, {})
    stamped: list[float] = []
    stop = threading.Event()
    clock = time.monotonic

    def fire() -> None:
        while not stop.is_set():
            at = clock()
            stamped.append(at)
            window.on_event(Event(ev.INVALID_NONCE, "MASTER", "x", ts=at))

    thread = threading.Thread(target=fire)
    thread.start()
    eventually(lambda: len(stamped) > 100)
    marked_at, _ = window.open_now(clock, empty, frozenset())
    eventually(lambda: len([t for t in stamped if t >= marked_at]) > 100)
    stop.set()
    thread.join()
    counted = window.rebase(empty).counting_since, window._since.nonces["MASTER"]
    assert counted == (marked_at, len([t for t in stamped if t >= marked_at]))


def test_a_gateway_client_that_never_calls_after_the_marker_fails_the_deploy_even_after_a_restart(
    tmp_path: Path,
) -> None:
    """A client credential for MASTER says a bot signs through the gateway there: a fresh
    ``up --gateway`` marked at once, whose bot never calls, stays pending (so it fails at the
    timeout); the expectation is kept with the deploy across a restart."""
    from dashboard.web.embedded_gateway import GatewayOptions
    from gateway.clientfile import add_client, default_config_path

    data = tmp_path / "data"
    add_client(default_config_path(data), "bot-a", "MASTER", ["Balance"])
    with scenario_simulator("healthy") as (_sim, env):
        settings = load_settings(
            {
                **env,
                "KRAKENWATCH_DATA_DIR": str(data),
                "KRAKENWATCH_POLL_INTERVAL": "1",
                "KRAKENWATCH_TIER": "pro",
                "KRAKENWATCH_DEPLOY_TIMEOUT": "30",
            },
            use_dotenv=False,
        )

        def started() -> Service:
            service = Service.create(settings, gateway=GatewayOptions(port=0))
            service.start()
            return service

        def gateway_item(service: Service, account: str) -> str:
            doc = service.verify()
            return next(
                c["status"]
                for c in doc["checks"]
                if c["name"] == "gateway_kraken_errors" and c["account"] == account
            )

        service = started()
        try:
            deploy = service.deploys.mark(MarkRequest("v11", ("MASTER", "USER:daivon"), ""))
            assert deploy.gateway_accounts == ("MASTER",)
            eventually(lambda: all_connected(service), what="every account connected")
            assert gateway_item(service, "MASTER") == "pending"
            assert gateway_item(service, "USER:daivon") == "skipped", "no bot expected there"
        finally:
            service.stop()
        service = started()  # a restart: the expectation comes back with the deploy
        try:
            eventually(lambda: all_connected(service), what="every account connected")
            assert service.deploys.latest().gateway_accounts == ("MASTER",)  # type: ignore[union-attr]
            assert gateway_item(service, "MASTER") == "pending"
            assert service.deploys.judge().state == DeployState.PENDING  # type: ignore[union-attr]
        finally:
            service.stop()
