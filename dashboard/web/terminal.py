"""How ``up`` and ``demo`` start and stop, as the operator sees it in the terminal.

* The URLs are printed once the server answers, not before (the rule of the simulator's
  ``listening on`` line): :class:`ReadyAnnouncer` waits until the app's lifespan has started, then
  until ``/_stcore/health`` answers 200 on the bound port, and prints them.
* Ctrl-C (SIGINT) and SIGTERM stop the server gracefully (uvicorn), then :func:`run_until_stopped`
  prints one line, ``stopped``, and the exit code is 0: no traceback.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import TextIO

__all__ = ["STOPPED", "ReadyAnnouncer", "run_until_stopped", "urls_text"]

#: the one line printed when the server has been stopped by a signal
STOPPED = "stopped"
#: how often the health endpoint is asked while the server starts
POLL_S = 0.05


def urls_text(host: str, port: int) -> str:
    """The three URLs of a server listening on ``host:port``, one per line."""
    shown = f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{port}"
    return f"dashboard: {base}/\nmetrics: {base}/metrics\nverify: {base}/api/verify"


def _probe_host(address: str) -> str:
    """Where this host reaches a server bound to ``address`` (a wildcard: the loopback)."""
    return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(address, address)  # noqa: S104


#: straight to our own server, whatever ``http_proxy`` says
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _answers(url: str) -> bool:
    try:
        with _DIRECT.open(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except OSError:
        return False


class ReadyAnnouncer:
    """Prints the URLs once the server answers on its port.

    :meth:`started` is called by the app's lifespan (the server has bound its socket and knows its
    port: ``port_of()``); a thread then polls the health endpoint and prints. :meth:`stop` ends the
    wait when the server never came up.
    """

    def __init__(
        self,
        address: str,
        port_of: Callable[[], int],
        out: TextIO | None = None,
        extra: Sequence[str] = (),
    ):
        self.address = address
        self.port_of = port_of
        self.out = out
        #: more lines to print with the URLs (the gateway's, under ``--gateway``)
        self.extra = list(extra)
        self._started = threading.Event()
        self._stop = threading.Event()
        self.announced = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kw-announce", daemon=True)

    def start(self) -> ReadyAnnouncer:
        self._thread.start()
        return self

    def started(self) -> None:
        """The lifespan has started: the socket is bound and the port is known."""
        self._started.set()

    def stop(self) -> None:
        self._stop.set()
        self._started.set()
        self._thread.join(2.0)

    def _run(self) -> None:
        self._started.wait()
        if self._stop.is_set():
            return
        port = self.port_of()
        host = _probe_host(self.address)
        health = f"http://{f'[{host}]' if ':' in host else host}:{port}/_stcore/health"
        while not _answers(health):
            if self._stop.wait(POLL_S):
                return
        text = "\n".join([urls_text(self.address, port), *self.extra])
        print(text, file=self.out or sys.stdout, flush=True)
        self.announced.set()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises ``KeyboardInterrupt`` like Ctrl-C (while the server runs, uvicorn handles
    both and re-raises them once it has shut down)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_until_stopped(run: Callable[[], int]) -> int:
    """``run()`` (a server, until it stops) and its exit code; stopped by Ctrl-C or SIGTERM, at any
    point of its start, run or shutdown: one line ``stopped`` and exit code 0."""
    with _sigterm_interrupts():
        try:
            code = run()
        except KeyboardInterrupt:
            code = 0
        else:
            if code != 0:
                return code
    print(STOPPED, flush=True)
    return 0
