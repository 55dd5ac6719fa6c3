"""The Prometheus exporter: a private registry, counted from events, gauged from the snapshot.

=================  ========================================================================
module             concern
=================  ========================================================================
``metrics``        :class:`Metrics`: the registry, the counters and histograms fed by events
``gauges``         the gauges that describe "now", written from the snapshot at scrape time
``value_gauges``   the accounts' USD value as gauges (switched off with the balances)
``deploy_gauges``  the latest deploy: version, state, time to verdict
``stream_gauges``  the accounts' streams: connected, messages, orders, trading counter
``text``           the registry in the text format, each series' name and labels written once
=================  ========================================================================
"""
