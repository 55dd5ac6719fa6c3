"""The gateway's HTTP server cannot be held open: a request's headers and body must arrive within
``--read-timeout`` seconds (default 10).

uvicorn closes idle keep-alive connections, but not a connection that opened and sent nothing, nor
one that sends a request's headers or body a byte at a time. :func:`protocol_with_read_timeout`
makes uvicorn's httptools protocol arm a timer when a connection opens and when a request's first
byte arrives, and disarm it once the request is complete: a request that is still incomplete when
it fires gets ``408 Request Timeout`` (when the gateway has not seen its headers yet) and its
connection is closed (a route still reading the body sees the client as gone).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["protocol_with_read_timeout"]

_TEXT = b"the request did not arrive within the gateway's read timeout\n"
_TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(_TEXT), _TEXT)
)


def protocol_with_read_timeout(read_timeout_s: float) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol with a read timeout of ``read_timeout_s`` seconds (pass it as
    ``uvicorn.Config(http=...)``)."""

    class ReadTimeoutProtocol(HttpToolsProtocol):
        _read_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._read_timer is None:  # the first request's clock runs from the connection
                self._arm()

        def on_message_complete(self) -> None:
            self._disarm()
            super().on_message_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._read_timer = self.loop.call_later(read_timeout_s, self._timed_out)

        def _disarm(self) -> None:
            if self._read_timer is not None:
                self._read_timer.cancel()
                self._read_timer = None

        def _timed_out(self) -> None:
            self._read_timer = None
            if self.transport.is_closing():
                return
            if self.cycle is None or self.cycle.response_complete:  # the app never saw it
                self.transport.write(_TIMED_OUT)
            self.transport.close()

    return ReadTimeoutProtocol
