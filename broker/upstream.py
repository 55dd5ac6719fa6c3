"""A kept-alive HTTP/1.1 connection to Kraken for forwarded private calls (the signing gateway's
path), without requests' per-call machinery.

requests prepares, merges settings, runs hooks, picks an adapter and a pooled urllib3 connection,
and wraps the answer, for every call: on a 2-core machine about half a millisecond of CPU per call,
more than everything else the gateway does. A key's calls go out one at a time anyway (its single
writer), so one socket per key, kept alive, is all it needs: the request is written in one send,
the answer read with httptools' parser (the C parser uvicorn uses; ``http.client`` parses headers
with the email package, slower than the rest of the call).

:class:`KeptAlive` is used only where it cannot behave differently from requests (see
:func:`applies`): the client's session holds requests' defaults (no proxies, certificate or
``verify`` of the caller's own, no adapter mounted), and no proxy of the environment applies to
Kraken's URL. TLS is verified against the same CA bundle requests would use
(``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``, else certifi's). Answers are asked for without
compression, so the body is passed on as Kraken wrote it.

What a failure means is decided as for requests (:func:`broker.transport.transport_error`):
nothing was sent when the connection could not be made; the outcome is unknown once any byte of
the request may have left. A kept-alive connection the server closed while idle is noticed
before it is used (it reads as ready), and replaced.
"""

from __future__ import annotations

import os
import select
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httptools
import requests
from requests.utils import DEFAULT_CA_BUNDLE_PATH

from .errors import ConnectionLostError, KrakenConnectionError, KrakenTimeout, OutcomeUnknownError
from .transport import Timeout, describe_timeout, environ_proxies, read_timeout

__all__ = [
    "Answer",
    "KeptAlive",
    "Response",
    "applies",
    "lost",
    "not_connected",
    "stock_adapters",
]


@dataclass(frozen=True)
class Answer:
    """An HTTP answer as received."""

    status: int
    body: bytes
    content_type: str


def stock_adapters(session: requests.Session) -> tuple[Any, ...]:
    """The adapters a new session comes with (to tell later whether the caller mounted one)."""
    return tuple(session.adapters.items())


def applies(session: requests.Session, url: str, stock: tuple[Any, ...]) -> bool:
    """Whether a call to ``url`` through ``session`` may take :class:`KeptAlive` instead: the
    session still holds requests' defaults (``stock``: its adapters when it was made) and no
    proxy applies (else requests serves the call, as it would)."""
    if session.proxies or session.cert is not None or session.verify is not True:
        return False
    if tuple(session.adapters.items()) != stock:
        return False
    return not (session.trust_env and environ_proxies(url, None))


def _ca_bundle() -> str:
    found: str = (
        os.environ.get("REQUESTS_CA_BUNDLE")
        or os.environ.get("CURL_CA_BUNDLE")
        or DEFAULT_CA_BUNDLE_PATH  # certifi's, requests' own default
    )
    return found


class Response:
    """The parts of one answer, as httptools' parser calls them out."""

    def __init__(self) -> None:
        self.content_type = ""
        self.body: list[bytes] = []
        self.complete = False
        self.keep_alive = False
        self.parser: Any = httptools.HttpResponseParser(self)

    def feed(self, data: bytes) -> None:
        """Parse the next bytes of the answer (``httptools.HttpParserError`` when malformed)."""
        self.parser.feed_data(data)

    def received(self) -> Answer:
        """The whole answer (once :attr:`complete`)."""
        return Answer(self.parser.get_status_code(), b"".join(self.body), self.content_type)

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"content-type":
            self.content_type = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.keep_alive = bool(self.parser.should_keep_alive())  # known here, reset after

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete = True


class KeptAlive:
    """One kept-alive connection to ``base_url`` (see the module docstring). One user at a time:
    the key's single writer."""

    def __init__(self, base_url: str, user_agent: str):
        self.base_url = base_url
        parts = urlsplit(base_url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")
        authority = f"[{self.host}]" if ":" in self.host else self.host
        if parts.port is not None:
            authority += f":{self.port}"
        #: the request headers every call carries (requests' defaults, but no compression)
        self._fixed = f"Host: {authority}\r\nUser-Agent: {user_agent}\r\nAccept: */*\r\n"
        self._sock: socket.socket | None = None
        self._context: tuple[str, ssl.SSLContext] | None = None

    def request(self, urlpath: str, body: bytes, headers: dict[str, str]) -> bytes:
        """The bytes of one POST of ``body`` to ``urlpath``."""
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        head = (
            f"POST {self.prefix}{urlpath} HTTP/1.1\r\n{self._fixed}{lines}"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode("latin-1") + body

    def post(
        self,
        urlpath: str,
        body: bytes,
        headers: dict[str, str],
        timeout: Timeout,
        *,
        last_look: Callable[[], None] | None = None,
        **where: Any,
    ) -> Answer:
        """POST ``body`` to ``urlpath``; the answer, or the :class:`TransportError` that says
        whether anything was sent. ``last_look`` is called once connected, right before the
        first byte leaves: it raises when the request must not leave (nothing is sent)."""
        connect_s = timeout[0] if isinstance(timeout, tuple) else timeout
        sock = self._connection(connect_s, where)
        request = self.request(urlpath, body, headers)
        answer = Response()
        if last_look is not None:
            last_look()
        try:
            sock.settimeout(read_timeout(timeout))
            sock.sendall(request)
            while not answer.complete:
                data = sock.recv(65536)
                if not data:
                    raise ConnectionResetError("closed before the answer was complete")
                answer.feed(data)
        except (OSError, httptools.HttpParserError) as exc:
            self.close()
            raise lost(exc, timeout, where) from None
        if not answer.keep_alive:
            self.close()
        return answer.received()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _connection(self, connect_s: float, where: dict[str, Any]) -> socket.socket:
        sock = self._sock
        if sock is not None and not _dropped(sock):
            return sock
        self.close()
        try:
            sock = socket.create_connection((self.host, self.port), timeout=connect_s)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.https:
                sock = self.tls().wrap_socket(sock, server_hostname=self.host)
        except (OSError, ssl.SSLError) as exc:  # refused, unreachable, unresolved, TLS refused
            raise not_connected(exc, where) from None
        self._sock = sock
        return sock

    def tls(self) -> ssl.SSLContext:
        """The TLS context connections are verified with (requests' CA bundle)."""
        bundle = _ca_bundle()  # read each time a connection is made, as requests reads it
        if self._context is None or self._context[0] != bundle:
            self._context = (bundle, ssl.create_default_context(cafile=bundle))
        return self._context[1]


def not_connected(exc: BaseException, where: dict[str, Any]) -> KrakenConnectionError:
    """A connection that could not be made (refused, unreachable, unresolved, TLS refused)."""
    return KrakenConnectionError(
        f"could not connect ({type(exc).__name__}); nothing was sent", **where
    )


def lost(exc: BaseException, timeout: Timeout, where: dict[str, Any]) -> OutcomeUnknownError:
    """What a failure once the request may have left means: no answer in time, or a broken
    connection (the request may have reached Kraken either way)."""
    if isinstance(exc, TimeoutError):
        return KrakenTimeout(
            f"no answer within {describe_timeout(timeout)}; the request may have reached Kraken",
            **where,
        )
    return ConnectionLostError(
        f"the connection broke after sending ({type(exc).__name__}); the request may have "
        "reached Kraken",
        **where,
    )


def _dropped(sock: socket.socket) -> bool:
    """An idle kept-alive socket that reads as ready was closed by the server (or holds data
    nobody asked for): not to be used again."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)
