"""Forwarded calls sent from a running event loop (``forward_private_on_loop``, the gateway's path):
one kept-alive connection per key over real HTTP and HTTPS on 127.0.0.1, on asyncio's loop and on
uvloop's; failures that say whether anything was sent; and :class:`~broker.nonce.WouldBlock`
(nothing issued, nothing sent) wherever a step would block the loop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
import ssl
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
import uvloop
from requests.utils import DEFAULT_CA_BUNDLE_PATH

from broker import ForwardedAnswer, KrakenClient, KrakenConnectionError, KrakenTimeout
from broker.errors import CallAbandonedError, ConnectionLostError, KeyBusyError
from broker.filestore import FileStore, host_lock_dir
from broker.loopupstream import _Line
from broker.nonce import NonceRecord, WouldBlock
from simulator import Simulator
from testkit.net import free_port
from testkit.sim import make_key, one_key_simulator

Run = Callable[[Coroutine[Any, Any, Any]], Any]
OPENED: list[KrakenClient] = []
BALANCE = b'{"error":[],"result":{"ZUSD":"1.0000"}}'


@pytest.fixture(autouse=True)
def closed_after() -> Iterator[None]:
    """Every client a test opens is closed after it."""
    yield
    while OPENED:
        OPENED.pop().close()


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Run:
    """Runs a coroutine on a new event loop: asyncio's, or uvloop's (the gateway's)."""
    return asyncio.run if request.param == "asyncio" else uvloop.run


def client(url: str, key: str, secret: str, tmp_path: Path, **kw: Any) -> KrakenClient:
    """A kept-alive client on the file store in ``tmp_path``, not durable unless asked."""
    for name, value in (("durable", False), ("keep_alive", True), ("nonce_store", "file")):
        kw.setdefault(name, value)
    api = KrakenClient(key, secret, base_url=url, store_dir=tmp_path, **kw)
    OPENED.append(api)
    return api


async def closing(api: KrakenClient, work: Awaitable[Any]) -> Any:
    """``work``, then ``api`` closed on this loop (its line can be closed only through it)."""
    try:
        return await work
    finally:
        api.close()


def line_of(api: KrakenClient) -> _Line | None:
    """The client's connection on the loop, if it has one."""
    return getattr(api._kept_alive.on_loop, "_line", None)


def record(api: KrakenClient) -> NonceRecord | None:
    """What the client's nonce store holds for its key."""
    return api._channel().store.peek(api.key_id)


async def until(condition: Callable[[], bool], what: str) -> None:
    """Let the loop run until ``condition`` holds (at most 10 s)."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


def test_calls_share_one_kept_alive_connection_on_the_loop(tmp_path: Path, run: Run) -> None:
    with one_key_simulator("loop-kept", latency_ms=(0, 0)) as (sim, key, secret):
        api = client(sim.url, key, secret, tmp_path)

        async def calls() -> tuple[list[ForwardedAnswer], list[_Line | None]]:
            answers, lines = [], []
            for _ in range(5):
                answers.append(await api.forward_private_on_loop("Balance"))
                lines.append(line_of(api))
            return answers, lines

        answers, lines = run(closing(api, calls()))
        stats = sim.stats(key)
    assert lines[0] is not None and all(line is lines[0] for line in lines)
    for answer in answers:
        assert answer.status == 200 and answer.error is None
        assert answer.content_type.startswith("application/json")
        assert json.loads(answer.body)["result"]["ZUSD"] == "1000.0000"
    nonces = [answer.nonce for answer in answers]
    assert nonces == sorted(set(nonces))
    assert stats.accepted == stats.requests == 5 and stats.last_nonce == nonces[-1]


def test_failures_say_whether_anything_was_sent(tmp_path: Path, run: Run) -> None:
    with one_key_simulator("loop-faults", latency_ms=(0, 0)) as (sim, key, secret):
        api = client(sim.url, key, secret, tmp_path, late_grace=30)

        async def calls() -> ForwardedAnswer:
            api.uri = f"http://127.0.0.1:{free_port()}"  # nobody listens there
            with pytest.raises(KrakenConnectionError, match="nothing was sent"):
                await api.forward_private_on_loop("Balance")
            api.uri = sim.url
            answer = await api.forward_private_on_loop("Balance")  # no hold: nothing was sent
            sim.set_faults(drop=True, count=1)  # the connection closes after the request
            with pytest.raises(ConnectionLostError, match="may have reached Kraken"):
                await api.forward_private_on_loop("Balance")
            assert line_of(api) is None
            with pytest.raises(WouldBlock):  # the key is held for the late grace
                await api.forward_private_on_loop("Balance")
            return answer

        answer = run(closing(api, calls()))
        stats = sim.stats(key)
    assert answer.error is None and stats.requests == 2 and stats.accepted == 1


@pytest.mark.parametrize(
    "fault", [{"hang": True}, {"latency_ms": [3000, 3000]}], ids=["hang", "slow"]
)
def test_no_answer_in_time_is_a_timeout_then_a_hold(
    tmp_path: Path, run: Run, fault: dict[str, Any]
) -> None:
    with one_key_simulator("loop-late", latency_ms=(0, 0)) as (sim, key, secret):
        api = client(sim.url, key, secret, tmp_path, timeout=(5.0, 0.3), late_grace=30)
        sim.set_faults(count=1, **fault)

        async def calls() -> None:
            with pytest.raises(KrakenTimeout, match="may have reached Kraken"):
                await api.forward_private_on_loop("Balance")
            assert line_of(api) is None
            held = record(api)
            with pytest.raises(WouldBlock):  # the hold is never waited out on the loop
                await api.forward_private_on_loop("Balance")
            assert record(api) == held

        run(closing(api, calls()))
        held = record(api)
        assert held is not None and held.hold_until - time.time() > 20  # the late grace
        with pytest.raises(KeyBusyError):  # the blocking path knows the hold too
            api.forward_private("Balance", deadline=time.monotonic() + 1)
        assert sim.stats(key).requests == 1


@contextlib.contextmanager
def held_by_another_thread(api: KrakenClient) -> Iterator[None]:
    lock = api._channel()._lock
    with ThreadPoolExecutor(1) as thread:
        assert thread.submit(lock.acquire).result(5)
    try:
        yield
    finally:
        lock.release()


def blocking(case: str, api: KrakenClient, sim: Simulator, mp: pytest.MonkeyPatch) -> Any:
    """What makes a loop call block in ``case`` (besides the client's options), until the
    context returned ends. Proxied calls go to a port nobody listens on, through the simulator."""
    if case.endswith("proxy"):
        api.uri = f"http://127.0.0.1:{free_port()}"
    if case == "session proxy":
        api.session.proxies = {"http": sim.url}
    elif case == "environment proxy":
        for name in ("NO_PROXY", "no_proxy"):
            mp.delenv(name, raising=False)
        for name in ("HTTP_PROXY", "http_proxy"):
            mp.setenv(name, sim.url)
    elif case == "adapter mounted":
        api.session.mount("http://", requests.adapters.HTTPAdapter())
    elif case == "key held by another thread":
        return held_by_another_thread(api)
    elif case == "flock held by another process":  # another open file description of its record
        return FileStore(api.store_dir).hold(api.key_id)
    return contextlib.nullcontext()


def options(case: str, tmp_path: Path) -> dict[str, Any]:
    """The client's options in ``case``."""
    if case == "store without a non-blocking hold":  # as Redis's: every hold may wait
        inner = FileStore(tmp_path, host_dir=host_lock_dir())
        names = ("kind", "description", "hold", "peek", "reset_after_fork")
        return {"nonce_store": SimpleNamespace(**{name: getattr(inner, name) for name in names})}
    if case == "observer":
        return {"observer": SimpleNamespace(on_call=lambda event: None)}
    return {"keep_alive": False} if case == "not keep_alive" else {}


@pytest.mark.parametrize(
    "case",
    [
        *("key held by another thread", "flock held by another process", "not keep_alive"),
        *("store without a non-blocking hold", "observer", "adapter mounted"),
        *("session proxy", "environment proxy"),
    ],
)
def test_a_step_that_would_block_sends_nothing(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with one_key_simulator("loop-would-block", latency_ms=(0, 0)) as (sim, key, secret):
        api = client(sim.url, key, secret, tmp_path, **options(case, tmp_path))
        first = api.forward_private("Balance")  # a record to compare with
        before = record(api)
        assert before is not None and before.high_water == first.nonce
        with blocking(case, api, sim, monkeypatch), pytest.raises(WouldBlock):
            asyncio.run(api.forward_private_on_loop("Balance"))
        assert sim.stats(key).requests == 1 and record(api) == before
        assert api._kept_alive.on_loop is None  # no connection was opened on the loop
        host = host_lock_dir()
        assert host is not None
        with FileStore(host).hold_now(api.key_id):  # the host-wide record was let go
            pass
        then = api.forward_private("Balance")  # the same call, from a thread that may block
        assert then.error is None and then.nonce > first.nonce
        assert sim.stats(key).accepted == 2


def test_the_first_call_on_a_fresh_durable_store_would_sync(tmp_path: Path) -> None:
    with one_key_simulator("loop-durable", latency_ms=(0, 0)) as (sim, key, secret):
        api = client(sim.url, key, secret, tmp_path, durable=True)
        with pytest.raises(WouldBlock):
            asyncio.run(api.forward_private_on_loop("Balance"))
        assert record(api) is None and sim.stats(key).requests == 0
        answer = api.forward_private("Balance")  # syncs the bound, then sends
        held = record(api)
        assert answer.error is None and held is not None and held.bound > answer.nonce


def test_before_send_refusing_sends_nothing_and_lets_the_key_go(tmp_path: Path) -> None:
    def abandon() -> None:
        raise CallAbandonedError("no longer wanted")

    with one_key_simulator("loop-abandoned", latency_ms=(0, 0)) as (sim, key, secret):
        api = client(sim.url, key, secret, tmp_path, late_grace=30)

        async def calls() -> ForwardedAnswer:
            with pytest.raises(CallAbandonedError):
                await api.forward_private_on_loop("Balance", before_send=abandon)
            assert sim.stats(key).requests == 0 and line_of(api) is None
            return await api.forward_private_on_loop("Balance")

        answer = asyncio.run(closing(api, calls()))
        assert answer.error is None and sim.stats(key).accepted == 1


class Upstream(ThreadingHTTPServer):
    """A tiny Kraken on 127.0.0.1 that answers every POST with a balance, as ``mode`` says:
    ``keep`` (kept alive), ``close`` (``Connection: close``), ``idle-close`` (closed silently
    right after answering), ``partial`` (part of the body, then nothing until ``release``)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.mode = "keep"
        self.serials = itertools.count()
        #: (connection number, path) of every request
        self.seen: list[tuple[int, str]] = []
        self.release = threading.Event()
        self.cert = Path()

    def connections(self) -> int:
        return len({serial for serial, _ in self.seen})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Upstream

    def log_message(self, format: str, *args: Any) -> None:
        return

    def setup(self) -> None:
        super().setup()
        self.serial = next(self.server.serials)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        server, mode = self.server, self.server.mode
        server.seen.append((self.serial, self.path))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BALANCE)))
        if mode == "close":
            self.send_header("Connection", "close")
        self.end_headers()
        if mode == "partial":
            self.wfile.write(BALANCE[:10])
            server.release.wait(10)
            self.close_connection = True
            return
        self.wfile.write(BALANCE)
        self.close_connection = self.close_connection or mode == "idle-close"


@contextlib.contextmanager
def upstream(tls_in: Path | None = None) -> Iterator[Upstream]:
    """A running :class:`Upstream`; over HTTPS with a certificate for 127.0.0.1 (its ``cert``)
    made in ``tls_in``."""
    server = Upstream()
    if tls_in is not None:
        server.cert, key = tls_in / "cert.pem", tls_in / "key.pem"
        command = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1"
        command += f" -addext subjectAltName=IP:127.0.0.1 -keyout {key} -out {server.cert}"
        subprocess.run(command.split(), check=True, capture_output=True)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(server.cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        server.url = server.url.replace("http:", "https:")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.parametrize("mode", ["close", "idle-close"])
def test_a_connection_the_server_closed_is_replaced_unseen(
    tmp_path: Path, run: Run, mode: str
) -> None:
    with upstream() as server:
        server.mode = mode
        api = client(server.url, *make_key(f"loop-{mode}"), tmp_path)

        async def call() -> ForwardedAnswer:
            answer = await api.forward_private_on_loop("Balance")
            line = line_of(api)
            assert (line is None) == (mode == "close")  # Connection: close: let go at once
            if line is not None:
                await until(lambda: line.unusable, "the server's close to be seen")
            return answer

        async def calls() -> list[ForwardedAnswer]:
            return [await call() for _ in range(3)]

        answers = run(closing(api, calls()))
    assert all(answer.status == 200 and answer.error is None for answer in answers)
    assert server.connections() == len(server.seen) == 3


def test_cancelling_mid_answer_closes_the_line_and_holds_the_key_for_the_late_grace(
    tmp_path: Path, run: Run
) -> None:
    with upstream() as server:
        server.mode = "partial"
        api = client(server.url, *make_key("loop-cancel"), tmp_path, late_grace=1)

        def mid_answer() -> bool:
            line = line_of(api)
            return line is not None and line.answer is not None and bool(line.answer.body)

        async def calls() -> ForwardedAnswer:
            task = asyncio.create_task(api.forward_private_on_loop("Balance"))
            await until(mid_answer, "part of the answer")
            line = line_of(api)
            assert line is not None and line.transport is not None
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert line_of(api) is None and line.transport.is_closing()
            held = record(api)  # the request may have reached Kraken: its outcome is unknown
            assert held is not None and held.hold_until > time.time()
            with pytest.raises(WouldBlock):  # the hold is never waited out on the loop
                await api.forward_private_on_loop("Balance")
            server.mode = "keep"
            server.release.set()
            await until(lambda: time.time() > held.hold_until, "the late grace to end")
            return await api.forward_private_on_loop("Balance")  # a new line, the key free

        answer = run(closing(api, calls()))
    assert answer.error is None and json.loads(answer.body)["result"] == {"ZUSD": "1.0000"}
    assert server.connections() == len(server.seen) == 2


def test_https_on_the_loop_is_verified_against_the_ca_bundle_requests_would_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Run
) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    with upstream(tmp_path) as server:
        api = client(server.url, *make_key("loop-tls"), tmp_path)

        async def calls() -> list[ForwardedAnswer]:
            with pytest.raises(KrakenConnectionError, match="nothing was sent"):  # certifi's
                await api.forward_private_on_loop("Balance")
            monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.cert))
            answers = [await api.forward_private_on_loop("Balance") for _ in range(3)]
            monkeypatch.setenv("REQUESTS_CA_BUNDLE", DEFAULT_CA_BUNDLE_PATH)  # another bundle
            assert api._kept_alive.on_loop is not None
            api._kept_alive.on_loop.close()  # the next call connects again
            with pytest.raises(KrakenConnectionError, match="nothing was sent"):
                await api.forward_private_on_loop("Balance")
            return answers

        answers = run(closing(api, calls()))
    assert all(answer.error is None for answer in answers)
    assert server.seen == [(server.seen[0][0], "/0/private/Balance")] * 3


def test_a_client_outlives_the_asyncio_loop_it_sent_from(tmp_path: Path) -> None:
    # (uvloop refuses to close a loop with a connection open: the gateway closes its clients on
    # its loop when it stops, as ``closing`` does above)
    with one_key_simulator("loop-outlived", latency_ms=(0, 0)) as (sim, key, secret):
        api = client(sim.url, key, secret, tmp_path)
        for _ in range(2):  # a new loop each time, closed when it returns
            assert asyncio.run(api.forward_private_on_loop("Balance")).error is None
        with pytest.warns(ResourceWarning, match="unclosed"):  # asyncio's, for the socket
            api.close()  # its line is on a closed loop: dropped, not closed through it
            gc.collect()
        assert api._kept_alive.on_loop is None and sim.stats(key).accepted == 2


def test_a_call_that_waits_for_a_connection_is_asked_again_whether_it_is_still_wanted(
    tmp_path: Path, run: Run
) -> None:
    with one_key_simulator("loop-paused", latency_ms=(0, 0)) as (sim, key, secret):
        api = client(sim.url, key, secret, tmp_path, late_grace=30)
        told: list[str] = []
        wanted = [True]

        def still_wanted() -> None:
            told.append("asked")
            if not wanted[0]:
                raise CallAbandonedError("the client went away while the connection was made")

        def send() -> Awaitable[ForwardedAnswer]:
            return api.forward_private_on_loop(
                "Balance", before_send=still_wanted, pausing=lambda: told.append("pausing")
            )

        async def calls() -> ForwardedAnswer:
            await send()  # a new connection: asked before and after it
            assert told == ["asked", "pausing", "asked"]
            told.clear()
            await send()  # the connection kept alive: no wait, asked once
            assert told == ["asked"]
            api.close()
            told.clear()

            def gone() -> None:  # the client leaves while the connection is being made
                told.append("pausing")
                wanted[0] = False

            with pytest.raises(CallAbandonedError):
                await api.forward_private_on_loop("Balance", before_send=still_wanted, pausing=gone)
            assert told == ["asked", "pausing", "asked"]
            wanted[0] = True
            return await send()  # nothing was sent: the key is free, no hold

        answer = run(closing(api, calls()))
        stats = sim.stats(key)
    assert answer.error is None and stats.requests == stats.accepted == 3


def test_a_loop_call_that_would_sync_leaves_the_first_look_to_the_thread(tmp_path: Path) -> None:
    # a power loss left the exact mark older than what was sent; the synced bound is not
    with one_key_simulator("loop-first-look", latency_ms=(0, 0)) as (sim, key, secret):
        store = FileStore(tmp_path, host_dir=host_lock_dir())
        api = client(sim.url, key, secret, tmp_path, durable=True)
        now_us = time.time_ns() // 1000
        with store.hold(api.key_id) as lease:
            lease.write(NonceRecord(now_us + 100_000_000, "us"))  # synced: bound 101 s ahead
            lease.write(NonceRecord(now_us - 5_000_000, "us"))  # the stale exact mark
        stale = record(api)
        assert stale is not None and stale.bound > now_us + 100_000_000 > stale.high_water
        with pytest.raises(WouldBlock):  # the first nonce is above the bound: a sync is due
            asyncio.run(api.forward_private_on_loop("Balance"))
        answer = api.forward_private("Balance")  # from a thread: the first look is its own
        assert answer.error is None and answer.nonce > stale.bound
