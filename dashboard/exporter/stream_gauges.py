"""The accounts' WebSocket streams as Prometheus metrics, read from the snapshot at scrape time.

Per account (``account`` label):

* ``krakenwatch_stream_connected``: 1 while the stream is up (balances and orders from Kraken);
* ``krakenwatch_stream_state{state}``: 1 for the stream's state (off, connecting, up, down,
  refused), 0 for the others;
* ``krakenwatch_stream_reconnects_total``, ``krakenwatch_stream_tokens_total``: reconnections and
  ``GetWebSocketsToken`` calls since start;
* ``krakenwatch_stream_messages_total{channel}``: messages received (heartbeat, balances,
  executions);
* ``krakenwatch_stream_last_message_timestamp_seconds``: Unix time of the last message;
* ``krakenwatch_orders_total{pair,event}``: order events seen (placed, fill, filled, cancelled,
  expired);
* ``krakenwatch_open_orders``: open orders now;
* ``krakenwatch_trading_rate_level{pair}`` and ``krakenwatch_trading_rate_threshold{pair}``:
  Kraken's trading rate counter of the pair, and the threshold it is judged against;
* ``krakenwatch_balance_mismatches_total``: REST reconciliations that found the stream's balances
  differing.

The totals are the monitor's counts since it started (a restart starts them at 0, which
``rate()`` and ``increase()`` handle as a counter reset).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dashboard.monitor.status import AccountStatus, Snapshot
from dashboard.monitor.streamstatus import ORDER_EVENTS, StreamState

__all__ = ["StreamCollector"]

#: positions in :func:`_families` of the families written from the activity
MESSAGES, LAST = 4, 5


class StreamCollector(Collector):
    """The stream families; what an account's status says is written once per status copy (the
    board hands out a new copy per change), only its activity (message counts, the last message)
    on every scrape."""

    def __init__(self, snapshot: Callable[[], Snapshot]):
        self.snapshot = snapshot
        #: label -> the status copy and the families written from it alone (shared, not changed)
        self._written: dict[str, tuple[AccountStatus, tuple[Metric, ...]]] = {}

    def describe(self) -> Iterator[Metric]:
        yield from _families()

    def collect(self) -> Iterator[Metric]:
        families = _families()
        messages, last = families[MESSAGES], families[LAST]
        snap = self.snapshot()
        written: dict[str, tuple[AccountStatus, tuple[Metric, ...]]] = {}
        for a in snap.accounts:
            if not a.configured:
                continue
            found = self._written.get(a.label)
            if found is None or found[0] is not a:
                found = (a, _status_families(a))
            written[a.label] = found
            for family, part in zip(families, found[1], strict=True):
                family.samples.extend(part.samples)
            activity = snap.stream_activity.get(a.label)
            if activity is not None:
                for channel, n in sorted(activity.messages.items()):
                    messages.add_metric([a.label, channel], n)
                if activity.last_message_at is not None:
                    last.add_metric([a.label], activity.last_message_at)
        self._written = written  # (a race between two scrapes only writes a copy twice)
        yield from families


def _status_families(a: AccountStatus) -> tuple[Metric, ...]:
    """The families with ``a``'s samples that depend on its status alone (all but the messages
    and the last message time, which are activity)."""
    families = _families()
    (
        connected,
        state,
        reconnects,
        tokens,
        _,
        _,
        orders,
        open_orders,
        counter,
        threshold,
        mismatches,
    ) = families
    s, label = a.stream, a.label
    connected.add_metric([label], 1.0 if s.up else 0.0)
    for name in StreamState:
        state.add_metric([label, str(name)], 1.0 if s.state == name else 0.0)
    reconnects.add_metric([label], s.reconnects)
    tokens.add_metric([label], s.tokens)
    mismatches.add_metric([label], s.balance_mismatches)
    open_orders.add_metric([label], len(s.open_orders))
    for pair in sorted({pair for pair, _ in s.orders}):
        for event in ORDER_EVENTS:
            orders.add_metric([label, pair, event], s.orders.get((pair, event), 0))
    for pair, rate in sorted(s.rate_counters.items()):
        counter.add_metric([label, pair], rate.count)
        if rate.threshold is not None:
            threshold.add_metric([label, pair], rate.threshold)
    return families


def _families() -> tuple[GaugeMetricFamily | CounterMetricFamily, ...]:
    account = ["account"]
    return (
        GaugeMetricFamily(
            "krakenwatch_stream_connected",
            "1 while the account's WebSocket v2 stream is up (balances and orders from Kraken).",
            labels=account,
        ),
        GaugeMetricFamily(
            "krakenwatch_stream_state",
            "1 for the state of the account's stream (off, connecting, up, down, refused), 0 for the others.",
            labels=["account", "state"],
        ),
        CounterMetricFamily(
            "krakenwatch_stream_reconnects",
            "Reconnections of the account's stream since start.",
            labels=account,
        ),
        CounterMetricFamily(
            "krakenwatch_stream_tokens",
            "GetWebSocketsToken calls for the account's stream since start.",
            labels=account,
        ),
        CounterMetricFamily(
            "krakenwatch_stream_messages",
            "Messages received on the account's stream, by channel.",
            labels=["account", "channel"],
        ),
        GaugeMetricFamily(
            "krakenwatch_stream_last_message_timestamp_seconds",
            "Unix time of the last message on the account's stream.",
            labels=account,
        ),
        CounterMetricFamily(
            "krakenwatch_orders",
            "Order events seen on the account's stream (placed, fill, filled, cancelled, expired).",
            labels=["account", "pair", "event"],
        ),
        GaugeMetricFamily(
            "krakenwatch_open_orders", "The account's open orders now.", labels=account
        ),
        GaugeMetricFamily(
            "krakenwatch_trading_rate_level",
            "Kraken's trading rate counter of the pair (EOrder:Rate limit exceeded at the threshold).",
            labels=["account", "pair"],
        ),
        GaugeMetricFamily(
            "krakenwatch_trading_rate_threshold",
            "The threshold of the pair's trading rate counter (the account's tier).",
            labels=["account", "pair"],
        ),
        CounterMetricFamily(
            "krakenwatch_balance_mismatches",
            "REST Balance reconciliations that found the stream's balances differing.",
            labels=account,
        ),
    )
