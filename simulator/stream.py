"""The private WebSocket v2 endpoint (Kraken's ``wss://ws-auth.kraken.com/v2``, here
``ws://127.0.0.1:<port>/v2``): a :mod:`websockets` asyncio server on its own event loop in a
daemon thread, started and stopped with the :class:`~simulator.Simulator`.

Faults (for a client's reconnect logic): :meth:`StreamServer.drop` closes connections' TCP at
once (no close frame); :meth:`~StreamServer.stall` keeps them open but sends nothing, heartbeats
included, until :meth:`~StreamServer.resume` (connections opened later are not stalled);
:meth:`~StreamServer.invalidate` revokes a key's tokens, tells its connections
``ESession:Invalid session`` and closes them; :meth:`~StreamServer.refuse` answers new
handshakes with HTTP 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
from http import HTTPStatus

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from .stream_session import StreamContext, StreamSession

__all__ = ["WS_PATH", "StreamServer"]

WS_PATH = "/v2"
_LOG = logging.getLogger("simulator.stream")
_LOG.addHandler(logging.NullHandler())  # quiet, like the HTTP side


class StreamServer:
    def __init__(self, ctx: StreamContext, host: str = "127.0.0.1", port: int = 0) -> None:
        self.ctx = ctx
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self._ids = itertools.count(1)
        self._refusing = False
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Listen and serve in a daemon thread; returns once the socket is listening."""
        self._thread = threading.Thread(target=self._run, name="kraken-simulator-ws", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        """Close every connection (close code 1001) and the listening socket. Idempotent."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # already stopped
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the WebSocket server has not been started")
        return self._port

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # a bind error: reported by start()
            self._error = exc
        finally:
            self._ready.set()
            loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        server: Server
        async with serve(
            self._serve,
            self.host,
            self._requested_port,
            process_request=self._check,
            compression=None,
            ping_interval=None,  # Kraken's liveness signal is its heartbeat channel
            close_timeout=1,
            logger=_LOG,
        ) as server:
            self._port = int(server.sockets[0].getsockname()[1])
            self._ready.set()
            await self._stop.wait()

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path.split("?")[0] != WS_PATH:
            return connection.respond(HTTPStatus.NOT_FOUND, f"no WebSocket at {request.path}\n")
        if self._refusing:
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "refused (simulated)\n")
        return None

    async def _serve(self, connection: ServerConnection) -> None:
        await StreamSession(self.ctx, connection, next(self._ids)).run()

    # ------------------------------------------------------------------ faults
    def _sessions(self, key: str | None) -> list[StreamSession]:
        return [s for s in self.ctx.hub.listeners(key) if isinstance(s, StreamSession)]

    def _settle(self) -> None:
        """Wait until the event loop has run what the faults scheduled (so a fault is in force
        when its method returns); never call it from the loop itself."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError, TimeoutError):
            asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(timeout=5)

    def drop(self, key: str | None = None) -> int:
        """Cut the TCP connections (of ``key``'s streams, or all); how many."""
        sessions = self._sessions(key)
        for session in sessions:
            session.drop()
        self._settle()
        return len(sessions)

    def stall(self, key: str | None = None) -> int:
        sessions = self._sessions(key)
        for session in sessions:
            session.stall()
        self._settle()
        return len(sessions)

    def resume(self) -> None:
        for session in self._sessions(None):
            session.resume()
        self._settle()

    def invalidate(self, key: str | None = None) -> int:
        """Revoke the tokens of ``key`` (or every key) and end its connections' sessions."""
        self.ctx.tokens.invalidate(key)
        sessions = [s for s in self._sessions(key) if s.key is not None]
        for session in sessions:
            session.end_session()
        self._settle()
        return len(sessions)

    def status_changed(self) -> None:
        """Tell every connection the new system status (Kraken sends ``status`` updates)."""
        for session in self._sessions(None):
            session.status_changed()

    def refuse(self, on: bool = True) -> None:
        """Answer new WebSocket handshakes with HTTP 503 (``on``) or accept them again."""
        self._refusing = on
