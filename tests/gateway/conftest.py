"""Fixtures of the gateway tests: a simulator with one key, a gateway in front of it (in a thread
of the test process), and an upstream that records the raw requests it gets.

* ``sim_key`` -> ``(sim, key, secret)``: a simulator (no latency, no rate limit, no lockout) with
  one key named ``gw``.
* ``sim_env``: the KRAKEN_* variables (and a data dir) of MASTER on ``sim_key``'s key, for a
  gateway process.
* ``start_gateway(url, accounts=None, **settings) -> GatewayThread``: a gateway for ``accounts``
  (default: MASTER on ``sim_key``'s key) in front of ``url``; stopped at teardown.
* ``recorder`` -> :class:`Recorder`: an HTTP server that records every request and answers with
  the bytes it is told to.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from broker import AccountConfig
from gateway.server import GatewayThread
from simulator import Simulator
from testkit.gateway import account, account_environ, gateway_thread
from testkit.sim import one_key_simulator

StartGateway = Callable[..., GatewayThread]


@pytest.fixture
def sim_key() -> Iterator[tuple[Simulator, str, str]]:
    with one_key_simulator("gw", latency_ms=(0, 0)) as found:
        yield found


@pytest.fixture
def sim_env(tmp_path: Path, sim_key: tuple[Simulator, str, str]) -> dict[str, str]:
    sim, key, secret = sim_key
    return account_environ({"MASTER": (key, secret)}, sim.url, tmp_path / "data")


@pytest.fixture
def start_gateway(tmp_path: Path, sim_key: tuple[Simulator, str, str]) -> Iterator[StartGateway]:
    stack: list[Any] = []
    _sim, key, secret = sim_key

    def start(
        url: str, accounts: list[AccountConfig] | None = None, **settings: Any
    ) -> GatewayThread:
        settings.setdefault("rate_limited", False)
        chosen = accounts if accounts is not None else [account(key, secret)]
        context = gateway_thread(chosen, url, tmp_path / f"data{len(stack)}", **settings)
        server = context.__enter__()
        stack.append(context)
        return server

    yield start
    for context in reversed(stack):
        context.__exit__(None, None, None)


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Recorder:
    """An upstream that records requests; it answers ``status``/``body``/``content_type``."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    status: int = 200
    body: bytes = b'{"error":[],"result":{}}'
    content_type: str = "application/json"


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    record = Recorder()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _answer(self) -> None:
            size = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(size)
            headers = {k.lower(): v for k, v in self.headers.items()}
            record.requests.append(Recorded(self.path, headers, body))
            self.send_response(record.status)
            self.send_header("Content-Type", record.content_type)
            self.send_header("Content-Length", str(len(record.body)))
            self.end_headers()
            self.wfile.write(record.body)

        do_GET = do_POST = _answer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    record.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield record
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
