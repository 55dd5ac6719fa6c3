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
from pathlib import Path
from typing import Any

import krakenex
import pytest
import yaml

from simulator import OtherWriter, Simulator, TradingSpec, builtin_scenario
from simulator.environment import scenario_environment
from testkit.gateway import account_environ, gateway_process
from testkit.net import http_get, http_json
from testkit.sim import one_key_simulator

from .deploykit import ALERTS_TEST_YML, ALERTS_YML, PROMETHEUS_YML, promtool
from .promkit import (
    Prometheus,
    Target,
    alert_rules,
    krakenwatch_up,
    prometheus_server,
    run_promtool,
)
from .runbook import (
    PER_ACCOUNT_ALERTS,
    README,
    heading_anchors,
    markdown_section,
    runbook_sections,
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
    "KrakenNotOnline",
    "KrakenDeployNotVerified",
    "KrakenStreamDown",
    "KrakenTradingRateCounterHigh",
    "KrakenBalanceMismatch",
}
ACCOUNTS = {"MASTER", "USER:daivon", "USER:tania_gilbert"}
#: the rule group of the signing gateway (its metrics exist only where a gateway runs)
GATEWAY_GROUP = "krakenwatch-gateway"
#: the alerts on the accounts' WebSocket streams
STREAM_ALERTS = {"KrakenStreamDown", "KrakenTradingRateCounterHigh", "KrakenBalanceMismatch"}
#: metrics the rules use that exist only once an account's stream has seen an order (Kraken's
#: rate counter comes with the execution events): the trading-limit test checks them
TRADING_METRICS = {
    "krakenwatch_orders_total",
    "krakenwatch_trading_rate_level",
    "krakenwatch_trading_rate_threshold",
}


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
        if name in PER_ACCOUNT_ALERTS:
            assert "$labels.account" in annotations["account"], f"{name}: no account annotation"
        else:
            assert "account" not in annotations, f"{name} is not per account"


def test_every_alert_links_to_its_runbook_section() -> None:
    sections = runbook_sections()
    runbook = markdown_section("Alerts and runbook")
    for rule in alert_rules():
        name, url = rule["alert"], rule["annotations"].get("runbook_url", "")
        assert url in sections, f"{name}: runbook_url {url!r} is no runbook heading"
        assert sections[url] == name, f"{name}: {url} is the section of {sections[url]!r}"
        # the runbook table links the alert to the same section
        anchor = url.partition("#")[2]
        assert f"| [`{name}`](#{anchor}) |" in runbook, f"{name}: no link in the runbook table"


def test_every_link_between_the_readme_and_the_docs_leads_to_a_heading() -> None:
    pages = [README, *sorted((README.parent / "docs").glob("*.md"))]
    anchors = {page: set(heading_anchors(page.read_text(encoding="utf-8"))) for page in pages}
    broken, seen = [], 0
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for target, anchor in re.findall(r"\]\(([^)#\s]*)#([^)\s]+)\)", text):
            seen += 1
            linked = (page.parent / target).resolve() if target else page
            if linked not in anchors or anchor not in anchors[linked]:
                broken.append(f"{page.name}: {target}#{anchor}")
        for target in re.findall(r"\]\(([^)#\s:]+\.(?:md|png|yml|toml))\)", text):
            seen += 1
            if not (page.parent / target).exists():
                broken.append(f"{page.name}: {target}")
    assert seen > 50, "the pages link almost nothing"
    assert broken == [], broken


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


# ------------------------------------------------------------------------------- the real thing
@pytest.mark.slow
def test_real_prometheus_scrapes_krakenwatch_up_and_the_alerts_fire(tmp_path: Path) -> None:
    scenario = builtin_scenario("healthy")
    sim = Simulator(scenario).start()
    try:
        kraken_env = scenario_environment(scenario, sim.url)
        with (
            krakenwatch_up(kraken_env, tmp_path / "krakenwatch") as krakenwatch,
            prometheus_server(tmp_path / "prometheus", krakenwatch.address) as prom,
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

    # a deploy marked from this machine (no token configured): the deploy metrics exist from now
    status, marked = http_json(krakenwatch.url + "/api/deploys", "POST", {"version": "v-test"})
    assert status == 201, marked
    prom.wait(
        lambda: prom.query('krakenwatch_deploy_state{state="verified"} == 1'),
        "the deploy to be verified, as Prometheus sees it",
    )

    # every metric the rules use exists in Prometheus (a typo in a rule would never fire); no
    # account trades here, so the order metrics are left to the trading-limit test
    names = {r["metric"]["__name__"] for r in prom.query('{__name__=~"krakenwatch_.+"}')}
    used = {m for m in rule_metrics(alert_rules()) if not m.startswith("krakenwatch_gateway_")}
    used -= TRADING_METRICS
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

    (nonce_alert,) = prom.wait(
        lambda: prom.active("KrakenInvalidNonceErrors", account="MASTER"),
        "KrakenInvalidNonceErrors for MASTER",
    )
    assert nonce_alert["labels"]["severity"] == "critical"
    assert "MASTER" in nonce_alert["annotations"]["summary"]
    assert "Remedy:" in nonce_alert["annotations"]["description"]
    prom.wait(
        lambda: prom.active(
            "KrakenVerificationCheckFailing", check="no_invalid_nonce", account="MASTER"
        ),
        "KrakenVerificationCheckFailing for MASTER's no_invalid_nonce check",
    )
    assert not prom.active("KrakenInvalidNonceErrors", account="USER:daivon")

    # krakenwatch goes away: Prometheus notices
    krakenwatch.stop()
    prom.wait(lambda: prom.active("KrakenwatchDown"), "KrakenwatchDown")
    assert time.monotonic() - started < 60, json.dumps(prom.api("alerts"), indent=1)


# ------------------------------------------------------------------- the accounts' streams
@pytest.mark.slow
def test_real_prometheus_sees_a_pair_near_krakens_trading_limit(tmp_path: Path) -> None:
    """MASTER places an order every 0.25 s and cancels each at once (Starter tier: threshold 60,
    decay 1/s; a cancel within 5 s costs 8), so the simulator pins that pair's trading counter
    at the threshold; USER:daivon trades slowly. krakenwatch follows both on their WebSocket
    streams, and KrakenTradingRateCounterHigh fires for MASTER's pair only."""
    scenario = builtin_scenario("healthy")
    scenario.tier = "starter"
    deep = {"ZUSD": "1000000.0000", "XXBT": "100.0000000000"}  # never short of funds
    trading = {
        "MASTER": TradingSpec(orders_per_minute=240, cancel_ratio=1.0),
        "USER:daivon": TradingSpec(orders_per_minute=6, cancel_ratio=0.0),
    }
    for spec in scenario.keys:
        if spec.account in trading:
            spec.balances, spec.trading = dict(deep), trading[spec.account]
    sim = Simulator(scenario).start()
    try:
        kraken_env = scenario_environment(scenario, sim.url, sim.ws_url)
        with (
            krakenwatch_up(kraken_env, tmp_path / "krakenwatch") as krakenwatch,
            prometheus_server(tmp_path / "prometheus", krakenwatch.address) as prom,
        ):
            prom.context = krakenwatch.output
            _trading_limit(prom)
    finally:
        sim.stop()


def _trading_limit(prom: Prometheus) -> None:
    def streams_up() -> list[dict[str, Any]] | None:
        result = prom.query('krakenwatch_stream_state{state="up"} == 1')
        return result if {r["metric"]["account"] for r in result} == ACCOUNTS else None

    prom.wait(streams_up, "every account's stream to be up, as Prometheus sees it")

    def firing() -> list[dict[str, Any]]:
        alerts = prom.active("KrakenTradingRateCounterHigh", account="MASTER")
        return [a for a in alerts if a["state"] == "firing"]

    (alert,) = prom.wait(firing, "KrakenTradingRateCounterHigh firing for MASTER")
    pair = alert["labels"]["pair"]
    assert alert["labels"]["severity"] == "warning"
    assert f"MASTER on {pair}" in alert["annotations"]["summary"]
    assert alert["annotations"]["account"] == "MASTER"
    assert "Remedy:" in alert["annotations"]["description"]
    (threshold,) = prom.query(
        f'krakenwatch_trading_rate_threshold{{account="MASTER", pair="{pair}"}}'
    )
    assert threshold["value"][1] == "60"  # Starter's, from the subscription's maxratecount

    # USER:daivon trades on its own counter, far below the threshold
    prom.wait(
        lambda: prom.query('krakenwatch_trading_rate_level{account="USER:daivon"}'),
        "USER:daivon's trading rate counter",
    )
    assert not prom.active("KrakenTradingRateCounterHigh", account="USER:daivon")

    # every metric the stream alerts use exists now, the order metrics too (a typo would never
    # fire)
    names = {r["metric"]["__name__"] for r in prom.query('{__name__=~"krakenwatch_.+"}')}
    used = rule_metrics([r for r in alert_rules() if r["alert"] in STREAM_ALERTS])
    assert TRADING_METRICS <= used <= names, f"not exported: {used - names}"
    # the streams stay up and agree with REST
    assert not prom.active("KrakenStreamDown")
    assert not prom.active("KrakenBalanceMismatch")


# ------------------------------------------------------------------------ the signing gateway
@pytest.mark.slow
def test_real_prometheus_scrapes_the_gateway_and_its_alerts_fire(tmp_path: Path) -> None:
    """`krakenwatch gateway` (Starter tier, --max-queue-wait 0.5) in front of the simulator,
    scraped by a real Prometheus with the shipped rules (job krakenwatch-gateway)."""
    with one_key_simulator("gateway-alerts") as (sim, key, secret):
        env = {
            **account_environ({"MASTER": (key, secret)}, sim.url, tmp_path / "data"),
            "KRAKEN_MASTER_TIER": "starter",
            # the dead man's switch's metrics exist for accounts that have one
            "KRAKEN_MASTER_CANCEL_AFTER": "600",
        }
        with gateway_process(env, tmp_path, ["--max-queue-wait", "0.5"]) as gw:
            target = gw.url.removeprefix("http://")
            with prometheus_server(tmp_path / "prometheus", target, job_name=GATEWAY_GROUP) as prom:
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
