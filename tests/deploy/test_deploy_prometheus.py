"""The shipped Prometheus config and alert rules: promtool, conventions, and a real Prometheus.

The real-Prometheus test starts krakenwatch against the simulator on a free loopback port, then
Debian's `prometheus` (loopback, temporary storage, 1 s scrape and evaluation) with the shipped
alert rules, and watches metrics arrive and alerts go pending/firing through Prometheus' HTTP API.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import krakenex
import pytest
import yaml

from simulator import OtherWriter, Simulator, builtin_scenario
from simulator.environment import scenario_environment
from testkit.env import clean_environ
from testkit.gateway import account_environ, gateway_process
from testkit.net import eventually, free_port, http_get, status_of
from testkit.sim import one_key_simulator

from .deploykit import (
    ALERTS_TEST_YML,
    ALERTS_YML,
    PROMETHEUS_DIR,
    PROMETHEUS_YML,
    Process,
    http_json,
    prometheus,
    promtool,
    running,
    tool,
)

REQUIRED_ALERTS = {
    "KrakenwatchGatewayDown",
    "KrakenGatewayInvalidNonce",
    "KrakenGatewayRateLimited",
    "KrakenGatewayQueueSaturated",
    "KrakenInvalidNonceErrors",
    "KrakenAccountDown",
    "KrakenVerificationCheckFailing",
    "KrakenClockSkewHigh",
    "KrakenwatchDown",
}
ACCOUNTS = {"MASTER", "USER:daivon", "USER:tania_gilbert"}
#: scrape job -> its target in the shipped prometheus.yml (the compose service names)
SHIPPED_TARGETS = {"krakenwatch": "krakenwatch:8501", "krakenwatch-gateway": "gateway:8788"}
#: the rule group of the signing gateway (its metrics exist only where a gateway runs)
GATEWAY_GROUP = "krakenwatch-gateway"


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], capture_output=True, text=True, timeout=60, cwd=PROMETHEUS_DIR
    )


def alert_rules(group: str | None = None) -> list[dict[str, Any]]:
    """Every alert rule, or those of one group."""
    doc = yaml.safe_load(ALERTS_YML.read_text())
    return [rule for g in doc["groups"] if group in (None, g["name"]) for rule in g["rules"]]


def rule_metrics(rules: list[dict[str, Any]]) -> set[str]:
    return {name for rule in rules for name in re.findall(r"\bkrakenwatch_[a-z_]+\b", rule["expr"])}


# ------------------------------------------------------------------------------------ promtool
def test_promtool_check_config() -> None:
    result = run_promtool("check", "config", str(PROMETHEUS_YML))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_check_rules() -> None:
    result = run_promtool("check", "rules", str(ALERTS_YML))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_test_rules() -> None:
    result = run_promtool("test", "rules", str(ALERTS_TEST_YML))
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------------- conventions
def test_alert_rules_follow_the_conventions() -> None:
    rules = alert_rules()
    assert {rule.get("alert") for rule in rules} >= REQUIRED_ALERTS
    for rule in rules:
        name = rule.get("alert")
        assert name and re.fullmatch(r"(?:[A-Z][a-z0-9]+)+", name), f"not CamelCase: {name}"
        assert re.fullmatch(r"\d+[smh]", str(rule.get("for", ""))), f"{name}: no for: duration"
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        annotations = rule["annotations"]
        assert annotations["summary"].strip(), name
        assert "Remedy:" in annotations["description"], f"{name}: the description has no remedy"


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    doc = yaml.safe_load(ALERTS_TEST_YML.read_text())
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in doc["tests"]:
        for check in case["alert_rule_test"]:
            (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - fires == set(), "alerts without a test where they fire"
    assert names - quiet == set(), "alerts without a test where they must not fire"


# --------------------------------------------------------------------- krakenwatch under test
@dataclass
class Target:
    """A running krakenwatch: its base URL, how to stop it and what it printed."""

    url: str
    stop: Callable[[], object]
    output: Callable[[], str]


def krakenwatch_environment(kraken_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    return clean_environ(
        {
            **kraken_env,
            "KRAKENWATCH_POLL_INTERVAL": "1",
            "KRAKENWATCH_DATA_DIR": str(tmp_path / "data"),
            "HOME": str(tmp_path),
        }
    )


@contextmanager
def krakenwatch_up(kraken_env: dict[str, str], tmp_path: Path) -> Iterator[Target]:
    """`krakenwatch up` as a subprocess on a free loopback port (cwd: an empty directory, so no
    developer's .env is read)."""
    port = free_port()
    argv = [tool("krakenwatch", "pip install -e .")]
    argv += ["up", "--address", "127.0.0.1", "--port", str(port)]
    env = krakenwatch_environment(kraken_env, tmp_path)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    with running(argv, tmp_path / "krakenwatch.log", env=env, cwd=workdir) as app:
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            assert app.alive(), app.output()
            return status_of(url + "/metrics") == 200

        eventually(ready, 60, what="krakenwatch up to serve /metrics", on_timeout=app.output)
        printed = eventually(
            lambda: f"metrics: {url}/metrics" in app.output(),
            10,
            what="krakenwatch up to print its metrics URL",
            on_timeout=app.output,
        )
        assert printed
        yield Target(url, app.stop, app.output)


# ------------------------------------------------------------------------- Prometheus under test
class Prometheus:
    def __init__(self, url: str, process: Process):
        self.url = url
        self.process = process
        #: more context for a timeout message (krakenwatch's output)
        self.context: Callable[[], str] = str

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        doc = http_json(f"{self.url}/api/v1/{path}{query}")
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        data = self.api("query", query=promql)
        assert data["resultType"] == "vector"
        return list(data["result"])

    def alerts(self, name: str) -> list[dict[str, Any]]:
        return [a for a in self.api("alerts")["alerts"] if a["labels"]["alertname"] == name]

    def wait(self, probe: Callable[[], Any], what: str, timeout: float = 30) -> Any:
        return eventually(
            probe,
            timeout,
            what=what,
            interval=0.25,
            on_timeout=lambda: f"{self.context()}\n{self.process.output(4000)}",
        )


def derive_rule_file(tmp_path: Path) -> Path:
    """The shipped rules with every `for:` cut to 1 s, so that alerts go pending and firing within
    the test's time. Only the test copy is changed: the shipped durations stay as they are."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    doc = yaml.safe_load(ALERTS_YML.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "1s"
    path = tmp_path / "alerts.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def derive_config_file(
    tmp_path: Path, target: str, rules: Path, job_name: str = "krakenwatch"
) -> Path:
    """The shipped prometheus.yml with only the ``job_name`` job, its target replaced, the rule
    file replaced by the test copy and 1 s scrape/evaluation intervals."""
    doc = yaml.safe_load(PROMETHEUS_YML.read_text())
    doc["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    assert doc["rule_files"] == ["alerts.yml"]
    doc["rule_files"] = [str(rules)]
    assert {j["job_name"] for j in doc["scrape_configs"]} == set(SHIPPED_TARGETS)
    (job,) = [j for j in doc["scrape_configs"] if j["job_name"] == job_name]
    doc["scrape_configs"] = [job]
    for key in ("scrape_interval", "scrape_timeout"):
        job.pop(key, None)
    assert job["static_configs"] == [{"targets": [SHIPPED_TARGETS[job_name]]}]
    job["static_configs"] = [{"targets": [target]}]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = run_promtool("check", "config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    return path


@contextmanager
def prometheus_server(
    tmp_path: Path, target: str, job_name: str = "krakenwatch"
) -> Iterator[Prometheus]:
    config = derive_config_file(tmp_path, target, derive_rule_file(tmp_path), job_name)
    port = free_port()
    argv = [
        prometheus(),
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=1h",
    ]
    with running(argv, tmp_path / "prometheus.log", cwd=tmp_path) as process:
        server = Prometheus(f"http://127.0.0.1:{port}", process)

        def ready() -> bool:
            assert process.alive(), process.output()
            return status_of(f"{server.url}/-/ready") == 200

        eventually(
            ready, 30, what="Prometheus to be ready", interval=0.1, on_timeout=process.output
        )
        yield server


# ------------------------------------------------------------------------------- the real thing
@pytest.mark.slow
def test_real_prometheus_scrapes_krakenwatch_up_and_the_alerts_fire(tmp_path: Path) -> None:
    scenario = builtin_scenario("healthy")
    sim = Simulator(scenario).start()
    try:
        kraken_env = scenario_environment(scenario, sim.url)
        with (
            krakenwatch_up(kraken_env, tmp_path / "krakenwatch") as krakenwatch,
            prometheus_server(
                tmp_path / "prometheus", krakenwatch.url.removeprefix("http://")
            ) as prom,
        ):
            _scrape_healthy_then_fail(sim, kraken_env, krakenwatch, prom)
    finally:
        sim.stop()


def _scrape_healthy_then_fail(
    sim: Simulator, kraken_env: dict[str, str], krakenwatch: Target, prom: Prometheus
) -> None:
    started = time.monotonic()
    prom.context = krakenwatch.output

    def target_up() -> bool:
        targets = prom.api("targets")["activeTargets"]
        return any(t["labels"]["job"] == "krakenwatch" and t["health"] == "up" for t in targets)

    prom.wait(target_up, "the krakenwatch target to be up")

    # every account connected, as Prometheus sees it
    def accounts_up() -> list[dict[str, Any]] | None:
        result = prom.query("krakenwatch_account_up")
        values = {r["metric"].get("account"): r["value"][1] for r in result}
        return result if values == dict.fromkeys(ACCOUNTS, "1") else None

    up = prom.wait(accounts_up, "krakenwatch_account_up to be 1 for every account")
    assert all(r["metric"]["job"] == "krakenwatch" for r in up)

    (skew,) = prom.wait(
        lambda: prom.query("krakenwatch_clock_skew_seconds"), "krakenwatch_clock_skew_seconds"
    )
    assert abs(float(skew["value"][1])) < 0.5  # the simulator's clock is the real one

    # every checklist item passes: per account, and global ones (account="" is dropped by
    # Prometheus, so they have no account label)
    def checks_pass() -> list[dict[str, Any]] | None:
        result = prom.query("krakenwatch_check_success")
        return result if result and all(r["value"][1] == "1" for r in result) else None

    checks = prom.wait(checks_pass, "every krakenwatch_check_success to be 1")
    seen = {(r["metric"]["check"], r["metric"].get("account")) for r in checks}
    assert ("connected", "MASTER") in seen and ("clock_skew", None) in seen
    assert ("no_invalid_nonce", "USER:daivon") in seen

    # the exposition itself passes Prometheus' own lint
    status, _, text = http_get(krakenwatch.url + "/metrics")
    assert status == 200
    body = text.encode()
    lint = subprocess.run(
        [promtool(), "check", "metrics"], input=body, capture_output=True, timeout=30
    )
    assert lint.returncode == 0, (lint.stdout + lint.stderr).decode()

    # every metric the rules use exists in Prometheus (a typo in a rule would never fire)
    names = {r["metric"]["__name__"] for r in prom.query('{__name__=~"krakenwatch_.+"}')}
    used = {m for m in rule_metrics(alert_rules()) if not m.startswith("krakenwatch_gateway_")}
    assert used <= names, f"rules use metrics krakenwatch does not export: {used - names}"

    # the shipped rules are loaded, and none of the alerts stays active while all is well
    groups = prom.api("rules")["groups"]
    loaded = {r["name"] for g in groups for r in g["rules"] if r["type"] == "alerting"}
    assert loaded == {rule["alert"] for rule in alert_rules()}
    prom.wait(lambda: prom.api("alerts")["alerts"] == [], "no active alert while healthy")

    # another program starts writing with MASTER's key, 5 s ahead: EAPI:Invalid nonce
    sim.update_key(
        kraken_env["KRAKEN_MASTER_API_KEY"], other_writer=OtherWriter(interval_ms=50, lead_ms=5000)
    )

    def active(name: str, **labels: str) -> list[dict[str, Any]]:
        return [
            a
            for a in prom.alerts(name)
            if a["state"] in ("pending", "firing")
            and all(a["labels"].get(k) == v for k, v in labels.items())
        ]

    (nonce_alert,) = prom.wait(
        lambda: active("KrakenInvalidNonceErrors", account="MASTER"),
        "KrakenInvalidNonceErrors for MASTER",
    )
    assert nonce_alert["labels"]["severity"] == "critical"
    assert "MASTER" in nonce_alert["annotations"]["summary"]
    assert "Remedy:" in nonce_alert["annotations"]["description"]
    prom.wait(
        lambda: active(
            "KrakenVerificationCheckFailing", check="no_invalid_nonce", account="MASTER"
        ),
        "KrakenVerificationCheckFailing for MASTER's no_invalid_nonce check",
    )
    assert not active("KrakenInvalidNonceErrors", account="USER:daivon")

    # krakenwatch goes away: Prometheus notices
    krakenwatch.stop()
    prom.wait(lambda: active("KrakenwatchDown"), "KrakenwatchDown")
    assert time.monotonic() - started < 60, json.dumps(prom.api("alerts"), indent=1)


# ------------------------------------------------------------------------ the signing gateway
@pytest.mark.slow
def test_real_prometheus_scrapes_the_gateway_and_its_alerts_fire(tmp_path: Path) -> None:
    """`krakenwatch gateway` (Starter tier, --max-queue-wait 0.5) in front of the simulator,
    scraped by a real Prometheus with the shipped rules (job krakenwatch-gateway)."""
    with one_key_simulator("gateway-alerts") as (sim, key, secret):
        env = {
            **account_environ({"MASTER": (key, secret)}, sim.url, tmp_path / "data"),
            "KRAKEN_MASTER_TIER": "starter",
        }
        with gateway_process(env, tmp_path, ["--max-queue-wait", "0.5"]) as gw:
            target = gw.url.removeprefix("http://")
            with prometheus_server(tmp_path / "prometheus", target, GATEWAY_GROUP) as prom:
                prom.context = gw.output
                _gateway_alerts(sim, key, secret, gw, prom)


def _gateway_alerts(sim: Simulator, key: str, secret: str, gw: Any, prom: Prometheus) -> None:
    api = krakenex.API(key, secret)
    api.uri = gw.url

    def target_up() -> bool:
        targets = prom.api("targets")["activeTargets"]
        return any(t["labels"]["job"] == GATEWAY_GROUP and t["health"] == "up" for t in targets)

    prom.wait(target_up, "the gateway target to be up")
    assert api.query_private("Balance")["error"] == []
    # every gateway metric the rules use is exported (a typo in a rule would never fire)
    used = {m for m in rule_metrics(alert_rules()) if m.startswith("krakenwatch_gateway_")}

    def exported() -> set[str] | None:
        names = {
            r["metric"]["__name__"] for r in prom.query('{__name__=~"krakenwatch_gateway_.+"}')
        }
        return names if used <= names else None

    prom.wait(exported, f"Prometheus to have {sorted(used)}")

    def quiet() -> bool:  # KrakenwatchDown: this Prometheus scrapes no dashboard
        return all(
            a["labels"]["alertname"] == "KrakenwatchDown" for a in prom.api("alerts")["alerts"]
        )

    prom.wait(quiet, "no gateway alert while healthy")

    def active(name: str, **labels: str) -> list[dict[str, Any]]:
        return [
            a
            for a in prom.alerts(name)
            if a["state"] in ("pending", "firing")
            and all(a["labels"].get(k) == v for k, v in labels.items())
        ]

    # another program writes with the key outside the gateway, 5 s ahead: Kraken rejects the
    # gateway's nonces; bots keep calling, and soon the gateway holds them back (Starter budget)
    sim.update_key(key, other_writer=OtherWriter(interval_ms=50, lead_ms=5000))
    answers = {api.query_private("Balance")["error"][0] for _ in range(20)}
    assert answers == {"EAPI:Invalid nonce", "EAPI:Rate limit exceeded"}, answers
    (alert,) = prom.wait(
        lambda: active("KrakenGatewayInvalidNonce", account="MASTER"), "KrakenGatewayInvalidNonce"
    )
    assert (
        alert["labels"]["severity"] == "critical"
        and "Remedy:" in alert["annotations"]["description"]
    )
    prom.wait(
        lambda: active("KrakenGatewayQueueSaturated", account="MASTER"),
        "KrakenGatewayQueueSaturated",
    )
    assert not active("KrakenInvalidNonceErrors"), (
        "the generic alert must give way to the gateway's"
    )
    assert not active("KrakenGatewayRateLimited")  # Kraken never said "rate limit"
    assert sim.stats(key).rate_limited == 0
    gw.proc.terminate()
    prom.wait(lambda: active("KrakenwatchGatewayDown"), "KrakenwatchGatewayDown")
