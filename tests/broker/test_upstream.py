"""The kept-alive upstream of forwarded calls (the gateway's path): one connection per key over
real HTTP and HTTPS on 127.0.0.1, failures classified as requests' are, and requests itself
wherever the session or the environment asks for something the kept-alive path does not do."""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from broker import ConnectionLostError, KrakenClient, KrakenConnectionError, KrakenTimeout
from broker.errors import NonceStoreUnavailable
from broker.privatecall import SignedCall
from broker.upstream import applies, stock_adapters
from testkit.proxy import recording_proxy
from testkit.sim import make_key, one_key_simulator

OPENED: list[KrakenClient] = []


@pytest.fixture(autouse=True)
def closed_after() -> Iterator[None]:
    """Every client a test opens is closed after it (its kept-alive socket included)."""
    yield
    while OPENED:
        OPENED.pop().close()


def client(url: str, key: str, secret: str, tmp_path: Path, **kw: Any) -> KrakenClient:
    api = KrakenClient(key, secret, base_url=url, store_dir=tmp_path, keep_alive=True, **kw)
    OPENED.append(api)
    return api


def test_forwarded_calls_share_one_kept_alive_connection(tmp_path: Path) -> None:
    with one_key_simulator("kept", latency_ms=(0, 0)) as (sim, key, secret):
        api = client(sim.url, key, secret, tmp_path)
        first = api.forward_private("Balance")
        line = api._kept_alive.connection
        sock = line._sock if line is not None else None
        for _ in range(5):
            answer = api.forward_private("Balance")
            assert answer.status == 200 and answer.error is None
            assert json.loads(answer.body)["result"]["ZUSD"] == "1000.0000"
            assert answer.content_type.startswith("application/json")
        line = api._kept_alive.connection
        assert sock is not None and line is not None and line._sock is sock
        assert first.error is None and sim.stats(key).accepted == 6


def test_failures_say_whether_anything_was_sent(tmp_path: Path) -> None:
    with one_key_simulator("kept-faults", latency_ms=(0, 0)) as (sim, key, secret):
        api = client(sim.url, key, secret, tmp_path, timeout=1.0, late_grace=0)
        sim.set_faults(drop=True, count=1)  # the connection closes after the request
        with pytest.raises(ConnectionLostError):
            api.forward_private("Balance")
        assert api.forward_private("Balance").error is None  # a new connection
        sim.set_faults(hang=True, count=1)
        with pytest.raises(KrakenTimeout):
            api.forward_private("Balance")
        sim.clear_faults()
        assert api.forward_private("Balance").error is None
        url = sim.url
    with pytest.raises(KrakenConnectionError, match="nothing was sent"):  # nobody listens now
        client(url, key, secret, tmp_path).forward_private("Balance")


def test_kraken_errors_and_error_pages_are_judged_as_with_requests(tmp_path: Path) -> None:
    with one_key_simulator("kept-judged", latency_ms=(0, 0)) as (sim, key, secret):
        api = client(sim.url, key, secret, tmp_path)
        sim.set_faults(http_status=502, count=1)
        page = api.forward_private("Balance")
        assert page.status == 502 and page.error is not None and page.error.kind == "http_status"
        sim.set_faults(api_error="EService:Unavailable", count=1)
        busy = api.forward_private("Balance")
        assert busy.status == 200 and busy.error is not None
        assert busy.error.kind == "service_unavailable"


def test_requests_serves_whatever_the_kept_alive_path_would_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, secret = make_key("kept-proxy")
    url = "https://api.kraken.example"
    session = requests.Session()
    assert applies(session, url, stock_adapters(session))
    for change in (
        lambda s: setattr(s, "verify", False),
        lambda s: setattr(s, "proxies", {"https": "http://127.0.0.1:9"}),
        lambda s: s.mount("https://", requests.adapters.HTTPAdapter(max_retries=3)),
    ):
        changed = requests.Session()
        stock = stock_adapters(changed)
        change(changed)
        assert not applies(changed, url, stock)
    with recording_proxy() as proxy:
        for name, value in proxy.environ().items():
            monkeypatch.setenv(name, value)
        assert not applies(session, url, stock_adapters(session))
        api = client(url, key, secret, tmp_path)
        with pytest.raises(Exception):  # noqa: B017 (the proxy refuses: which error is requests')
            api.forward_private("Balance")
        assert [line.split()[:2] for line in proxy.seen] == [["CONNECT", "api.kraken.example:443"]]


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """An HTTPS server on 127.0.0.1 with a self-signed certificate; yields its URL, the
    certificate and the paths it was asked for."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            asked.append(self.path)
            body = b'{"error":[],"result":{"ZUSD":"1.0000"}}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", cert, asked
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_https_is_verified_against_the_ca_bundle_requests_would_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tls_server: tuple[str, Path, list[str]]
) -> None:
    url, cert, asked = tls_server
    key, secret = make_key("kept-tls")
    with pytest.raises(KrakenConnectionError, match="nothing was sent"):  # not a CA we trust
        client(url, key, secret, tmp_path).forward_private("Balance")
    assert asked == []
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    api = client(url, key, secret, tmp_path)
    for _ in range(3):
        assert api.forward_private("Balance").error is None
    assert asked == ["/0/private/Balance"] * 3


def test_the_lease_is_looked_at_again_once_connected_right_before_the_request_leaves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked: list[bool] = []

    def lease_ran_out(call: SignedCall) -> None:  # as when the process was paused past it
        line = call.client._kept_alive.connection
        looked.append(line is not None and line._sock is not None)  # the connection made
        raise NonceStoreUnavailable("the lease may have run out before the request left")

    with one_key_simulator("kept-last-look", latency_ms=(0, 0)) as (sim, key, secret):
        api = client(sim.url, key, secret, tmp_path)
        with monkeypatch.context() as patched:
            patched.setattr(SignedCall, "last_look", lease_ran_out)
            with pytest.raises(NonceStoreUnavailable):
                api.forward_private("Balance")
            with pytest.raises(NonceStoreUnavailable):
                api.call_private("Balance")
        assert looked == [True, True] and sim.stats(key).requests == 0  # nothing left
        answer = api.forward_private("Balance")  # the key was let go, without a hold
        assert answer.error is None and sim.stats(key).accepted == 1
