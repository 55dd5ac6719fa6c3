"""Serving ASGI apps with uvicorn on a socket bound beforehand: in the foreground (the CLI, until
SIGINT/SIGTERM), or in a background thread (:class:`ServerThread`: tests, benchmarks, embedding
without Streamlit); and the gateway served either way (:func:`run`, :class:`GatewayThread`).

The listening socket is bound before uvicorn starts (:func:`bind`), so a port in use is a clear
error rather than a log line from inside the server, and the URL is known at once. "Listening" is
announced, and :meth:`ServerThread.start` returns, only once the app's lifespan has started and the
server accepts connections: uvicorn's startup is awaited, not polled.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Self

import uvicorn

from .readtimeout import protocol_with_read_timeout
from .routes import create_app

if TYPE_CHECKING:
    from .core import Gateway
    from .settings import GatewaySettings

__all__ = [
    "LOOPBACK",
    "GatewayThread",
    "ServerThread",
    "base_url",
    "bind",
    "exposure_warning",
    "run",
]

#: the host names that keep a server on this host
LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: how our servers run unless told otherwise (keyword arguments of ``uvicorn.Config``)
DEFAULTS: dict[str, Any] = {"log_level": "warning", "access_log": False, "lifespan": "on"}


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
    """``http://host:port`` of a bound socket (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _AnnouncingServer(uvicorn.Server):
    """uvicorn's server, calling ``on_started`` once it accepts connections (uvicorn sets a flag
    then, and offers no event)."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]):
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self._on_started()


class ServerThread:
    """An ASGI ``app`` served by uvicorn in a daemon thread.

    ``listen`` is a listening socket (see :func:`bind`) or ``(host, port)`` to bind now (port 0:
    a free one); either way the socket is this server's, closed by :meth:`stop`, and :attr:`url`
    is known before :meth:`start`. ``config``: keyword arguments of ``uvicorn.Config`` over
    :data:`DEFAULTS` (e.g. ``lifespan="off"``, ``http=``, ``timeout_graceful_shutdown=``).

    :meth:`start` returns once the app's lifespan has started and connections are accepted, and
    raises ``RuntimeError`` at once when the server ends before that (a failing lifespan), or when
    it is not up within its timeout. A context manager: started on entry, stopped on exit.
    """

    #: who did not start, in :meth:`start`'s error
    label = "the server"

    def __init__(
        self,
        app: Any,
        listen: socket.socket | tuple[str, int] = ("127.0.0.1", 0),
        *,
        name: str = "krakenwatch-server",
        **config: Any,
    ):
        self.sock = listen if isinstance(listen, socket.socket) else bind(*listen)
        self.url = base_url(self.sock)
        self._settled = threading.Event()  # up, or ended without coming up
        self._server = _AnnouncingServer(
            uvicorn.Config(app, **{**DEFAULTS, **config}), self._settled.set
        )
        self._thread = threading.Thread(target=self._serve, daemon=True, name=name)

    def _serve(self) -> None:
        try:
            self._server.run(sockets=[self.sock])
        except SystemExit:  # uvicorn's way of saying its startup failed: start() reports it
            pass
        finally:
            self._settled.set()

    @property
    def started(self) -> bool:
        """Accepting connections (until :meth:`stop`)."""
        return self._server.started and self._thread.is_alive()

    def start(self, timeout: float = 10.0) -> Self:
        self._thread.start()
        self._settled.wait(timeout)
        if not self._server.started:
            self.stop()
            raise RuntimeError(f"{self.label} did not start")
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop serving (calls in flight finish, within uvicorn's graceful shutdown) and close
        the socket; for a server that never started too."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.sock.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _gateway_config(settings: GatewaySettings) -> dict[str, Any]:
    """How uvicorn serves the gateway (keyword arguments of ``uvicorn.Config``)."""
    return {
        "http": protocol_with_read_timeout(settings.read_timeout_s),
        "server_header": False,
        # nothing reads the client's address: no X-Forwarded-* rewriting on every call's path
        "proxy_headers": False,
        # calls in flight may take the request timeout, plus the nonce store's grace
        "timeout_graceful_shutdown": int(settings.request_timeout_s) + 6,
    }


def run(
    gateway: Gateway, sock: socket.socket, on_ready: Callable[[str], None] | None = None
) -> None:
    """Serve in the foreground until SIGINT/SIGTERM; ``on_ready`` gets the base URL once
    connections are accepted."""
    url = base_url(sock)

    def started() -> None:
        if on_ready is not None:
            on_ready(url)

    config = uvicorn.Config(create_app(gateway), **DEFAULTS, **_gateway_config(gateway.settings))
    _AnnouncingServer(config, started).run(sockets=[sock])


class GatewayThread(ServerThread):
    """A gateway served by uvicorn in a daemon thread, on ``host:port`` (0: a free port); ``app``:
    a host app that mounts :func:`~gateway.routes.create_routes` and starts and stops the gateway
    (embedding)."""

    label = "the gateway"

    def __init__(self, gateway: Gateway, host: str = "127.0.0.1", port: int = 0, app: Any = None):
        self.gateway = gateway
        super().__init__(
            create_app(gateway) if app is None else app,
            bind(host, port),
            name="krakenwatch-gateway",
            **_gateway_config(gateway.settings),
        )
