"""A proxy that lets nothing through and remembers who asked: point ``HTTPS_PROXY`` and
``HTTP_PROXY`` at it, and any request a process makes to a host other than the ones it was told to
ignore shows up in :attr:`RecordingProxy.seen` (``CONNECT api.kraken.com:443 HTTP/1.1``) instead of
leaving the machine."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

__all__ = ["RecordingProxy", "recording_proxy"]


class RecordingProxy:
    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        #: the first line of every request received
        self.seen: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="recording-proxy", daemon=True)

    def environ(self) -> dict[str, str]:
        """Proxy variables that send every outside request here (loopback stays direct)."""
        return {
            "HTTPS_PROXY": self.url,
            "HTTP_PROXY": self.url,
            "https_proxy": self.url,
            "http_proxy": self.url,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    line = conn.recv(4096).split(b"\r\n", 1)[0].decode("latin-1")
                except OSError:
                    line = "(nothing readable)"
                with self._lock:
                    self.seen.append(line)
                with contextlib.suppress(OSError):
                    conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.close()
        self._thread.join(5)


@contextlib.contextmanager
def recording_proxy() -> Iterator[RecordingProxy]:
    with RecordingProxy() as proxy:
        yield proxy
