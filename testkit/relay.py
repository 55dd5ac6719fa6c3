"""A TCP relay on 127.0.0.1 that can go mute: what comes back from its target is thrown away
while :attr:`Relay.mute` is set, so a Redis replica that replicates through it silently falls
behind its primary (the replication lag a failover can lose), without touching either process.
When either side closes, so does the other."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

__all__ = ["Relay", "relay"]


class Relay:
    def __init__(self, target: tuple[str, int]):
        self.target = target
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        #: set: bytes from the target are dropped instead of passed on
        self.mute = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="relay-accept", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink, muted in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(
                    target=self._pump, args=(source, sink, muted), name="relay", daemon=True
                ).start()

    def _pump(self, source: socket.socket, sink: socket.socket, muted: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if not (muted and self.mute.is_set()):
                    sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Close every connection made so far (a muted stream is broken: the replica must
        reconnect and resynchronise)."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self._server.close()
        self.cut()


@contextlib.contextmanager
def relay(target: tuple[str, int]) -> Iterator[Relay]:
    found = Relay(target)
    try:
        yield found
    finally:
        found.close()
