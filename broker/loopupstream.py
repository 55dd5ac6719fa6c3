"""The kept-alive connection of :mod:`broker.upstream`, on an asyncio event loop: a forwarded call
sent by the signing gateway's loop itself, with no thread in between.

Handing a call to a worker thread and its answer back costs two thread wake-ups and two hand-overs
of the GIL: on a 2-core machine about a quarter of a millisecond, more than the rest of the
gateway's work on a call. :class:`LoopKeptAlive` writes the request on an asyncio transport and
awaits the answer, parsed as :class:`~broker.upstream.KeptAlive` parses it (httptools), with the
same meaning for every failure: nothing was sent when the connection could not be made (or not in
its connect timeout); the outcome is unknown once any byte of the request may have left (no answer
within the read timeout, the connection broken, the call cancelled). TLS is verified as
:class:`~broker.upstream.KeptAlive` verifies it; a connection the server closed while idle, or
that received bytes nobody asked for, is replaced before it is used.

One user at a time (the key's single writer), on one event loop.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any, NamedTuple, cast

import httptools

from .transport import Timeout, read_timeout
from .upstream import Answer, KeptAlive, Response, lost, not_connected

__all__ = ["LoopKeptAlive", "Paused"]


class Paused(NamedTuple):
    """What a call on the loop is told when it waits before its request leaves (for a
    connection): ``pausing()`` before the wait; ``resumed()`` after it, nothing sent yet, raises
    when the request is no longer wanted."""

    pausing: Callable[[], None] | None
    resumed: Callable[[], None] | None

    def before(self) -> None:
        if self.pausing is not None:
            self.pausing()

    def after(self) -> None:
        if self.resumed is not None:
            self.resumed()


class _Line(asyncio.Protocol):
    """One connection: bytes in are fed to the answer being awaited."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.answer: Response | None = None
        self.waiter: asyncio.Future[None] | None = None
        #: closed by either side, or holding bytes nobody asked for: not to be used again
        self.unusable = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        answer, waiter = self.answer, self.waiter
        if answer is None or waiter is None or waiter.done():
            self.unusable = True
            return
        try:
            answer.feed(data)
        except httptools.HttpParserError as exc:
            waiter.set_exception(exc)
            return
        if answer.complete:
            waiter.set_result(None)

    def eof_received(self) -> bool:
        self.unusable = True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.unusable = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionResetError("closed before the answer was complete"))


class LoopKeptAlive:
    """One kept-alive connection to ``target``'s server, used from the running event loop (see
    the module docstring)."""

    def __init__(self, target: KeptAlive, loop: asyncio.AbstractEventLoop):
        self.target = target
        self.loop = loop
        self._line: _Line | None = None

    async def post(
        self,
        urlpath: str,
        body: bytes,
        headers: dict[str, str],
        timeout: Timeout,
        *,
        paused: Paused | None = None,
        **where: Any,
    ) -> Answer:
        """POST ``body`` to ``urlpath``; the answer, or the :class:`TransportError` that says
        whether anything was sent. When a connection must be made first (a wait), ``paused``
        is told before it and asked after it whether the request is still wanted (it raises
        when not, and nothing is sent)."""
        line = self._line
        if line is None or line.unusable:
            if paused is not None:
                paused.before()
            connect_s = timeout[0] if isinstance(timeout, tuple) else timeout
            line = await self._connection(connect_s, where)
            if paused is not None:
                paused.after()
        answer = line.answer = Response()
        waiter = line.waiter = self.loop.create_future()
        timer = self.loop.call_later(read_timeout(timeout), _expire, waiter)
        try:
            assert line.transport is not None
            line.transport.write(self.target.request(urlpath, body, headers))
            await waiter
        except (OSError, httptools.HttpParserError) as exc:
            self.close()
            raise lost(exc, timeout, where) from None
        except BaseException:  # cancelled: the request may have left, the line is mid-answer
            self.close()
            raise
        finally:
            timer.cancel()
            line.answer = line.waiter = None
        if not answer.keep_alive:
            self.close()
        return answer.received()

    def close(self) -> None:
        """Close the connection, from its own loop. On a loop already closed (the client
        outlived it: close clients before their loop ends, as the gateway does) it can no
        longer be closed through the loop: it is dropped, its socket closed when collected."""
        line, self._line = self._line, None
        if line is not None and line.transport is not None and not self.loop.is_closed():
            line.transport.close()

    async def _connection(self, connect_s: float, where: dict[str, Any]) -> _Line:
        self.close()
        target = self.target
        try:
            transport, line = await asyncio.wait_for(
                self.loop.create_connection(
                    _Line,
                    target.host,
                    target.port,
                    ssl=target.tls() if target.https else None,
                    server_hostname=target.host if target.https else None,
                ),
                connect_s,
            )
        except (OSError, ssl.SSLError) as exc:  # refused, unreachable, unresolved, timed out
            raise not_connected(exc, where) from None
        assert line is not None
        line.transport = transport  # uvloop calls connection_made later
        self._line = line
        return line


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())
