"""The real /metrics and /api/verify output of a running service, parsed and checked."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from dashboard.exporter.gauges import SnapshotGauges
from dashboard.web.routes import accepts_gzip
from dashboard.web.service import Service
from simulator import OtherWriter, builtin_scenario
from testkit.headless import serving
from testkit.net import eventually, http_get
from testkit.sim import scenario_simulator, scenario_values

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def running(
    env: dict[str, str], tmp_path: Path, *, start: bool = True
) -> AbstractContextManager[tuple[Service, str]]:
    return serving(env, tmp_path / "data", start=start)


def scrape(url: str) -> tuple[str, Samples]:
    status, content_type, body = http_get(url + "/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    return body, parse(body)


def wait_for(url: str, predicate: Callable[[Samples], bool], timeout: float = 20.0) -> Samples:
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(url)[1]
        if predicate(samples):
            return samples
        assert time.monotonic() < deadline, "metrics never reached the expected state"
        time.sleep(0.1)


def test_counters_exist_at_zero_from_the_first_scrape(tmp_path: Path) -> None:
    with (
        scenario_simulator("healthy") as (_sim, env),
        running(env, tmp_path, start=False) as (_, url),
    ):
        text, samples = scrape(url)
    for account in ("MASTER", "USER:daivon", "USER:tania_gilbert"):
        assert value(samples, "krakenwatch_nonce_refreshes_total", account=account) == 0.0
        assert value(samples, "krakenwatch_invalid_nonce_errors_total", account=account) == 0.0
        assert value(samples, "krakenwatch_account_up", account=account) == 0.0
    assert (
        value(
            samples,
            "krakenwatch_build_info",
            version="0.1.0",
            python=__import__("platform").python_version(),
        )
        == 1.0
    )
    assert "krakenwatch_clock_skew_seconds" not in text  # no sample yet: absent, not a fake 0


def test_healthy_then_invalid_nonces(tmp_path: Path) -> None:
    with (
        scenario_simulator("healthy") as (sim, env),
        # REST polling: the monitor's own calls meet the invalid nonces (no stream)
        running({**env, "KRAKENWATCH_STREAMS": "0"}, tmp_path) as (_service, url),
    ):
        samples = wait_for(
            url,
            lambda s: (
                all(
                    value(s, "krakenwatch_account_up", account=a) == 1.0
                    for a in ("MASTER", "USER:daivon", "USER:tania_gilbert")
                )
                and value(s, "krakenwatch_clock_skew_seconds") is not None
            ),
        )
        assert value(samples, "krakenwatch_nonce_refreshes_total", account="MASTER") >= 1.0
        assert (
            value(
                samples,
                "krakenwatch_api_requests_total",
                account="MASTER",
                method="Balance",
                outcome="ok",
            )
            >= 1.0
        )
        assert value(samples, "krakenwatch_api_request_duration_seconds_count", method="Balance")
        assert value(samples, "krakenwatch_balance", account="MASTER", asset="ZUSD") == 1234.56
        assert (
            value(samples, "krakenwatch_check_success", check="connected", account="MASTER") == 1.0
        )
        assert value(samples, "krakenwatch_check_success", check="clock_skew", account="") == 1.0
        assert abs(value(samples, "krakenwatch_clock_skew_seconds") or 9) < 0.5
        # `up` samples the clock precisely (the one-shot check stops once its bound is decided)
        assert (value(samples, "krakenwatch_clock_skew_uncertainty_seconds") or 9) < 0.1
        status, _, body = http_get(url + "/api/verify")
        assert status == 200 and json.loads(body)["ok"] is True

        # another program starts using MASTER's key with nonces 5 s ahead: invalid nonces
        master_key = env["KRAKEN_MASTER_API_KEY"]
        sim.update_key(master_key, other_writer=OtherWriter(interval_ms=50, lead_ms=5000))
        # the first call to meet it may be a permission probe (OpenOrders): wait for Balance's
        samples = wait_for(
            url,
            lambda s: (
                (value(s, "krakenwatch_invalid_nonce_errors_total", account="MASTER") or 0) >= 1
                and (
                    value(
                        s,
                        "krakenwatch_api_requests_total",
                        account="MASTER",
                        method="Balance",
                        outcome="invalid_nonce",
                    )
                    or 0
                )
                >= 1
            ),
        )
        assert (
            value(samples, "krakenwatch_check_success", check="no_invalid_nonce", account="MASTER")
            == 0.0
        )
        assert (
            value(samples, "krakenwatch_invalid_nonce_errors_total", account="USER:daivon") == 0.0
        )
        assert (
            value(
                samples,
                "krakenwatch_api_requests_total",
                account="MASTER",
                method="Balance",
                outcome="invalid_nonce",
            )
            >= 1.0
        )
        samples = wait_for(
            url, lambda s: value(s, "krakenwatch_account_up", account="MASTER") == 0.0
        )
        assert value(samples, "krakenwatch_account_up", account="USER:daivon") == 1.0
        status, _, body = http_get(url + "/api/verify")
        doc = json.loads(body)
        assert status == 503 and doc["ok"] is False
        assert any(
            c["name"] == "no_invalid_nonce" and c["account"] == "MASTER" and c["status"] == "fail"
            for c in doc["checks"]
        )
        for secret_var in ("KRAKEN_MASTER_API_SECRET", "KRAKEN_MASTER_API_KEY"):
            assert env[secret_var] not in scrape(url)[0] and env[secret_var] not in body


def test_promtool_accepts_the_real_output(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: `make test` installs the Debian package prometheus"
    with scenario_simulator("demo") as (_sim, env), running(env, tmp_path) as (_, url):
        wait_for(url, lambda s: value(s, "krakenwatch_account_up", account="MASTER") == 1.0)
        text, _ = scrape(url)
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == "", (
        result.stdout + result.stderr
    )


def test_account_value_in_usd_only_when_every_asset_is_priced(tmp_path: Path) -> None:
    values = scenario_values(builtin_scenario("demo"))
    env_polling = {"KRAKENWATCH_STREAMS": "0"}  # REST polling: its failure makes balances unknown
    with (
        scenario_simulator("demo") as (sim, env),
        running({**env, **env_polling}, tmp_path) as (_, url),
    ):
        samples = wait_for(
            url,
            lambda s: all(
                value(s, "krakenwatch_balance_unpriced_assets", account=a) is not None
                for a in values
            ),
        )
        for label in ("MASTER", "USER:tania_gilbert"):
            assert value(samples, "krakenwatch_balance_value_usd", account=label) == float(
                values[label].priced
            )
            assert value(samples, "krakenwatch_balance_unpriced_assets", account=label) == 0.0
        # KFEE has no USD price: no partial total, and the count says why
        assert value(samples, "krakenwatch_balance_value_usd", account="USER:daivon") is None
        assert value(samples, "krakenwatch_balance_unpriced_assets", account="USER:daivon") == 1.0
        # the balance becomes unknown: both gauges go
        sim.set_faults(http_status=503, scope="private")
        samples = wait_for(
            url,
            lambda s: value(s, "krakenwatch_balance_unpriced_assets", account="MASTER") is None,
        )
        assert value(samples, "krakenwatch_balance_value_usd", account="MASTER") is None


def test_balance_metrics_can_be_switched_off(tmp_path: Path) -> None:
    with scenario_simulator("healthy") as (_sim, env):
        env["KRAKENWATCH_BALANCE_METRICS"] = "0"
        with running(env, tmp_path) as (_, url):
            wait_for(url, lambda s: value(s, "krakenwatch_account_up", account="MASTER") == 1.0)
            text, _ = scrape(url)
    for name in ("krakenwatch_balance{", "krakenwatch_balance_value_usd", "_unpriced_assets"):
        assert name not in text
    # no balance family at all (the stream's reconciliation counter holds no amount)
    families = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    assert {f for f in families if f.startswith("krakenwatch_balance")} == {
        "krakenwatch_balance_mismatches_total"
    }


def test_password_protects_metrics_and_verify(tmp_path: Path) -> None:
    import base64

    def basic(password: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"prom:{password}".encode()).decode()}

    with scenario_simulator("healthy") as (_, env):
        env["KRAKENWATCH_PASSWORD"] = "a long enough password"
        with running(env, tmp_path, start=False) as (_, url):
            for path in ("/metrics", "/api/verify"):
                assert http_get(url + path)[0] == 401
                assert http_get(url + path, headers=basic("wrong password!!"))[0] == 401
                assert http_get(url + path, headers=basic("a long enough password"))[0] in (
                    200,
                    503,
                )
            assert http_get(url + "/_stcore/health")[0] == 200


def samples_of(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def test_only_the_current_state_is_exported(tmp_path: Path) -> None:
    with scenario_simulator("healthy") as (_sim, env):
        env["KRAKEN_USER_BROKEN_API_KEY"] = "SIM" + "x" * 53  # no secret: invalid_config
        with running(env, tmp_path) as (service, url):
            # every account settled (connected, or invalid): no state changes under the scrape
            settled = {"connected", "invalid_config"}
            wait_for(
                url,
                lambda s: (
                    {
                        dict(labels)["state"]
                        for (name, labels) in s
                        if name == "krakenwatch_account_state"
                    }
                    <= settled
                ),
            )
            text, _ = scrape(url)
            states = {a.label: str(a.state) for a in service.monitor.snapshot().accounts}
    found = samples_of(text, "krakenwatch_account_state")
    assert sorted(labels["account"] for labels, _ in found) == sorted(states), "one per account"
    assert all(v == 1.0 and labels["state"] == states[labels["account"]] for labels, v in found)
    assert states["USER:broken"] == "invalid_config"


HEALTHY_ACCOUNTS = ("MASTER", "USER:daivon", "USER:tania_gilbert")


def probed(samples: Samples, account: str) -> bool:
    """``account`` has been polled and its Open Orders permission probed."""
    check = "permission_query_orders"
    return value(samples, "krakenwatch_check_success", check=check, account=account) == 1.0


def test_latency_histogram_is_per_method_unless_per_account_is_asked(tmp_path: Path) -> None:
    name = "krakenwatch_api_request_duration_seconds_count"
    with scenario_simulator("healthy") as (_sim, env):
        for flag, labels in (("0", {"method"}), ("1", {"account", "method"})):
            env["KRAKENWATCH_METRICS_PER_ACCOUNT_LATENCY"] = flag
            with running(env, tmp_path / flag) as (_, url):
                # every account has made both its calls (Balance, the OpenOrders probe)
                wait_for(url, lambda s: all(probed(s, a) for a in HEALTHY_ACCOUNTS))
                found = samples_of(scrape(url)[0], name)
            assert found and all(set(sample_labels) == labels for sample_labels, _ in found)
            methods = {sample_labels["method"] for sample_labels, _ in found}
            assert {"Balance", "OpenOrders"} <= methods
            assert len(found) == (len(methods) * 3 if flag == "1" else len(methods)), found


def test_a_scrape_writes_only_the_accounts_that_changed(tmp_path: Path) -> None:
    with scenario_simulator("healthy") as (_sim, env):
        env["KRAKENWATCH_POLL_INTERVAL"] = "3600"  # nothing changes unless asked
        with running(env, tmp_path) as (service, url):
            monitor, gauges = service.monitor, service.metrics.gauges
            wait_for(
                url,
                lambda s: all(
                    probed(s, a) and value(s, "krakenwatch_stream_connected", account=a) == 1.0
                    for a in HEALTHY_ACCOUNTS
                ),
            )
            first, builds = scrape(url)[0], gauges.account_builds
            assert scrape(url)[0] == first and gauges.account_builds == builds, "nothing changed"

            before = monitor.snapshot().account("USER:daivon").last_success_at
            monitor.retry_now("USER:daivon")  # one more Balance call for this account only
            eventually(lambda: monitor.snapshot().account("USER:daivon").last_success_at != before)
            text = scrape(url)[0]
    assert gauges.account_builds == builds + 1, "only the account that changed is written"
    changed = samples_of(text, "krakenwatch_last_success_timestamp_seconds")
    assert {labels["account"]: v for labels, v in changed}["USER:daivon"] > (before or 0)


def test_cached_lines_are_what_a_rebuild_writes_as_freshness_runs_out(tmp_path: Path) -> None:
    with scenario_simulator("healthy") as (_sim, env):
        env["KRAKENWATCH_POLL_INTERVAL"] = "3600"
        env["KRAKENWATCH_STREAMS"] = "0"  # polling: a stream up keeps the account fresh
        with running(env, tmp_path) as (service, url):
            # every account up: one still connecting has no freshness to run out
            wait_for(
                url,
                lambda s: all(
                    value(s, "krakenwatch_account_up", account=a) == 1.0
                    for a in ("MASTER", "USER:daivon", "USER:tania_gilbert")
                ),
            )
            snapshot = service.monitor.snapshot()
    settings = service.settings
    now = [snapshot]
    cached = SnapshotGauges(settings, lambda: now[0])
    fresh_text = cached.exposition()
    assert cached.exposition() == fresh_text and cached.account_builds == 3
    # the same accounts, unchanged, once their last success is older than KRAKENWATCH_FRESHNESS
    now[0] = dataclasses.replace(snapshot, taken_at=snapshot.taken_at + settings.freshness_s + 1)
    stale_text = cached.exposition()
    assert cached.account_builds == 6, "freshness ran out: every account written again"
    assert stale_text == SnapshotGauges(settings, lambda: now[0]).exposition()
    stale = parse(stale_text)
    for account in ("MASTER", "USER:daivon", "USER:tania_gilbert"):
        assert value(parse(fresh_text), "krakenwatch_account_up", account=account) == 1.0
        assert value(stale, "krakenwatch_account_up", account=account) == 0.0
        assert value(stale, "krakenwatch_check_success", check="connected", account=account) == 0


def test_metrics_are_gzipped_for_clients_that_accept_it(tmp_path: Path) -> None:
    with scenario_simulator("healthy") as (_sim, env), running(env, tmp_path) as (_, url):
        wait_for(url, lambda s: value(s, "krakenwatch_account_up", account="MASTER") == 1.0)
        # The accounts keep changing state between two scrapes until they settle, so the two
        # answers are taken again until a pair agrees; a gzip body that parses differently never does.
        deadline = time.monotonic() + 20.0
        while True:
            plain = http_get(url + "/metrics")[2]  # no Accept-Encoding
            zipped = requests.get(url + "/metrics", headers={"Accept-Encoding": "gzip"}, timeout=10)
            assert zipped.headers["Content-Encoding"] == "gzip"
            assert int(zipped.headers["Content-Length"]) < len(zipped.content) / 4
            if parse(zipped.text).keys() == parse(plain).keys() or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert parse(zipped.text).keys() == parse(plain).keys()


def test_accept_encoding_is_read_as_http_says() -> None:
    assert accepts_gzip("gzip") and accepts_gzip("deflate, gzip;q=0.5") and accepts_gzip("GZIP")
    assert not accepts_gzip("") and not accepts_gzip("identity") and not accepts_gzip("gzip;q=0")
