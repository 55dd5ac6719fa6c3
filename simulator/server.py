"""HTTP plumbing: a threading HTTP/1.1 server whose handler hands API requests to the engine and
``/_sim/`` requests to the admin routes. Quiet (no per-request logging)."""

from __future__ import annotations

import contextlib
import select
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from .engine import PRIVATE_PREFIX, PUBLIC_PREFIX, Engine, Reply, json_bytes

__all__ = ["ADMIN_PREFIX", "AdminHandler", "SimHTTPServer"]

ADMIN_PREFIX = "/_sim/"
MAX_BODY = 1 << 20
#: (verb, path, body) -> (HTTP status, JSON document)
AdminHandler = Callable[[str, str, bytes], tuple[int, Any]]


class SimHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() must not wait for hung or idle keep-alive connections
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], engine: Engine, admin: AdminHandler) -> None:
        self.engine = engine
        self.admin = admin
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Cut every open connection (idle keep-alive ones included)."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):  # the client went away: not the simulator's problem
            return
        traceback.print_exc(file=sys.stderr)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "krakenwatch-simulator"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are closed after this many seconds
    server: SimHTTPServer

    def setup(self) -> None:
        super().setup()
        # headers and body are two writes: without this, Nagle + the client's delayed ACK add
        # ~40 ms to every answer on a keep-alive connection
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding"):
            self._write(Reply.html(411))
            self.close_connection = True
            return None
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        try:
            size = int(length)
        except ValueError:
            size = -1
        if not 0 <= size <= MAX_BODY:
            self._write(Reply.html(413 if size > MAX_BODY else 400))
            self.close_connection = True
            return None
        return self.rfile.read(size)

    def _dispatch(self, verb: str) -> None:
        body = self._read_body()
        if body is None:
            return
        url = urlsplit(self.path)
        path = url.path
        if path.startswith(ADMIN_PREFIX):
            status, doc = self.server.admin(verb, path, body)
            self._write(Reply(status=status, body=json_bytes(doc)))
        elif path.startswith((PUBLIC_PREFIX, PRIVATE_PREFIX)):
            headers = {name.lower(): value for name, value in self.headers.items()}
            api_key = headers.get("api-key", "").strip() if path.startswith(PRIVATE_PREFIX) else ""
            engine = self.server.engine
            # a request counts as in flight from arrival until its answer is decided; the write
            # happens after, so a client that sends its next request only after reading the
            # answer is never counted twice
            with engine.state.tracking(api_key or None):
                reply = engine.handle(verb, path, headers, body, self._client_gone, url.query)
                if reply.action == "hang":
                    engine.faults.wait_released(reply.generation)
            self._write(reply)
        else:
            self._write(Reply.html(404))

    def _client_gone(self, limit_s: float = 60.0) -> bool:
        """Wait until the client closes this connection (True), at most ``limit_s`` (False)."""
        deadline = time.monotonic() + limit_s
        stopping = self.server.engine.stopping
        while time.monotonic() < deadline and not stopping.is_set():
            readable, _, _ = select.select([self.connection], [], [], 0.05)
            if not readable:
                continue
            try:
                if not self.connection.recv(1, socket.MSG_PEEK):
                    return True  # end of stream: the client gave up
            except OSError:
                return True
            stopping.wait(0.05)  # the client sent more: it is still there
        return False

    def _write(self, reply: Reply) -> None:
        if reply.action != "send":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)
