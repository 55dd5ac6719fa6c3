"""Serving a :class:`~gateway.core.Gateway` with uvicorn: in the foreground (the CLI), or in a
background thread (tests, benchmarks, embedding without Streamlit).

The listening socket is bound before uvicorn starts (:func:`bind`), so a port in use is a clear
error rather than a log line from inside the server, and "listening" is announced only once the
server accepts connections.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn

from .core import Gateway
from .readtimeout import protocol_with_read_timeout

__all__ = ["LOOPBACK", "GatewayThread", "base_url", "bind", "exposure_warning", "run"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def exposure_warning(host: str) -> str | None:
    """What to say when the gateway listens on ``host`` beyond loopback (``None``: nothing)."""
    if host in LOOPBACK:
        return None
    return (
        f"warning: listening on {host}: anyone who can reach this port and knows an account's "
        "API secret can trade through it; keep it on a private network"
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``OSError`` when that is not possible)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, as getaddrinfo would: asyncio sets TCP_NODELAY only on such sockets
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


def base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _server(gateway: Gateway, app: Any = None) -> uvicorn.Server:
    config = uvicorn.Config(
        app if app is not None else gateway.app(),
        http=protocol_with_read_timeout(gateway.settings.read_timeout_s),
        log_level="warning",
        access_log=False,
        lifespan="on",
        server_header=False,
        # calls in flight may take the request timeout, plus the nonce store's grace
        timeout_graceful_shutdown=int(gateway.settings.request_timeout_s) + 6,
    )
    return uvicorn.Server(config)


def run(
    gateway: Gateway, sock: socket.socket, on_ready: Callable[[str], None] | None = None
) -> None:
    """Serve in the foreground until SIGINT/SIGTERM; ``on_ready`` gets the base URL once
    connections are accepted."""
    server = _server(gateway)
    with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
        runner.run(_serve(server, sock, on_ready))


async def _serve(
    server: uvicorn.Server, sock: socket.socket, on_ready: Callable[[str], None] | None
) -> None:
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started and not task.done():
        await asyncio.sleep(0.01)  # uvicorn offers no event to wait on
    if server.started and on_ready is not None:
        on_ready(base_url(sock))
    await task


class GatewayThread:
    """A gateway served by uvicorn in a daemon thread, on ``host:port`` (0: a free port); ``app``:
    a host app that mounts :meth:`Gateway.routes` and starts and stops it (embedding)."""

    def __init__(self, gateway: Gateway, host: str = "127.0.0.1", port: int = 0, app: Any = None):
        self.gateway = gateway
        self._sock = bind(host, port)
        self.url = base_url(self._sock)
        self._server = _server(gateway, app)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            daemon=True,
            name="krakenwatch-gateway",
        )

    def start(self, timeout: float = 10.0) -> GatewayThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)  # uvicorn offers no event to wait on
        if not self._server.started:
            self.stop()
            raise RuntimeError("the gateway did not start")
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(30)
        self._sock.close()

    def __enter__(self) -> GatewayThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
