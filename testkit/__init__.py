"""Helpers shared by ``tests/`` and ``bench/``; never shipped, never imported by a product package.

* :mod:`testkit.env`       the environment a child process or an in-process test may see
* :mod:`testkit.net`       free ports, HTTP probes, waiting for a condition
* :mod:`testkit.headless`  the dashboard's routes served without the pages
* :mod:`testkit.observers` a broker observer that records the calls and refreshes reported
* :mod:`testkit.pauses`    a monitor's waits recorded instead of lived through
* :mod:`testkit.procs`     start a real process, wait for its health URL, stop its process group
* :mod:`testkit.browser`   Debian's Chromium and the flags it needs on a machine without network
* :mod:`testkit.sim`       simulators with fake keys, and raw signed calls to them
* :mod:`testkit.redis`     a real ``redis-server`` on a free port (or an address in a namespace)
* :mod:`testkit.sentinel`  ``redis-sentinel`` processes, a primary + replica + three Sentinels
* :mod:`testkit.relay`     a TCP relay that can go mute (a replica silently falling behind)
* :mod:`testkit.netns`     hosts as network namespaces on veth links to bridges (the multi-host
                          suite), whether this machine allows them and why not
* :mod:`testkit.hoststore` that suite's Redis primary, replicas and Sentinels, each a host
* :mod:`testkit.hostcluster` that suite's cluster: store, simulator, a gateway per host
* :mod:`testkit.hostbots`  bots on each host naming every request (``kw_request``)
* :mod:`testkit.hostfaults` the fault rounds (partitions, failover, kill -9, SIGSTOP, links)
* :mod:`testkit.hostcheck` the checker: what each bot was told vs what the simulator saw
* :mod:`testkit.rawclient` a raw HTTP client that sends exactly the bytes it is given, and
                          signed request bodies built by hand (``encode_private_request``)
* :mod:`testkit.gateway`   the signing gateway in a thread, or as the real command
* :mod:`testkit.bots`      real Kraken client libraries as bots (krakenex, python-kraken-sdk, ccxt)
* :mod:`testkit.release`   threads and processes released together, for races
* :mod:`testkit.workers`   worker processes hammering one key through ``KrakenClient``
* :mod:`testkit.proxy`     a proxy that lets nothing through and remembers who asked
* :mod:`testkit.seed`      the seed document's nonce generator, kept to show how it fails
"""
