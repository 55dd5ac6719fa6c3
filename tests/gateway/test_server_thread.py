"""``gateway.server.ServerThread``: any ASGI app served by uvicorn in a thread, on a socket bound
before it starts; ``start`` returns once the app is up (awaited, not polled) and fails at once when
it cannot come up; ``stop`` frees the port."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from gateway.server import ServerThread, bind
from testkit.net import http_get

#: how long the slow app's lifespan takes to start
SLOW_START_S = 0.3


async def _hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


def _app(events: list[str], *, slow: bool = False, broken: bool = False) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if slow:
            await asyncio.sleep(SLOW_START_S)  # a startup that takes a while
        if broken:
            raise RuntimeError("cannot start")
        events.append("lifespan started")
        yield
        events.append("lifespan stopped")

    return Starlette(routes=[Route("/", _hello)], lifespan=lifespan)


def _refused(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_start_returns_once_the_lifespan_started_and_the_app_answers() -> None:
    events: list[str] = []
    with ServerThread(_app(events, slow=True)) as server:
        events.append("start returned")
        assert server.started
        assert http_get(server.url + "/")[::2] == (200, "hello")
    assert events == ["lifespan started", "start returned", "lifespan stopped"]
    assert not server.started


def test_a_host_and_port_are_bound_at_once_and_freed_by_stop() -> None:
    server = ServerThread(_app([]), ("127.0.0.1", 0))
    port = int(server.url.rsplit(":", 1)[1])
    assert port != 0 and server.url == f"http://127.0.0.1:{port}"
    assert not _refused(port)  # connections wait in the backlog until uvicorn accepts them
    server.start()
    server.stop()
    assert _refused(port)


def test_a_bound_socket_is_served_and_closed_by_stop() -> None:
    sock = bind("127.0.0.1", 0)
    with ServerThread(_app([]), sock, lifespan="off") as server:
        assert server.sock is sock
        assert http_get(server.url + "/")[0] == 200
    assert sock.fileno() == -1


def test_a_server_that_cannot_start_fails_start_at_once_and_frees_its_port() -> None:
    server = ServerThread(_app([], broken=True), ("127.0.0.1", 0))
    began = time.monotonic()
    with pytest.raises(RuntimeError, match="the server did not start"):
        server.start(timeout=60)
    assert time.monotonic() - began < 30  # the server's end was awaited, not the timeout
    assert server.sock.fileno() == -1


def test_a_server_never_started_stops_and_frees_its_port() -> None:
    server = ServerThread(_app([]))
    server.stop()
    assert server.sock.fileno() == -1
    assert not server.started
