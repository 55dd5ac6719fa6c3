"""The shipped Alertmanager config: amtool, and alerts that reach a person.

The real test runs `krakenwatch up` on the simulator, Debian's Prometheus (the shipped rules, time
scaled down 60 times: `for: 5m` becomes 5 s) and Debian's Alertmanager (the shipped routes and
inhibition, 1 s grouping waits) on loopback ports, with a webhook receiver the test runs. It breaks
an account and sees the notification arrive, then resolve; then puts Kraken in maintenance and sees
one KrakenNotOnline notification while every per-account alert is held back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from dashboard.monitor.retry import RetryPolicy
from simulator import PERMISSIONS, Simulator, builtin_scenario
from simulator.environment import scenario_environment
from testkit.net import eventually, http_get

from .alertkit import (
    ALERTMANAGER_YML,
    Alertmanager,
    alertmanager_server,
    check_config,
    shipped_config,
    uncomment_examples,
)
from .promkit import (
    Prometheus,
    Target,
    alert_rules,
    krakenwatch_up,
    minutes_as_seconds,
    prometheus_server,
    seconds,
)
from .runbook import PER_ACCOUNT_ALERTS, RUNBOOK_BASE
from .webhook import Notification, WebhookReceiver, notification_for, webhook_receiver

ACCOUNTS = ("MASTER", "USER:daivon", "USER:tania_gilbert")
#: the secret-bearing fields of the example receivers: each must come from a file
SECRET_FIELDS = {"api_url", "routing_key", "service_key", "auth_password", "auth_secret"}


# ------------------------------------------------------------------------------------- amtool
def test_amtool_accepts_the_shipped_config() -> None:
    result = check_config(ALERTMANAGER_YML)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_example_receiver_is_valid_and_reads_its_secret_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "alertmanager.yml"
    path.write_text(uncomment_examples(ALERTMANAGER_YML.read_text()))
    result = check_config(path)
    assert result.returncode == 0, result.stdout + result.stderr
    receivers = {r["name"]: r for r in yaml.safe_load(path.read_text())["receivers"]}
    assert set(receivers) == {"krakenwatch-webhook", "slack", "pagerduty", "email"}
    for name, receiver in receivers.items():
        for kind, configs in receiver.items():
            if kind == "name":
                continue
            for config in configs:
                assert config["send_resolved"] is True, f"{name}: send_resolved"
                assert not SECRET_FIELDS & set(config), f"{name}: a secret inline in the config"


def test_the_config_groups_per_account_and_holds_per_account_alerts_back_in_maintenance() -> None:
    doc = shipped_config()
    assert set(doc["route"]["group_by"]) == {"alertname", "account"}
    rules = {rule["alert"]: rule for rule in alert_rules()}
    assert "KrakenNotOnline" in rules
    assert 'check="kraken_status"' in rules["KrakenNotOnline"]["expr"]
    inhibit = doc["inhibit_rules"]
    sources = {m for rule in inhibit for m in rule["source_matchers"]}
    assert sources == {'alertname = "KrakenNotOnline"'}
    assert any(rule["target_matchers"] == ['account =~ ".+"'] for rule in inhibit)
    # the source fires before the alerts it holds back would (in the shipped durations), for the
    # alerts maintenance can cause (it answers EService:Unavailable, never a nonce or rate error;
    # the trading counter only rises with the account's own orders, and balances are reconciled
    # only while REST Balance succeeds)
    not_caused_by_maintenance = {
        "KrakenInvalidNonceErrors",
        "KrakenGatewayInvalidNonce",
        "KrakenGatewayRateLimited",
        "KrakenTradingRateCounterHigh",
        "KrakenBalanceMismatch",
    }
    for name in PER_ACCOUNT_ALERTS - not_caused_by_maintenance:
        assert seconds(rules["KrakenNotOnline"]["for"]) < seconds(rules[name]["for"]), name


# ------------------------------------------------------------------------------- the real thing
def _all_checks_pass(krakenwatch: Target) -> bool:
    """Every krakenwatch_check_success sample of krakenwatch's own /metrics is 1."""
    status, _, text = http_get(krakenwatch.url + "/metrics")
    if status != 200:
        return False
    samples = [
        sample
        for family in text_string_to_metric_families(text)
        if family.name == "krakenwatch_check_success"
        for sample in family.samples
    ]
    return bool(samples) and all(sample.value == 1 for sample in samples)


class Stack:
    """Everything the real test runs, wired together."""

    def __init__(self, sim: Simulator, kraken_env: dict[str, str]):
        self.sim = sim
        self.kraken_env = kraken_env
        self.krakenwatch: Target
        self.prom: Prometheus
        self.am: Alertmanager
        self.webhook: WebhookReceiver

    def context(self) -> str:
        return (
            f"{self.krakenwatch.output()[-3000:]}\n{self.prom.process.output(3000)}\n"
            f"{self.am.process.output(3000)}"
        )


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    scenario = builtin_scenario("healthy")
    # krakenwatch polls every second here: more than a starter key's rate limit allows for long
    scenario.tier, scenario.lockout_threshold = "unlimited", 0
    with ExitStack() as resources:
        sim = Simulator(scenario).start()
        resources.callback(sim.stop)
        running = Stack(sim, scenario_environment(scenario, sim.url))
        running.webhook = resources.enter_context(webhook_receiver())
        # Kraken's SystemStatus is read with the clock skew: every 10 s (the minimum)
        running.krakenwatch = resources.enter_context(
            krakenwatch_up(
                running.kraken_env,
                tmp_path / "krakenwatch",
                {"KRAKENWATCH_SKEW_INTERVAL": "10"},
            )
        )
        # Prometheus starts once krakenwatch is healthy: nothing is pending at its first look
        eventually(
            lambda: _all_checks_pass(running.krakenwatch),
            60,
            what="every krakenwatch check to pass",
            on_timeout=running.krakenwatch.output,
        )
        running.am = resources.enter_context(
            alertmanager_server(tmp_path / "alertmanager", running.webhook.url)
        )
        running.prom = resources.enter_context(
            prometheus_server(
                tmp_path / "prometheus",
                running.krakenwatch.address,
                shorten=minutes_as_seconds,
                alertmanager=running.am.address,
            )
        )
        running.prom.context = running.am.context = running.context
        yield running


def _alert(notification: Notification, alertname: str) -> dict[str, Any]:
    (alert,) = [a for a in notification["alerts"] if a["labels"]["alertname"] == alertname]
    return dict(alert)


def _per_account(notifications: list[Notification]) -> list[dict[str, Any]]:
    """The labels of every alert with an account in ``notifications``."""
    return [
        alert["labels"]
        for n in notifications
        for alert in n["alerts"]
        if "account" in alert["labels"]
    ]


@pytest.mark.slow
def test_alerts_reach_a_webhook_grouped_per_account_resolve_and_hold_back_in_maintenance(
    stack: Stack,
) -> None:
    _an_account_breaks_and_recovers(stack)
    _kraken_maintenance_is_one_notification(stack)


def _an_account_breaks_and_recovers(stack: Stack) -> None:
    sim, prom, webhook = stack.sim, stack.prom, stack.webhook
    prom.wait(lambda: prom.query("krakenwatch_account_up == 1"), "krakenwatch scraped")
    prom.wait(lambda: prom.api("alerts")["alerts"] == [], "no active alert while healthy")
    mark = webhook.count()

    # USER:daivon's key loses Query Funds: Balance is denied, the account is down
    sim.update_key("USER:daivon", permissions=["orders", "trade"])
    firing = webhook.wait_for(
        notification_for("firing", "KrakenAccountDown", account="USER:daivon"),
        "KrakenAccountDown for USER:daivon at the webhook",
        since=mark,
        context=stack.context,
    )
    # grouped by alert and account: this notification is about USER:daivon only
    assert firing["groupLabels"] == {"alertname": "KrakenAccountDown", "account": "USER:daivon"}
    alert = _alert(firing, "KrakenAccountDown")
    assert alert["status"] == "firing"
    assert alert["labels"]["severity"] == "critical"
    annotations = alert["annotations"]
    assert annotations["account"] == "USER:daivon"
    assert annotations["runbook_url"] == f"{RUNBOOK_BASE}#krakenaccountdown"
    assert "USER:daivon" in annotations["summary"]
    assert "Remedy:" in annotations["description"]
    others = _per_account(webhook.received(mark))
    assert {labels["account"] for labels in others} == {"USER:daivon"}, others

    # the permission comes back: the alert resolves, and the receiver is told. A denied
    # permission is an authentication failure, so the monitor tries again only after its first
    # authentication backoff (a minute after the failure), never in a loop that earns a lockout
    sim.update_key("USER:daivon", permissions=sorted(PERMISSIONS))
    resolved = webhook.wait_for(
        notification_for("resolved", "KrakenAccountDown", account="USER:daivon"),
        "KrakenAccountDown for USER:daivon resolved at the webhook",
        since=mark,
        timeout=RetryPolicy().auth_delays_s[0] + 30,
        context=stack.context,
    )
    assert resolved["groupLabels"] == firing["groupLabels"]
    assert _alert(resolved, "KrakenAccountDown")["status"] == "resolved"
    assert _alert(resolved, "KrakenAccountDown")["fingerprint"] == alert["fingerprint"]


def _kraken_maintenance_is_one_notification(stack: Stack) -> None:
    sim, prom, am, webhook = stack.sim, stack.prom, stack.am, stack.webhook
    prom.wait(lambda: not prom.api("alerts")["alerts"], "no active alert after the recovery")
    am.wait(lambda: not am.alerts(), "Alertmanager to hold no alert after the recovery")
    mark = webhook.count()

    # Kraken announces maintenance (SystemStatus) before private calls start failing, as the
    # shipped `for:` durations make KrakenNotOnline fire before any account alert would
    sim.set_faults(system_status="maintenance", scope="public", methods=["SystemStatus"])
    webhook.wait_for(
        notification_for("firing", "KrakenNotOnline"),
        "KrakenNotOnline at the webhook",
        since=mark,
        context=stack.context,
    )
    sim.set_system_status("maintenance")  # every private call: EService:Unavailable

    def held_back() -> list[dict[str, Any]] | None:
        alerts = am.alerts("KrakenAccountDown")
        suppressed = [
            a for a in alerts if a["status"]["state"] == "suppressed" and a["status"]["inhibitedBy"]
        ]
        accounts = {a["labels"].get("account") for a in suppressed}
        return suppressed if accounts == set(ACCOUNTS) else None

    suppressed = am.wait(held_back, "KrakenAccountDown for every account, held back by the AM")
    (source,) = am.alerts("KrakenNotOnline")
    assert all(a["status"]["inhibitedBy"] == [source["fingerprint"]] for a in suppressed)
    assert {a["labels"]["account"] for a in prom.active("KrakenAccountDown")} == set(ACCOUNTS)

    # Kraken is back: the accounts recover while the status still says maintenance, then the
    # status follows; the receiver hears that KrakenNotOnline is over
    sim.set_system_status("online")
    am.wait(lambda: not am.alerts("KrakenAccountDown"), "KrakenAccountDown to resolve")
    sim.clear_faults()
    webhook.wait_for(
        notification_for("resolved", "KrakenNotOnline"),
        "KrakenNotOnline resolved at the webhook",
        since=mark,
        context=stack.context,
    )
    during = webhook.received(mark)
    assert _per_account(during) == [], json.dumps(during, indent=1)
    names = {a["labels"]["alertname"] for n in during for a in n["alerts"]}
    assert names == {"KrakenNotOnline"}, names
