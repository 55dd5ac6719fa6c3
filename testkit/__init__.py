"""Helpers shared by ``tests/`` and ``bench/``; never shipped, never imported by a product package.

* :mod:`testkit.env`       the environment a child process or an in-process test may see
* :mod:`testkit.net`       free ports, HTTP probes, waiting for a condition
* :mod:`testkit.procs`     start a real process, wait for its health URL, stop its process group
* :mod:`testkit.browser`   Debian's Chromium and the flags it needs on a machine without network
* :mod:`testkit.sim`       simulators with fake keys, and raw signed calls to them
* :mod:`testkit.redis`     a real ``redis-server`` on a free port
* :mod:`testkit.rawclient` a raw HTTP client that sends exactly the bytes it is given
* :mod:`testkit.seed`      the seed document's nonce generator, kept to show how it fails
"""
