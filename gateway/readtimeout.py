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

from broker.stages import mark

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
        #: when the request being read must be complete (``None``: none is being read)
        _deadline: float | None = None
        #: one timer per connection, moved on when it fires early: no timer per request
        _read_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._expect()

        def on_message_begin(self) -> None:
            mark("arrived")
            super().on_message_begin()
            if self._deadline is None:  # the first request's clock runs from the connection
                self._expect()

        def on_message_complete(self) -> None:
            self._deadline = None
            super().on_message_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            mark("sent")

        def connection_lost(self, exc: Exception | None) -> None:
            self._deadline = None
            if self._read_timer is not None:
                self._read_timer.cancel()
                self._read_timer = None
            super().connection_lost(exc)

        def _expect(self) -> None:
            self._deadline = self.loop.time() + read_timeout_s
            if self._read_timer is None:
                self._read_timer = self.loop.call_at(self._deadline, self._check)

        def _check(self) -> None:
            self._read_timer = None
            if self._deadline is None:  # nothing being read: armed again by the next request
                return
            if self._deadline > self.loop.time():  # a later request's: wait for its deadline
                self._read_timer = self.loop.call_at(self._deadline, self._check)
                return
            self._timed_out()

        def _timed_out(self) -> None:
            if self.transport.is_closing():
                return
            if self.cycle is None or self.cycle.response_complete:  # the app never saw it
                self.transport.write(_TIMED_OUT)
            self.transport.close()

    return ReadTimeoutProtocol
