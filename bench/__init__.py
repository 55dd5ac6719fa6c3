"""krakenwatch benchmarks: ``python -m bench [--quick] [--output PATH] [--only 1,3]``.

Every figure is measured against the simulator in the same run as its baseline and reported as a
median with min-max over repetitions; targets are judged from the measured numbers. The suite
writes ``bench/RESULTS.md``. One module per benchmark:

1. :mod:`bench.nonce_race`      invalid-nonce rate under concurrency (krakenex, seed, KrakenClient)
2. :mod:`bench.overhead`        sequential calls/s through KrakenClient vs plain krakenex
3. :mod:`bench.fleet`           ``krakenwatch check`` wall time for 1-200 accounts vs sequential
4. :mod:`bench.skew`            clock skew estimate error and probes vs a single sample
5. :mod:`bench.scrape`          ``/metrics`` latency and size with many accounts
6. :mod:`bench.dashboard_cost`  not yet measured (needs the Streamlit app)

Nothing here is imported at package import time (the nonce-race workers run as
``python -m bench.nonce_race``).
"""
