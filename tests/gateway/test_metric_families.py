"""The gateway's metric families, as ``/metrics`` serves them: names, types, help texts, labels and
buckets are a contract (dashboards, alerts and docs/metrics.md name them), and the declarative
table in :mod:`gateway.families` is where they come from."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gateway.answers import JSON_TYPE, Reply
from gateway.families import FAMILIES
from gateway.guardview import DeadManState, GuardSnapshot, HaltRecord, PairCounter
from gateway.metrics import CredentialsGauge, GatewayMetrics, LaneGauge

INF = math.inf
QUEUE_WAIT_BUCKETS = (0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, INF)
UPSTREAM_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, INF)

#: (name, type, help, labels, buckets) of every family, in the order ``/metrics`` lists them
SERVED = [
    (
        "krakenwatch_gateway_requests",
        "counter",
        "Private calls through the gateway by client, account, method and outcome.",
        ("account", "client", "method", "outcome"),
        None,
    ),
    (
        "krakenwatch_gateway_queue_wait_seconds",
        "histogram",
        "Time a private call waited for its key (one in flight per key, rate model).",
        ("account",),
        QUEUE_WAIT_BUCKETS,
    ),
    (
        "krakenwatch_gateway_upstream_duration_seconds",
        "histogram",
        "Time a private call spent with Kraken, from sending to the answer.",
        ("account", "method"),
        UPSTREAM_BUCKETS,
    ),
    (
        "krakenwatch_gateway_kraken_errors",
        "counter",
        "Error answers from Kraken to calls through the gateway, by code.",
        ("account", "code"),
        None,
    ),
    (
        "krakenwatch_gateway_abandoned",
        "counter",
        "Queued private calls dropped because their client disconnected (never sent).",
        ("account",),
        None,
    ),
    (
        "krakenwatch_gateway_public_requests",
        "counter",
        "Public calls through the gateway by method and outcome (cached: answered from cache).",
        ("method", "outcome"),
        None,
    ),
    (
        "krakenwatch_gateway_auth_failures",
        "counter",
        "Requests with a gateway client's key and a wrong signature, by client.",
        ("client",),
        None,
    ),
    (
        "krakenwatch_invalid_nonce_errors",
        "counter",
        "EAPI:Invalid nonce answers from Kraken.",
        ("account",),
        None,
    ),
    (
        "krakenwatch_gateway_rate_level",
        "gauge",
        "The gateway's model of the key's Kraken call counter (conservative).",
        ("account",),
        None,
    ),
    (
        "krakenwatch_gateway_rate_limit",
        "gauge",
        "The highest value the gateway lets its modelled call counter reach.",
        ("account",),
        None,
    ),
    (
        "krakenwatch_gateway_queue_depth",
        "gauge",
        "Private calls waiting for their key.",
        ("account",),
        None,
    ),
    (
        "krakenwatch_gateway_queue_refusals",
        "counter",
        "Calls the gateway refused itself, never sent, by reason: queue_full and busy "
        "(EService:Busy: the key stayed busy), wait (EAPI:Rate limit exceeded: the rate budget), "
        "order_budget (EOrder:Rate limit exceeded: a pair's trading counter), halted.",
        ("account", "reason"),
        None,
    ),
    ("krakenwatch_gateway_clients", "gauge", "Gateway client credentials in use.", (), None),
    (
        "krakenwatch_gateway_config_problem",
        "gauge",
        "1 while the client file on disk is refused (malformed or open to others) and the "
        "previous credentials stay in use.",
        (),
        None,
    ),
    (
        "krakenwatch_gateway_config_reloads",
        "counter",
        "Client file reloads by outcome.",
        ("outcome",),
        None,
    ),
    (
        "krakenwatch_gateway_trading_level",
        "gauge",
        "The gateway's model of Kraken's per-pair trading counter (conservative).",
        ("account", "pair"),
        None,
    ),
    (
        "krakenwatch_gateway_trading_threshold",
        "gauge",
        "Kraken's threshold of the per-pair trading counter at the account's tier.",
        ("account",),
        None,
    ),
    (
        "krakenwatch_gateway_halted",
        "gauge",
        'The calls that open or change orders are halted (1; client="*": the whole account).',
        ("account", "client"),
        None,
    ),
    (
        "krakenwatch_gateway_cancel_after_deadline_seconds",
        "gauge",
        "Seconds until Kraken cancels the account's open orders (the dead man's switch).",
        ("account",),
        None,
    ),
    (
        "krakenwatch_gateway_cancel_after_timeout_seconds",
        "gauge",
        "The dead man's switch timeout the gateway arms (KRAKEN_<ACCOUNT>_CANCEL_AFTER).",
        ("account",),
        None,
    ),
    (
        "krakenwatch_gateway_cancel_after_failures",
        "counter",
        "Re-arms of the dead man's switch that failed.",
        ("account",),
        None,
    ),
    (
        "krakenwatch_gateway_foreign_writer",
        "counter",
        "Invalid nonces Kraken answered to nonces the gateway issued: another program signs with "
        "the key.",
        ("account",),
        None,
    ),
]


#: a guard with a sample in every family
GUARD = GuardSnapshot(
    taken_at=1000.0,
    halts=(HaltRecord("MASTER", None, "test", "cli", 900.0),),
    dead_man={"MASTER": DeadManState("MASTER", 60.0, 990.0, 1050.0, 995.0, 1)},
    foreign_writers={"MASTER": 2},
    trading={"MASTER": {"XXBTZUSD": PairCounter(3.5, 60.0)}},
)


def _metrics(**options: object) -> GatewayMetrics:
    """Metrics for MASTER with a sample in every family (a family shows its labels only then)."""
    metrics = GatewayMetrics(
        ["MASTER"],
        lambda: [LaneGauge("MASTER", 1.0, 15.0, 2, {"busy": 1})],
        credentials=lambda: CredentialsGauge(1, False, {"ok": 1}),
        guard=lambda: GUARD,
        **options,  # type: ignore[arg-type]
    )
    nonce = Reply(200, b"{}", JSON_TYPE, "invalid_nonce", ("EAPI:Invalid nonce",), sent=True)
    metrics.record("bot", "MASTER", "Balance", nonce, queue_wait_s=0.1, upstream_s=0.2)
    metrics.public.labels("Time", "ok").inc()
    metrics.authenticated("bot", False)
    return metrics


def _served(exposition: bytes) -> list[tuple[object, ...]]:
    served: list[tuple[object, ...]] = []
    for family in text_string_to_metric_families(exposition.decode()):
        labels = sorted({name for s in family.samples for name in s.labels} - {"le"})
        bounds = sorted({float(s.labels["le"]) for s in family.samples if "le" in s.labels})
        served.append(
            (
                family.name,
                family.type,
                family.documentation,
                tuple(labels),
                tuple(bounds) or None,
            )
        )
    return served


def test_metrics_serves_every_family_with_its_name_type_help_labels_and_buckets() -> None:
    assert _served(_metrics().exposition()) == SERVED


def test_the_table_of_families_is_what_metrics_serves() -> None:
    table = [
        (
            family.name,
            family.kind,
            family.help,
            tuple(sorted(family.labels)),
            None if family.buckets is None else (*family.buckets, INF),
        )
        for family in FAMILIES
    ]
    assert table == SERVED


def test_the_hosts_invalid_nonce_counter_is_served_in_place_of_the_gateways_own() -> None:
    host = CollectorRegistry()
    shared = Counter("krakenwatch_invalid_nonce_errors", "The host's help.", ["account"])
    host.register(shared)
    metrics = _metrics(registry=host, invalid_nonces=shared)
    own = {row[0]: row for row in _served(metrics.exposition())}
    assert own["krakenwatch_invalid_nonce_errors"][2] == "The host's help."
    assert host.get_sample_value("krakenwatch_invalid_nonce_errors_total", {"account": "MASTER"})
    on_host = sorted(row[0] for row in _served(generate_latest(host)))
    assert on_host == sorted(row[0] for row in SERVED)  # every family on the host's registry too


def test_a_call_counted_later_is_counted_before_anything_reads_the_metrics() -> None:
    host = CollectorRegistry()
    metrics = _metrics(registry=host)
    ok = Reply(200, b"{}", JSON_TYPE, "ok", sent=True)
    labels = {"client": "bot", "account": "MASTER", "method": "Balance", "outcome": "ok"}
    for _ in range(3):
        metrics.record_later("bot", "MASTER", "Balance", ok, queue_wait_s=0.0, upstream_s=0.1)
    # nothing flushed them: a read of the gateway's registry, the host's, the page's traffic
    assert metrics.registry.get_sample_value("krakenwatch_gateway_requests_total", labels) == 3
    metrics.record_later("bot", "MASTER", "Balance", ok)
    assert host.get_sample_value("krakenwatch_gateway_requests_total", labels) == 4
    metrics.record_later("bot", "MASTER", "Balance", ok)
    assert metrics.traffic.snapshot().totals[("MASTER", "bot", "ok")] == 5
    metrics.flush()  # nothing left: nothing counted twice
    assert metrics.registry.get_sample_value("krakenwatch_gateway_requests_total", labels) == 5
