"""The monitor: every account connected, polled and reconnected; the clock sampled; events made.

It reads the settings and the accounts, calls Kraken through ``broker`` and hands what happened
to its listeners as :class:`~dashboard.monitor.events.Event` (the history stores them, the
exporter counts them). It knows nothing of SQLite, Prometheus or the pages.

================  ================================================================================
module            concern
================  ================================================================================
``facade``        :class:`Monitor`: starts the pollers and the clock sampler, the app's one handle
``polling``       one account's connection, step by step: connect, balance, probes, back off
``oneshot``       a one-shot verification's client (``krakenwatch check``): calls on a kept-alive
                  connection, closed after the account's one attempt
``streaming``     one account's WebSocket stream turned into its status and the monitor's events
``streamstatus``  the stream's state, open orders, trading counters and totals (plain data)
``reconcile``     REST Balance against the stream's balances: which assets differ
``probes``        which permissions a key has, proven by calls that change nothing
``retry``         how long to wait after a failed call, and when to stop calling
``clock``         clock skew and Kraken's system status, from public calls only
``prices``        USD prices from Kraken's public ticker, cached for a minute
``valuation``     balances valued in US dollars (pure code: prices in, values out)
``board``         every account's current status, under one lock
``bridge``        the clients' observer reports turned into events
``gateway_lane``  under ``up --gateway``: the monitor's calls take turns in the gateway's lanes
``guard_link``    under ``up --gateway``: the trading guard's events become the monitor's, and
                  the streams' trading counters reach the guard
``events``        what happened, to which account, when
``status``        account states, per-account status, the point-in-time snapshot
================  ================================================================================
"""
